/*
 * Sample-data generator: the same seed gives the same people; every record
 * is a valid POST /v1/victims body (codes from API.md, real dates); the
 * members of a household agree; needs follow from age.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kizuna.h"
#include "sample.h"

#define N_RECORDS 5000

static const char *const sexes[] = {"female", "male", "other", NULL};
static const char *const statuses[] = {"safe", "injured", "missing",
				       "deceased", "unknown", NULL};
static const char *const damages[] = {
	"zenkai",         "kaitai", "choki_hinan", "daikibo_hankai",
	"chukibo_hankai", "hankai", "jun_hankai",  "ichibu_sonkai",
	"none",           NULL};
static const char *const needs_codes[] = {"infant",   "elderly",
					  "disabled", "pregnant",
					  "chronic_illness", "medication", NULL};

static int code_index(const char *s, const char *const *set)
{
	int i;
	for (i = 0; s != NULL && set[i] != NULL; i++)
		if (strcmp(s, set[i]) == 0)
			return i;
	return -1;
}

static char *next_dump(kz_cli_sample *g)
{
	json_t *rec;
	char *s;
	cr_assert_eq(kz_cli_sample_victim(g, &rec), KZ_CLI_OK);
	s = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	cr_assert_not_null(s);
	return s;
}

Test(client_sample, same_seed_same_people)
{
	kz_cli_sample a, b, c;
	int i, differ = 0;
	kz_cli_sample_init(&a, 20110311, 12);
	kz_cli_sample_init(&b, 20110311, 12);
	kz_cli_sample_init(&c, 20110312, 12);
	for (i = 0; i < 2000; i++) {
		char *x = next_dump(&a), *y = next_dump(&b), *z = next_dump(&c);
		cr_assert_str_eq(x, y, "record %d differs for the same seed", i);
		differ += strcmp(x, z) != 0;
		free(x);
		free(y);
		free(z);
	}
	cr_assert_gt(differ, 1900, "another seed gives other people");
}

Test(client_sample, known_first_record)
{
	/* Pins the stream: a change here changes every benchmark data set. */
	kz_cli_sample g;
	char *s;
	kz_cli_sample_init(&g, 1, 10);
	s = next_dump(&g);
	cr_assert_not_null(strstr(s, "\"household_id\":\"h-000001\""), "%s", s);
	cr_assert_eq(strncmp(s, "{\"name\":\"", 9), 0, "%s", s);
	free(s);
}

static int str_has_one_ascii_space(const char *s)
{
	const char *sp = strchr(s, ' ');
	return sp != NULL && sp != s && sp[1] != '\0' && strchr(sp + 1, ' ') == NULL;
}

/* Bytes before the first space (the family name). */
static size_t family_len(const char *s)
{
	return strcspn(s, " ");
}

Test(client_sample, every_record_is_valid_and_households_agree)
{
	kz_cli_sample g;
	json_t *prev = NULL;
	int i, infants = 0, elderly = 0, seen_damage[9] = {0}, hh_size = 0;
	int max_hh = 0, singles = 0, big = 0, in_shelter = 0, others = 0;

	kz_cli_sample_init(&g, 42, 8);
	for (i = 0; i < N_RECORDS; i++) {
		json_t *r, *needs, *v;
		const char *name, *kana, *dob, *hh, *shelter;
		int age, di, has_infant = 0, has_elderly = 0;
		size_t k;

		cr_assert_eq(kz_cli_sample_victim(&g, &r), KZ_CLI_OK);
		name = json_string_value(json_object_get(r, "name"));
		kana = json_string_value(json_object_get(r, "name_kana"));
		dob = json_string_value(json_object_get(r, "dob"));
		hh = json_string_value(json_object_get(r, "household_id"));
		shelter = json_string_value(json_object_get(r, "shelter_id"));
		cr_assert(name && str_has_one_ascii_space(name), "name %s", name);
		cr_assert(kana && str_has_one_ascii_space(kana), "kana %s", kana);
		cr_assert_eq((unsigned char)kana[0], 0xE3,
			     "kana starts in the kana block: %s", kana);

		cr_assert_not_null(dob);
		cr_assert_eq(strlen(dob), 10, "dob %s", dob);
		cr_assert_eq(kz_cli_sample_age(dob, &age), KZ_CLI_OK, "dob %s", dob);
		cr_assert(strncmp(dob, "1930", 4) >= 0 && strncmp(dob, "2024", 4) <= 0,
			  "dob %s outside 1930-2024", dob);

		cr_assert_geq(code_index(json_string_value(json_object_get(r, "sex")),
					 sexes), 0);
		others += strcmp(json_string_value(json_object_get(r, "sex")), "other") == 0;
		cr_assert_geq(code_index(json_string_value(json_object_get(r, "status")),
					 statuses), 0);
		di = code_index(json_string_value(json_object_get(r, "damage")), damages);
		cr_assert_geq(di, 0);
		seen_damage[di] = 1;
		cr_assert(json_is_boolean(json_object_get(
			json_object_get(r, "consent"), "disclose_safety")));
		v = json_object_get(r, "contact");
		cr_assert(v == NULL || (json_is_string(v) && json_string_length(v) >= 12));

		cr_assert(hh && strlen(hh) == 8 && strncmp(hh, "h-", 2) == 0, "%s", hh);
		if (shelter != NULL) {
			const char *st = json_string_value(json_object_get(r, "status"));
			int idx = atoi(shelter + strlen("ishinomaki-"));
			cr_assert_eq(strncmp(shelter, "ishinomaki-", 11), 0);
			cr_assert(idx >= 1 && idx <= 8, "%s", shelter);
			cr_assert(strcmp(st, "safe") == 0 || strcmp(st, "injured") == 0,
				  "a %s person is not in a shelter", st);
			in_shelter++;
		}

		needs = json_object_get(r, "needs");
		cr_assert(json_is_array(needs));
		for (k = 0; k < json_array_size(needs); k++) {
			const char *n = json_string_value(json_array_get(needs, k));
			cr_assert_geq(code_index(n, needs_codes), 0, "need %s", n);
			has_infant |= strcmp(n, "infant") == 0;
			has_elderly |= strcmp(n, "elderly") == 0;
		}
		cr_assert_eq(has_infant, age < 2, "age %d, infant %d", age, has_infant);
		cr_assert_eq(has_elderly, age >= 75, "age %d, elderly %d", age,
			     has_elderly);
		infants += has_infant;
		elderly += has_elderly;

		if (prev != NULL &&
		    strcmp(hh, json_string_value(json_object_get(prev, "household_id"))) == 0) {
			const char *pn = json_string_value(json_object_get(prev, "name"));
			const char *pk = json_string_value(json_object_get(prev, "name_kana"));
			hh_size++;
			cr_assert_str_eq(json_string_value(json_object_get(r, "address")),
					 json_string_value(json_object_get(prev, "address")));
			cr_assert_str_eq(json_string_value(json_object_get(r, "damage")),
					 json_string_value(json_object_get(prev, "damage")));
			cr_assert(family_len(name) == family_len(pn) &&
				  memcmp(name, pn, family_len(name)) == 0,
				  "%s and %s share a household", name, pn);
			cr_assert(family_len(kana) == family_len(pk) &&
				  memcmp(kana, pk, family_len(kana)) == 0);
			cr_assert_str_neq(name, pn, "siblings have their own names");
		} else {
			if (prev != NULL)
				cr_assert_gt(strcmp(hh, json_string_value(json_object_get(
							       prev, "household_id"))),
					     0, "households come one after another");
			singles += hh_size == 1;
			big += hh_size >= 4;
			hh_size = 1;
		}
		if (hh_size > max_hh)
			max_hh = hh_size;
		json_decref(prev);
		prev = r;
	}
	json_decref(prev);

	cr_assert_leq(max_hh, KZ_CLI_SAMPLE_MAX_HOUSEHOLD);
	cr_assert_gt(singles, 0);
	cr_assert_gt(big, 0);
	cr_assert_gt(infants, 0);
	cr_assert_gt(elderly, N_RECORDS / 20, "a coastal city is old");
	cr_assert_gt(in_shelter, N_RECORDS / 5);
	cr_assert_lt(others, N_RECORDS / 50);
	for (i = 0; i < 9; i++)
		cr_assert(seen_damage[i], "damage %s never drawn", damages[i]);
}

Test(client_sample, no_shelters_means_no_shelter_id)
{
	kz_cli_sample g;
	int i;
	kz_cli_sample_init(&g, 7, 0);
	for (i = 0; i < 500; i++) {
		json_t *r;
		cr_assert_eq(kz_cli_sample_victim(&g, &r), KZ_CLI_OK);
		cr_assert_null(json_object_get(r, "shelter_id"));
		json_decref(r);
	}
}

Test(client_sample, shelters)
{
	kz_cli_sample g, h;
	json_t *a, *b, *c;
	char id[32], id2[32];
	int i;

	kz_cli_sample_init(&g, 5, 30);
	kz_cli_sample_init(&h, 5, 30);
	cr_assert_eq(kz_cli_sample_shelter(&g, 0, id, sizeof(id), &a), KZ_CLI_OK);
	cr_assert_str_eq(id, "ishinomaki-01");
	cr_assert_str_eq(json_string_value(json_object_get(a, "name")),
			 "石巻市立湊小学校");
	cr_assert_eq(strncmp(json_string_value(json_object_get(a, "address")),
			     "宮城県石巻市", strlen("宮城県石巻市")),
		     0);
	cr_assert_gt(json_integer_value(json_object_get(a, "capacity")), 0);

	/* Depends on (seed, index) only, not on the victims drawn since. */
	for (i = 0; i < 100; i++) {
		json_t *r;
		cr_assert_eq(kz_cli_sample_victim(&h, &r), KZ_CLI_OK);
		json_decref(r);
	}
	cr_assert_eq(kz_cli_sample_shelter(&h, 0, id2, sizeof(id2), &b), KZ_CLI_OK);
	cr_assert(json_equal(a, b));

	/* Past the named list the ids and names go on. */
	cr_assert_eq(kz_cli_sample_shelter(&g, 24, id, sizeof(id), &c), KZ_CLI_OK);
	cr_assert_str_eq(id, "ishinomaki-25");
	cr_assert_gt(json_string_length(json_object_get(c, "name")), 0);
	cr_assert_gt(json_integer_value(json_object_get(c, "capacity")), 0);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

Test(client_sample, age_at_reference_date)
{
	int age = -1;
	cr_assert_str_eq(KZ_CLI_SAMPLE_REF_DATE, "2025-01-01");
	cr_assert_eq(kz_cli_sample_age("2023-01-01", &age), KZ_CLI_OK);
	cr_assert_eq(age, 2);
	cr_assert_eq(kz_cli_sample_age("2023-01-02", &age), KZ_CLI_OK);
	cr_assert_eq(age, 1);
	cr_assert_eq(kz_cli_sample_age("2024-02-29", &age), KZ_CLI_OK);
	cr_assert_eq(age, 0);
	cr_assert_eq(kz_cli_sample_age("1950-04-01", &age), KZ_CLI_OK);
	cr_assert_eq(age, 74);
	cr_assert_eq(kz_cli_sample_age("1930-02-29", &age), KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_sample_age("1950-13-01", &age), KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_sample_age("1950-4-01", &age), KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_sample_age("1950/04/01", &age), KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_sample_age("1950-04-01x", &age), KZ_CLI_EINVAL);
}
