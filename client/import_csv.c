/*
 * `kizuna import csv` (see import_csv.h for the contract).
 *
 * The file is read in 64 KiB pieces and never held whole. The reader (the
 * calling thread) converts, parses and builds batches of at most --batch
 * records (a little over 2 MB at most); --in-flight N sender threads, each
 * with a kz_cli of its own (a kz_cli is one thread's), POST them. Batch s
 * is built in slot s % (N + 1): while N batches are in flight the reader
 * builds the next one, then waits for the oldest to be reported, so memory
 * is one piece, its UTF-8 conversion, the record being parsed and N + 1
 * batch bodies. The reader reports every batch in file order, whichever
 * answer came first: rejections, --json lines and progress read as with
 * one batch at a time.
 *
 * Why more than one: with one batch in flight the nodes wait for the CLI
 * between batches and the CLI waits for raft (replication, fsync on a
 * majority, apply) during each. Two in flight was the fastest on the
 * 2-core test machine (docs/ARCHITECTURE.md, "CSV import": 3201-3309
 * rows/s against 2685-2909 with one; three and four no better), so 2 is
 * the default. The server applies each batch as one raft entry either way.
 *
 * Failures: a batch that failed (no answer, in doubt, refused whole) stops
 * the import: no sender takes another batch and nothing more is read, the
 * batches already in flight are waited for and reported each with its own
 * lines (answered ones count as usual), and the batches read but not sent
 * are named as one range. A failure's extent is thus at most N batches in
 * doubt instead of one; --in-flight 1 keeps it to one. A batch in doubt is
 * never re-sent.
 */
#include "import_csv.h"

#include "cli_args.h"
#include "kz_csv.h"

#include <errno.h>
#include <iconv.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KZ_CLI__IMPORT_CHUNK 65536
/* A batch is sent once its body passes 2 MB: one more record (at most 13
 * columns of 64 KiB, quotes doubled: 1.7 MB) keeps it under the server's
 * 4 MB. */
#define KZ_CLI__IMPORT_MAX_BODY (2u << 20)
#define KZ_CLI__IMPORT_MAX_ROWS 500        /* the server's limit */

const char *const kz_cli_import_fields[] = {
	"name",       "name_kana",  "dob",     "sex",
	"address",    "household_id", "damage", "needs",
	"shelter_id", "status",     "contact", "consent",
	"damage_certified_on", NULL};

/* The static name of field s (n bytes), or NULL. */
static const char *kz_cli__field(const char *s, size_t n)
{
	size_t i;
	for (i = 0; kz_cli_import_fields[i] != NULL; i++)
		if (strlen(kz_cli_import_fields[i]) == n &&
		    memcmp(kz_cli_import_fields[i], s, n) == 0)
			return kz_cli_import_fields[i];
	return NULL;
}

static void kz_cli__trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* ---- --map ------------------------------------------------------------------- */

void kz_cli_import_map_free(kz_cli_import_map *m)
{
	size_t i;
	for (i = 0; i < m->n; i++) {
		free(m->src[i]);
		free(m->dst[i]);
	}
	free(m->src);
	free(m->dst);
	memset(m, 0, sizeof(*m));
}

int kz_cli_import_map_parse(const char *spec, kz_cli_import_map *m, char *err,
			    size_t errlen)
{
	memset(m, 0, sizeof(*m));
	while (spec != NULL && *spec != '\0') {
		size_t n = strcspn(spec, ","), sl, dl, i;
		const char *eq = NULL, *p, *src = spec, *dst;
		char **ns, **nd;
		for (p = spec; p < spec + n; p++)
			if (*p == '=')
				eq = p; /* the last '=': field names have none */
		if (eq == NULL) {
			snprintf(err, errlen,
				 "--map: want SRC=field[,SRC=field...], got "
				 "'%.*s'",
				 (int)n, spec);
			return -1;
		}
		sl = (size_t)(eq - spec);
		dst = eq + 1;
		dl = (size_t)(spec + n - dst);
		kz_cli__trim(&src, &sl);
		kz_cli__trim(&dst, &dl);
		if (sl == 0 || kz_cli__field(dst, dl) == NULL) {
			snprintf(err, errlen,
				 "--map: '%.*s': want SRC=field with a register "
				 "field (name, name_kana, dob, sex, address, "
				 "household_id, damage, needs, shelter_id, "
				 "status, contact, consent, damage_certified_on)",
				 (int)n, spec);
			return -1;
		}
		for (i = 0; i < m->n; i++)
			if (strlen(m->src[i]) == sl &&
			    memcmp(m->src[i], src, sl) == 0) {
				snprintf(err, errlen,
					 "--map: column '%.*s' mapped twice",
					 (int)sl, src);
				return -1;
			}
		ns = realloc(m->src, (m->n + 1) * sizeof(*ns));
		if (ns == NULL)
			goto err_oom;
		m->src = ns;
		nd = realloc(m->dst, (m->n + 1) * sizeof(*nd));
		if (nd == NULL)
			goto err_oom;
		m->dst = nd;
		m->src[m->n] = strndup(src, sl);
		m->dst[m->n] = strndup(dst, dl);
		m->n++;
		if (m->src[m->n - 1] == NULL || m->dst[m->n - 1] == NULL)
			goto err_oom;
		spec += n;
		if (*spec == ',')
			spec++;
	}
	return 0;
err_oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int kz_cli_import_header(const kz_cli_import_map *m, char *const *names,
			 const size_t *lens, size_t n, int ignore_unknown,
			 const char ***cols, char *err, size_t errlen)
{
	const char **c;
	size_t i, j, off = 0;
	int unknown = 0;

	*cols = NULL;
	if (n == 0) {
		snprintf(err, errlen, "the header line is empty");
		return -1;
	}
	c = calloc(n, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	err[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *s = names[i];
		size_t l = lens[i];
		kz_cli__trim(&s, &l);
		for (j = 0; j < m->n; j++)
			if (strlen(m->src[j]) == l &&
			    memcmp(m->src[j], s, l) == 0)
				c[i] = kz_cli__field(m->dst[j],
						     strlen(m->dst[j]));
		if (c[i] == NULL)
			c[i] = kz_cli__field(s, l);
		if (c[i] == NULL && !ignore_unknown) {
			if (unknown++ == 0)
				off = (size_t)snprintf(
					err, errlen,
					"columns that are no register field "
					"and not mapped: ");
			if (off < errlen)
				off += (size_t)snprintf(err + off, errlen - off,
							"%s'%.*s'",
							unknown > 1 ? ", " : "",
							(int)(l > 60 ? 60 : l),
							s);
		}
	}
	if (unknown > 0) {
		if (off < errlen)
			snprintf(err + off, errlen - off,
				 " (map them with --map SRC=field, or leave "
				 "them out with --ignore-unknown)");
		goto err_after_alloc;
	}
	for (j = 0; j < m->n; j++) {
		int found = 0;
		for (i = 0; i < n && !found; i++) {
			const char *s = names[i];
			size_t l = lens[i];
			kz_cli__trim(&s, &l);
			found = strlen(m->src[j]) == l &&
				memcmp(m->src[j], s, l) == 0;
		}
		if (!found) {
			snprintf(err, errlen,
				 "--map: the header has no column '%s'",
				 m->src[j]);
			goto err_after_alloc;
		}
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (c[i] != NULL && c[i] == c[j]) {
				snprintf(err, errlen,
					 "columns %zu and %zu would both fill "
					 "'%s'",
					 j + 1, i + 1, c[i]);
				goto err_after_alloc;
			}
	for (i = 0; i < n && c[i] == NULL; i++)
		;
	if (i == n) {
		snprintf(err, errlen, "no column is imported");
		goto err_after_alloc;
	}
	*cols = c;
	return 0;
err_after_alloc:
	free(c);
	return -1;
}

/* ---- encodings ------------------------------------------------------------- */

struct kz_cli_conv {
	iconv_t cd; /* (iconv_t)-1: UTF-8, passed through */
	char pend[8]; /* a character cut at the end of the last piece */
	size_t npend;
	char *in, *out;
	size_t incap, outcap;
	unsigned long long consumed; /* input bytes converted so far */
};

int kz_cli_conv_open(const char *encoding, kz_cli_conv **out)
{
	kz_cli_conv *c;
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	c->cd = (iconv_t)-1;
	if (encoding == NULL || strcasecmp(encoding, "utf-8") == 0 ||
	    strcasecmp(encoding, "utf8") == 0) {
		*out = c;
		return 0;
	}
	if (strcasecmp(encoding, "shift_jis") == 0 ||
	    strcasecmp(encoding, "sjis") == 0 ||
	    strcasecmp(encoding, "cp932") == 0) {
		/* CP932 (Windows-31J) is what municipal systems write under
		 * the name Shift_JIS: NEC and IBM extensions, ① and ㈱. */
		c->cd = iconv_open("UTF-8", "CP932");
		if (c->cd != (iconv_t)-1) {
			*out = c;
			return 0;
		}
	}
	free(c);
	return -1;
}

void kz_cli_conv_free(kz_cli_conv *c)
{
	if (c == NULL)
		return;
	if (c->cd != (iconv_t)-1)
		iconv_close(c->cd);
	free(c->in);
	free(c->out);
	free(c);
}

int kz_cli_conv_feed(kz_cli_conv *c, const char *in, size_t n, int final,
		     const char **out, size_t *outlen,
		     unsigned long long *bad_offset)
{
	char *ip, *op;
	size_t il, ol, total = c->npend + n;

	*out = NULL;
	*outlen = 0;
	if (c->cd == (iconv_t)-1) {
		*out = in;
		*outlen = n;
		return 0;
	}
	if (total > c->incap) {
		char *b = realloc(c->in, total);
		if (b == NULL)
			return -1;
		c->in = b;
		c->incap = total;
	}
	/* At most 3 bytes of UTF-8 per byte of CP932 (half-width kana). */
	if (3 * total + 16 > c->outcap) {
		char *b = realloc(c->out, 3 * total + 16);
		if (b == NULL)
			return -1;
		c->out = b;
		c->outcap = 3 * total + 16;
	}
	memcpy(c->in, c->pend, c->npend);
	if (n > 0)
		memcpy(c->in + c->npend, in, n);
	c->npend = 0;
	ip = c->in;
	il = total;
	op = c->out;
	ol = c->outcap;
	while (il > 0) {
		size_t r = iconv(c->cd, &ip, &il, &op, &ol);
		if (r != (size_t)-1)
			break;
		if (errno == EINVAL && !final && il < sizeof(c->pend)) {
			memcpy(c->pend, ip, il);
			c->npend = il;
			break;
		}
		*out = c->out;
		*outlen = (size_t)(op - c->out);
		*bad_offset = c->consumed + (unsigned long long)(ip - c->in);
		return -1;
	}
	c->consumed += (unsigned long long)(ip - c->in);
	*out = c->out;
	*outlen = (size_t)(op - c->out);
	return 0;
}

/* ---- sample data as CSV ------------------------------------------------------ */

int kz_cli_import_csv_line(const json_t *rec, char **buf, size_t *len,
			   size_t *cap)
{
	size_t i;
	for (i = 0; kz_cli_import_fields[i] != NULL; i++) {
		const char *name = kz_cli_import_fields[i];
		const json_t *v = rec ? json_object_get(rec, name) : NULL;
		char *tmp = NULL;
		const char *s = "";
		int rv;
		if (i > 0 && kz_csv_append_field(buf, len, cap, "", 0) != 0)
			return -1;
		if (i > 0) /* the separator (an empty field adds nothing) */
			(*buf)[(*len)++] = ',';
		if (rec == NULL) {
			s = name;
		} else if (json_is_string(v)) {
			s = json_string_value(v);
		} else if (json_is_array(v)) {
			size_t k, n = 0;
			tmp = calloc(1, 7 * 32);
			if (tmp == NULL)
				return -1;
			for (k = 0; k < json_array_size(v) && k < 6; k++) {
				const char *c = json_string_value(
					json_array_get(v, k));
				n += (size_t)snprintf(tmp + n, 7 * 32 - n,
						      "%s%.30s", k ? ";" : "",
						      c ? c : "");
			}
			s = tmp;
		} else if (json_is_object(v)) {
			const json_t *d = json_object_get(v, "disclose_safety");
			if (json_object_size(v) == 1 && json_is_boolean(d)) {
				s = json_is_true(d) ? "true" : "false";
			} else {
				tmp = json_dumps(v, JSON_COMPACT);
				if (tmp == NULL)
					return -1;
				s = tmp;
			}
		}
		rv = kz_csv_append_field(buf, len, cap, s, strlen(s));
		free(tmp);
		if (rv != 0)
			return -1;
	}
	if (kz_csv_append_field(buf, len, cap, "", 0) != 0)
		return -1;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = '\0';
	return 0;
}

/* ---- the import ------------------------------------------------------------ */

/* A record the reader refused itself (it does not parse, or has the wrong
 * number of fields). It cuts the batch, and is reported with the batch
 * after it, so that the output stays in file order. */
typedef struct kz_cli__local_rej {
	unsigned long line;
	char *msg; /* malloc'd; freed once reported */
} kz_cli__local_rej;

/* Where a batch is. It moves only forward, under kz_cli__imp.mu:
 * FREE (the reader's: being built, or reported) -> QUEUED (complete) ->
 * SENDING (one sender's) -> DONE (its outcome known) -> FREE once the
 * reader has reported it. Once a batch failed no sender takes another, and
 * a QUEUED batch is reported as not sent. */
enum kz_cli__state {
	KZ_CLI__FREE,
	KZ_CLI__QUEUED,
	KZ_CLI__SENDING,
	KZ_CLI__DONE
};

/* One batch, and what became of it. The body and lines are the reader's
 * while FREE and the sender's while SENDING; the outcome is written by the
 * sender and read by the reader once DONE (the mutex orders the two). */
typedef struct kz_cli__batch {
	enum kz_cli__state state;
	char *body; /* the slot's buffer, kept from batch to batch */
	size_t len, cap;
	size_t rows;
	unsigned long first, last; /* its lines in the file */
	kz_cli__local_rej *rej;    /* refused by the reader before `first` */
	size_t nrej, rejcap;
	/* the outcome */
	int rc;        /* kz_cli_request's */
	long status;   /* the HTTP status, when rc is KZ_CLI_OK */
	json_t *ans;   /* a 200's import result (NULL: none, or not one) */
	char msg[600]; /* why it failed */
	char *dups;    /* --check-duplicates: lines for stderr (malloc'd) */
	size_t dups_len;
	unsigned long long ndups;
} kz_cli__batch;

/* A batch that failed, for the recap at the end. */
typedef struct kz_cli__failure {
	unsigned long first, last;
	int in_doubt;
} kz_cli__failure;

/* The import. The reader (the calling thread) parses, builds batches in
 * slots, queues them, and reports them in file order; each sender thread
 * takes the oldest queued batch and POSTs it through a client of its own.
 * Batch number s lives in slots[s % nslots]: with nslots = in flight + 1,
 * the reader builds one batch while the others are queued, in flight or
 * waiting to be reported, and no more bodies than that are ever held. */
typedef struct kz_cli__imp {
	const kz_cli_import_opts *o;
	const char *fname;
	kz_cli_import_map map;
	const char **cols;
	size_t ncols;
	int have_header;
	char *hdr;
	size_t hdr_len, hdr_cap;
	kz_cli__batch *slots;
	size_t nslots;
	kz_cli__batch *cur;       /* being built: slots[next % nslots] */
	unsigned long next_line;  /* the line after cur's last record */
	unsigned long long next;  /* cur's number; those before it are queued */
	unsigned long long taken; /* how many a sender took (mu) */
	unsigned long long reported;
	pthread_mutex_t mu;
	pthread_cond_t work; /* for senders: a batch queued, or closing */
	pthread_cond_t done; /* for the reader: a batch done */
	int failed;          /* a batch failed: senders take no more (mu) */
	int closing;         /* senders return once idle (mu) */
	/* the reader's alone */
	unsigned long long rows, accepted, rejected, duplicates;
	int stop;  /* an exit code that ended the import, 0: none */
	int worst; /* 0 or KZ_CLI_EXIT_HTTP (a rejection) */
	unsigned long sent_last; /* last line of the last batch sent */
	unsigned long unsent_first, unsent_last; /* read, not sent; 0: none */
	kz_cli__failure fails[KZ_CLI_IMPORT_MAX_IN_FLIGHT];
	size_t nfails;
	int said_doubt; /* the advice on batches in doubt was given */
	double t0, last_progress;
	int tty, progress_shown;
	unsigned long long file_size, bytes_in;
} kz_cli__imp;

/* A sender: a thread and its own client (cli is the caller's for the
 * first sender, opened here for the others). */
typedef struct kz_cli__sender {
	kz_cli__imp *im;
	kz_cli *cli;
	int own; /* cli was opened here: closed here */
	int started;
	pthread_t thread;
} kz_cli__sender;

static double kz_cli__mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kz_cli__progress(kz_cli__imp *im, int force)
{
	double now = kz_cli__mono(), el = now - im->t0;
	unsigned long long done = im->accepted + im->rejected;
	double rate = el > 0 ? (double)done / el : 0;
	char total[48] = "", eta[48] = "";

	if (!force && now - im->last_progress < (im->tty ? 0.5 : 5.0))
		return;
	im->last_progress = now;
	if (im->file_size > 0 && im->bytes_in > 0 && im->rows > 0) {
		double est = (double)im->rows * (double)im->file_size /
			     (double)im->bytes_in;
		if (est < (double)im->rows)
			est = (double)im->rows;
		snprintf(total, sizeof(total), " / ~%.0f (%.0f%%)", est,
			 100.0 * (double)done / est);
		if (rate > 0)
			snprintf(eta, sizeof(eta), ", ETA %.0f s",
				 (est - (double)done) / rate);
	}
	fprintf(stderr, "%simport: %llu%s rows, %.0f rows/s%s%s",
		im->tty ? "\r" : "", done, total, rate, eta,
		im->tty ? "\033[K" : "\n");
	im->progress_shown = 1;
}

/* Clears a progress line on the terminal before something else is said. */
static void kz_cli__clear_progress(kz_cli__imp *im)
{
	if (im->tty && im->progress_shown)
		fputs("\r\033[K", stderr);
}

static void kz_cli__rejection(kz_cli__imp *im, unsigned long line,
			      const char *column, const char *msg)
{
	kz_cli__clear_progress(im);
	if (column != NULL && *column != '\0') {
		/* The server's message names the field too: said once. */
		size_t cl = strlen(column);
		if (strncmp(msg, column, cl) == 0 && strncmp(msg + cl, ": ", 2) == 0)
			msg += cl + 2;
		fprintf(stderr, "%s:%lu: %s: %s\n", im->fname, line, column,
			msg);
	}
	else
		fprintf(stderr, "%s:%lu: %s\n", im->fname, line, msg);
}

static int kz_cli__worse_exit(int x, int y)
{
	static const int rank[] = {0, 1, 4, 3, 2}; /* as kizuna_main.c */
	if (x == KZ_CLI_EXIT_USAGE || y == KZ_CLI_EXIT_USAGE)
		return KZ_CLI_EXIT_USAGE;
	return rank[x] >= rank[y] ? x : y;
}

/* ---- the senders' side ---- */

/* --check-duplicates: asks GET /v1/victims/{id}/duplicates (an audited
 * read) for each record of b just registered, through the sender's cli,
 * and writes the candidates into b->dups for the reader to print in file
 * order; merging stays the operator's decision (kizuna victim merge). */
static void kz_cli__duplicates(const kz_cli__imp *im, kz_cli *cli,
			       kz_cli__batch *b)
{
	json_t *ids = json_object_get(b->ans, "ids"), *id, *c;
	FILE *m = open_memstream(&b->dups, &b->dups_len);
	size_t i, k;
	if (m == NULL)
		return;
	for (i = 0; i < json_array_size(ids); i++) {
		char path[160];
		kz_cli_response resp;
		id = json_array_get(ids, i);
		if (!json_is_string(id))
			continue;
		snprintf(path, sizeof(path), "/v1/victims/%s/duplicates",
			 json_string_value(id));
		if (kz_cli_request(cli, "GET", path, NULL, NULL, 0, &resp) !=
		    KZ_CLI_OK)
			continue;
		json_t *ans = resp.status == 200
				      ? json_loadb(resp.body, resp.body_len, 0,
						   NULL)
				      : NULL;
		json_array_foreach(json_object_get(ans, "candidates"), k, c)
		{
			json_t *why = json_object_get(c, "reasons");
			char *w = json_dumps(why, JSON_COMPACT);
			fprintf(m,
				"kizuna: %s: %s may be %s (score %.2f: %s)\n",
				im->fname, json_string_value(id),
				json_string_value(json_object_get(
					json_object_get(c, "record"), "id")),
				json_real_value(json_object_get(c, "score")),
				w ? w : "");
			free(w);
			b->ndups++;
		}
		if (resp.status != 200)
			fprintf(m, "kizuna: %s: duplicates of %s: HTTP %ld\n",
				im->fname, json_string_value(id), resp.status);
		json_decref(ans);
		kz_cli_response_free(&resp);
	}
	fclose(m);
}

/* POSTs batch b through cli and keeps in b what came back (a sender's
 * thread: of im it only reads the options). Returns 1 when the batch
 * failed (no answer, refused whole, or no import result), else 0. */
static int kz_cli__post(const kz_cli__imp *im, kz_cli *cli, kz_cli__batch *b)
{
	static const char *const hdrs[] = {"Content-Type: text/csv; charset=utf-8",
					   NULL};
	kz_cli_response resp;
	char path[96];
	json_t *rej;

	b->ans = NULL;
	b->status = 0;
	b->msg[0] = '\0';
	snprintf(path, sizeof(path), "/v1/import/csv?first_line=%lu%s",
		 b->first, im->o->dry_run ? "&dry_run=1" : "");
	b->rc = kz_cli_request(cli, "POST", path, hdrs, b->body, b->len,
			       &resp);
	if (b->rc != KZ_CLI_OK) {
		snprintf(b->msg, sizeof(b->msg), "%s", kz_cli_errmsg(cli));
		return 1;
	}
	b->status = resp.status;
	if (resp.status != 200) {
		kz_cli_error_describe(&resp, b->msg, sizeof(b->msg));
		kz_cli_response_free(&resp);
		return 1;
	}
	b->ans = json_loadb(resp.body, resp.body_len, 0, NULL);
	kz_cli_response_free(&resp);
	rej = json_object_get(b->ans, "rejected");
	if (!json_is_object(b->ans) || !json_is_array(rej) ||
	    !json_is_integer(json_object_get(b->ans, "accepted"))) {
		json_decref(b->ans);
		b->ans = NULL;
		return 1;
	}
	if (im->o->check_duplicates && !im->o->dry_run)
		kz_cli__duplicates(im, cli, b);
	return 0;
}

/* A sender thread: takes the oldest queued batch while no batch has
 * failed, sends it, marks it done; returns once closing and idle. */
static void *kz_cli__sender_main(void *arg)
{
	kz_cli__sender *s = arg;
	kz_cli__imp *im = s->im;

	pthread_mutex_lock(&im->mu);
	for (;;) {
		kz_cli__batch *b;
		int failed = 0;
		if (im->failed || im->taken == im->next) {
			if (im->closing)
				break;
			pthread_cond_wait(&im->work, &im->mu);
			continue;
		}
		b = &im->slots[im->taken++ % im->nslots];
		b->state = KZ_CLI__SENDING;
		pthread_mutex_unlock(&im->mu);
		/* A batch of only refused records has nothing to send. */
		if (b->rows > 0)
			failed = kz_cli__post(im, s->cli, b);
		pthread_mutex_lock(&im->mu);
		b->state = KZ_CLI__DONE;
		if (failed)
			im->failed = 1;
		pthread_cond_signal(&im->done);
	}
	pthread_mutex_unlock(&im->mu);
	return NULL;
}

/* ---- the reader's side ---- */

/* Reports batch b (the reader, in file order): the records refused before
 * it, then its answer, or why it failed, or (sent 0) that it was not
 * sent. */
static void kz_cli__report(kz_cli__imp *im, kz_cli__batch *b, int sent)
{
	json_t *rej;
	size_t i;
	int ex = 0;

	for (i = 0; i < b->nrej; i++) {
		kz_cli__rejection(im, b->rej[i].line, NULL, b->rej[i].msg);
		free(b->rej[i].msg);
		im->rejected++;
		im->worst = KZ_CLI_EXIT_HTTP;
	}
	b->nrej = 0;
	if (b->rows == 0)
		return;
	if (!sent) {
		if (im->unsent_first == 0)
			im->unsent_first = b->first;
		im->unsent_last = b->last;
		return;
	}
	im->sent_last = b->last;
	if (b->rc != KZ_CLI_OK || b->ans == NULL)
		kz_cli__clear_progress(im);
	if (b->rc == KZ_CLI_EINDOUBT) {
		fprintf(stderr,
			"kizuna: %s: lines %lu-%lu: outcome unknown: %s\n",
			im->fname, b->first, b->last, b->msg);
		if (!im->said_doubt++) /* said once */
			fprintf(stderr,
				"kizuna: those records may or may not be "
				"registered: look (victim search) before "
				"importing them again\n");
		ex = KZ_CLI_EXIT_INDOUBT;
	} else if (b->rc == KZ_CLI_EUNREACHABLE) {
		fprintf(stderr, "kizuna: %s: lines %lu-%lu not imported: %s\n",
			im->fname, b->first, b->last, b->msg);
		ex = KZ_CLI_EXIT_UNREACHABLE;
	} else if (b->rc != KZ_CLI_OK) {
		fprintf(stderr, "kizuna: %s: lines %lu-%lu not imported: %s: %s\n",
			im->fname, b->first, b->last, kz_cli_strerror(b->rc),
			b->msg);
		ex = b->rc == KZ_CLI_ECONFIG ? KZ_CLI_EXIT_USAGE
					     : KZ_CLI_EXIT_HTTP;
	} else if (b->status != 200) {
		/* The server refused the whole batch: nothing of it applied. */
		fprintf(stderr, "kizuna: %s: lines %lu-%lu not imported: %s\n",
			im->fname, b->first, b->last, b->msg);
		ex = b->status == 503 ? KZ_CLI_EXIT_UNREACHABLE
				      : KZ_CLI_EXIT_HTTP;
	} else if (b->ans == NULL) {
		fprintf(stderr,
			"kizuna: %s: lines %lu-%lu: the answer is not an "
			"import result\n",
			im->fname, b->first, b->last);
		ex = KZ_CLI_EXIT_INDOUBT;
	}
	if (ex != 0) {
		if (im->nfails < KZ_CLI_IMPORT_MAX_IN_FLIGHT) {
			im->fails[im->nfails].first = b->first;
			im->fails[im->nfails].last = b->last;
			im->fails[im->nfails].in_doubt =
				ex == KZ_CLI_EXIT_INDOUBT;
			im->nfails++;
		}
		im->stop = kz_cli__worse_exit(im->stop, ex);
		return;
	}
	rej = json_object_get(b->ans, "rejected");
	im->accepted += (unsigned long long)json_integer_value(
		json_object_get(b->ans, "accepted"));
	for (i = 0; i < json_array_size(rej); i++) {
		json_t *r = json_array_get(rej, i);
		kz_cli__rejection(
			im,
			(unsigned long)json_integer_value(
				json_object_get(r, "line")),
			json_string_value(json_object_get(r, "column")),
			json_string_value(json_object_get(r, "message"))
				? json_string_value(
					  json_object_get(r, "message"))
				: "rejected");
		im->rejected++;
		im->worst = KZ_CLI_EXIT_HTTP;
	}
	if (b->dups_len > 0) {
		kz_cli__clear_progress(im);
		fwrite(b->dups, 1, b->dups_len, stderr);
	}
	im->duplicates += b->ndups;
	free(b->dups);
	b->dups = NULL;
	b->dups_len = 0;
	b->ndups = 0;
	if (im->o->json) {
		json_object_set_new(b->ans, "first_line", json_integer(b->first));
		json_object_set_new(b->ans, "last_line", json_integer(b->last));
		char *s = json_dumps(b->ans, JSON_COMPACT);
		/* Flushed per batch: a reader of stdout sees each answer as
		 * it comes, never cut by what goes to stderr meanwhile. */
		if (s != NULL) {
			puts(s);
			fflush(stdout);
		}
		free(s);
	}
	json_decref(b->ans);
	b->ans = NULL;
	kz_cli__progress(im, 0);
}

/* Reports, in file order, every batch whose outcome is known, first
 * waiting until every batch numbered below upto is reported. After a
 * failure, a batch that no sender took is reported as not sent. */
static void kz_cli__reap(kz_cli__imp *im, unsigned long long upto)
{
	pthread_mutex_lock(&im->mu);
	while (im->reported < im->next) {
		kz_cli__batch *b = &im->slots[im->reported % im->nslots];
		int sent;
		if (b->state == KZ_CLI__DONE) {
			sent = 1;
		} else if (b->state == KZ_CLI__QUEUED && im->failed) {
			sent = 0; /* and no sender will take it now */
		} else if (im->reported < upto) {
			pthread_cond_wait(&im->done, &im->mu);
			continue;
		} else {
			break;
		}
		pthread_mutex_unlock(&im->mu);
		kz_cli__report(im, b, sent);
		pthread_mutex_lock(&im->mu);
		b->state = KZ_CLI__FREE;
		im->reported++;
	}
	pthread_mutex_unlock(&im->mu);
}

/* Hands the batch being built to the senders and starts the next one in
 * the next slot, once the batch that slot held is reported. Returns 1
 * when the import stops: a batch failed, so nothing more is read (the
 * batch being built is then not sent), else 0. */
static int kz_cli__queue(kz_cli__imp *im)
{
	kz_cli__batch *b = im->cur;
	int failed;

	if (b->rows == 0 && b->nrej == 0)
		return 0;
	b->last = im->next_line - 1;
	pthread_mutex_lock(&im->mu);
	failed = im->failed;
	if (!failed) {
		b->state = KZ_CLI__QUEUED;
		im->next++;
		pthread_cond_signal(&im->work);
	}
	pthread_mutex_unlock(&im->mu);
	if (failed)
		return 1;
	kz_cli__reap(im, im->next + 1 > im->nslots ? im->next + 1 - im->nslots
						   : 0);
	im->cur = &im->slots[im->next % im->nslots];
	im->cur->rows = 0;
	im->cur->len = 0;
	pthread_mutex_lock(&im->mu);
	failed = im->failed;
	pthread_mutex_unlock(&im->mu);
	return failed || im->stop != 0;
}

/* Keeps a record the reader refused, for the report of the batch after
 * it. Returns 0, or 1 when the import stops. */
static int kz_cli__local_rejection(kz_cli__imp *im, unsigned long line,
				   const char *msg)
{
	kz_cli__batch *b = im->cur;
	char *m;
	if (b->nrej == b->rejcap) {
		size_t c = b->rejcap ? 2 * b->rejcap : 16;
		kz_cli__local_rej *r = realloc(b->rej, c * sizeof(*r));
		if (r == NULL)
			goto err_oom;
		b->rej = r;
		b->rejcap = c;
	}
	m = strdup(msg);
	if (m == NULL)
		goto err_oom;
	b->rej[b->nrej].line = line;
	b->rej[b->nrej].msg = m;
	b->nrej++;
	/* A long run of refused records goes out as a batch of its own
	 * (nothing to send): the reader's memory stays bounded. */
	if (b->nrej >= KZ_CLI__IMPORT_MAX_ROWS)
		return kz_cli__queue(im);
	return 0;
err_oom:
	fprintf(stderr, "kizuna: out of memory\n");
	im->stop = KZ_CLI_EXIT_HTTP;
	return 1;
}

static int kz_cli__append(kz_cli__imp *im, const char *s, size_t n)
{
	kz_cli__batch *b = im->cur;
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 65536;
		char *nb;
		while (c < b->len + n + 1)
			c *= 2;
		nb = realloc(b->body, c);
		if (nb == NULL)
			return -1;
		b->body = nb;
		b->cap = c;
	}
	memcpy(b->body + b->len, s, n);
	b->len += n;
	b->body[b->len] = '\0';
	return 0;
}

static size_t kz_cli__lfs(const char *s, size_t n)
{
	size_t k = 0;
	const char *p = s;
	while ((p = memchr(p, '\n', n - (size_t)(p - s))) != NULL) {
		k++;
		p++;
	}
	return k;
}

static int kz_cli__on_header(kz_cli__imp *im, char *const *f,
			     const size_t *lens, size_t n, const char *perr)
{
	char err[1024];
	size_t i;
	int first = 1;
	if (perr != NULL) {
		fprintf(stderr, "kizuna: %s: header line: %s\n", im->fname, perr);
		im->stop = KZ_CLI_EXIT_USAGE;
		return 1;
	}
	if (kz_cli_import_header(&im->map, f, lens, n, im->o->ignore_unknown,
				 &im->cols, err, sizeof(err)) != 0) {
		fprintf(stderr, "kizuna: %s: %s\n", im->fname, err);
		im->stop = KZ_CLI_EXIT_USAGE;
		return 1;
	}
	im->ncols = n;
	/* Field names need no quoting: the header is written as it is. */
	for (i = 0; i < n; i++) {
		size_t l;
		if (im->cols[i] == NULL)
			continue;
		l = strlen(im->cols[i]);
		if (im->hdr_len + l + 2 > im->hdr_cap) {
			size_t c = im->hdr_cap ? im->hdr_cap * 2 : 256;
			char *b;
			while (c < im->hdr_len + l + 2)
				c *= 2;
			b = realloc(im->hdr, c);
			if (b == NULL)
				goto err_oom;
			im->hdr = b;
			im->hdr_cap = c;
		}
		if (!first)
			im->hdr[im->hdr_len++] = ',';
		memcpy(im->hdr + im->hdr_len, im->cols[i], l);
		im->hdr_len += l;
		im->hdr[im->hdr_len] = '\0';
		first = 0;
	}
	im->have_header = 1;
	return 0;
err_oom:
	fprintf(stderr, "kizuna: out of memory\n");
	im->stop = KZ_CLI_EXIT_HTTP;
	return 1;
}

static int kz_cli__on_record(void *ud, unsigned long line, char *const *f,
			     const size_t *lens, size_t n, const char *perr)
{
	kz_cli__imp *im = ud;
	kz_cli__batch *b;
	size_t i, lfs = 0, emitted = 0;
	int first = 1;
	char msg[96];

	if (!im->have_header)
		return kz_cli__on_header(im, f, lens, n, perr);
	im->rows++;
	if (perr != NULL || n != im->ncols) {
		/* Refused here; the batch is cut so that each batch covers
		 * consecutive lines of the file. */
		if (im->cur->rows > 0 && kz_cli__queue(im) != 0)
			return 1;
		if (perr == NULL)
			snprintf(msg, sizeof(msg),
				 "%zu fields, but the header has %zu", n,
				 im->ncols);
		return kz_cli__local_rejection(im, line, perr ? perr : msg);
	}
	b = im->cur;
	if (b->rows == 0) {
		b->len = 0;
		if (kz_cli__append(im, im->hdr, im->hdr_len) != 0 ||
		    kz_cli__append(im, "\n", 1) != 0)
			goto err_oom;
		b->first = im->next_line = line;
	}
	/* Blank lines between records stay blank lines: the server counts
	 * them, so its line numbers stay those of the file. */
	for (; im->next_line < line; im->next_line++)
		if (kz_cli__append(im, "\n", 1) != 0)
			goto err_oom;
	for (i = 0; i < n; i++) {
		size_t k = kz_cli__lfs(f[i], lens[i]);
		lfs += k;
		if (im->cols[i] == NULL)
			continue;
		emitted += k;
		if (!first && kz_cli__append(im, ",", 1) != 0)
			goto err_oom;
		first = 0;
		if (kz_csv_append_field(&b->body, &b->len, &b->cap, f[i],
					lens[i]) != 0)
			goto err_oom;
	}
	/* A line end, plus one for each line a left-out column spanned. */
	for (i = 0; i <= lfs - emitted; i++)
		if (kz_cli__append(im, "\n", 1) != 0)
			goto err_oom;
	im->next_line = line + (unsigned long)lfs + 1;
	b->rows++;
	if (b->rows >= (size_t)im->o->batch ||
	    b->len >= KZ_CLI__IMPORT_MAX_BODY)
		return kz_cli__queue(im);
	return 0;
err_oom:
	fprintf(stderr, "kizuna: out of memory\n");
	im->stop = KZ_CLI_EXIT_HTTP;
	return 1;
}

/* Opens the senders' clients (the first is cli) and starts their threads.
 * 0, or an exit code having said why. */
static int kz_cli__senders_start(kz_cli__imp *im, kz_cli *cli,
				 kz_cli__sender *s, size_t n)
{
	char err[512];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		s[i].im = im;
		if (i == 0) {
			s[i].cli = cli;
			continue;
		}
		rc = kz_cli_open(im->o->cli_opts, &s[i].cli, err, sizeof(err));
		if (rc != KZ_CLI_OK) {
			fprintf(stderr, "kizuna: %s\n", err);
			return rc == KZ_CLI_ENOMEM ? KZ_CLI_EXIT_HTTP
						   : KZ_CLI_EXIT_USAGE;
		}
		s[i].own = 1;
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&s[i].thread, NULL, kz_cli__sender_main,
				   &s[i]) != 0) {
			fprintf(stderr,
				"kizuna: cannot start a sender thread\n");
			return KZ_CLI_EXIT_HTTP;
		}
		s[i].started = 1;
	}
	return 0;
}

/* Lets the senders return once idle, waits for them, closes the clients
 * opened here. */
static void kz_cli__senders_stop(kz_cli__imp *im, kz_cli__sender *s,
				 size_t n)
{
	size_t i;
	pthread_mutex_lock(&im->mu);
	im->closing = 1;
	pthread_cond_broadcast(&im->work);
	pthread_mutex_unlock(&im->mu);
	for (i = 0; i < n; i++) {
		if (s[i].started)
			pthread_join(s[i].thread, NULL);
		s[i].started = 0;
		if (s[i].own)
			kz_cli_close(s[i].cli);
		s[i].own = 0;
		s[i].cli = NULL;
	}
}

/* What the user is told when the import stopped early: the lines read but
 * not sent, where sending stopped, and (when more than one batch failed)
 * every failed batch again. */
static void kz_cli__stopped(kz_cli__imp *im, int failed)
{
	size_t i;
	if (im->unsent_first != 0 && failed)
		fprintf(stderr,
			"kizuna: %s: lines %lu-%lu were not sent; nothing "
			"after line %lu was sent\n",
			im->fname, im->unsent_first, im->unsent_last,
			im->sent_last);
	else if (im->unsent_first != 0)
		fprintf(stderr, "kizuna: %s: lines %lu-%lu were not sent\n",
			im->fname, im->unsent_first, im->unsent_last);
	else if (failed)
		fprintf(stderr, "kizuna: %s: nothing after line %lu was sent\n",
			im->fname, im->sent_last);
	if (im->nfails < 2)
		return;
	fprintf(stderr, "kizuna: %s: %zu batches failed:", im->fname,
		im->nfails);
	for (i = 0; i < im->nfails; i++)
		fprintf(stderr, "%s lines %lu-%lu (%s)", i ? "," : "",
			im->fails[i].first, im->fails[i].last,
			im->fails[i].in_doubt ? "outcome unknown"
					      : "not imported");
	fputc('\n', stderr);
}

int kz_cli_import_csv(kz_cli *cli, const kz_cli_import_opts *o)
{
	kz_cli_import_opts opts = *o;
	kz_cli__imp im;
	kz_cli__sender *senders = NULL;
	size_t nsenders = 0, i;
	kz_cli_conv *conv = NULL;
	kz_csv *p = NULL;
	FILE *f = stdin;
	struct stat sb;
	char err[512], *buf = NULL;
	const char *out;
	size_t n, outlen;
	unsigned long long bad = 0;
	unsigned long bad_line = 0;
	int ex, rv = 0, bad_bytes = 0, failed, sync_ok = 0;
	double el;

	/* 200, not more: a batch is applied in one go on the node's loop,
	 * 0.5-1.5 ms a person on the 2-core test machine, and 1000-person
	 * batches stalled the loops past the election timeout (1 s): twice a
	 * re-election cut a 100,000-row import short with a batch in doubt.
	 * docs/ARCHITECTURE.md, "CSV import". */
	if (opts.batch <= 0)
		opts.batch = KZ_CLI_IMPORT_DEFAULT_BATCH;
	if (opts.batch > KZ_CLI__IMPORT_MAX_ROWS)
		opts.batch = KZ_CLI__IMPORT_MAX_ROWS;
	/* More senders need clients of their own, so the options to open
	 * them with; see the top of this file for the default of 2. */
	if (opts.in_flight <= 0)
		opts.in_flight = KZ_CLI_IMPORT_DEFAULT_IN_FLIGHT;
	if (opts.in_flight > KZ_CLI_IMPORT_MAX_IN_FLIGHT)
		opts.in_flight = KZ_CLI_IMPORT_MAX_IN_FLIGHT;
	if (opts.cli_opts == NULL)
		opts.in_flight = 1;
	memset(&im, 0, sizeof(im));
	im.o = &opts;
	im.fname = strcmp(o->file, "-") == 0 ? "(stdin)" : o->file;
	im.tty = isatty(STDERR_FILENO);
	if (kz_cli_import_map_parse(o->map, &im.map, err, sizeof(err)) != 0) {
		fprintf(stderr, "kizuna: %s\n", err);
		kz_cli_import_map_free(&im.map);
		return KZ_CLI_EXIT_USAGE;
	}
	if (kz_cli_conv_open(o->encoding, &conv) != 0) {
		fprintf(stderr,
			"kizuna: --encoding: want utf-8 or shift_jis, got "
			"'%s'\n",
			o->encoding);
		kz_cli_import_map_free(&im.map);
		return KZ_CLI_EXIT_USAGE;
	}
	if (strcmp(o->file, "-") != 0) {
		f = fopen(o->file, "rb");
		if (f == NULL) {
			fprintf(stderr, "kizuna: %s: %s\n", o->file,
				strerror(errno));
			ex = KZ_CLI_EXIT_USAGE;
			goto done;
		}
	}
	if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode))
		im.file_size = (unsigned long long)sb.st_size;
	buf = malloc(KZ_CLI__IMPORT_CHUNK);
	/* 64 KiB a field: a record then stays far below the server's 4 MB
	 * even with every column full (its own limits are 512 bytes). */
	p = kz_csv_new(1, 64u << 10, 64, kz_cli__on_record, &im);
	im.nslots = (size_t)opts.in_flight + 1;
	im.slots = calloc(im.nslots, sizeof(*im.slots));
	senders = calloc((size_t)opts.in_flight, sizeof(*senders));
	if (buf == NULL || p == NULL || im.slots == NULL || senders == NULL) {
		fprintf(stderr, "kizuna: out of memory\n");
		ex = KZ_CLI_EXIT_HTTP;
		goto done;
	}
	im.cur = &im.slots[0];
	if (pthread_mutex_init(&im.mu, NULL) != 0 ||
	    pthread_cond_init(&im.work, NULL) != 0 ||
	    pthread_cond_init(&im.done, NULL) != 0) {
		fprintf(stderr, "kizuna: cannot create a mutex\n");
		ex = KZ_CLI_EXIT_HTTP;
		goto done;
	}
	sync_ok = 1;
	/* Seeded once here, not by the first object a thread makes. */
	json_object_seed(0);
	nsenders = (size_t)opts.in_flight;
	ex = kz_cli__senders_start(&im, cli, senders, nsenders);
	if (ex != 0)
		goto done;
	im.t0 = im.last_progress = kz_cli__mono();
	for (;;) {
		int final;
		n = fread(buf, 1, KZ_CLI__IMPORT_CHUNK, f);
		final = n < KZ_CLI__IMPORT_CHUNK;
		if (final && ferror(f)) {
			fprintf(stderr, "kizuna: %s: read error\n", im.fname);
			im.stop = KZ_CLI_EXIT_USAGE;
			break;
		}
		im.bytes_in += n;
		if (kz_cli_conv_feed(conv, buf, n, final, &out, &outlen,
				     &bad) != 0) {
			if (out != NULL && outlen > 0)
				rv = kz_csv_feed(p, out, outlen);
			/* The records before the bad bytes are good: sent. */
			if (rv == 0 && im.stop == 0 && im.have_header)
				rv = kz_cli__queue(&im);
			if (rv == 0 && im.stop == 0) {
				/* Said once the batches before it are. */
				bad_bytes = 1;
				bad_line = kz_csv_line(p);
			}
			break;
		}
		if (outlen > 0 && (rv = kz_csv_feed(p, out, outlen)) != 0)
			break;
		if (final)
			break;
	}
	if (im.stop == 0 && rv == 0 && !bad_bytes) {
		rv = kz_csv_finish(p);
		if (rv == 0 && im.stop == 0 && !im.have_header) {
			fprintf(stderr, "kizuna: %s: no header line\n",
				im.fname);
			im.stop = KZ_CLI_EXIT_USAGE;
		}
		if (rv == 0 && im.stop == 0)
			kz_cli__queue(&im);
	} else if (im.stop == 0 && rv < 0) {
		fprintf(stderr, "kizuna: out of memory\n");
		im.stop = KZ_CLI_EXIT_HTTP;
	}
	/* Every batch queued is answered (or, after a failure, not taken),
	 * and reported in file order. */
	kz_cli__reap(&im, im.next);
	kz_cli__senders_stop(&im, senders, nsenders);
	failed = im.failed;
	/* What was being built when the import stopped was not sent. */
	im.cur->last = im.next_line - 1;
	kz_cli__report(&im, im.cur, 0);
	kz_cli__clear_progress(&im);
	if (bad_bytes) {
		fprintf(stderr,
			"kizuna: %s:%lu: not valid %s (byte %llu of the "
			"file); lines before this record were read\n",
			im.fname, bad_line, o->encoding ? o->encoding : "utf-8",
			bad);
		im.stop = kz_cli__worse_exit(im.stop, KZ_CLI_EXIT_HTTP);
	}
	if (im.stop != 0)
		kz_cli__stopped(&im, failed);
	el = kz_cli__mono() - im.t0;
	fprintf(stderr,
		"kizuna: import %s: %llu rows, %llu accepted, %llu rejected, "
		"%.1f s, %.0f rows/s%s\n",
		im.fname, im.rows, im.accepted, im.rejected, el,
		el > 0 ? (double)(im.accepted + im.rejected) / el : 0.0,
		o->dry_run ? " (dry run: nothing was registered)" : "");
	if (o->check_duplicates && !o->dry_run)
		fprintf(stderr,
			"kizuna: import %s: %llu possible duplicates of records "
			"already registered (merge with kizuna victim merge)\n",
			im.fname, im.duplicates);
	ex = kz_cli__worse_exit(im.worst, im.stop);
done:
	if (sync_ok) {
		kz_cli__senders_stop(&im, senders, nsenders);
		pthread_cond_destroy(&im.done);
		pthread_cond_destroy(&im.work);
		pthread_mutex_destroy(&im.mu);
	}
	for (i = 0; im.slots != NULL && i < im.nslots; i++) {
		size_t k;
		for (k = 0; k < im.slots[i].nrej; k++)
			free(im.slots[i].rej[k].msg);
		free(im.slots[i].rej);
		free(im.slots[i].body);
		free(im.slots[i].dups);
		json_decref(im.slots[i].ans);
	}
	free(im.slots);
	free(senders);
	kz_csv_free(p);
	free(buf);
	free(im.hdr);
	free(im.cols);
	if (f != NULL && f != stdin)
		fclose(f);
	kz_cli_conv_free(conv);
	kz_cli_import_map_free(&im.map);
	return ex;
}
