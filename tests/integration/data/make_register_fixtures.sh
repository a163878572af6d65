#!/usr/bin/env bash
# Rebuilds register_utf8.csv and register_sjis.csv, the fixtures of
# tests/integration/test_import_csv.c: 300 sample people (kizuna sample gen
# --csv, seed 11) under a municipal export's Japanese header, with a memo
# column (備考) that is not imported and sometimes spans lines, a blank
# line, and bad records at known lines. The Shift_JIS file is the same
# text converted with iconv (CP932). The keys of `bad` below count output
# records, not lines (memos span lines); in the files the bad records start
# on lines 13 (dob), 41 (sex), 42 (name with a line break), 80 (quoting),
# 155 (field count), 218 (needs) and 314 (status), the blank line is 104:
# 307 records, 300 of them valid, which test_import_csv.c expects.
#
#   tests/integration/data/make_register_fixtures.sh KIZUNA_BIN
set -euo pipefail
BIN=${1:?usage: make_register_fixtures.sh KIZUNA_BIN}
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
"$BIN" sample gen --csv --count 300 --seed 11 --shelters 5 | python3 -c '
import sys
rows = sys.stdin.read().split("\n")[1:-1]
out = ["氏名,フリガナ,生年月日,性別,住所,世帯番号,被害,要配慮,避難所,安否,連絡先,同意,罹災証明日,備考"]
bad = {
    12: "誤記 一,ごき いち,1950-02-30,male,,,,,,,,,,",
    40: "誤記 二,ごき に,1950-01-01,robot,,,,,,,,,,",
    41: "\"誤記\n三\",ごき さん,1950-01-01,male,,,,,,,,,,",
    77: "\"誤記 四\"x,ごき よん,1950-01-01,male,,,,,,,,,,",
    150: "誤記 五,ごき ご,1950-01-01",
    211: "誤記 六,ごき ろく,1950-01-01,female,,,,flying,,,,,,",
    305: "誤記 七,ごき なな,1950-01-01,female,,,,,,zombie,,,,",
}
i = 0
while len(out) < 309:
    line = len(out) + 1  # the line this record starts on
    if line in bad:
        out.append(bad[line])
        continue
    if line == 100:
        out.append("")
        continue
    memo = ""
    if i % 37 == 5:
        memo = "\"要確認\n再訪問予定\""
    out.append(rows[i] + "," + memo)
    i += 1
    if i == len(rows):
        break
sys.stdout.write("\n".join(out) + "\n")
' > "$DIR/register_utf8.csv"
iconv -f UTF-8 -t CP932 "$DIR/register_utf8.csv" > "$DIR/register_sjis.csv"
iconv -f CP932 -t UTF-8 "$DIR/register_sjis.csv" | cmp - "$DIR/register_utf8.csv"
