/*
 * `kizuna import pfif` and `kizuna export pfif` (see import_pfif.h).
 *
 * The reader hands over the file's top-level elements one at a time
 * (xmlTextReaderReadOuterXml copies one subtree, with the namespaces it
 * uses declared on it); each is appended to the batch body and the reader
 * moves past it, so memory is one element plus one batch.
 */
#include "import_pfif.h"

#include "cli_args.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxml/xmlreader.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KZ_CLI__PFIF_NS "http://zesty.ca/pfif/1.4"
#define KZ_CLI__PFIF_MAX_BODY (2u << 20) /* the server takes 4 MB */
#define KZ_CLI__PFIF_MAX_NOTES 4000      /* the server takes 5000 */
#define KZ_CLI__PFIF_HEAD                                                     \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                        \
	"<pfif:pfif xmlns:pfif=\"" KZ_CLI__PFIF_NS "\">\n"
#define KZ_CLI__PFIF_HEAD_LINES 2

/* Where an element of the batch came from. */
typedef struct kz_cli__span {
	unsigned long batch_line, file_line;
} kz_cli__span;

typedef struct kz_cli__pf {
	kz_cli *cli;
	const kz_cli_pfif_opts *o;
	const char *fname;
	char *body;
	size_t len, cap;
	unsigned long lines; /* line ends in body */
	kz_cli__span *spans;
	size_t n_spans, cap_spans;
	size_t persons, notes; /* in the batch */
	unsigned long first, last; /* the batch's file lines */
	unsigned long long seen, created, updated, rejected, warnings;
	int worst;
	double t0, last_progress;
	int tty;
	char xml_err[300];
	int xml_err_line;
} kz_cli__pf;

static double kz_cli__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int kz_cli__worse(int x, int y)
{
	static const int rank[] = {0, 1, 4, 3, 2}; /* as kizuna_main.c */
	if (x == KZ_CLI_EXIT_USAGE || y == KZ_CLI_EXIT_USAGE)
		return KZ_CLI_EXIT_USAGE;
	return rank[x] >= rank[y] ? x : y;
}

static int kz_cli__put(kz_cli__pf *p, const char *s, size_t n)
{
	if (p->len + n + 1 > p->cap) {
		size_t c = p->cap ? p->cap : 65536;
		char *b;
		while (c < p->len + n + 1)
			c *= 2;
		b = realloc(p->body, c);
		if (b == NULL)
			return -1;
		p->body = b;
		p->cap = c;
	}
	memcpy(p->body + p->len, s, n);
	p->len += n;
	p->body[p->len] = '\0';
	for (size_t i = 0; i < n; i++)
		p->lines += s[i] == '\n';
	return 0;
}

/* The file line of line bl of the batch. */
static unsigned long kz_cli__file_line(const kz_cli__pf *p, unsigned long bl)
{
	const kz_cli__span *s = NULL;
	for (size_t i = 0; i < p->n_spans; i++)
		if (p->spans[i].batch_line <= bl)
			s = &p->spans[i];
	return s ? s->file_line + (bl - s->batch_line) : 0;
}

static void kz_cli__clear_progress(kz_cli__pf *p)
{
	if (p->tty)
		fputs("\r\033[K", stderr);
}

static void kz_cli__progress(kz_cli__pf *p)
{
	double now = kz_cli__now(), el = now - p->t0;
	if (now - p->last_progress < (p->tty ? 0.5 : 5.0))
		return;
	p->last_progress = now;
	fprintf(stderr, "%simport: %llu persons and notes sent, %.0f/s%s",
		p->tty ? "\r" : "", p->seen,
		el > 0 ? (double)p->seen / el : 0.0, p->tty ? "\033[K" : "\n");
}

/* One entry of rejected or warnings: FILE:LINE: [warning: ]RECORD: field:
 * message (the server's message names the field too: said once). */
static void kz_cli__report(kz_cli__pf *p, json_t *r, const char *kind)
{
	unsigned long line = kz_cli__file_line(
		p, (unsigned long)json_integer_value(json_object_get(r, "line")));
	const char *id = json_string_value(json_object_get(r, "record_id"));
	const char *f = json_string_value(json_object_get(r, "field"));
	const char *m = json_string_value(json_object_get(r, "message"));
	if (m == NULL)
		m = "rejected";
	if (f != NULL && strncmp(m, f, strlen(f)) == 0 &&
	    strncmp(m + strlen(f), ": ", 2) == 0)
		m += strlen(f) + 2;
	kz_cli__clear_progress(p);
	fprintf(stderr, "%s:%lu: %s%s: %s%s%s\n", p->fname, line, kind,
		id ? id : "(no record id)", f ? f : "", f ? ": " : "", m);
}

/* Sends the batch (if any). 0, or an exit code that stops the import. */
static int kz_cli__send(kz_cli__pf *p)
{
	static const char *const hdrs[] = {
		"Content-Type: application/xml; charset=utf-8", NULL};
	kz_cli_response resp;
	char desc[600];
	int rc, ex = 0;
	json_t *ans = NULL;
	size_t i;

	if (p->persons == 0 && p->notes == 0)
		return 0;
	if (kz_cli__put(p, "</pfif:pfif>\n", 13) != 0) {
		fprintf(stderr, "kizuna: out of memory\n");
		return KZ_CLI_EXIT_HTTP;
	}
	rc = kz_cli_request(p->cli, "POST",
			    p->o->dry_run ? "/v1/import/pfif?dry_run=1"
					  : "/v1/import/pfif",
			    hdrs, p->body, p->len, &resp);
	if (rc != KZ_CLI_OK) {
		kz_cli__clear_progress(p);
		fprintf(stderr, "kizuna: %s: lines %lu-%lu %s: %s%s\n",
			p->fname, p->first, p->last,
			rc == KZ_CLI_EINDOUBT ? "outcome unknown"
					      : "not imported",
			kz_cli_errmsg(p->cli),
			rc == KZ_CLI_EINDOUBT
				? "\nkizuna: those records may or may not be "
				  "imported: importing the file again is safe "
				  "(known record ids update, never duplicate)"
				: "");
		ex = rc == KZ_CLI_EINDOUBT	 ? KZ_CLI_EXIT_INDOUBT
		     : rc == KZ_CLI_EUNREACHABLE ? KZ_CLI_EXIT_UNREACHABLE
		     : rc == KZ_CLI_ECONFIG	 ? KZ_CLI_EXIT_USAGE
						 : KZ_CLI_EXIT_HTTP;
		goto out;
	}
	if (resp.status != 200) {
		kz_cli__clear_progress(p);
		fprintf(stderr, "kizuna: %s: lines %lu-%lu not imported: %s\n",
			p->fname, p->first, p->last,
			kz_cli_error_describe(&resp, desc, sizeof(desc)));
		ex = resp.status == 503 ? KZ_CLI_EXIT_UNREACHABLE
					: KZ_CLI_EXIT_HTTP;
		goto out_resp;
	}
	ans = json_loadb(resp.body, resp.body_len, 0, NULL);
	if (!json_is_object(ans) ||
	    !json_is_array(json_object_get(ans, "rejected"))) {
		fprintf(stderr, "kizuna: %s: lines %lu-%lu: the answer is not "
				"an import result\n",
			p->fname, p->first, p->last);
		ex = KZ_CLI_EXIT_INDOUBT;
		goto out_resp;
	}
	p->created += (unsigned long long)json_integer_value(
		json_object_get(ans, "created"));
	p->updated += (unsigned long long)json_integer_value(
		json_object_get(ans, "updated"));
	json_t *list = json_object_get(ans, "rejected");
	for (i = 0; i < json_array_size(list); i++)
		kz_cli__report(p, json_array_get(list, i), "");
	p->rejected += json_array_size(list);
	list = json_object_get(ans, "warnings");
	for (i = 0; i < json_array_size(list); i++)
		kz_cli__report(p, json_array_get(list, i), "warning: ");
	p->warnings += json_array_size(list);
	list = json_object_get(ans, "persons");
	for (i = 0; i < json_array_size(list); i++) {
		json_t *r = json_array_get(list, i);
		const char *oc = json_string_value(json_object_get(r, "outcome"));
		if (oc == NULL || strcmp(oc, "not_found") != 0)
			continue;
		json_object_set_new(r, "message",
				    json_string("notes about a person who is "
						"neither in this batch nor in "
						"the register: not added"));
		kz_cli__report(p, r, "");
		p->rejected++;
	}
	if (p->rejected > 0)
		p->worst = KZ_CLI_EXIT_HTTP;
	if (p->o->json) {
		char *s = json_dumps(ans, JSON_COMPACT);
		if (s != NULL) {
			puts(s);
			fflush(stdout);
		}
		free(s);
	}
out_resp:
	json_decref(ans);
	kz_cli_response_free(&resp);
out:
	p->len = 0;
	p->lines = 0;
	p->n_spans = 0;
	p->persons = p->notes = 0;
	if (ex == 0)
		kz_cli__progress(p);
	return ex;
}

/* Parser errors: kept for one message, never printed by libxml2. */
static void kz_cli__xml_error(void *ud, xmlErrorPtr e)
{
	kz_cli__pf *p = ud;
	if (p->xml_err[0] != '\0' || e == NULL ||
	    e->level < XML_ERR_ERROR)
		return;
	snprintf(p->xml_err, sizeof(p->xml_err), "%s",
		 e->message ? e->message : "error");
	p->xml_err[strcspn(p->xml_err, "\n")] = '\0';
	p->xml_err_line = e->line;
}

/* Errors raised outside the reader (encoding converters) would be printed
 * by libxml2 itself, in the middle of the progress line: dropped, the
 * reader's own error says what went wrong. */
static void kz_cli__xml_generic(void *ud, const char *fmt, ...)
{
	(void)ud;
	(void)fmt;
}

/* Appends the element under the reader to the batch. 0, or an exit
 * code. */
static int kz_cli__take(kz_cli__pf *p, xmlTextReaderPtr r, int is_person)
{
	xmlNodePtr node = xmlTextReaderCurrentNode(r);
	unsigned long line = node ? (unsigned long)xmlGetLineNo(node) : 0;
	xmlChar *xml = xmlTextReaderReadOuterXml(r);
	if (xml == NULL) {
		fprintf(stderr, "kizuna: %s:%lu: cannot read this element\n",
			p->fname, line);
		return KZ_CLI_EXIT_USAGE;
	}
	size_t n = strlen((const char *)xml);
	int ex = 0;
	if (p->len > 0 &&
	    ((is_person && p->persons >= (size_t)p->o->batch) ||
	     p->notes >= KZ_CLI__PFIF_MAX_NOTES ||
	     p->len + n > KZ_CLI__PFIF_MAX_BODY))
		ex = kz_cli__send(p);
	if (ex == 0 && p->len == 0) {
		if (kz_cli__put(p, KZ_CLI__PFIF_HEAD,
				strlen(KZ_CLI__PFIF_HEAD)) != 0)
			goto err_oom;
		p->first = line;
	}
	if (ex == 0) {
		if (p->n_spans == p->cap_spans) {
			size_t c = p->cap_spans ? p->cap_spans * 2 : 256;
			kz_cli__span *s = realloc(p->spans, c * sizeof(*s));
			if (s == NULL)
				goto err_oom;
			p->spans = s;
			p->cap_spans = c;
		}
		p->spans[p->n_spans].batch_line = p->lines + 1;
		p->spans[p->n_spans].file_line = line;
		p->n_spans++;
		if (kz_cli__put(p, (const char *)xml, n) != 0 ||
		    kz_cli__put(p, "\n", 1) != 0)
			goto err_oom;
		for (const char *s = (const char *)xml; *s; s++)
			if (*s == '\n')
				line++;
		p->last = line;
		if (is_person)
			p->persons++;
		else
			p->notes++;
		p->seen++;
	}
	xmlFree(xml);
	return ex;
err_oom:
	xmlFree(xml);
	fprintf(stderr, "kizuna: out of memory\n");
	return KZ_CLI_EXIT_HTTP;
}

int kz_cli_import_pfif(kz_cli *cli, const kz_cli_pfif_opts *o)
{
	kz_cli_pfif_opts opts = *o;
	kz_cli__pf p;
	xmlTextReaderPtr r;
	int ex = 0, rv, root_seen = 0;
	const int flags = XML_PARSE_NONET | XML_PARSE_NOERROR |
			  XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;

	if (opts.batch <= 0)
		opts.batch = KZ_CLI_PFIF_DEFAULT_BATCH;
	if (opts.batch > 500)
		opts.batch = 500;
	memset(&p, 0, sizeof(p));
	p.cli = cli;
	p.o = &opts;
	p.fname = strcmp(o->file, "-") == 0 ? "(stdin)" : o->file;
	p.tty = isatty(STDERR_FILENO);
	xmlSetGenericErrorFunc(NULL, kz_cli__xml_generic);
	if (strcmp(o->file, "-") == 0)
		r = xmlReaderForFd(STDIN_FILENO, NULL, NULL, flags);
	else {
		if (access(o->file, R_OK) != 0) {
			fprintf(stderr, "kizuna: %s: %s\n", o->file,
				strerror(errno));
			return KZ_CLI_EXIT_USAGE;
		}
		r = xmlReaderForFile(o->file, NULL, flags);
	}
	if (r == NULL) {
		fprintf(stderr, "kizuna: %s: cannot open\n", p.fname);
		return KZ_CLI_EXIT_USAGE;
	}
	xmlTextReaderSetStructuredErrorHandler(r, kz_cli__xml_error, &p);
	p.t0 = p.last_progress = kz_cli__now();
	rv = xmlTextReaderRead(r);
	while (rv == 1 && ex == 0) {
		int type = xmlTextReaderNodeType(r);
		int depth = xmlTextReaderDepth(r);
		const char *ns = (const char *)xmlTextReaderConstNamespaceUri(r);
		const char *local = (const char *)xmlTextReaderConstLocalName(r);
		int pfif = ns != NULL && strcmp(ns, KZ_CLI__PFIF_NS) == 0;
		if (type == XML_READER_TYPE_DOCUMENT_TYPE) {
			fprintf(stderr, "kizuna: %s: a document type declaration "
					"(DTD) is not accepted\n",
				p.fname);
			ex = KZ_CLI_EXIT_USAGE;
			break;
		}
		if (type == XML_READER_TYPE_ELEMENT && depth == 0) {
			if (!pfif || strcmp(local, "pfif") != 0) {
				fprintf(stderr,
					"kizuna: %s: not a PFIF 1.4 document "
					"(the root must be pfif in namespace "
					"%s)\n",
					p.fname, KZ_CLI__PFIF_NS);
				ex = KZ_CLI_EXIT_USAGE;
				break;
			}
			root_seen = 1;
		} else if (type == XML_READER_TYPE_ELEMENT && depth == 1 && pfif &&
			   (strcmp(local, "person") == 0 ||
			    strcmp(local, "note") == 0)) {
			ex = kz_cli__take(&p, r, strcmp(local, "person") == 0);
			if (ex == 0)
				rv = xmlTextReaderNext(r);
			continue;
		}
		rv = xmlTextReaderRead(r);
	}
	if (ex == 0 && rv < 0) {
		kz_cli__clear_progress(&p);
		fprintf(stderr,
			"kizuna: %s:%d: not well-formed XML: %s; nothing "
			"after line %lu was sent\n",
			p.fname, p.xml_err_line,
			p.xml_err[0] ? p.xml_err : "error", p.first ? p.first - 1 : 0);
		ex = KZ_CLI_EXIT_USAGE;
	} else if (ex == 0 && !root_seen) {
		fprintf(stderr, "kizuna: %s: no PFIF document\n", p.fname);
		ex = KZ_CLI_EXIT_USAGE;
	} else if (ex == 0)
		ex = kz_cli__send(&p);
	xmlFreeTextReader(r);
	double el = kz_cli__now() - p.t0;
	kz_cli__clear_progress(&p);
	fprintf(stderr,
		"kizuna: import %s: %llu persons and notes, %llu created, %llu "
		"updated, %llu rejected, %llu warnings, %.1f s%s\n",
		p.fname, p.seen, p.created, p.updated, p.rejected, p.warnings,
		el, o->dry_run ? " (dry run: nothing was imported)" : "");
	free(p.body);
	free(p.spans);
	return kz_cli__worse(p.worst, ex);
}

/* ---- export ------------------------------------------------------------------ */

typedef struct kz_cli__out {
	int fd;
	unsigned long long bytes;
	char tail[16]; /* the last bytes, to see the document end */
} kz_cli__out;

static int kz_cli__out_write(void *ud, const char *data, size_t n)
{
	kz_cli__out *o = ud;
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(o->fd, data + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	o->bytes += n;
	if (n >= sizeof(o->tail) - 1) {
		memcpy(o->tail, data + n - (sizeof(o->tail) - 1),
		       sizeof(o->tail) - 1);
	} else {
		size_t keep = sizeof(o->tail) - 1 - n;
		memmove(o->tail, o->tail + n, keep);
		memcpy(o->tail + keep, data, n);
	}
	o->tail[sizeof(o->tail) - 1] = '\0';
	return 0;
}

int kz_cli_export_pfif(kz_cli *cli, const char *out)
{
	char part[4200], desc[600];
	kz_cli__out o;
	kz_cli_response resp;
	size_t n_eps, ep, tries;
	int rc = KZ_CLI_EUNREACHABLE, ex;
	int to_file = out != NULL && strcmp(out, "-") != 0;

	memset(&o, 0, sizeof(o));
	o.fd = STDOUT_FILENO;
	if (to_file) {
		snprintf(part, sizeof(part), "%s.part", out);
		o.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o.fd < 0) {
			fprintf(stderr, "kizuna: %s: %s\n", part,
				strerror(errno));
			return KZ_CLI_EXIT_USAGE;
		}
	}
	/* One node streams the whole document; another is tried only while
	 * nothing has been received. */
	kz_cli_endpoints(cli, &n_eps);
	ep = kz_cli_current_endpoint(cli);
	for (tries = 0; tries < n_eps; tries++, ep = (ep + 1) % n_eps) {
		rc = kz_cli_get_stream(cli, ep, "/v1/export/pfif", NULL,
				       30L * 60 * 1000, kz_cli__out_write, &o,
				       &resp);
		if (rc == KZ_CLI_OK && resp.status == 503 && o.bytes == 0) {
			kz_cli_response_free(&resp);
			rc = KZ_CLI_EUNREACHABLE;
			continue;
		}
		if (rc != KZ_CLI_EUNREACHABLE || o.bytes > 0)
			break;
	}
	if (rc == KZ_CLI_OK && resp.status == 200 &&
	    strstr(o.tail, "</pfif:pfif>") == NULL) {
		fprintf(stderr, "kizuna: export pfif: the document was cut "
				"short\n");
		ex = KZ_CLI_EXIT_HTTP;
	} else if (rc == KZ_CLI_OK && resp.status == 200) {
		ex = KZ_CLI_EXIT_OK;
	} else if (rc == KZ_CLI_OK) {
		fprintf(stderr, "kizuna: export pfif: %s\n",
			kz_cli_error_describe(&resp, desc, sizeof(desc)));
		ex = KZ_CLI_EXIT_HTTP;
	} else if (rc == KZ_CLI_EIO) {
		fprintf(stderr, "kizuna: export pfif: cannot write: %s\n",
			strerror(errno));
		ex = KZ_CLI_EXIT_USAGE;
	} else {
		fprintf(stderr, "kizuna: export pfif: %s%s\n",
			kz_cli_errmsg(cli),
			o.bytes > 0 ? " (the document was cut short)" : "");
		ex = o.bytes > 0 ? KZ_CLI_EXIT_HTTP : KZ_CLI_EXIT_UNREACHABLE;
	}
	if (rc == KZ_CLI_OK)
		kz_cli_response_free(&resp);
	if (to_file) {
		if (ex == KZ_CLI_EXIT_OK && fsync(o.fd) != 0)
			ex = KZ_CLI_EXIT_USAGE;
		close(o.fd);
		if (ex == KZ_CLI_EXIT_OK && rename(part, out) != 0) {
			fprintf(stderr, "kizuna: %s: %s\n", out,
				strerror(errno));
			ex = KZ_CLI_EXIT_USAGE;
		}
		if (ex == KZ_CLI_EXIT_OK)
			fprintf(stderr, "kizuna: export pfif: %llu bytes to %s\n",
				o.bytes, out);
	}
	return ex;
}
