/*
 * Deterministic sample data for the victim register: realistic Japanese
 * households in Ishinomaki (宮城県石巻市), the shelters they went to, their
 * damage levels, needs and safety status.
 *
 * Owns nothing but its PRNG state: the same seed gives the same records, on
 * every platform (splitmix64, no rand(), no clock). Victims come out one at a
 * time, household by household: members of a household share household_id,
 * family name, address, damage and (when they are at one) shelter. Ages are
 * counted at KZ_CLI_SAMPLE_REF_DATE, so `needs` can be checked: `infant` iff
 * age < 2, `elderly` iff age >= 75.
 *
 * Used by `kizuna sample gen|load`, the benchmarks and the tests.
 */
#ifndef KZ_CLI_SAMPLE_H
#define KZ_CLI_SAMPLE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KZ_CLI_SAMPLE_REF_DATE "2025-01-01" /* the day ages are counted at */
#define KZ_CLI_SAMPLE_MAX_HOUSEHOLD 6

/* Generator state. Fields are private: set up with kz_cli_sample_init. */
typedef struct kz_cli_sample {
	uint64_t state;              /* splitmix64 */
	uint64_t seed;
	unsigned shelters;           /* shelter ids used: 0..shelters-1 */
	unsigned long households;    /* households started so far */
	/* The household being handed out. */
	unsigned hh_size, hh_next;
	int hh_age[KZ_CLI_SAMPLE_MAX_HOUSEHOLD];
	int hh_sex[KZ_CLI_SAMPLE_MAX_HOUSEHOLD]; /* 0 female, 1 male, 2 other */
	const char *hh_given[KZ_CLI_SAMPLE_MAX_HOUSEHOLD]; /* names handed out */
	unsigned hh_family;          /* index into the family-name table */
	unsigned hh_damage;          /* index into the damage table */
	int hh_shelter;              /* -1: staying at home */
	char hh_id[24];
	char hh_address[160];
	char hh_phone[20];           /* landline, "" if none */
} kz_cli_sample;

/* Starts a generator. shelters: how many shelters victims may be sent to
 * (ids "ishinomaki-01".. as made by kz_cli_sample_shelter); 0: none. */
void kz_cli_sample_init(kz_cli_sample *gen, uint64_t seed, unsigned shelters);

/* The next victim as the body of POST /v1/victims:
 *   {"name":"山田 太郎","name_kana":"やまだ たろう","dob":"1950-04-01",
 *    "sex":"male","address":"宮城県石巻市…","household_id":"h-000123",
 *    "damage":"zenkai","needs":["elderly"],"shelter_id":"ishinomaki-03",
 *    "status":"safe","contact":"090-1234-5678",
 *    "consent":{"disclose_safety":true}}
 * shelter_id and contact are left out when the person has none.
 * On KZ_CLI_OK *out is a new reference the caller releases with
 * json_decref; on KZ_CLI_ENOMEM *out is NULL. */
int kz_cli_sample_victim(kz_cli_sample *gen, json_t **out);

/* The id of shelter number index (0-based): "ishinomaki-01"... Writes at
 * most idlen bytes into id (always NUL-terminated). */
void kz_cli_sample_shelter_id(unsigned index, char *id, size_t idlen);

/* Shelter number index as the body of PUT /v1/shelters/{id}:
 * {"name":"石巻市立湊小学校","address":"宮城県石巻市…","capacity":300}.
 * Depends only on the seed and index. Writes its id as above. On KZ_CLI_OK
 * *out is a new reference the caller releases with json_decref. */
int kz_cli_sample_shelter(const kz_cli_sample *gen, unsigned index, char *id,
			  size_t idlen, json_t **out);

/* Age at KZ_CLI_SAMPLE_REF_DATE of a person born on dob ("YYYY-MM-DD", a
 * real calendar date). Returns KZ_CLI_OK, or KZ_CLI_EINVAL when dob is not
 * such a date. */
int kz_cli_sample_age(const char *dob, int *age);

#endif /* KZ_CLI_SAMPLE_H */
