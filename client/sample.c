/*
 * Sample-data generator (see sample.h): tables of common names, Ishinomaki
 * town names and shelters, and the rules that turn a seed into households.
 *
 * Happy path: kz_cli_sample_victim() starts a household when the previous one
 * is used up (kz_cli__household: size, members' ages and sexes, family name,
 * address, damage, shelter, landline), then builds the next member's record.
 * The only failure is running out of memory while building the JSON.
 *
 * Distributions are rough but plausible for a coastal city after a tsunami:
 * many elderly people living alone or as couples, families with children,
 * a quarter of homes 全壊, most people whose home is badly damaged in a
 * shelter, a few percent missing. Everything comes from one splitmix64
 * stream, so a seed fixes the output byte for byte.
 */
#include "sample.h"

#include "kizuna.h"

#include <stdio.h>
#include <string.h>

typedef struct kz_cli__name {
	const char *kanji;
	const char *kana;
} kz_cli__name;

/* Miyagi's most common family names first (picked more often), then the
 * most common ones nationally. 斎藤 and 斉藤, 渡辺 and 渡部 read alike:
 * good for testing search by kana. */
static const kz_cli__name kz_cli__family[] = {
	{"佐藤", "さとう"},     {"高橋", "たかはし"},   {"鈴木", "すずき"},
	{"佐々木", "ささき"},   {"阿部", "あべ"},       {"千葉", "ちば"},
	{"伊藤", "いとう"},     {"菅原", "すがわら"},   {"渡辺", "わたなべ"},
	{"斎藤", "さいとう"},   {"加藤", "かとう"},     {"遠藤", "えんどう"},
	{"及川", "おいかわ"},   {"後藤", "ごとう"},     {"武田", "たけだ"},
	{"今野", "こんの"},     {"小野寺", "おのでら"}, {"熊谷", "くまがい"},
	{"木村", "きむら"},     {"田中", "たなか"},     {"山本", "やまもと"},
	{"中村", "なかむら"},   {"小林", "こばやし"},   {"吉田", "よしだ"},
	{"山田", "やまだ"},     {"山口", "やまぐち"},   {"松本", "まつもと"},
	{"井上", "いのうえ"},   {"林", "はやし"},       {"清水", "しみず"},
	{"山崎", "やまざき"},   {"森", "もり"},         {"池田", "いけだ"},
	{"橋本", "はしもと"},   {"石川", "いしかわ"},   {"山下", "やました"},
	{"中島", "なかじま"},   {"石井", "いしい"},     {"小川", "おがわ"},
	{"前田", "まえだ"},     {"岡田", "おかだ"},     {"長谷川", "はせがわ"},
	{"藤田", "ふじた"},     {"近藤", "こんどう"},   {"村上", "むらかみ"},
	{"青木", "あおき"},     {"坂本", "さかもと"},   {"斉藤", "さいとう"},
	{"福田", "ふくだ"},     {"太田", "おおた"},     {"西村", "にしむら"},
	{"藤井", "ふじい"},     {"金子", "かねこ"},     {"岡本", "おかもと"},
	{"藤原", "ふじわら"},   {"中野", "なかの"},     {"三浦", "みうら"},
	{"原田", "はらだ"},     {"中川", "なかがわ"},   {"松田", "まつだ"},
	{"竹内", "たけうち"},   {"小野", "おの"},       {"田村", "たむら"},
	{"中山", "なかやま"},   {"和田", "わだ"},       {"石田", "いしだ"},
	{"森田", "もりた"},     {"上田", "うえだ"},     {"内田", "うちだ"},
	{"柴田", "しばた"},     {"酒井", "さかい"},     {"工藤", "くどう"},
	{"渡部", "わたなべ"},   {"大友", "おおとも"},   {"庄司", "しょうじ"},
};
#define KZ_CLI__NFAMILY (sizeof(kz_cli__family) / sizeof(kz_cli__family[0]))

/* Given names by sex and by the era a person was born in (names follow
 * fashions: 和子 is a grandmother, 陽菜 a schoolgirl). 博/浩 and 洋子/陽子
 * read alike. */
#define KZ_CLI__ERAS 3 /* born before 1960, 1960-1994, from 1995 */
#define KZ_CLI__PER_ERA 12
static const kz_cli__name kz_cli__given[2][KZ_CLI__ERAS][KZ_CLI__PER_ERA] = {
	{/* female */
	 {{"和子", "かずこ"}, {"幸子", "さちこ"}, {"節子", "せつこ"},
	  {"洋子", "ようこ"}, {"美智子", "みちこ"}, {"京子", "きょうこ"},
	  {"久子", "ひさこ"}, {"恵子", "けいこ"}, {"弘子", "ひろこ"},
	  {"文子", "ふみこ"}, {"千代", "ちよ"}, {"トシ子", "としこ"}},
	 {{"恵美", "えみ"}, {"由美子", "ゆみこ"}, {"真由美", "まゆみ"},
	  {"久美子", "くみこ"}, {"智子", "ともこ"}, {"裕子", "ゆうこ"},
	  {"直美", "なおみ"}, {"陽子", "ようこ"}, {"愛", "あい"},
	  {"麻衣", "まい"}, {"香織", "かおり"}, {"明美", "あけみ"}},
	 {{"陽菜", "ひな"}, {"結衣", "ゆい"}, {"美咲", "みさき"},
	  {"さくら", "さくら"}, {"葵", "あおい"}, {"結愛", "ゆあ"},
	  {"凛", "りん"}, {"芽依", "めい"}, {"杏", "あん"},
	  {"彩花", "あやか"}, {"莉子", "りこ"}, {"紬", "つむぎ"}}},
	{/* male */
	 {{"清", "きよし"}, {"勇", "いさむ"}, {"茂", "しげる"},
	  {"博", "ひろし"}, {"実", "みのる"}, {"進", "すすむ"},
	  {"正男", "まさお"}, {"和夫", "かずお"}, {"昭", "あきら"},
	  {"武", "たけし"}, {"隆", "たかし"}, {"幸雄", "ゆきお"}},
	 {{"誠", "まこと"}, {"浩", "ひろし"}, {"健一", "けんいち"},
	  {"大輔", "だいすけ"}, {"直樹", "なおき"}, {"拓也", "たくや"},
	  {"和也", "かずや"}, {"達也", "たつや"}, {"哲也", "てつや"},
	  {"秀樹", "ひでき"}, {"剛", "つよし"}, {"学", "まなぶ"}},
	 {{"翔太", "しょうた"}, {"蓮", "れん"}, {"大翔", "ひろと"},
	  {"悠真", "ゆうま"}, {"陽翔", "はると"}, {"湊", "みなと"},
	  {"颯太", "そうた"}, {"拓海", "たくみ"}, {"陸", "りく"},
	  {"蒼", "あおい"}, {"樹", "いつき"}, {"悠人", "ゆうと"}}},
};

#define KZ_CLI__CITY "宮城県石巻市"
static const char *const kz_cli__towns[] = {
	"湊町",     "門脇町",   "南浜町",   "中央",     "大街道南",
	"大街道東", "大街道北", "大街道西", "蛇田",     "鹿妻南",
	"渡波町",   "中里",     "住吉町",   "立町",     "千石町",
	"日和が丘", "清水町",   "山下町",   "駅前北通り", "水押",
	"八幡町",   "双葉町",   "不動町",   "錦町",     "元倉",
	"向陽町",   "あけぼの", "貞山",     "吉野町",   "東中里",
	"新館",     "緑町",     "松並",     "流留",     "大門町",
	"開北",     "三ツ股",   "明神町",   "築山",     "泉町",
};
#define KZ_CLI__NTOWNS (sizeof(kz_cli__towns) / sizeof(kz_cli__towns[0]))

typedef struct kz_cli__shelter_def {
	const char *name;
	const char *town;
	int capacity; /* 0: derived from the seed */
} kz_cli__shelter_def;

static const kz_cli__shelter_def kz_cli__shelter_defs[] = {
	{"石巻市立湊小学校", "湊町", 0},
	{"石巻市立門脇小学校", "門脇町", 0},
	{"石巻市立住吉中学校", "住吉町", 0},
	{"石巻市立渡波小学校", "渡波町", 0},
	{"石巻市立蛇田小学校", "蛇田", 0},
	{"石巻市立石巻中学校", "中央", 0},
	{"石巻市立山下小学校", "山下町", 0},
	{"石巻市総合体育館", "中里", 1000},
	{"石巻市立青葉中学校", "あけぼの", 0},
	{"石巻市立大街道小学校", "大街道南", 0},
	{"石巻市立中里小学校", "中里", 0},
	{"石巻市立万石浦中学校", "流留", 0},
	{"石巻専修大学", "南境", 800},
	{"石巻市立鹿妻小学校", "鹿妻南", 0},
	{"石巻市立向陽小学校", "向陽町", 0},
	{"宮城県石巻高等学校", "日和が丘", 0},
	{"石巻市立釜小学校", "大街道西", 0},
	{"石巻市立貞山小学校", "貞山", 0},
	{"石巻市立住吉小学校", "住吉町", 0},
	{"石巻市立女子高等学校", "大門町", 0},
};
#define KZ_CLI__NSHELTER_DEFS                                                   \
	(sizeof(kz_cli__shelter_defs) / sizeof(kz_cli__shelter_defs[0]))

/* Damage codes (API.md) and their share in percent of households. */
typedef struct kz_cli__weighted {
	const char *code;
	unsigned percent;
} kz_cli__weighted;

static const kz_cli__weighted kz_cli__damage[] = {
	{"zenkai", 25},         {"kaitai", 2},          {"choki_hinan", 2},
	{"daikibo_hankai", 10}, {"chukibo_hankai", 8},  {"hankai", 15},
	{"jun_hankai", 10},     {"ichibu_sonkai", 20},  {"none", 8},
};
#define KZ_CLI__NDAMAGE (sizeof(kz_cli__damage) / sizeof(kz_cli__damage[0]))

static const kz_cli__weighted kz_cli__status[] = {
	{"safe", 72}, {"injured", 8}, {"missing", 7}, {"unknown", 11},
	{"deceased", 2},
};
#define KZ_CLI__NSTATUS (sizeof(kz_cli__status) / sizeof(kz_cli__status[0]))

static const char *const kz_cli__sex_code[3] = {"female", "male", "other"};

/* ---- PRNG -------------------------------------------------------------------- */

static uint64_t kz_cli__next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); the modulo bias is below 2^-50 for our small n. */
static unsigned kz_cli__below(kz_cli_sample *g, unsigned n)
{
	if (n == 0)
		return 0;
	return (unsigned)(kz_cli__next(&g->state) % n);
}

static int kz_cli__range(kz_cli_sample *g, int lo, int hi)
{
	return lo + (int)kz_cli__below(g, (unsigned)(hi - lo + 1));
}

static int kz_cli__chance(kz_cli_sample *g, unsigned percent)
{
	return kz_cli__below(g, 1000) < percent * 10;
}

static unsigned kz_cli__pick_weighted(kz_cli_sample *g,
				      const kz_cli__weighted *t, size_t n)
{
	unsigned total = 0, r;
	size_t i;
	for (i = 0; i < n; i++)
		total += t[i].percent;
	r = kz_cli__below(g, total);
	for (i = 0; i < n; i++) {
		if (r < t[i].percent)
			return (unsigned)i;
		r -= t[i].percent;
	}
	return (unsigned)(n - 1);
}

/* ---- households ------------------------------------------------------------- */

void kz_cli_sample_init(kz_cli_sample *gen, uint64_t seed, unsigned shelters)
{
	memset(gen, 0, sizeof(*gen));
	gen->seed = seed;
	gen->state = seed;
	gen->shelters = shelters;
	gen->hh_shelter = -1;
}

static int kz_cli__clamp_age(int age)
{
	/* Born 1930..2024 with ages counted at 2025-01-01: 0..94. */
	return age < 0 ? 0 : age > 94 ? 94 : age;
}

static void kz_cli__add_member(kz_cli_sample *g, int age, int sex)
{
	if (g->hh_size >= KZ_CLI_SAMPLE_MAX_HOUSEHOLD)
		return;
	g->hh_age[g->hh_size] = kz_cli__clamp_age(age);
	g->hh_sex[g->hh_size] = sex;
	g->hh_size++;
}

/* A person's sex outside a married couple: now and then "other". */
static int kz_cli__any_sex(kz_cli_sample *g, unsigned female_percent)
{
	if (kz_cli__below(g, 1000) < 3)
		return 2;
	return kz_cli__chance(g, female_percent) ? 0 : 1;
}

/* Children of a mother aged `mother`: the eldest born when she was 22-34,
 * the next ones 1-4 years apart; a child not yet born is not added (the
 * household is then smaller than drawn). */
static void kz_cli__add_children(kz_cli_sample *g, int mother, unsigned n)
{
	int age = mother - kz_cli__range(g, 22, 34);
	unsigned i;
	for (i = 0; i < n && age >= 0; i++) {
		kz_cli__add_member(g, age, kz_cli__any_sex(g, 49));
		age -= kz_cli__range(g, 1, 4);
	}
}

static void kz_cli__household(kz_cli_sample *g)
{
	static const unsigned size_percent[6] = {30, 30, 18, 14, 6, 2};
	unsigned size = 1, r, i, town;
	int head;

	g->households++;
	g->hh_size = 0;
	g->hh_next = 0;
	r = kz_cli__below(g, 100);
	for (i = 0; i < 6; i++) {
		if (r < size_percent[i]) {
			size = i + 1;
			break;
		}
		r -= size_percent[i];
	}

	if (size == 1) {
		head = kz_cli__chance(g, 45) ? kz_cli__range(g, 65, 94)
					     : kz_cli__range(g, 19, 64);
		kz_cli__add_member(g, head, kz_cli__any_sex(g, head >= 65 ? 62 : 45));
	} else if (size == 2 && kz_cli__chance(g, 35)) {
		/* A parent and one child: a young single parent, or an elderly
		 * parent living with a grown-up child. */
		if (kz_cli__chance(g, 50)) {
			head = kz_cli__range(g, 22, 50);
			kz_cli__add_member(g, head, kz_cli__any_sex(g, 80));
		} else {
			head = kz_cli__range(g, 70, 94);
			kz_cli__add_member(g, head, kz_cli__any_sex(g, 65));
		}
		kz_cli__add_children(g, head, 1);
	} else {
		/* A married couple (same family name, as Japanese law has it),
		 * maybe a grandparent, and children. */
		int husband_is_head = kz_cli__chance(g, 90);
		int grandparent = size >= 4 ? kz_cli__chance(g, 40)
				  : size == 3 ? kz_cli__chance(g, 10)
					      : 0;
		int wife, husband;
		unsigned kids = size - 2 - (unsigned)grandparent;

		head = size == 2 ? kz_cli__range(g, 24, 90) : kz_cli__range(g, 26, 56);
		husband = head;
		wife = head - kz_cli__range(g, -2, 5);
		if (wife < 19)
			wife = 19;
		kz_cli__add_member(g, husband_is_head ? husband : wife,
				   husband_is_head ? 1 : 0);
		kz_cli__add_member(g, husband_is_head ? wife : husband,
				   husband_is_head ? 0 : 1);
		if (grandparent)
			kz_cli__add_member(g, head + kz_cli__range(g, 24, 34),
					   kz_cli__any_sex(g, 65));
		kz_cli__add_children(g, wife, kids);
	}

	g->hh_family = kz_cli__below(g, KZ_CLI__NFAMILY);
	/* Common names are commoner: the minimum of two draws favours the
	 * top of the table without starving the rest. */
	r = kz_cli__below(g, KZ_CLI__NFAMILY);
	if (r < g->hh_family)
		g->hh_family = r;

	town = kz_cli__below(g, KZ_CLI__NTOWNS);
	snprintf(g->hh_address, sizeof(g->hh_address), "%s%s%d丁目%d番%d号",
		 KZ_CLI__CITY, kz_cli__towns[town], kz_cli__range(g, 1, 5),
		 kz_cli__range(g, 1, 30), kz_cli__range(g, 1, 40));
	snprintf(g->hh_id, sizeof(g->hh_id), "h-%06lu", g->households);

	g->hh_damage = kz_cli__pick_weighted(g, kz_cli__damage, KZ_CLI__NDAMAGE);
	/* The worse the damage, the likelier the household is in a shelter. */
	g->hh_shelter = -1;
	if (g->shelters > 0) {
		unsigned p = g->hh_damage <= 3 ? 85 : g->hh_damage <= 5 ? 50 : 15;
		if (kz_cli__chance(g, p))
			g->hh_shelter = (int)kz_cli__below(g, g->shelters);
	}
	g->hh_phone[0] = '\0';
	if (kz_cli__chance(g, 60))
		snprintf(g->hh_phone, sizeof(g->hh_phone), "0225-%02d-%04d",
			 kz_cli__range(g, 22, 98), kz_cli__range(g, 0, 9999));
}

/* ---- records ------------------------------------------------------------------- */

static int kz_cli__days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

int kz_cli_sample_age(const char *dob, int *age)
{
	int y, m, d, ry, rm, rd, i, a;
	if (dob == NULL || age == NULL || strlen(dob) != 10 || dob[4] != '-' ||
	    dob[7] != '-')
		return KZ_CLI_EINVAL;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (dob[i] < '0' || dob[i] > '9'))
			return KZ_CLI_EINVAL;
	y = (dob[0] - '0') * 1000 + (dob[1] - '0') * 100 + (dob[2] - '0') * 10 +
	    (dob[3] - '0');
	m = (dob[5] - '0') * 10 + (dob[6] - '0');
	d = (dob[8] - '0') * 10 + (dob[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > kz_cli__days_in_month(y, m))
		return KZ_CLI_EINVAL;
	if (sscanf(KZ_CLI_SAMPLE_REF_DATE, "%d-%d-%d", &ry, &rm, &rd) != 3)
		return KZ_CLI_EINVAL;
	a = ry - y;
	if (m > rm || (m == rm && d > rd))
		a--; /* birthday not yet reached this year */
	*age = a;
	return KZ_CLI_OK;
}

/* A date of birth that makes the person exactly `age` at the reference date
 * (2025-01-01): born in 2024 - age, on any day but 1 January. */
static void kz_cli__dob(kz_cli_sample *g, int age, char *buf, size_t len)
{
	int y = 2024 - age, m = kz_cli__range(g, 1, 12);
	int d = kz_cli__range(g, 1, kz_cli__days_in_month(y, m));
	if (m == 1 && d == 1)
		d = 2;
	snprintf(buf, len, "%04d-%02d-%02d", y, m, d);
}

static int kz_cli__era(int age)
{
	int born = 2024 - age;
	return born < 1960 ? 0 : born < 1995 ? 1 : 2;
}

int kz_cli_sample_victim(kz_cli_sample *gen, json_t **out)
{
	const kz_cli__name *family, *given;
	json_t *needs = NULL, *rec = NULL;
	char name[128], kana[128], dob[16], mobile[20], shelter_id[32];
	const char *contact = NULL, *shelter = NULL;
	int age, sex, gsex, chronic, tries;
	unsigned member, status;

	if (out == NULL)
		return KZ_CLI_EINVAL;
	*out = NULL;
	if (gen->hh_next >= gen->hh_size)
		kz_cli__household(gen);
	member = gen->hh_next++;
	age = gen->hh_age[member];
	sex = gen->hh_sex[member];

	family = &kz_cli__family[gen->hh_family];
	gsex = sex == 2 ? (int)kz_cli__below(gen, 2) : sex;
	/* Siblings do not share a given name: draw again (a few times). */
	for (tries = 0;; tries++) {
		unsigned k, clash = 0;
		given = &kz_cli__given[gsex][kz_cli__era(age)]
				      [kz_cli__below(gen, KZ_CLI__PER_ERA)];
		for (k = 0; k < member; k++)
			clash |= gen->hh_given[k] == given->kanji;
		if (!clash || tries == 8)
			break;
	}
	gen->hh_given[member] = given->kanji;
	snprintf(name, sizeof(name), "%s %s", family->kanji, given->kanji);
	snprintf(kana, sizeof(kana), "%s %s", family->kana, given->kana);
	kz_cli__dob(gen, age, dob, sizeof(dob));

	/* needs, in the order API.md lists them */
	needs = json_array();
	if (needs == NULL)
		goto err_nomem;
	chronic = kz_cli__chance(gen, age >= 60 ? 25 : 5);
	if ((age < 2 && json_array_append_new(needs, json_string("infant"))) ||
	    (age >= 75 && json_array_append_new(needs, json_string("elderly"))) ||
	    (kz_cli__chance(gen, age >= 65 ? 8 : 4) &&
	     json_array_append_new(needs, json_string("disabled"))) ||
	    (sex == 0 && age >= 20 && age <= 42 && kz_cli__chance(gen, 4) &&
	     json_array_append_new(needs, json_string("pregnant"))) ||
	    (chronic &&
	     json_array_append_new(needs, json_string("chronic_illness"))) ||
	    (kz_cli__chance(gen, chronic ? 70 : 3) &&
	     json_array_append_new(needs, json_string("medication"))))
		goto err_nomem;

	status = kz_cli__pick_weighted(gen, kz_cli__status, KZ_CLI__NSTATUS);
	/* Only people known to be alive and found are in a shelter. */
	if (gen->hh_shelter >= 0 && status <= 1) {
		kz_cli_sample_shelter_id((unsigned)gen->hh_shelter, shelter_id,
					 sizeof(shelter_id));
		shelter = shelter_id;
	}
	if (age >= 15 && age <= 85 && kz_cli__chance(gen, 85)) {
		static const char *const prefix[3] = {"090", "080", "070"};
		snprintf(mobile, sizeof(mobile), "%s-%04d-%04d",
			 prefix[kz_cli__below(gen, 3)], kz_cli__range(gen, 0, 9999),
			 kz_cli__range(gen, 0, 9999));
		contact = mobile;
	} else if (gen->hh_phone[0] != '\0') {
		contact = gen->hh_phone;
	}

	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s*, s:s,"
			" s:s*, s:{s:b}}",
			"name", name, "name_kana", kana, "dob", dob, "sex",
			kz_cli__sex_code[sex], "address", gen->hh_address,
			"household_id", gen->hh_id, "damage",
			kz_cli__damage[gen->hh_damage].code, "needs", needs,
			"shelter_id", shelter, "status",
			kz_cli__status[status].code, "contact", contact,
			"consent", "disclose_safety",
			kz_cli__chance(gen, 85));
	if (rec == NULL)
		goto err_nomem;
	json_decref(needs);
	*out = rec;
	return KZ_CLI_OK;

err_nomem:
	json_decref(needs);
	return KZ_CLI_ENOMEM;
}

/* ---- shelters ---------------------------------------------------------------- */

void kz_cli_sample_shelter_id(unsigned index, char *id, size_t idlen)
{
	if (id != NULL && idlen > 0)
		snprintf(id, idlen, "ishinomaki-%02u", index + 1);
}

int kz_cli_sample_shelter(const kz_cli_sample *gen, unsigned index, char *id,
			  size_t idlen, json_t **out)
{
	/* A private stream per shelter: the answer depends on (seed, index)
	 * only, not on how many victims were drawn before. */
	kz_cli_sample g;
	const kz_cli__shelter_def *def = NULL;
	char name[128], address[160];
	const char *town;
	int capacity;

	if (out == NULL || gen == NULL)
		return KZ_CLI_EINVAL;
	*out = NULL;
	kz_cli_sample_init(&g, gen->seed ^ (0x5be1a5ull << 32) ^ index, 0);
	kz_cli__next(&g.state);
	kz_cli_sample_shelter_id(index, id, idlen);

	if (index < KZ_CLI__NSHELTER_DEFS) {
		def = &kz_cli__shelter_defs[index];
		snprintf(name, sizeof(name), "%s", def->name);
		town = def->town;
	} else {
		/* Past the list: community centres opened as the need grows. */
		town = kz_cli__towns[kz_cli__below(&g, KZ_CLI__NTOWNS)];
		snprintf(name, sizeof(name), "石巻市%s集会所 (臨時避難所%u)", town,
			 index + 1);
	}
	snprintf(address, sizeof(address), "%s%s%d丁目%d番%d号", KZ_CLI__CITY,
		 town, kz_cli__range(&g, 1, 5), kz_cli__range(&g, 1, 30),
		 kz_cli__range(&g, 1, 40));
	if (def != NULL && def->capacity > 0)
		capacity = def->capacity;
	else if (def != NULL)
		capacity = 10 * kz_cli__range(&g, 20, 60); /* a school: 200-600 */
	else
		capacity = 10 * kz_cli__range(&g, 5, 15);
	*out = json_pack("{s:s, s:s, s:i}", "name", name, "address", address,
			 "capacity", capacity);
	return *out != NULL ? KZ_CLI_OK : KZ_CLI_ENOMEM;
}
