#!/usr/bin/env python3
# tests/search/people.py — writes people.tsv, the people of the search test
# set (tests/search/README.md). Names are common Japanese family and given
# names and a few foreign residents', combined by hand; kana and readings
# are their ordinary readings. Run once; the .tsv is what is kept and used.
import sys

# key, name, kana (empty: the register has no kana), true reading
# (hiragana, family given; what a person would type), sex
P = []
def add(name, kana, sex, reading=None, no_kana=False):
    P.append((name, "" if no_kana else kana, reading or kana, sex))

J = [
 ("佐藤 太郎", "さとう たろう", "male"), ("佐藤 花子", "さとう はなこ", "female"),
 ("佐藤 翔太", "さとう しょうた", "male"), ("佐藤 京子", "さとう きょうこ", "female"),
 ("鈴木 一郎", "すずき いちろう", "male"), ("鈴木 美咲", "すずき みさき", "female"),
 ("高橋 健一", "たかはし けんいち", "male"), ("髙橋 陽菜", "たかはし ひな", "female"),
 ("田中 大輔", "たなか だいすけ", "male"), ("田中 裕子", "たなか ゆうこ", "female"),
 ("伊藤 恵子", "いとう けいこ", "female"), ("伊東 修一", "いとう しゅういち", "male"),
 ("渡辺 俊介", "わたなべ しゅんすけ", "male"), ("渡邊 由美子", "わたなべ ゆみこ", "female"),
 ("渡邉 洋子", "わたなべ ようこ", "female"), ("山本 勝也", "やまもと かつや", "male"),
 ("中村 純一", "なかむら じゅんいち", "male"), ("小林 千尋", "こばやし ちひろ", "female"),
 ("加藤 蓮", "かとう れん", "male"), ("吉田 結衣", "よしだ ゆい", "female"),
 ("山田 悠斗", "やまだ ゆうと", "male"), ("佐々木 智子", "ささき ともこ", "female"),
 ("山口 雄大", "やまぐち ゆうだい", "male"), ("松本 真由美", "まつもと まゆみ", "female"),
 ("井上 孝之", "いのうえ たかゆき", "male"), ("木村 秀樹", "きむら ひでき", "male"),
 ("林 直樹", "はやし なおき", "male"), ("斎藤 恭平", "さいとう きょうへい", "male"),
 ("齋藤 涼子", "さいとう りょうこ", "female"), ("斉藤 亮", "さいとう りょう", "male"),
 ("清水 順子", "しみず じゅんこ", "female"), ("山崎 翼", "やまざき つばさ", "male"),
 ("森 充", "もり みつる", "male"), ("池田 和也", "いけだ かずや", "male"),
 ("橋本 さくら", "はしもと さくら", "female"), ("阿部 奈々", "あべ なな", "female"),
 ("石川 正雄", "いしかわ まさお", "male"), ("山下 浩二", "やました こうじ", "male"),
 ("中島 幸子", "なかじま さちこ", "female"), ("小川 千代", "おがわ ちよ", "female"),
 ("前田 久美子", "まえだ くみこ", "female"), ("岡田 徹", "おかだ とおる", "male"),
 ("長谷川 大樹", "はせがわ だいき", "male"), ("長谷川 優奈", "はせがわ ゆうな", "female"),
 ("藤田 颯太", "ふじた そうた", "male"), ("後藤 健太郎", "ごとう けんたろう", "male"),
 ("近藤 紀子", "こんどう のりこ", "female"), ("村上 仁", "むらかみ じん", "male"),
 ("遠藤 新一", "えんどう しんいち", "male"), ("遠藤 澄子", "えんどう すみこ", "female"),
 ("青木 静香", "あおき しずか", "female"), ("坂本 功", "さかもと いさお", "male"),
 ("福田 茂", "ふくだ しげる", "male"), ("太田 忠", "おおた ただし", "male"),
 ("大田 秋子", "おおた あきこ", "female"), ("西村 晋平", "にしむら しんぺい", "male"),
 ("藤井 勇気", "ふじい ゆうき", "male"), ("金子 沙織", "かねこ さおり", "female"),
 ("岡本 龍之介", "おかもと りゅうのすけ", "male"), ("藤原 葵", "ふじわら あおい", "female"),
 ("中野 友香", "なかの ともか", "female"), ("三浦 恵美", "みうら えみ", "female"),
 ("原田 舞", "はらだ まい", "female"), ("松田 美穂", "まつだ みほ", "female"),
 ("竹内 健", "たけうち けん", "male"), ("小野 純平", "おの じゅんぺい", "male"),
 ("大野 周平", "おおの しゅうへい", "male"), ("小野 琴音", "おの ことね", "female"),
 ("大野 凛", "おおの りん", "female"), ("工藤 宗一郎", "くどう そういちろう", "male"),
 ("菅原 雄一", "すがわら ゆういち", "male"), ("千葉 千里", "ちば ちさと", "female"),
 ("及川 綾", "おいかわ あや", "female"), ("菊地 譲", "きくち ゆずる", "male"),
 ("熊谷 進", "くまがい すすむ", "male"), ("大友 昇", "おおとも のぼる", "male"),
 ("今野 勉", "こんの つとむ", "male"), ("紺野 稔", "こんの みのる", "male"),
 ("本間 隆", "ほんま たかし", "male"), ("新田 浩", "にった ひろし", "male"),
 ("服部 誠", "はっとり まこと", "male"), ("神田 聡", "かんだ さとし", "male"),
 ("庄司 悟", "しょうじ さとる", "male"), ("東海林 豊", "しょうじ ゆたか", "male"),
 ("秋山 清", "あきやま きよし", "male"), ("武田 恭子", "たけだ きょうこ", "female"),
 ("上野 秀一", "うえの しゅういち", "male"), ("大内 駿", "おおうち しゅん", "male"),
 ("大塚 祥子", "おおつか しょうこ", "female"), ("澁谷 章", "しぶや あきら", "male"),
 ("濱田 丈", "はまだ じょう", "male"), ("長嶋 城太郎", "ながしま じょうたろう", "male"),
 ("菅野 譲二", "かんの じょうじ", "male"), ("我妻 千春", "わがつま ちはる", "female"),
 ("佐久間 美由紀", "さくま みゆき", "female"), ("宍戸 雅人", "ししど まさと", "male"),
 ("三瓶 陽子", "さんぺい ようこ", "female"), ("半沢 直人", "はんざわ なおと", "male"),
 ("鈴木 淳", "すずき じゅん", "male"), ("佐藤 俊", "さとう しゅん", "male"),
 ("大久保 志保", "おおくぼ しほ", "female"), ("小田 乙葉", "おだ おとは", "female"),
 ("野口 秀夫", "のぐち ひでお", "male"), ("河野 百合", "こうの ゆり", "female"),
 ("高野 勝利", "たかの かつとし", "male"), ("吉川 珠美", "よしかわ たまみ", "female"),
 ("須藤 ちえ", "すどう ちえ", "female"), ("阿久津 力", "あくつ ちから", "male"),
 ("藤崎 由香里", "ふじさき ゆかり", "female"), ("柴田 郁夫", "しばた いくお", "male"),
]
# Records typed without kana (the register has only the kanji).
NOKANA = {
 "鈴木 一郎", "高橋 健一", "田中 裕子", "中村 純一", "山田 悠斗", "松本 真由美",
 "木村 秀樹", "清水 順子", "池田 和也", "石川 正雄", "前田 久美子", "藤田 颯太",
 "近藤 紀子", "西村 晋平", "三浦 恵美", "竹内 健", "菅原 雄一", "本間 隆",
 "服部 誠", "武田 恭子", "上野 秀一", "野口 秀夫", "吉川 珠美", "柴田 郁夫",
 "大久保 志保", "阿久津 力", "藤崎 由香里", "小林 千尋",
}
for name, kana, sex in J:
    add(name, kana, sex, no_kana=name in NOKANA)

# Foreign residents: name as on the residence card (family name in capitals),
# kana in katakana as the municipality wrote it.
F = [
 ("PETROV Viktor", "ペトロフ ヴィクトル", "male"),
 ("NGUYEN VAN NAM", "グエン ヴァン ナム", "male"),
 ("SILVA Ana", "シルヴァ アナ", "female"),
 ("SMITH John", "スミス ジョン", "male"),
 ("BROWN Kevin", "ブラウン ケヴィン", "male"),
 ("WILSON Olivia", "ウィルソン オリヴィア", "female"),
 ("MILLER Joshua", "ミラー ジョシュア", "male"),
 ("SANTOS Maria", "サントス マリア", "female"),
 ("GARCIA Vanessa", "ガルシア ヴァネッサ", "female"),
 ("EVANS David", "エヴァンズ デヴィッド", "male"),
 ("TRAN VAN TUAN", "チャン ヴァン トゥアン", "male"),
 ("RODRIGUES Ivan", "ロドリゲス イヴァン", "male"),
 ("IVANOVA Svetlana", "イヴァノヴァ スヴェトラーナ", "female"),
 ("CHAVEZ Vera", "チャベス ヴェラ", "female"),
 ("ROSSI Giovanni", "ロッシ ジョヴァンニ", "male"),
 ("LEE Steven", "リー スティーヴン", "male"),
 ("NOVAK Eva", "ノヴァク エヴァ", "female"),
]
for name, kana, sex in F:
    add(name, kana, sex)
# Kanji names of foreign residents, with their own reading in katakana.
add("李 偉", "リ ウェイ", "male")
add("金 美英", "キム ミヨン", "female")
add("王 芳", "ワン ファン", "female")
add("朴 智恩", "パク チウン", "female")

out = sys.stdout
out.write("# key\tname\tname_kana\tdob\tsex\treading\n")
for i, (name, kana, reading, sex) in enumerate(P):
    y = 1935 + (i * 7) % 80
    m = 1 + (i * 5) % 12
    d = 1 + (i * 11) % 28
    out.write(f"P{i+1:03d}\t{name}\t{kana}\t{y:04d}-{m:02d}-{d:02d}\t{sex}\t{reading}\n")
