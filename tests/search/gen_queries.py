#!/usr/bin/env python3
# tests/search/gen_queries.py — writes queries.tsv from people.tsv: for each
# person, the spellings a caseworker or a relative would type (see
# tests/search/README.md for the kinds). The romanisation here is written
# independently of node/name_fold.c, from the Hepburn and Kunrei tables, so
# the test set does not inherit the folder's mistakes.
import sys, unicodedata

HEP = {}
KUN = {}
def row(kana, hep, kun=None):
    for k, h, c in zip(kana.split(), hep.split(), (kun or hep).split()):
        HEP[k] = h; KUN[k] = c
row("あ い う え お", "a i u e o")
row("か き く け こ が ぎ ぐ げ ご", "ka ki ku ke ko ga gi gu ge go")
row("さ し す せ そ ざ じ ず ぜ ぞ", "sa shi su se so za ji zu ze zo", "sa si su se so za zi zu ze zo")
row("た ち つ て と だ ぢ づ で ど", "ta chi tsu te to da ji zu de do", "ta ti tu te to da zi zu de do")
row("な に ぬ ね の は ひ ふ へ ほ", "na ni nu ne no ha hi fu he ho", "na ni nu ne no ha hi hu he ho")
row("ば び ぶ べ ぼ ぱ ぴ ぷ ぺ ぽ", "ba bi bu be bo pa pi pu pe po")
row("ま み む め も や ゆ よ ら り る れ ろ わ を", "ma mi mu me mo ya yu yo ra ri ru re ro wa o")
row("きゃ きゅ きょ ぎゃ ぎゅ ぎょ", "kya kyu kyo gya gyu gyo")
row("しゃ しゅ しょ じゃ じゅ じょ", "sha shu sho ja ju jo", "sya syu syo zya zyu zyo")
row("ちゃ ちゅ ちょ", "cha chu cho", "tya tyu tyo")
row("にゃ にゅ にょ ひゃ ひゅ ひょ びゃ びゅ びょ ぴゃ ぴゅ ぴょ みゃ みゅ みょ りゃ りゅ りょ",
    "nya nyu nyo hya hyu hyo bya byu byo pya pyu pyo mya myu myo rya ryu ryo")

def hira(s):
    return "".join(chr(ord(c) - 0x60) if 0x30A1 <= ord(c) <= 0x30F6 else c for c in s)
def kata(s):
    return "".join(chr(ord(c) + 0x60) if 0x3041 <= ord(c) <= 0x3096 else c for c in s)
def half(s):
    return unicodedata.normalize("NFKC", kata(s)).translate({}) and \
        "".join(HALF.get(c, c) for c in kata(s))
# Katakana -> half-width forms (JIS X 0201).
_hw = "ｦｧｨｩｪｫｬｭｮｯｰｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ"
HALF = {unicodedata.normalize("NFKC", c): c for c in _hw}
for c in "ガギグゲゴザジズゼゾダヂヅデドバビブベボ":
    HALF[c] = HALF[unicodedata.normalize("NFD", c)[0]] + "ﾞ"
for c in "パピプペポ":
    HALF[c] = HALF[unicodedata.normalize("NFD", c)[0]] + "ﾟ"
HALF["ヴ"] = "ｳﾞ"

def syllables(k):
    out, i = [], 0
    while i < len(k):
        if k[i:i+2] in HEP:
            out.append(k[i:i+2]); i += 2
        else:
            out.append(k[i]); i += 1
    return out

MAC = {"o": "ō", "u": "ū"}
CIRC = {"o": "ô", "u": "û"}
def romaji(kana, table, long):
    """long: 'ou' (as typed in an IME), 'omit' (passport), 'macron',
    'circ' (Kunrei), 'h' (Satoh)."""
    s = syllables(hira(kana))
    out = []
    dropped = False
    for i, sy in enumerate(s):
        if sy == "っ":
            nxt = table.get(s[i+1], "") if i + 1 < len(s) else ""
            out.append(("t" if nxt.startswith("ch") and table is HEP else nxt[:1]))
            continue
        if sy == "ん":
            nxt = table.get(s[i+1], "") if i + 1 < len(s) else ""
            out.append("n'" if nxt[:1] in ("a", "i", "u", "e", "o", "y") else "n")
            continue
        r = table.get(sy)
        if r is None:
            raise SystemExit(f"no romaji for {sy!r} in {kana!r}")
        prev = "".join(out)
        nxt = s[i+1] if i + 1 < len(s) else ""
        if long != "ou" and prev and r in ("u", "o") and nxt != "え" and not dropped and \
                ((prev[-1] == "o") or (prev[-1] == "u" and r == "u")):
            # (but the う of いのうえ and おおうち-like う+vowel is not long)
            v = prev[-1]
            dropped = True
            if long == "omit":
                continue
            if long == "h":
                out.append("h"); continue
            out[-1] = out[-1][:-1] + (MAC if long == "macron" else CIRC)[v]
            continue
        dropped = False
        out.append(r)
    return "".join(out)

def cap(w):
    return w[:1].upper() + w[1:]
def fullwidth(s):
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in s)

VARIANT = str.maketrans({"斎": "齋", "齋": "斎", "斉": "齊", "高": "髙", "髙": "高",
                         "辺": "邊", "邊": "辺", "邉": "辺", "澁": "渋", "濱": "浜",
                         "嶋": "島", "崎": "﨑"})
VU = [("ヴァ", "バ"), ("ヴィ", "ビ"), ("ヴェ", "ベ"), ("ヴォ", "ボ"), ("ヴ", "ブ")]
# Small vowels written full size, as registers and people often do.
SMALL = [("ウィ", "ウイ"), ("ウェ", "ウエ"), ("ウォ", "ウオ"), ("ティ", "テイ"),
         ("ディ", "デイ"), ("トゥ", "ツ")]
def large(s):
    for a, b in SMALL:
        s = s.replace(a, b)
    return s

rows = []
def q(text, key, kind):
    rows.append((text, key, kind))

for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("#") or not line.strip():
        continue
    key, name, kana, dob, sex, reading = line.rstrip("\n").split("\t")
    n = int(key[1:])
    fam, giv = name.split(" ", 1)
    rfam, rgiv = reading.split(" ", 1)
    foreign = name.isascii() or not all(0x3040 <= ord(c) < 0x3100 for c in hira(reading).replace(" ", ""))
    foreign = foreign or any(c in reading for c in "ァィゥェォヴー") or reading != hira(reading) and reading == kata(reading)
    if name.isascii():
        # A foreign resident: the Latin name, and the katakana as written.
        q(f"{cap(giv.lower())} {cap(fam.lower())}", key, "latin-given-first")
        q(name.lower().replace(" ", ""), key, "latin-no-space")
        q(reading, key, "katakana")
        if n % 2 == 0:
            q(half(reading), key, "half-width")
        else:
            q(hira(reading), key, "hiragana")
        kf, kg = reading.split(" ", 1)
        q(f"{kg} {kf}", key, "reversed")
        if "ヴ" in reading:
            b = reading
            for a, c in VU:
                b = b.replace(a, c)
            q(b, key, "vu-bu")
        if large(reading) != reading:
            q(large(reading), key, "small-kana")
        continue
    if reading == kata(reading) and reading != hira(reading):
        # A kanji name with a katakana reading (李 偉 リ ウェイ).
        q(name, key, "kanji")
        q(reading, key, "katakana")
        q(hira(reading).replace(" ", ""), key, "hiragana-no-space")
        if large(reading) != reading:
            q(large(reading), key, "small-kana")
        continue
    hep = lambda s, lv="omit": romaji(s, HEP, lv)
    kun = lambda s, lv="ou": romaji(s, KUN, lv)
    if not kana:
        # The register has only the kanji: found by the kana or romaji a
        # relative knows only through a reading of the kanji.
        q(f"{giv} {fam}", key, "kanji-reversed")
        q(reading, key, "kanji-only:hiragana")
        q(kata(reading).replace(" ", ""), key, "kanji-only:katakana")
        q(f"{cap(hep(rgiv))} {cap(hep(rfam))}", key, "kanji-only:romaji")
        continue
    (q(f"{giv} {fam}", key, "kanji-reversed") if n % 2 else
     q(fam + giv, key, "kanji-no-space"))
    v = name.translate(VARIANT)
    if v != name:
        q(v, key, "kanji-variant")
    [lambda: q(reading, key, "hiragana"),
     lambda: q(kata(reading), key, "katakana"),
     lambda: q(half(reading), key, "half-width"),
     lambda: q(kata(rgiv + rfam), key, "katakana-reversed-no-space")][n % 4]()
    q(f"{cap(hep(rgiv))} {cap(hep(rfam))}", key, "romaji-hepburn")
    kr = f"{kun(rfam)} {kun(rgiv)}"
    if kr != f"{hep(rfam, 'ou')} {hep(rgiv, 'ou')}":
        q(kr, key, "romaji-kunrei")
    if any(x in hira(reading) for x in ("おう", "おお", "うう", "こう", "そう", "とう", "のう", "ほう", "もう", "よう", "ろう", "ごう", "ぞう", "どう", "ぼう", "しょう", "きょう", "じょう", "りょう", "ちょう", "しゅう", "じゅう", "ゆう", "くう", "すう", "ふう", "ぐう")):
        lv = ["macron", "h", "ou", "circ"][n % 4]
        t = KUN if lv == "circ" else HEP
        q(f"{cap(romaji(rfam, t, lv))} {cap(romaji(rgiv, t, lv))}", key, "long-vowel-" + lv)
    if n % 3 == 0:
        q(fullwidth(f"{hep(rfam).upper()} {hep(rgiv).upper()}"), key, "full-width-romaji")
    if n % 3 == 1:
        q(f"{hep(rfam)}{hep(rgiv)}", key, "romaji-no-space")

sys.stdout.write("# query\texpected\tkind\n")
seen = set()
for t, k, kind in rows:
    if (t, k) in seen:
        continue
    seen.add((t, k))
    sys.stdout.write(f"{t}\t{k}\t{kind}\n")
