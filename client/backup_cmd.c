/*
 * `kizuna backup create DIR` and `kizuna backup restore DIR --data-dir D`
 * (see backup_cmd.h and node/backup.h).
 *
 * create: POST /v1/cluster/backups on whichever node answers; then every
 * file from that same node (kz_cli_get_stream: no failover, the checkpoint
 * lives there), each hashed with SHA-256 as it is written; the manifest with
 * the hashes last, so a DIR with a manifest is a complete backup; then the
 * checkpoint is deleted on the node.
 * restore: offline. Checks every file against the manifest, copies them into
 * D/state, resets the applied index to 0 and prints the state digest.
 */
#include "backup_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kz_fs.h"
#include "state_store.h"

#define KZ_BACKUP_MANIFEST "kizuna-backup.json"
#define KZ_BACKUP_FILE_TIMEOUT_MS (30L * 60 * 1000)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A directory that is new, or exists and is empty: 0, else -1 (told). */
static int fresh_dir(const char *what, const char *dir)
{
	struct kz_fs_file *files;
	size_t n;
	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST) {
		fprintf(stderr, "kizuna: %s %s: %s\n", what, dir,
			strerror(errno));
		return -1;
	}
	if (kz_fs_list(dir, 1, &files, &n) == KZ_ENOTFOUND) {
		fprintf(stderr, "kizuna: %s %s: not a directory\n", what, dir);
		return -1;
	}
	free(files);
	if (n > 0 || rmdir(dir) != 0 || mkdir(dir, 0700) != 0) {
		fprintf(stderr, "kizuna: %s %s: must be new or empty\n", what,
			dir);
		return -1;
	}
	return 0;
}

/* Progress of a long copy, on stderr every 2 s. */
struct progress {
	const char *what;
	uint64_t done, total;
	double t0, last;
};

static void progress_tick(struct progress *p, int final)
{
	double t = now_s();
	if (!final && t - p->last < 2.0)
		return;
	p->last = t;
	double secs = t - p->t0;
	fprintf(stderr, "kizuna: %s: %" PRIu64 " of %" PRIu64 " MB (%.0f MB/s)\n",
		p->what, p->done >> 20, p->total >> 20,
		secs > 0 ? (double)(p->done >> 20) / secs : 0.0);
}

/* Where one downloaded file goes. */
struct sink {
	int fd;
	EVP_MD_CTX *md;
	uint64_t bytes;
	struct progress *prog;
};

static int sink_write(void *ud, const char *data, size_t n)
{
	struct sink *s = ud;
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(s->fd, data + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	EVP_DigestUpdate(s->md, data, n);
	s->bytes += n;
	s->prog->done += n;
	progress_tick(s->prog, 0);
	return 0;
}

static int write_json(const char *path, json_t *v)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (json_dump_file(v, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
		return -1;
	int fd = open(tmp, O_RDONLY);
	int rv = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	if (rv == 0 && rename(tmp, path) != 0)
		rv = -1;
	return rv;
}

/* Downloads one file of the backup into dir; records its hash in f. */
static int fetch_file(kz_cli *cli, size_t ep, const char *id, json_t *f,
		      const char *dir, struct progress *prog)
{
	const char *name = json_string_value(json_object_get(f, "name"));
	json_int_t size = json_integer_value(json_object_get(f, "size"));
	char path[4200], url[512], desc[600], sum[65];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	kz_cli_response resp;
	if (name == NULL || !kz_fs_name_ok(name, strlen(name)) || size < 0) {
		fprintf(stderr, "kizuna: backup: the node's manifest names a "
				"bad file\n");
		return KZ_CLI_EXIT_HTTP;
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(url, sizeof url, "/v1/cluster/backups/%s?file=%s", id, name);
	struct sink s = {.fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600),
			 .md = EVP_MD_CTX_new(),
			 .prog = prog};
	if (s.fd < 0 || s.md == NULL ||
	    !EVP_DigestInit_ex(s.md, EVP_sha256(), NULL)) {
		fprintf(stderr, "kizuna: backup: %s: %s\n", path,
			strerror(errno));
		if (s.fd >= 0)
			close(s.fd);
		EVP_MD_CTX_free(s.md);
		return KZ_CLI_EXIT_USAGE;
	}
	int rc = kz_cli_get_stream(cli, ep, url, NULL, KZ_BACKUP_FILE_TIMEOUT_MS,
				   sink_write, &s, &resp);
	int ex = KZ_CLI_EXIT_OK;
	if (rc != KZ_CLI_OK) {
		fprintf(stderr, "kizuna: backup: %s: %s\n", name,
			kz_cli_errmsg(cli));
		ex = rc == KZ_CLI_EIO ? KZ_CLI_EXIT_USAGE : KZ_CLI_EXIT_UNREACHABLE;
	} else if (resp.status != 200) {
		fprintf(stderr, "kizuna: backup: %s: %s\n", name,
			kz_cli_error_describe(&resp, desc, sizeof desc));
		ex = KZ_CLI_EXIT_HTTP;
	} else if (s.bytes != (uint64_t)size) {
		fprintf(stderr,
			"kizuna: backup: %s: got %" PRIu64 " bytes, the manifest "
			"says %lld\n",
			name, s.bytes, (long long)size);
		ex = KZ_CLI_EXIT_HTTP;
	} else if (fsync(s.fd) != 0) {
		fprintf(stderr, "kizuna: backup: %s: %s\n", path,
			strerror(errno));
		ex = KZ_CLI_EXIT_USAGE;
	}
	kz_cli_response_free(&resp);
	close(s.fd);
	EVP_DigestFinal_ex(s.md, md, &mdlen);
	EVP_MD_CTX_free(s.md);
	hex(md, mdlen, sum);
	json_object_set_new(f, "sha256", json_string(sum));
	return ex;
}

int kz_cli_backup_create(kz_cli *cli, const char *dir, int json_out)
{
	kz_cli_response resp;
	char desc[600];
	if (fresh_dir("backup create", dir) != 0)
		return KZ_CLI_EXIT_USAGE;
	double t0 = now_s();
	int rc = kz_cli_request(cli, "POST", "/v1/cluster/backups", NULL, "{}",
				2, &resp);
	if (rc != KZ_CLI_OK) {
		fprintf(stderr, "kizuna: backup create: %s\n",
			kz_cli_errmsg(cli));
		return rc == KZ_CLI_EINDOUBT ? KZ_CLI_EXIT_INDOUBT
					     : KZ_CLI_EXIT_UNREACHABLE;
	}
	if (resp.status != 201) {
		fprintf(stderr, "kizuna: backup create: %s\n",
			kz_cli_error_describe(&resp, desc, sizeof desc));
		kz_cli_response_free(&resp);
		return KZ_CLI_EXIT_HTTP;
	}
	size_t ep = resp.endpoint;
	json_error_t je;
	json_t *m = json_loadb(resp.body, resp.body_len, 0, &je);
	kz_cli_response_free(&resp);
	const char *id = json_string_value(json_object_get(m, "id"));
	json_t *files = json_object_get(m, "files");
	if (id == NULL || !json_is_array(files)) {
		fprintf(stderr, "kizuna: backup create: the node's answer is "
				"not a manifest\n");
		json_decref(m);
		return KZ_CLI_EXIT_HTTP;
	}
	struct progress prog = {.what = "backup",
				.total = (uint64_t)json_integer_value(
					json_object_get(m, "bytes")),
				.t0 = now_s()};
	prog.last = prog.t0;
	fprintf(stderr,
		"kizuna: backup %s from node %lld at index %lld: %zu files, "
		"%" PRIu64 " MB\n",
		id, (long long)json_integer_value(json_object_get(m, "node")),
		(long long)json_integer_value(json_object_get(m, "applied_index")),
		json_array_size(files), prog.total >> 20);
	int ex = KZ_CLI_EXIT_OK;
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f)
	{
		ex = fetch_file(cli, ep, id, f, dir, &prog);
		if (ex != KZ_CLI_EXIT_OK)
			break;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/" KZ_BACKUP_MANIFEST, dir);
	if (ex == KZ_CLI_EXIT_OK &&
	    (write_json(path, m) != 0 || kz_fs_fsync_dir(dir) != KZ_OK)) {
		fprintf(stderr, "kizuna: backup: %s: cannot write\n", path);
		ex = KZ_CLI_EXIT_USAGE;
	}
	/* Done or not, the checkpoint holds disk on the node: free it. */
	char url[256];
	snprintf(url, sizeof url, "/v1/cluster/backups/%s", id);
	/* The node that answered last, the one holding it, is asked first. */
	kz_cli_response del;
	if (kz_cli_request(cli, "DELETE", url, NULL, NULL, 0, &del) !=
		    KZ_CLI_OK ||
	    del.status != 200)
		fprintf(stderr, "kizuna: backup: could not delete %s on the "
				"node (it goes by itself after a day)\n",
			id);
	kz_cli_response_free(&del);
	if (ex == KZ_CLI_EXIT_OK) {
		progress_tick(&prog, 1);
		double secs = now_s() - t0;
		if (json_out) {
			json_t *o = json_pack("{s:s,s:O,s:O,s:O,s:f}", "id", id,
					      "node", json_object_get(m, "node"),
					      "applied_index",
					      json_object_get(m, "applied_index"),
					      "bytes", json_object_get(m, "bytes"),
					      "seconds", secs);
			char *s = json_dumps(o, JSON_COMPACT);
			printf("%s\n", s ? s : "{}");
			free(s);
			json_decref(o);
		} else {
			printf("backup %s: %zu files, %" PRIu64 " MB in %.1f s "
			       "-> %s\n",
			       id, json_array_size(files), prog.total >> 20, secs,
			       dir);
		}
	} else {
		fprintf(stderr, "kizuna: backup: incomplete; %s holds no "
				"manifest, do not restore from it\n",
			dir);
	}
	json_decref(m);
	return ex;
}

/* Hashes (and, with to >= 0, copies) one file; 0 when it matches. */
static int check_copy(const char *from, int to, const char *want_sum,
		      uint64_t want_size, struct progress *prog)
{
	int in = open(from, O_RDONLY);
	if (in < 0) {
		fprintf(stderr, "kizuna: restore: %s: %s\n", from,
			strerror(errno));
		return -1;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	static char buf[1 << 20];
	uint64_t size = 0;
	int rv = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rv = -1;
			break;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)r);
		size += (uint64_t)r;
		prog->done += (uint64_t)r;
		progress_tick(prog, 0);
		for (ssize_t off = 0; to >= 0 && off < r;) {
			ssize_t w = write(to, buf + off, (size_t)(r - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rv = -1;
				break;
			}
			off += w;
		}
		if (rv != 0)
			break;
	}
	close(in);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char sum[65];
	EVP_DigestFinal_ex(md, d, &dlen);
	EVP_MD_CTX_free(md);
	hex(d, dlen, sum);
	if (rv != 0) {
		fprintf(stderr, "kizuna: restore: %s: %s\n", from,
			strerror(errno));
		return -1;
	}
	if (size != want_size || want_sum == NULL ||
	    strcmp(sum, want_sum) != 0) {
		fprintf(stderr,
			"kizuna: restore: %s: %" PRIu64 " bytes, SHA-256 %.16s…; "
			"the manifest says %" PRIu64 " bytes, %.16s…: the backup "
			"is damaged\n",
			from, size, sum, want_size, want_sum ? want_sum : "-");
		return -1;
	}
	if (to >= 0 && fsync(to) != 0)
		return -1;
	return 0;
}

int kz_cli_backup_restore(const char *dir, const char *data_dir, int json_out)
{
	char path[4200], state[4200];
	snprintf(path, sizeof path, "%s/" KZ_BACKUP_MANIFEST, dir);
	json_error_t je;
	json_t *m = json_load_file(path, 0, &je);
	json_t *files = json_object_get(m, "files");
	if (m == NULL || !json_is_array(files)) {
		fprintf(stderr,
			"kizuna: restore: %s: %s (a backup without its manifest "
			"is incomplete)\n",
			path, m == NULL ? je.text : "no file list");
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	json_int_t fmt = json_integer_value(json_object_get(m, "store_format"));
	json_int_t index =
		json_integer_value(json_object_get(m, "applied_index"));
	if (fmt != KZ_STOR_FORMAT_VERSION) {
		fprintf(stderr,
			"kizuna: restore: the backup's store format is %lld, "
			"this build reads %d\n",
			(long long)fmt, KZ_STOR_FORMAT_VERSION);
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	struct progress prog = {.what = "checking",
				.total = (uint64_t)json_integer_value(
					json_object_get(m, "bytes")),
				.t0 = now_s()};
	prog.last = prog.t0;
	size_t i;
	json_t *f;
	/* Everything is checked before anything is written. */
	json_array_foreach(files, i, f)
	{
		const char *name = json_string_value(json_object_get(f, "name"));
		if (name == NULL || !kz_fs_name_ok(name, strlen(name))) {
			fprintf(stderr, "kizuna: restore: bad file name in the "
					"manifest\n");
			json_decref(m);
			return KZ_CLI_EXIT_USAGE;
		}
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (check_copy(path, -1,
			       json_string_value(json_object_get(f, "sha256")),
			       (uint64_t)json_integer_value(
				       json_object_get(f, "size")),
			       &prog) != 0) {
			json_decref(m);
			return KZ_CLI_EXIT_USAGE;
		}
	}
	if (fresh_dir("restore --data-dir", data_dir) != 0) {
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	snprintf(state, sizeof state, "%s/state", data_dir);
	if (mkdir(state, 0700) != 0) {
		fprintf(stderr, "kizuna: restore: %s: %s\n", state,
			strerror(errno));
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	prog.what = "restoring";
	prog.done = 0;
	prog.t0 = prog.last = now_s();
	json_array_foreach(files, i, f)
	{
		const char *name = json_string_value(json_object_get(f, "name"));
		char to[4400];
		snprintf(path, sizeof path, "%s/%s", dir, name);
		snprintf(to, sizeof to, "%s/%s", state, name);
		int fd = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
		int bad = fd < 0 ||
			  check_copy(path, fd,
				     json_string_value(json_object_get(f, "sha256")),
				     (uint64_t)json_integer_value(
					     json_object_get(f, "size")),
				     &prog) != 0;
		if (fd >= 0 && close(fd) != 0)
			bad = 1;
		if (bad) {
			fprintf(stderr, "kizuna: restore: %s: cannot write\n", to);
			json_decref(m);
			return KZ_CLI_EXIT_USAGE;
		}
	}
	if (kz_fs_fsync_dir(state) != KZ_OK) {
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	/* The state as the backup left it, then with its raft index reset:
	 * the new cluster's log starts at 1 again. */
	kz_stor *st;
	char err[512];
	unsigned char digest[32];
	uint64_t at, entries;
	int rv = kz_stor_open(state, &st, err, sizeof err);
	if (rv != KZ_OK) {
		fprintf(stderr, "kizuna: restore: %s: %s\n", state, err);
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	if (kz_stor_applied_index(st) != (uint64_t)index) {
		fprintf(stderr,
			"kizuna: restore: the state is at index %" PRIu64
			", the manifest says %lld\n",
			kz_stor_applied_index(st), (long long)index);
		rv = KZ_ECORRUPT;
	}
	if (rv == KZ_OK)
		rv = kz_stor_reset_applied(st, 0);
	if (rv == KZ_OK)
		rv = kz_stor_digest(st, digest, &at, &entries);
	if (rv != KZ_OK && rv != KZ_ECORRUPT)
		fprintf(stderr, "kizuna: restore: %s\n", kz_stor_errmsg(st));
	kz_stor_close(st);
	if (rv != KZ_OK) {
		json_decref(m);
		return KZ_CLI_EXIT_USAGE;
	}
	progress_tick(&prog, 1);
	char dh[65];
	hex(digest, 32, dh);
	if (json_out)
		printf("{\"data_dir\":\"%s\",\"backup\":\"%s\",\"backup_index\":%lld,"
		       "\"entries\":%" PRIu64 ",\"digest\":\"%s\"}\n",
		       data_dir, json_string_value(json_object_get(m, "id")),
		       (long long)index, entries, dh);
	else
		printf("restored backup %s (index %lld) into %s: %" PRIu64
		       " entries, digest %s\n"
		       "start kizunad with data_dir %s and the old cluster's "
		       "master key file; restore the same backup on every node "
		       "of the new cluster\n",
		       json_string_value(json_object_get(m, "id")),
		       (long long)index, state, entries, dh, data_dir);
	json_decref(m);
	return KZ_CLI_EXIT_OK;
}
