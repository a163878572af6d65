/*
 * `kizuna` command-line parsing and the request bodies built from it (see
 * cli_args.h).
 *
 * One table of commands (group, name, usage text) and one table of options
 * (name, kind, where it is stored, which commands accept it). Global options
 * are accepted anywhere on the line, as etcdctl does; both "--opt value" and
 * "--opt=value" work. Validation that needs no server (codes from API.md,
 * dates, numbers) happens here so the user hears about a typo before any
 * connection is made. kz_cli_args_audit_verdict, at the end, is the one
 * piece of `audit verify` that needs no network: comparing the answers.
 * kz_cli_args_card_sign, last, is `card sign`: a card's signature made with
 * OpenSSL (the client never includes node/; node/card.c verifies).
 */
#include "cli_args.h"

#include "import_csv.h"
#include "kizuna.h"
#include "sample.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct kz_cli__cmd_def {
	const char *group;
	const char *name;
	kz_cli_cmd cmd;
	int needs_id; /* takes exactly one positional id */
	const char *usage;
} kz_cli__cmd_def;

static const kz_cli__cmd_def kz_cli__cmds[] = {
	{"victim", "add", KZ_CLI_CMD_VICTIM_ADD, 0,
	 "victim add --file F.jsonl\n"
	 "victim add --name N --name-kana K --dob YYYY-MM-DD --sex S\n"
	 "           [--address A] [--household H] [--damage D] [--shelter S]\n"
	 "           [--status S] [--needs a,b]\n"
	 "    Register people. --file takes one JSON object per line (\"-\" is\n"
	 "    standard input) and prints the id of each new record; with the\n"
	 "    field options it prints the new record. sex: female male other;\n"
	 "    status: safe injured missing deceased unknown; damage: zenkai\n"
	 "    kaitai choki_hinan daikibo_hankai chukibo_hankai hankai jun_hankai\n"
	 "    ichibu_sonkai none; needs: infant elderly disabled pregnant\n"
	 "    chronic_illness medication.\n"},
	{"victim", "get", KZ_CLI_CMD_VICTIM_GET, 1,
	 "victim get ID [--stale]\n"
	 "    Print one record. --stale reads the answering node's local state\n"
	 "    (works without a quorum; says how old it may be on stderr).\n"},
	{"victim", "patch", KZ_CLI_CMD_VICTIM_PATCH, 1,
	 "victim patch ID [--if-match VERSION] --set key=value [--set ...]\n"
	 "    Change fields. A value that parses as JSON is sent as JSON (42,\n"
	 "    true, [\"infant\"]), anything else as a string; a.b=v sets a nested\n"
	 "    field. --if-match makes it a compare-and-set on the record's\n"
	 "    version (412 when someone changed it first).\n"},
	{"victim", "search", KZ_CLI_CMD_VICTIM_SEARCH, 0,
	 "victim search [--q Q] [--dob D] [--shelter S] [--status S] [--limit N]\n"
	 "              [--all] [--stale]\n"
	 "    Search by name (kanji, kana or romaji, either order), date of\n"
	 "    birth, shelter, status. --all follows the cursor to the last page\n"
	 "    and prints every item; --limit is then the page size.\n"},
	{"victim", "note", KZ_CLI_CMD_VICTIM_NOTE, 1,
	 "victim note ID --status S --text T [--author A] [--location L]\n"
	 "    Add a safety note (安否); L is the last known location.\n"},
	{"victim", "duplicates", KZ_CLI_CMD_VICTIM_DUPLICATES, 1,
	 "victim duplicates ID\n"
	 "    Records that may be the same person as ID, best first, with a\n"
	 "    score and its reasons (kana, dob, sex, address); an audited read.\n"},
	{"victim", "merge", KZ_CLI_CMD_VICTIM_MERGE, 1,
	 "victim merge ID --into KEEP\n"
	 "    Mark record ID a duplicate of KEEP: it leaves searches and\n"
	 "    shelter counts, keeps its data, and comes back with unmerge.\n"},
	{"victim", "unmerge", KZ_CLI_CMD_VICTIM_UNMERGE, 1,
	 "victim unmerge ID\n"
	 "    Undo a merge of record ID.\n"},
	{"shelter", "put", KZ_CLI_CMD_SHELTER_PUT, 1,
	 "shelter put ID --name N [--address A] [--capacity C]\n"
	 "    Create or replace a shelter.\n"},
	{"shelter", "summary", KZ_CLI_CMD_SHELTER_SUMMARY, 1,
	 "shelter summary ID [--stale]\n"
	 "    Counts of the people in a shelter: by sex, infants, elderly,\n"
	 "    needs.\n"},
	{"cluster", "status", KZ_CLI_CMD_CLUSTER_STATUS, 0,
	 "cluster status\n"
	 "    Every node by region: id, address, role, state, applied index,\n"
	 "    reachable; the leader is marked with '*'. --json prints the\n"
	 "    server's answer instead.\n"},
	{"cluster", "add", KZ_CLI_CMD_CLUSTER_ADD, 1,
	 "cluster add ID|--id ID [--address HOST:PORT --api HOST:PORT --region R]\n"
	 "            [--role voter|standby|spare] [--force]\n"
	 "    Add node ID (running, its own file marking it 'join') in the\n"
	 "    role (default voter): a new voter is caught up before it votes.\n"
	 "    --address (its raft address), --api (its API address) and\n"
	 "    --region go into the cluster's replicated address book, for a\n"
	 "    node the other nodes' files do not list; without them every\n"
	 "    node needs its 'node' line. A member changes role. Refused when\n"
	 "    the voters could then not survive the loss of a region, unless\n"
	 "    --force. Prints the new configuration.\n"},
	{"cluster", "snapshot", KZ_CLI_CMD_CLUSTER_SNAPSHOT, 0,
	 "cluster snapshot\n"
	 "    Make the node answering (the first endpoint that does) take a\n"
	 "    raft snapshot now, which trims its raft log; prints its index.\n"
	 "    A follower does once the leader says it is caught up (409\n"
	 "    not_caught_up before).\n"},
	{"cluster", "promote", KZ_CLI_CMD_CLUSTER_PROMOTE, 1,
	 "cluster promote ID [--force]\n"
	 "    Make member ID (a standby or a spare) a voter; it is caught up\n"
	 "    before it votes. Refused when ID is not a member (cluster add\n"
	 "    ID), and by the region check of add unless --force.\n"},
	{"cluster", "remove", KZ_CLI_CMD_CLUSTER_REMOVE, 1,
	 "cluster remove ID [--force]\n"
	 "    Take node ID out of the configuration (stop it afterwards). The\n"
	 "    same region check as add. The leader cannot remove itself.\n"},
	{"cluster", "transfer-leader", KZ_CLI_CMD_CLUSTER_LEADER, 0,
	 "cluster transfer-leader [--to ID | --region R]\n"
	 "    Hand leadership to node ID, to a voter of region R (nothing to do\n"
	 "    when the leader is there), or, with neither, to the most\n"
	 "    up-to-date voter. Returns once the old leader has stepped down.\n"
	 "    With preferred_leader_region set, leadership goes back there\n"
	 "    after leader_hold_down_s.\n"},
	{"sample", "gen", KZ_CLI_CMD_SAMPLE_GEN, 0,
	 "sample gen --count N [--seed S] [--shelters K] [--csv]\n"
	 "    Print N sample victims as JSON lines (no network). The same seed\n"
	 "    gives the same people. --csv: as CSV under a header of register\n"
	 "    field names, as `import csv` reads it (deploy/gen-csv).\n"},
	{"sample", "load", KZ_CLI_CMD_SAMPLE_LOAD, 0,
	 "sample load --count N [--seed S] [--shelters K]\n"
	 "    PUT K shelters (default 10), then register N sample victims one by\n"
	 "    one; progress on stderr every 100, then a summary with the rate.\n"},
	{"keys", "rotate", KZ_CLI_CMD_KEYS_ROTATE, 0,
	 "keys rotate (--data | --master)\n"
	 "    --data: new writes are sealed with a new data key. --master: the\n"
	 "    data keys are re-wrapped under the newest master key of the\n"
	 "    nodes' keyring files (add it to every node's file first); no\n"
	 "    record is rewritten. Needs the operator certificate.\n"},
	{"audit", "verify", KZ_CLI_CMD_AUDIT_VERIFY, 0,
	 "audit verify\n"
	 "    Ask every endpoint, each from its own copy (a stale read, so a\n"
	 "    node cut off from the others answers too), to recompute its audit\n"
	 "    hash chain; one line per node: entries, head (first 16 hex), ok or\n"
	 "    where the chain breaks, or why the node could not be asked. Exit 0\n"
	 "    when every node that answered is ok and nodes whose logs end at\n"
	 "    the same seq have the same head; 1 when a chain is broken or two\n"
	 "    nodes differ (both are named); 3 when no node answered. --json\n"
	 "    prints an array of the answers instead. Needs the auditor\n"
	 "    certificate.\n"},
	{"audit", "list", KZ_CLI_CMD_AUDIT_LIST, 0,
	 "audit list [--subject ID] [--from T] [--to T] [--limit N]\n"
	 "    Print access records, oldest first, one JSON object per line,\n"
	 "    following the pages to the end (or N records). T is an RFC 3339\n"
	 "    UTC time, e.g. 2026-11-23T00:00:00Z; ID a record id. Needs the\n"
	 "    auditor certificate.\n"},
	{"backup", "create", KZ_CLI_CMD_BACKUP_CREATE, 1,
	 "backup create DIR\n"
	 "    An online, consistent backup of the node that answers: it takes a\n"
	 "    checkpoint of its state once everything committed before the call\n"
	 "    is applied there (an audited read, so X-Purpose applies), and this\n"
	 "    command downloads its files into DIR (new or empty), with a\n"
	 "    manifest DIR/kizuna-backup.json holding each file's size and\n"
	 "    SHA-256, then deletes the checkpoint on the node. Progress on\n"
	 "    stderr. The files are sealed as at rest: keep the master key file\n"
	 "    apart from them. Needs the operator certificate.\n"},
	{"backup", "restore", KZ_CLI_CMD_BACKUP_RESTORE, 1,
	 "backup restore DIR --data-dir D\n"
	 "    Build a node's data directory D (new or empty) from the backup in\n"
	 "    DIR, for a new cluster (every region lost): checks every file's\n"
	 "    size and SHA-256, writes D/state, sets its applied index to 0 (the\n"
	 "    new cluster's raft log starts again) and prints the state digest,\n"
	 "    equal to GET /v1/cluster/digest of the old cluster at the backup's\n"
	 "    index. Restore the same backup for every node of the new cluster,\n"
	 "    and start them with the old cluster's master key file. No network.\n"},
	{"import", "csv", KZ_CLI_CMD_IMPORT_CSV, 1,
	 "import csv FILE [--encoding utf-8|shift_jis] [--map SRC=field,...]\n"
	 "           [--ignore-unknown] [--dry-run] [--batch N] [--in-flight K]\n"
	 "           [--json] [--check-duplicates]\n"
	 "    Register the people of a CSV file (\"-\" is standard input),\n"
	 "    streamed in batches of N records (default 200, at most 500),\n"
	 "    each registered by one replicated command, K batches sent at a\n"
	 "    time (default 2, at most 8). The first line names the columns:\n"
	 "    register fields (name, name_kana, dob, sex, address, household_id,\n"
	 "    damage, needs, shelter_id, status, contact, consent,\n"
	 "    damage_certified_on) or names mapped to them with --map,\n"
	 "    e.g. --map 氏名=name,フリガナ=name_kana,生年月日=dob. Other columns\n"
	 "    are an error, or left out with --ignore-unknown. needs: codes\n"
	 "    separated by ; or |. Shift_JIS is read as CP932. Progress on\n"
	 "    stderr, then a summary; each refused record as FILE:LINE: column:\n"
	 "    message. --dry-run validates without registering; --json prints\n"
	 "    each batch's answer (ids, rejections, first_line, last_line) as a\n"
	 "    JSON line; answers and rejections come in file order. Exit 0 when\n"
	 "    every record was accepted, 1 when one was refused. A batch refused\n"
	 "    whole, unanswered (3) or whose outcome is unknown (4) stops the\n"
	 "    import: the batches in flight with it are waited for, each batch\n"
	 "    not imported or in doubt is named with its lines, then the lines\n"
	 "    not sent (--in-flight 1: at most one batch in doubt).\n"},
	{"import", "pfif", KZ_CLI_CMD_IMPORT_PFIF, 1,
	 "import pfif FILE [--dry-run] [--batch N] [--json]\n"
	 "    Import the person and note records of a PFIF 1.4 XML file (\"-\"\n"
	 "    is standard input), cut here into batches of N persons (default\n"
	 "    200, at most 500), each imported by one replicated command. A\n"
	 "    person whose person_record_id the register knows is updated in\n"
	 "    place (its notes not added twice), others are registered; so\n"
	 "    importing a file again is safe. Each refused record as\n"
	 "    FILE:LINE: record id: field: message, values the register cannot\n"
	 "    hold as warnings. Exit 0 when every record was taken, 1 when one\n"
	 "    was refused; a batch whose outcome is unknown stops the import\n"
	 "    (exit 4).\n"},
	{"export", "pfif", KZ_CLI_CMD_EXPORT_PFIF, 0,
	 "export pfif [--out FILE]\n"
	 "    The register's records whose consent allows disclosing their\n"
	 "    safety information, as a PFIF 1.4 document (streamed; FILE is\n"
	 "    written as FILE.part and renamed once complete). Every record\n"
	 "    read is in the audit log.\n"},
	{"card", "sign", KZ_CLI_CMD_CARD_SIGN, 0,
	 "card sign --key CARD.key --nonce NONCE [--cert CARD.pem]\n"
	 "    Do what a citizen's card does with an identity challenge (no\n"
	 "    network): sign the challenge's nonce (NONCE: 64 hex digits, or the\n"
	 "    base64 of its 32 bytes) with the card's key: ECDSA or RSA PKCS#1\n"
	 "    v1.5 over SHA-256 of the nonce bytes. Prints the signature as\n"
	 "    base64 on one line and, with --cert, the card's certificate as\n"
	 "    base64 DER on a second: the \"signature\" and \"certificate\" of\n"
	 "    POST /v1/identity/verifications. Here --key and --cert are the\n"
	 "    card's (deploy/gen-cards DIR NAME makes cards/NAME.key and .pem),\n"
	 "    not the TLS client's, and have no environment default.\n"},
};
#define KZ_CLI__NCMDS (sizeof(kz_cli__cmds) / sizeof(kz_cli__cmds[0]))

#define KZ_CLI__M(c) (1u << (c))
#define KZ_CLI__GLOBAL 0xffffffffu

enum kz_cli__kind { KZ_CLI__STR, KZ_CLI__FLAG, KZ_CLI__SET };

typedef struct kz_cli__opt_def {
	const char *name;
	enum kz_cli__kind kind;
	size_t offset;  /* of the const char * or int in kz_cli_args */
	unsigned cmds;  /* KZ_CLI__M() of the commands that take it */
} kz_cli__opt_def;

/* Numeric options are kept as text while parsing, converted afterwards. */
typedef struct kz_cli__raw {
	kz_cli_args a;
	const char *timeout, *limit, *capacity, *count, *seed, *shelters;
	const char *batch, *in_flight;
} kz_cli__raw;

#define KZ_CLI__A(field) offsetof(kz_cli__raw, a.field)
#define KZ_CLI__R(field) offsetof(kz_cli__raw, field)

static const kz_cli__opt_def kz_cli__opts[] = {
	{"endpoints", KZ_CLI__STR, KZ_CLI__A(endpoints), KZ_CLI__GLOBAL},
	{"cacert", KZ_CLI__STR, KZ_CLI__A(cacert), KZ_CLI__GLOBAL},
	{"cert", KZ_CLI__STR, KZ_CLI__A(cert), KZ_CLI__GLOBAL},
	{"key", KZ_CLI__STR, KZ_CLI__A(key), KZ_CLI__GLOBAL},
	{"purpose", KZ_CLI__STR, KZ_CLI__A(purpose), KZ_CLI__GLOBAL},
	{"timeout", KZ_CLI__STR, KZ_CLI__R(timeout), KZ_CLI__GLOBAL},
	{"json", KZ_CLI__FLAG, KZ_CLI__A(json), KZ_CLI__GLOBAL},
	{"verbose", KZ_CLI__FLAG, KZ_CLI__A(verbose), KZ_CLI__GLOBAL},
	{"help", KZ_CLI__FLAG, KZ_CLI__A(help), KZ_CLI__GLOBAL},
	{"file", KZ_CLI__STR, KZ_CLI__A(file), KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD)},
	{"name", KZ_CLI__STR, KZ_CLI__A(name),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD) | KZ_CLI__M(KZ_CLI_CMD_SHELTER_PUT)},
	{"name-kana", KZ_CLI__STR, KZ_CLI__A(name_kana),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD)},
	{"dob", KZ_CLI__STR, KZ_CLI__A(dob),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD) | KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH)},
	{"sex", KZ_CLI__STR, KZ_CLI__A(sex), KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD)},
	{"address", KZ_CLI__STR, KZ_CLI__A(address),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD) | KZ_CLI__M(KZ_CLI_CMD_SHELTER_PUT) |
		 KZ_CLI__M(KZ_CLI_CMD_CLUSTER_ADD)},
	{"api", KZ_CLI__STR, KZ_CLI__A(api), KZ_CLI__M(KZ_CLI_CMD_CLUSTER_ADD)},
	{"household", KZ_CLI__STR, KZ_CLI__A(household),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD)},
	{"damage", KZ_CLI__STR, KZ_CLI__A(damage), KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD)},
	{"shelter", KZ_CLI__STR, KZ_CLI__A(shelter),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD) | KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH)},
	{"status", KZ_CLI__STR, KZ_CLI__A(status),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD) | KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH) |
		 KZ_CLI__M(KZ_CLI_CMD_VICTIM_NOTE)},
	{"needs", KZ_CLI__STR, KZ_CLI__A(needs), KZ_CLI__M(KZ_CLI_CMD_VICTIM_ADD)},
	{"stale", KZ_CLI__FLAG, KZ_CLI__A(stale),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_GET) | KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH) |
		 KZ_CLI__M(KZ_CLI_CMD_SHELTER_SUMMARY)},
	{"all", KZ_CLI__FLAG, KZ_CLI__A(all), KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH)},
	{"q", KZ_CLI__STR, KZ_CLI__A(q), KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH)},
	{"limit", KZ_CLI__STR, KZ_CLI__R(limit),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_SEARCH) | KZ_CLI__M(KZ_CLI_CMD_AUDIT_LIST)},
	{"subject", KZ_CLI__STR, KZ_CLI__A(subject),
	 KZ_CLI__M(KZ_CLI_CMD_AUDIT_LIST)},
	{"from", KZ_CLI__STR, KZ_CLI__A(from), KZ_CLI__M(KZ_CLI_CMD_AUDIT_LIST)},
	{"into", KZ_CLI__STR, KZ_CLI__A(into), KZ_CLI__M(KZ_CLI_CMD_VICTIM_MERGE)},
	/* cluster add --id N, as etcdctl-style scripts write it (the same as
	 * the positional ID) */
	{"id", KZ_CLI__STR, KZ_CLI__A(id),
	 KZ_CLI__M(KZ_CLI_CMD_CLUSTER_ADD) | KZ_CLI__M(KZ_CLI_CMD_CLUSTER_REMOVE) |
		 KZ_CLI__M(KZ_CLI_CMD_CLUSTER_PROMOTE)},
	{"to", KZ_CLI__STR, KZ_CLI__A(to),
	 KZ_CLI__M(KZ_CLI_CMD_AUDIT_LIST) | KZ_CLI__M(KZ_CLI_CMD_CLUSTER_LEADER)},
	{"region", KZ_CLI__STR, KZ_CLI__A(region),
	 KZ_CLI__M(KZ_CLI_CMD_CLUSTER_LEADER) | KZ_CLI__M(KZ_CLI_CMD_CLUSTER_ADD)},
	{"if-match", KZ_CLI__STR, KZ_CLI__A(if_match),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_PATCH)},
	{"set", KZ_CLI__SET, 0, KZ_CLI__M(KZ_CLI_CMD_VICTIM_PATCH)},
	{"text", KZ_CLI__STR, KZ_CLI__A(text), KZ_CLI__M(KZ_CLI_CMD_VICTIM_NOTE)},
	{"author", KZ_CLI__STR, KZ_CLI__A(author),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_NOTE)},
	{"location", KZ_CLI__STR, KZ_CLI__A(location),
	 KZ_CLI__M(KZ_CLI_CMD_VICTIM_NOTE)},
	{"capacity", KZ_CLI__STR, KZ_CLI__R(capacity),
	 KZ_CLI__M(KZ_CLI_CMD_SHELTER_PUT)},
	{"count", KZ_CLI__STR, KZ_CLI__R(count),
	 KZ_CLI__M(KZ_CLI_CMD_SAMPLE_GEN) | KZ_CLI__M(KZ_CLI_CMD_SAMPLE_LOAD)},
	{"seed", KZ_CLI__STR, KZ_CLI__R(seed),
	 KZ_CLI__M(KZ_CLI_CMD_SAMPLE_GEN) | KZ_CLI__M(KZ_CLI_CMD_SAMPLE_LOAD)},
	{"shelters", KZ_CLI__STR, KZ_CLI__R(shelters),
	 KZ_CLI__M(KZ_CLI_CMD_SAMPLE_GEN) | KZ_CLI__M(KZ_CLI_CMD_SAMPLE_LOAD)},
	{"data", KZ_CLI__FLAG, KZ_CLI__A(rotate_data),
	 KZ_CLI__M(KZ_CLI_CMD_KEYS_ROTATE)},
	{"master", KZ_CLI__FLAG, KZ_CLI__A(rotate_master),
	 KZ_CLI__M(KZ_CLI_CMD_KEYS_ROTATE)},
	{"nonce", KZ_CLI__STR, KZ_CLI__A(nonce), KZ_CLI__M(KZ_CLI_CMD_CARD_SIGN)},
	{"data-dir", KZ_CLI__STR, KZ_CLI__A(data_dir),
	 KZ_CLI__M(KZ_CLI_CMD_BACKUP_RESTORE)},
	{"role", KZ_CLI__STR, KZ_CLI__A(role), KZ_CLI__M(KZ_CLI_CMD_CLUSTER_ADD)},
	{"csv", KZ_CLI__FLAG, KZ_CLI__A(csv), KZ_CLI__M(KZ_CLI_CMD_SAMPLE_GEN)},
	{"encoding", KZ_CLI__STR, KZ_CLI__A(encoding),
	 KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV)},
	{"map", KZ_CLI__STR, KZ_CLI__A(map), KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV)},
	{"dry-run", KZ_CLI__FLAG, KZ_CLI__A(dry_run),
	 KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV) | KZ_CLI__M(KZ_CLI_CMD_IMPORT_PFIF)},
	{"out", KZ_CLI__STR, KZ_CLI__A(out), KZ_CLI__M(KZ_CLI_CMD_EXPORT_PFIF)},
	{"check-duplicates", KZ_CLI__FLAG, KZ_CLI__A(check_duplicates),
	 KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV)},
	{"ignore-unknown", KZ_CLI__FLAG, KZ_CLI__A(ignore_unknown),
	 KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV)},
	{"batch", KZ_CLI__STR, KZ_CLI__R(batch),
	 KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV) | KZ_CLI__M(KZ_CLI_CMD_IMPORT_PFIF)},
	{"in-flight", KZ_CLI__STR, KZ_CLI__R(in_flight),
	 KZ_CLI__M(KZ_CLI_CMD_IMPORT_CSV)},
	{"force", KZ_CLI__FLAG, KZ_CLI__A(force),
	 KZ_CLI__M(KZ_CLI_CMD_CLUSTER_ADD) | KZ_CLI__M(KZ_CLI_CMD_CLUSTER_REMOVE) |
	     KZ_CLI__M(KZ_CLI_CMD_CLUSTER_PROMOTE)},
};
#define KZ_CLI__NOPTS (sizeof(kz_cli__opts) / sizeof(kz_cli__opts[0]))

static const char *const kz_cli__sexes[] = {"female", "male", "other", NULL};
static const char *const kz_cli__statuses[] = {
	"safe", "injured", "missing", "deceased", "unknown", NULL};
static const char *const kz_cli__damages[] = {
	"zenkai",     "kaitai",        "choki_hinan", "daikibo_hankai",
	"chukibo_hankai", "hankai",    "jun_hankai",  "ichibu_sonkai",
	"none",       NULL};
static const char *const kz_cli__needs[] = {
	"infant",   "elderly",         "disabled",
	"pregnant", "chronic_illness", "medication", NULL};

static int kz_cli__usage_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int kz_cli__usage_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return KZ_CLI_ARGS_USAGE;
}

static int kz_cli__in(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

/* A comma-separated list whose items are all in set. */
static int kz_cli__list_in(const char *s, const char *const *set)
{
	char item[64];
	const char *end;
	for (;;) {
		size_t n;
		end = strchr(s, ',');
		n = end ? (size_t)(end - s) : strlen(s);
		if (n == 0 || n >= sizeof(item))
			return 0;
		memcpy(item, s, n);
		item[n] = '\0';
		if (!kz_cli__in(item, set))
			return 0;
		if (end == NULL)
			return 1;
		s = end + 1;
	}
}

static int kz_cli__parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;
	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A challenge's nonce: 64 hex digits, or base64 (standard or URL-safe
 * alphabet, with or without its one '=') of exactly 32 bytes. */
static int kz_cli__nonce(const char *s, unsigned char out[KZ_CLI_NONCE_LEN])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789+/";
	size_t n = strlen(s), i, o = 0;
	unsigned acc = 0, bits = 0;

	if (n == 2 * KZ_CLI_NONCE_LEN &&
	    strspn(s, "0123456789abcdefABCDEF") == n) {
		for (i = 0; i < KZ_CLI_NONCE_LEN; i++) {
			unsigned v;
			sscanf(s + 2 * i, "%2x", &v);
			out[i] = (unsigned char)v;
		}
		return 0;
	}
	/* 32 bytes are 43 symbols (258 bits, the last 2 zero), then "=". */
	if (n == 44 && s[43] == '=')
		n = 43;
	if (n != 43)
		return -1;
	for (i = 0; i < n; i++) {
		char c = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
		const char *p = c != '\0' ? strchr(b64, c) : NULL;
		if (p == NULL)
			return -1;
		acc = (acc << 6) | (unsigned)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == KZ_CLI_NONCE_LEN)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return o == KZ_CLI_NONCE_LEN && acc == 0 ? 0 : -1;
}

static int kz_cli__valid_date(const char *s)
{
	int age;
	return kz_cli_sample_age(s, &age) == KZ_CLI_OK;
}

/* An RFC 3339 UTC time as the server takes it: YYYY-MM-DDTHH:MM:SS, an
 * optional fraction, then Z. */
static int kz_cli__valid_time(const char *s)
{
	char date[11];
	int i;
	if (strlen(s) < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return 0;
	memcpy(date, s, 10);
	date[10] = '\0';
	if (!kz_cli__valid_date(date))
		return 0;
	for (i = 11; i < 19; i++)
		if (i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
			return 0;
	if ((s[11] - '0') * 10 + (s[12] - '0') > 23 ||
	    (s[14] - '0') * 10 + (s[15] - '0') > 59 ||
	    (s[17] - '0') * 10 + (s[18] - '0') > 60)
		return 0;
	s += 19;
	if (*s == '.') {
		size_t digits = strspn(++s, "0123456789");
		if (digits == 0)
			return 0;
		s += digits;
	}
	return strcmp(s, "Z") == 0;
}

static const kz_cli__opt_def *kz_cli__find_opt(const char *name, size_t len)
{
	size_t i;
	for (i = 0; i < KZ_CLI__NOPTS; i++)
		if (strlen(kz_cli__opts[i].name) == len &&
		    memcmp(kz_cli__opts[i].name, name, len) == 0)
			return &kz_cli__opts[i];
	return NULL;
}

static const kz_cli__cmd_def *kz_cli__find_cmd(kz_cli_cmd cmd)
{
	size_t i;
	for (i = 0; i < KZ_CLI__NCMDS; i++)
		if (kz_cli__cmds[i].cmd == cmd)
			return &kz_cli__cmds[i];
	return NULL;
}

static int kz_cli__is_group(const char *s)
{
	size_t i;
	for (i = 0; i < KZ_CLI__NCMDS; i++)
		if (strcmp(kz_cli__cmds[i].group, s) == 0)
			return 1;
	return 0;
}

/* Checks of one command's options once the whole line is read. */
static int kz_cli__validate(kz_cli__raw *r, char *err, size_t errlen)
{
	kz_cli_args *a = &r->a;
	const kz_cli__cmd_def *def = kz_cli__find_cmd(a->cmd);
	size_t i;

	if (r->timeout != NULL) {
		char *end;
		double s;
		errno = 0;
		s = strtod(r->timeout, &end);
		if (*end != '\0' || errno != 0 || !(s > 0) || s > 86400)
			return kz_cli__usage_err(err, errlen,
						 "--timeout: want seconds > 0, "
						 "got '%s'",
						 r->timeout);
		a->timeout_ms = (long)(s * 1000);
		if (a->timeout_ms < 1)
			a->timeout_ms = 1;
	}
	if (a->purpose != NULL &&
	    (*a->purpose == '\0' || strpbrk(a->purpose, "\r\n") != NULL))
		return kz_cli__usage_err(err, errlen,
					 "--purpose: want one non-empty line");
	if (def != NULL && def->needs_id && a->id == NULL)
		return kz_cli__usage_err(err, errlen, "%s %s: missing ID",
					 def->group, def->name);

	switch (a->cmd) {
	case KZ_CLI_CMD_VICTIM_ADD:
		if (a->file != NULL) {
			if (a->name || a->name_kana || a->dob || a->sex ||
			    a->address || a->household || a->damage ||
			    a->shelter || a->status || a->needs)
				return kz_cli__usage_err(
					err, errlen,
					"victim add: --file cannot be "
					"combined with field options");
			break;
		}
		if (!a->name || !a->name_kana || !a->dob || !a->sex)
			return kz_cli__usage_err(
				err, errlen,
				"victim add: need --file, or --name, "
				"--name-kana, --dob and --sex");
		if (!kz_cli__valid_date(a->dob))
			return kz_cli__usage_err(err, errlen,
						 "--dob: want YYYY-MM-DD, got "
						 "'%s'",
						 a->dob);
		if (!kz_cli__in(a->sex, kz_cli__sexes))
			return kz_cli__usage_err(err, errlen,
						 "--sex: want female, male or "
						 "other, got '%s'",
						 a->sex);
		if (a->damage && !kz_cli__in(a->damage, kz_cli__damages))
			return kz_cli__usage_err(err, errlen,
						 "--damage: unknown code '%s'",
						 a->damage);
		if (a->status && !kz_cli__in(a->status, kz_cli__statuses))
			return kz_cli__usage_err(err, errlen,
						 "--status: unknown code '%s'",
						 a->status);
		if (a->needs && *a->needs != '\0' &&
		    !kz_cli__list_in(a->needs, kz_cli__needs))
			return kz_cli__usage_err(err, errlen,
						 "--needs: want a comma list of "
						 "infant, elderly, disabled, "
						 "pregnant, chronic_illness, "
						 "medication; got '%s'",
						 a->needs);
		break;
	case KZ_CLI_CMD_VICTIM_PATCH:
		if (a->n_sets == 0)
			return kz_cli__usage_err(err, errlen,
						 "victim patch: need at least "
						 "one --set key=value");
		for (i = 0; i < a->n_sets; i++) {
			const char *eq = strchr(a->sets[i], '=');
			if (eq == NULL || eq == a->sets[i])
				return kz_cli__usage_err(
					err, errlen,
					"--set: want key=value, got '%s'",
					a->sets[i]);
		}
		if (a->if_match != NULL) {
			long v;
			if (kz_cli__parse_long(a->if_match, 0, LONG_MAX, &v) != 0)
				return kz_cli__usage_err(
					err, errlen,
					"--if-match: want a version number, "
					"got '%s'",
					a->if_match);
		}
		break;
	case KZ_CLI_CMD_VICTIM_SEARCH:
		if (r->limit != NULL &&
		    kz_cli__parse_long(r->limit, 1, 100000, &a->limit) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--limit: want 1..100000, got "
						 "'%s'",
						 r->limit);
		if (a->dob && !kz_cli__valid_date(a->dob))
			return kz_cli__usage_err(err, errlen,
						 "--dob: want YYYY-MM-DD, got "
						 "'%s'",
						 a->dob);
		if (a->status && !kz_cli__in(a->status, kz_cli__statuses))
			return kz_cli__usage_err(err, errlen,
						 "--status: unknown code '%s'",
						 a->status);
		break;
	case KZ_CLI_CMD_VICTIM_NOTE:
		if (a->status == NULL || a->text == NULL)
			return kz_cli__usage_err(err, errlen,
						 "victim note: need --status "
						 "and --text");
		if (!kz_cli__in(a->status, kz_cli__statuses))
			return kz_cli__usage_err(err, errlen,
						 "--status: unknown code '%s'",
						 a->status);
		break;
	case KZ_CLI_CMD_SHELTER_PUT:
		if (a->name == NULL)
			return kz_cli__usage_err(err, errlen,
						 "shelter put: need --name");
		if (r->capacity != NULL &&
		    kz_cli__parse_long(r->capacity, 0, 10000000, &a->capacity) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--capacity: want a number of "
						 "people, got '%s'",
						 r->capacity);
		break;
	case KZ_CLI_CMD_AUDIT_LIST:
		if (r->limit != NULL &&
		    kz_cli__parse_long(r->limit, 1, 1000000000, &a->limit) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--limit: want 1..1000000000, "
						 "got '%s'",
						 r->limit);
		if (a->subject != NULL && *a->subject == '\0')
			return kz_cli__usage_err(err, errlen,
						 "--subject: want a record id");
		if (a->from != NULL && !kz_cli__valid_time(a->from))
			return kz_cli__usage_err(err, errlen,
						 "--from: want an RFC 3339 UTC "
						 "time like "
						 "2026-11-23T00:00:00Z, got '%s'",
						 a->from);
		if (a->to != NULL && !kz_cli__valid_time(a->to))
			return kz_cli__usage_err(err, errlen,
						 "--to: want an RFC 3339 UTC "
						 "time like "
						 "2026-11-23T23:59:59Z, got '%s'",
						 a->to);
		break;
	case KZ_CLI_CMD_CARD_SIGN:
		/* Read before the environment defaults are filled in: the TLS
		 * client's KIZUNA_KEY must never be taken for a card's key. */
		if (a->key == NULL || a->nonce == NULL)
			return kz_cli__usage_err(err, errlen,
						 "card sign: need --key (the "
						 "card's private key) and "
						 "--nonce");
		if (kz_cli__nonce(a->nonce, a->nonce_bytes) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--nonce: want 64 hex digits or "
						 "the base64 of 32 bytes, got "
						 "'%s'",
						 a->nonce);
		a->card_key = a->key;
		a->card_cert = a->cert;
		break;
	case KZ_CLI_CMD_CLUSTER_ADD:
	case KZ_CLI_CMD_CLUSTER_REMOVE:
	case KZ_CLI_CMD_CLUSTER_PROMOTE:
		if (a->id == NULL || a->id[0] < '1' || a->id[0] > '9' ||
		    strspn(a->id, "0123456789") != strlen(a->id) ||
		    strlen(a->id) > 18)
			return kz_cli__usage_err(err, errlen,
						 "cluster: ID is a node id "
						 "(1, 2, ...), got '%s'",
						 a->id ? a->id : "");
		if (a->role != NULL && strcmp(a->role, "voter") != 0 &&
		    strcmp(a->role, "standby") != 0 &&
		    strcmp(a->role, "spare") != 0)
			return kz_cli__usage_err(err, errlen,
						 "--role: voter, standby or "
						 "spare, got '%s'",
						 a->role);
		if ((a->address != NULL) != (a->api != NULL) ||
		    (a->address != NULL) != (a->region != NULL))
			return kz_cli__usage_err(err, errlen,
						 "cluster add: --address, --api "
						 "and --region go together");
		break;
	case KZ_CLI_CMD_CLUSTER_LEADER:
		if (a->to != NULL && a->region != NULL)
			return kz_cli__usage_err(err, errlen,
						 "cluster transfer-leader: --to "
						 "or --region, not both");
		if (a->to != NULL &&
		    (a->to[0] < '1' || a->to[0] > '9' ||
		     strspn(a->to, "0123456789") != strlen(a->to) ||
		     strlen(a->to) > 18))
			return kz_cli__usage_err(err, errlen,
						 "--to: a node id (1, 2, ...), "
						 "got '%s'",
						 a->to);
		break;
	case KZ_CLI_CMD_IMPORT_CSV:
		if (a->id[0] == '\0')
			return kz_cli__usage_err(err, errlen,
						 "import csv: FILE is empty");
		if (a->encoding != NULL &&
		    strcasecmp(a->encoding, "utf-8") != 0 &&
		    strcasecmp(a->encoding, "utf8") != 0 &&
		    strcasecmp(a->encoding, "shift_jis") != 0 &&
		    strcasecmp(a->encoding, "sjis") != 0 &&
		    strcasecmp(a->encoding, "cp932") != 0)
			return kz_cli__usage_err(err, errlen,
						 "--encoding: want utf-8 or "
						 "shift_jis, got '%s'",
						 a->encoding);
		if (r->batch != NULL &&
		    kz_cli__parse_long(r->batch, 1, 500, &a->batch) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--batch: want 1..500 records "
						 "per call, got '%s'",
						 r->batch);
		if (r->in_flight != NULL &&
		    kz_cli__parse_long(r->in_flight, 1,
				       KZ_CLI_IMPORT_MAX_IN_FLIGHT,
				       &a->in_flight) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--in-flight: want 1..%d "
						 "batches, got '%s'",
						 KZ_CLI_IMPORT_MAX_IN_FLIGHT,
						 r->in_flight);
		if (a->map != NULL) {
			const char *m = a->map;
			if (*m == '\0')
				return kz_cli__usage_err(
					err, errlen,
					"--map: want SRC=field[,SRC=field...]");
			while (*m != '\0') {
				size_t n = strcspn(m, ",");
				const char *eq = memchr(m, '=', n);
				if (eq == NULL || eq == m || eq == m + n - 1)
					return kz_cli__usage_err(
						err, errlen,
						"--map: want SRC=field, got "
						"'%.*s'",
						(int)n, m);
				m += n;
				if (*m == ',')
					m++;
			}
		}
		break;
	case KZ_CLI_CMD_IMPORT_PFIF:
		if (a->id[0] == '\0')
			return kz_cli__usage_err(err, errlen,
						 "import pfif: FILE is empty");
		if (r->batch != NULL &&
		    kz_cli__parse_long(r->batch, 1, 500, &a->batch) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--batch: want 1..500 persons "
						 "per call, got '%s'",
						 r->batch);
		break;
	case KZ_CLI_CMD_BACKUP_RESTORE:
		if (a->data_dir == NULL || a->data_dir[0] == '\0')
			return kz_cli__usage_err(err, errlen,
						 "backup restore: need --data-dir");
		break;
	case KZ_CLI_CMD_KEYS_ROTATE:
		if (a->rotate_data == a->rotate_master)
			return kz_cli__usage_err(err, errlen,
						 "keys rotate: give exactly one "
						 "of --data, --master");
		break;
	case KZ_CLI_CMD_SAMPLE_GEN:
	case KZ_CLI_CMD_SAMPLE_LOAD:
		if (r->count == NULL)
			return kz_cli__usage_err(err, errlen, "sample: need --count");
		if (kz_cli__parse_long(r->count, 1, 100000000, &a->count) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--count: want 1..100000000, "
						 "got '%s'",
						 r->count);
		if (r->seed != NULL) {
			char *end;
			unsigned long long s;
			errno = 0;
			s = strtoull(r->seed, &end, 0);
			if (*r->seed == '-' || *r->seed == '\0' || *end != '\0' ||
			    errno != 0)
				return kz_cli__usage_err(err, errlen,
							 "--seed: want an "
							 "unsigned number, got "
							 "'%s'",
							 r->seed);
			a->seed = (uint64_t)s;
		}
		if (r->shelters != NULL &&
		    kz_cli__parse_long(r->shelters, 0, 999, &a->shelters) != 0)
			return kz_cli__usage_err(err, errlen,
						 "--shelters: want 0..999, got "
						 "'%s'",
						 r->shelters);
		break;
	default:
		break;
	}
	return KZ_CLI_ARGS_OK;
}

static const char *kz_cli__env_or(const char *name, const char *fallback,
				  int *defaulted)
{
	const char *v = getenv(name);
	if (v != NULL && *v != '\0') {
		*defaulted = 0;
		return v;
	}
	*defaulted = 1;
	return fallback;
}

int kz_cli_args_parse(int argc, char **argv, kz_cli_args *out, char *err,
		      size_t errlen)
{
	kz_cli__raw r;
	int i, dashdash = 0, rc;

	memset(&r, 0, sizeof(r));
	r.a.capacity = -1;
	r.a.seed = 1;
	r.a.shelters = 10;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!dashdash && arg[0] == '-' && arg[1] != '\0') {
			const kz_cli__opt_def *opt;
			const char *name, *eq, *value = NULL;
			size_t namelen;

			if (strcmp(arg, "--") == 0) {
				dashdash = 1;
				continue;
			}
			if (strcmp(arg, "-h") == 0)
				arg = "--help";
			else if (strcmp(arg, "-v") == 0)
				arg = "--verbose";
			if (arg[1] != '-')
				return kz_cli__usage_err(err, errlen,
							 "unknown option '%s'",
							 arg);
			name = arg + 2;
			eq = strchr(name, '=');
			namelen = eq ? (size_t)(eq - name) : strlen(name);
			opt = kz_cli__find_opt(name, namelen);
			if (opt == NULL)
				return kz_cli__usage_err(err, errlen,
							 "unknown option '--%.*s'",
							 (int)namelen, name);
			if (opt->cmds != KZ_CLI__GLOBAL &&
			    (r.a.cmd == KZ_CLI_CMD_NONE ||
			     !(opt->cmds & KZ_CLI__M(r.a.cmd)))) {
				if (r.a.cmd == KZ_CLI_CMD_NONE && r.a.group == NULL)
					return kz_cli__usage_err(
						err, errlen,
						"option '--%s' before the command",
						opt->name);
				if (r.a.cmd == KZ_CLI_CMD_NONE)
					continue; /* reported as a missing command */
				return kz_cli__usage_err(
					err, errlen, "%s %s does not take '--%s'",
					kz_cli__find_cmd(r.a.cmd)->group,
					kz_cli__find_cmd(r.a.cmd)->name,
					opt->name);
			}
			if (opt->kind == KZ_CLI__FLAG) {
				if (eq != NULL)
					return kz_cli__usage_err(
						err, errlen,
						"option '--%s' takes no value",
						opt->name);
				*(int *)((char *)&r + opt->offset) = 1;
				continue;
			}
			if (eq != NULL) {
				value = eq + 1;
			} else {
				if (i + 1 >= argc)
					return kz_cli__usage_err(
						err, errlen,
						"option '--%s' needs a value",
						opt->name);
				value = argv[++i];
			}
			if (strcmp(opt->name, "id") == 0 && r.a.id != NULL)
				return kz_cli__usage_err(err, errlen,
							 "the ID is given twice");
			if (opt->kind == KZ_CLI__SET) {
				if (r.a.n_sets == KZ_CLI_ARGS_MAX_SETS)
					return kz_cli__usage_err(
						err, errlen,
						"at most %d --set options",
						KZ_CLI_ARGS_MAX_SETS);
				r.a.sets[r.a.n_sets++] = value;
			} else {
				*(const char **)((char *)&r + opt->offset) = value;
			}
			continue;
		}
		/* A word: group, command, then the positional id. */
		if (r.a.group == NULL) {
			if (!kz_cli__is_group(arg))
				return kz_cli__usage_err(err, errlen,
							 "unknown command '%s'",
							 arg);
			r.a.group = arg;
		} else if (r.a.cmd == KZ_CLI_CMD_NONE) {
			size_t k;
			for (k = 0; k < KZ_CLI__NCMDS; k++)
				if (strcmp(kz_cli__cmds[k].group, r.a.group) == 0 &&
				    strcmp(kz_cli__cmds[k].name, arg) == 0)
					r.a.cmd = kz_cli__cmds[k].cmd;
			if (r.a.cmd == KZ_CLI_CMD_NONE)
				return kz_cli__usage_err(err, errlen,
							 "unknown command '%s %s'",
							 r.a.group, arg);
		} else {
			const kz_cli__cmd_def *def = kz_cli__find_cmd(r.a.cmd);
			if (!def->needs_id || r.a.id != NULL)
				return kz_cli__usage_err(
					err, errlen,
					"%s %s: unexpected argument '%s'",
					def->group, def->name, arg);
			if (*arg == '\0')
				return kz_cli__usage_err(err, errlen,
							 "%s %s: empty ID",
							 def->group, def->name);
			r.a.id = arg;
		}
	}
	if (!r.a.help) {
		if (r.a.group == NULL)
			return kz_cli__usage_err(err, errlen, "no command given");
		if (r.a.cmd == KZ_CLI_CMD_NONE)
			return kz_cli__usage_err(err, errlen,
						 "%s: which command?", r.a.group);
		rc = kz_cli__validate(&r, err, errlen);
		if (rc != KZ_CLI_ARGS_OK)
			return rc;
	}

	{
		int d;
		if (r.a.endpoints == NULL)
			r.a.endpoints = kz_cli__env_or("KIZUNA_ENDPOINTS",
						       KZ_CLI_DEFAULT_ENDPOINTS, &d);
		if (r.a.cacert == NULL)
			r.a.cacert = kz_cli__env_or("KIZUNA_CACERT",
						    KZ_CLI_DEFAULT_CACERT,
						    &r.a.cacert_default);
		if (r.a.cert == NULL)
			r.a.cert = kz_cli__env_or("KIZUNA_CERT",
						  KZ_CLI_DEFAULT_CERT,
						  &r.a.cert_default);
		if (r.a.key == NULL)
			r.a.key = kz_cli__env_or("KIZUNA_KEY", KZ_CLI_DEFAULT_KEY,
						 &r.a.key_default);
		if (r.a.purpose == NULL)
			r.a.purpose = "cli";
	}
	*out = r.a;
	return KZ_CLI_ARGS_OK;
}

/* Prints text with every line indented by two spaces. */
static void kz_cli__indented(FILE *f, const char *text)
{
	while (*text != '\0') {
		size_t n = strcspn(text, "\n");
		fprintf(f, "  %.*s\n", (int)n, text);
		text += n;
		if (*text == '\n')
			text++;
	}
}

void kz_cli_args_usage(FILE *f, const kz_cli_args *a)
{
	size_t i;

	if (a != NULL && a->cmd != KZ_CLI_CMD_NONE) {
		fprintf(f, "usage: kizuna [global options] %s",
			kz_cli__find_cmd(a->cmd)->usage);
		return;
	}
	if (a != NULL && a->group != NULL)
		fprintf(f, "usage: kizuna [global options] %s COMMAND ...\n\n"
			   "Commands:\n",
			a->group);
	else
		fputs("usage: kizuna [global options] COMMAND ...\n"
		      "\n"
		      "Global options (anywhere on the line):\n"
		      "  --endpoints FILE|URL,URL  nodes to call (env KIZUNA_ENDPOINTS,\n"
		      "                            default " KZ_CLI_DEFAULT_ENDPOINTS ";\n"
		      "                            lines '<url> <node-id> <region>')\n"
		      "  --cacert F --cert F --key F  mutual TLS (env KIZUNA_CACERT,\n"
		      "                            KIZUNA_CERT, KIZUNA_KEY; default\n"
		      "                            var/cluster/pki/ca.pem, operator.pem,\n"
		      "                            operator.key)\n"
		      "  --purpose TEXT            X-Purpose sent with every call\n"
		      "                            (default \"cli\")\n"
		      "  --timeout SEC             give up after SEC, retries included\n"
		      "                            (default 10)\n"
		      "  --json                    compact JSON output\n"
		      "  -v, --verbose             log each attempt on stderr\n"
		      "  -h, --help                help (also after a command)\n"
		      "\n"
		      "Exit codes: 0 ok, 1 the server refused (its error on stderr),\n"
		      "2 usage, 3 no endpoint reachable, 4 a write was sent but its\n"
		      "outcome is unknown.\n"
		      "\n"
		      "Commands:\n",
		      f);
	for (i = 0; i < KZ_CLI__NCMDS; i++) {
		if (a != NULL && a->group != NULL &&
		    strcmp(a->group, kz_cli__cmds[i].group) != 0)
			continue;
		kz_cli__indented(f, kz_cli__cmds[i].usage);
	}
}

/* ---- request builders --------------------------------------------------------- */

int kz_cli_args_victim_body(const kz_cli_args *a, json_t **out)
{
	json_t *body, *needs = NULL;

	*out = NULL;
	body = json_pack("{s:s, s:s, s:s, s:s}", "name", a->name, "name_kana",
			 a->name_kana, "dob", a->dob, "sex", a->sex);
	if (body == NULL)
		return -1;
#define KZ_CLI__OPT_FIELD(key, val)                                             \
	do {                                                                    \
		if ((val) != NULL &&                                            \
		    json_object_set_new(body, (key), json_string(val)) != 0)    \
			goto err_after_body;                                    \
	} while (0)
	KZ_CLI__OPT_FIELD("address", a->address);
	KZ_CLI__OPT_FIELD("household_id", a->household);
	KZ_CLI__OPT_FIELD("damage", a->damage);
	KZ_CLI__OPT_FIELD("shelter_id", a->shelter);
	KZ_CLI__OPT_FIELD("status", a->status);
#undef KZ_CLI__OPT_FIELD
	if (a->needs != NULL) {
		const char *s = a->needs;
		needs = json_array();
		if (needs == NULL)
			goto err_after_body;
		while (*s != '\0') {
			size_t n = strcspn(s, ",");
			if (n > 0 &&
			    json_array_append_new(needs, json_stringn(s, n)) != 0)
				goto err_after_needs;
			s += n;
			if (*s == ',')
				s++;
		}
		if (json_object_set_new(body, "needs", needs) != 0) {
			needs = NULL; /* set_new released it */
			goto err_after_body;
		}
	}
	*out = body;
	return 0;

err_after_needs:
	json_decref(needs);
err_after_body:
	json_decref(body);
	return -1;
}

int kz_cli_args_patch_body(const kz_cli_args *a, json_t **out, char *err,
			   size_t errlen)
{
	json_t *body;
	size_t i;

	*out = NULL;
	body = json_object();
	if (body == NULL)
		goto err_nomem;
	for (i = 0; i < a->n_sets; i++) {
		const char *kv = a->sets[i];
		const char *eq = strchr(kv, '=');
		const char *key = kv, *dot;
		json_t *obj = body, *value;

		if (eq == NULL || eq == kv) {
			kz_cli__usage_err(err, errlen, "--set: want key=value");
			goto err_after_body;
		}
		/* Walk "a.b.c" down to the object that takes "c". */
		while ((dot = memchr(key, '.', (size_t)(eq - key))) != NULL) {
			json_t *child;
			if (dot == key) {
				kz_cli__usage_err(err, errlen,
						  "--set: empty key in '%s'", kv);
				goto err_after_body;
			}
			child = json_object_getn(obj, key, (size_t)(dot - key));
			if (child == NULL) {
				child = json_object();
				if (child == NULL ||
				    json_object_setn_new(obj, key,
							 (size_t)(dot - key),
							 child) != 0)
					goto err_nomem_body;
			} else if (!json_is_object(child)) {
				kz_cli__usage_err(err, errlen,
						  "--set: '%.*s' is set twice",
						  (int)(dot - kv), kv);
				goto err_after_body;
			}
			obj = child;
			key = dot + 1;
		}
		if (key == eq) {
			kz_cli__usage_err(err, errlen, "--set: empty key in '%s'",
					  kv);
			goto err_after_body;
		}
		value = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
		if (value == NULL)
			value = json_string(eq + 1);
		if (value == NULL) {
			/* not valid UTF-8, or out of memory */
			kz_cli__usage_err(err, errlen,
					  "--set: value of '%.*s' is not UTF-8",
					  (int)(eq - kv), kv);
			goto err_after_body;
		}
		if (json_object_setn_new(obj, key, (size_t)(eq - key), value) != 0)
			goto err_nomem_body;
	}
	*out = body;
	return 0;

err_nomem_body:
	kz_cli__usage_err(err, errlen, "out of memory");
err_after_body:
	json_decref(body);
	return -1;
err_nomem:
	kz_cli__usage_err(err, errlen, "out of memory");
	return -1;
}

/* Appends "&key=value" (or "?key=value" first) with the value encoded. */
static int kz_cli__query_add(char **buf, size_t *len, const char *key,
			     const char *value)
{
	char *enc = kz_cli_urlencode(value);
	size_t need;
	char *p;
	if (enc == NULL)
		return -1;
	need = *len + 1 + strlen(key) + 1 + strlen(enc) + 1;
	p = realloc(*buf, need);
	if (p == NULL) {
		free(enc);
		return -1;
	}
	*buf = p;
	*len += (size_t)sprintf(p + *len, "%c%s=%s",
				strchr(p, '?') ? '&' : '?', key, enc);
	free(enc);
	return 0;
}

char *kz_cli_args_search_path(const kz_cli_args *a, const char *cursor)
{
	static const char base[] = "/v1/victims";
	char limit[24];
	size_t len = sizeof(base) - 1;
	char *buf = malloc(sizeof(base));

	if (buf == NULL)
		return NULL;
	memcpy(buf, base, sizeof(base));
	snprintf(limit, sizeof(limit), "%ld", a->limit);
	if ((a->q && kz_cli__query_add(&buf, &len, "q", a->q)) ||
	    (a->dob && kz_cli__query_add(&buf, &len, "dob", a->dob)) ||
	    (a->shelter && kz_cli__query_add(&buf, &len, "shelter", a->shelter)) ||
	    (a->status && kz_cli__query_add(&buf, &len, "status", a->status)) ||
	    (a->limit > 0 && kz_cli__query_add(&buf, &len, "limit", limit)) ||
	    (a->stale &&
	     kz_cli__query_add(&buf, &len, "consistency", "stale")) ||
	    (cursor && kz_cli__query_add(&buf, &len, "cursor", cursor))) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *kz_cli_args_audit_list_path(const kz_cli_args *a,
				  unsigned long long after, long page)
{
	static const char base[] = "/v1/audit";
	char after_s[24], page_s[24];
	size_t len = sizeof(base) - 1;
	char *buf = malloc(sizeof(base));

	if (buf == NULL)
		return NULL;
	memcpy(buf, base, sizeof(base));
	snprintf(after_s, sizeof(after_s), "%llu", after);
	snprintf(page_s, sizeof(page_s), "%ld", page);
	if ((a->subject &&
	     kz_cli__query_add(&buf, &len, "subject", a->subject)) ||
	    (a->from && kz_cli__query_add(&buf, &len, "from", a->from)) ||
	    (a->to && kz_cli__query_add(&buf, &len, "to", a->to)) ||
	    (after > 0 && kz_cli__query_add(&buf, &len, "after", after_s)) ||
	    (page > 0 && kz_cli__query_add(&buf, &len, "limit", page_s))) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- audit verify -------------------------------------------------------------- */

/* A node's verify answer that says its chain is whole; *end is the seq its
 * log ends at. */
static int kz_cli__chain_ok(const json_t *node, json_int_t *end)
{
	const json_t *first = json_object_get(node, "first_seq");
	json_int_t status =
		json_integer_value(json_object_get(node, "http_status"));
	if (status < 200 || status > 299 ||
	    !json_is_true(json_object_get(node, "ok")) ||
	    !json_is_integer(json_object_get(node, "entries")) ||
	    !json_is_string(json_object_get(node, "head")) ||
	    (first != NULL && !json_is_integer(first)))
		return 0;
	*end = (first != NULL ? json_integer_value(first) - 1 : 0) +
	       json_integer_value(json_object_get(node, "entries"));
	return 1;
}

int kz_cli_args_audit_verdict(json_t *nodes)
{
	size_t i, j, answered = 0;
	int bad = 0;

	for (i = 0; i < json_array_size(nodes); i++) {
		json_t *x = json_array_get(nodes, i);
		json_int_t end_x, end_y;
		if (json_object_get(x, "http_status") == NULL)
			continue; /* not reached: does not count */
		answered++;
		if (!kz_cli__chain_ok(x, &end_x)) {
			bad = 1;
			continue;
		}
		for (j = 0; j < json_array_size(nodes); j++) {
			json_t *y = json_array_get(nodes, j), *with;
			if (j == i || !kz_cli__chain_ok(y, &end_y) ||
			    end_y != end_x ||
			    json_equal(json_object_get(x, "head"),
				       json_object_get(y, "head")))
				continue;
			bad = 1;
			with = json_object_get(x, "disagrees_with");
			if (with == NULL) {
				with = json_array();
				if (with == NULL ||
				    json_object_set_new(x, "disagrees_with",
							with) != 0)
					continue; /* out of memory: still bad */
			}
			json_array_append(with, json_object_get(y, "endpoint"));
		}
	}
	if (answered == 0)
		return KZ_CLI_EXIT_UNREACHABLE;
	return bad ? KZ_CLI_EXIT_HTTP : KZ_CLI_EXIT_OK;
}

/* ---- card sign ------------------------------------------------------------------ */

/* No passphrase: an encrypted key fails instead of prompting. */
static int kz_cli__no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static const char *kz_cli__ossl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : "no detail";
}

/* base64 of len bytes, no line breaks; malloc'd, NULL when out of memory. */
static char *kz_cli__base64(const unsigned char *in, size_t len)
{
	char *out;
	if (len > INT_MAX / 2)
		return NULL;
	out = malloc(4 * ((len + 2) / 3) + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* The certificate in path, PEM or else DER; NULL with a message. */
static X509 *kz_cli__read_cert(const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(path, "rb");
	X509 *x;
	if (bio == NULL) {
		kz_cli__usage_err(err, errlen, "%s: %s", path,
				  strerror(errno));
		return NULL;
	}
	x = PEM_read_bio_X509(bio, NULL, kz_cli__no_password, NULL);
	if (x == NULL && BIO_reset(bio) == 0)
		x = d2i_X509_bio(bio, NULL);
	BIO_free(bio);
	if (x == NULL)
		kz_cli__usage_err(err, errlen,
				  "%s: not a PEM or DER certificate (%s)", path,
				  kz_cli__ossl_reason());
	return x;
}

int kz_cli_args_card_sign(const kz_cli_args *a, char **signature,
			  char **certificate, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md = NULL;
	X509 *cert = NULL;
	unsigned char *sig = NULL, *der = NULL;
	size_t siglen = 0;
	int derlen;
	BIO *bio;

	*signature = NULL;
	*certificate = NULL;
	if (a->card_key == NULL) {
		kz_cli__usage_err(err, errlen, "card sign: no --key");
		return -1;
	}
	bio = BIO_new_file(a->card_key, "rb");
	if (bio == NULL) {
		kz_cli__usage_err(err, errlen, "%s: %s", a->card_key,
				  strerror(errno));
		goto err;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, kz_cli__no_password, NULL);
	BIO_free(bio);
	if (key == NULL) {
		kz_cli__usage_err(err, errlen,
				  "%s: not an unencrypted PEM private key (%s)",
				  a->card_key, kz_cli__ossl_reason());
		goto err;
	}

	/* What a card does: its own digest-and-sign of the nonce bytes. */
	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
	    (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) ||
	    EVP_DigestSign(md, NULL, &siglen, a->nonce_bytes,
			   KZ_CLI_NONCE_LEN) != 1 ||
	    (sig = OPENSSL_malloc(siglen)) == NULL ||
	    EVP_DigestSign(md, sig, &siglen, a->nonce_bytes,
			   KZ_CLI_NONCE_LEN) != 1) {
		kz_cli__usage_err(err, errlen,
				  "%s: cannot sign with this key (%s; a card "
				  "holds an EC P-256 or RSA key)",
				  a->card_key, kz_cli__ossl_reason());
		goto err;
	}
	*signature = kz_cli__base64(sig, siglen);
	if (*signature == NULL)
		goto err_nomem;

	if (a->card_cert != NULL) {
		cert = kz_cli__read_cert(a->card_cert, err, errlen);
		if (cert == NULL)
			goto err;
		if (X509_check_private_key(cert, key) != 1) {
			kz_cli__usage_err(err, errlen,
					  "%s does not hold the public half of "
					  "%s",
					  a->card_cert, a->card_key);
			goto err;
		}
		derlen = i2d_X509(cert, &der);
		if (derlen <= 0)
			goto err_nomem;
		*certificate = kz_cli__base64(der, (size_t)derlen);
		if (*certificate == NULL)
			goto err_nomem;
	}
	OPENSSL_free(der);
	X509_free(cert);
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return 0;

err_nomem:
	kz_cli__usage_err(err, errlen, "out of memory");
err:
	free(*signature);
	*signature = NULL;
	free(*certificate);
	*certificate = NULL;
	OPENSSL_free(der);
	X509_free(cert);
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return -1;
}
