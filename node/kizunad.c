/*
 * kizunad.c — the node daemon: a thin main over node.h.
 *
 * Reads the configuration (--config FILE, --key value overrides), runs one
 * node on the default loop, and stops it cleanly on SIGTERM or SIGINT
 * (raft closed, store closed) before exiting 0. SIGHUP reloads the
 * certificate, key, CA and CRL files for new connections (API and peers);
 * a reload that fails keeps the current ones and logs why.
 *
 * --check-config only parses and checks the settings, exactly as a start
 * would before it touches anything, and exits: 0, or 2 with the parser's
 * message. It opens the config file and nothing else (no data dir, no TLS
 * file, no port), so it runs on any host, e.g. before a config is deployed.
 *
 * The log is stderr, one logfmt line per event (kz_log.h), from log_level
 * up; KIZUNA_LOG_LEVEL in the environment overrides the setting.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kz_log.h"
#include "node.h"

static struct kz_node node;
static uv_signal_t sigterm, sigint, sighup;

static void on_stopped(struct kz_node *n)
{
    (void)n;
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
    /* h2o's context keeps timers on the loop; stop it here rather than
     * tearing down every open client connection one by one. */
    uv_stop(uv_default_loop());
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    kz_log(KZ_LOG_INFO, "stopping", "signal=%d", signum);
    uv_signal_stop(&sigterm);
    uv_signal_stop(&sigint);
    uv_signal_stop(&sighup);
    kz_node_stop(&node, on_stopped);
}

/* The node logs the outcome (success or why not) itself. */
static void on_sighup(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    (void)kz_node_reload_tls(&node, "SIGHUP", NULL);
}

/* Every API connection is a descriptor, next to RocksDB's files and the
 * peer channels: raise the soft limit to the hard one (a default soft limit
 * of 1024 is below max_connections' default), and say so when the limit
 * still leaves max_connections no room. */
static void raise_fd_limit(const struct kz_node_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)cfg->max_connections + 512)
        kz_log(KZ_LOG_WARN, "open-file limit leaves max_connections too "
                            "little room",
               "nofile=%llu max_connections=%u",
               (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

/* KIZUNA_LOG_LEVEL, when set, overrides log_level (a one-off debug run
 * without editing the config); a bad value is a configuration error. */
static int log_level_from_env(struct kz_node_config *cfg, char *err,
                              size_t errlen)
{
    const char *v = getenv("KIZUNA_LOG_LEVEL");
    if (v == NULL || v[0] == '\0')
        return 0;
    char msg[256];
    if (kz_node_config_set(cfg, "log_level", v, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "KIZUNA_LOG_LEVEL: %s", msg);
        return -1;
    }
    return 0;
}

/* Removes the first argv entry equal to flag (argv[argc] stays NULL), so
 * that what remains parses as --key value pairs. */
static bool take_flag(int *argc, char **argv, const char *flag)
{
    for (int i = 1; i < *argc; i++)
        if (strcmp(argv[i], flag) == 0) {
            memmove(&argv[i], &argv[i + 1],
                    (size_t)(*argc - i) * sizeof *argv);
            (*argc)--;
            return true;
        }
    return false;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kizunad --config FILE [--key value ...]\n"
            "       kizunad --check-config --config FILE [--key value ...]\n"
            "Runs one Kizuna node. Settings (file lines 'key value', or flags "
            "--key value):\n"
            "  id, region, data_dir, api_listen, raft_listen, tls_cert, "
            "tls_key, tls_ca,\n"
            "  tls_crl, max_connections, tls_handshake_timeout_ms,\n"
            "  request_header_timeout_ms, idle_timeout_ms,\n"
            "  municipality, election_timeout_ms, heartbeat_timeout_ms,\n"
            "  snapshot_threshold, snapshot_trailing, snapshot_fetch_timeout_s,\n"
            "  request_timeout_ms,\n"
            "  max_body_bytes, log_level (debug, info, warn, error),\n"
            "  node '<id> <region> <raft host:port> <api host:port>' "
            "(repeat)\n"
            "KIZUNA_LOG_LEVEL in the environment overrides log_level.\n"
            "SIGHUP reloads tls_cert, tls_key, tls_ca and tls_crl.\n"
            "--check-config: only check the settings (nothing else is "
            "opened); exit 0 or 2.\n"
            "See docs/ARCHITECTURE.md.\n");
}

int main(int argc, char **argv)
{
    struct kz_node_config cfg;
    char err[512];
    bool check_only = take_flag(&argc, argv, "--check-config");
    kz_log_detect_journal(); /* under systemd: lines carry their priority */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    kz_node_config_defaults(&cfg);
    if (kz_node_config_from_args(&cfg, argc, argv, err, sizeof err) != 0 ||
        kz_node_config_check(&cfg, err, sizeof err) != 0 ||
        log_level_from_env(&cfg, err, sizeof err) != 0) {
        /* --check-config answers a person; a start, the journal. */
        if (check_only)
            fprintf(stderr, "kizunad: %s\n", err);
        else
            kz_log(KZ_LOG_FATAL, "bad configuration", "error=%s", err);
        return 2;
    }
    if (check_only) {
        printf("kizunad: configuration OK: node %llu, region %s, %u nodes "
               "listed, log_level %s\n",
               (unsigned long long)cfg.id, cfg.region, cfg.n_members,
               kz_log_level_name(cfg.log_level));
        return 0;
    }
    kz_log_set_node(cfg.id);
    kz_log_set_level(cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&cfg);
    uv_loop_t *loop = uv_default_loop();
    if (kz_node_init(&node, loop, &cfg) != KZ_OK) {
        kz_log(KZ_LOG_FATAL, "cannot start", "error=%s", node.errmsg);
        return 1;
    }
    if (kz_node_start(&node) != KZ_OK) {
        kz_log(KZ_LOG_FATAL, "cannot start", "error=%s", node.errmsg);
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(loop, &sighup);
    uv_signal_start(&sighup, on_sighup, SIGHUP);
    kz_log(KZ_LOG_INFO, "started",
           "region=%s api=%s members=%u applied_index=%llu log_level=%s",
           cfg.region, cfg.api_listen, cfg.n_members,
           (unsigned long long)kz_stor_applied_index(node.stor),
           kz_log_level_name(cfg.log_level));
    uv_run(loop, UV_RUN_DEFAULT);
    /* Let close callbacks of raft's handles run. */
    uv_run(loop, UV_RUN_NOWAIT);
    kz_node_free(&node);
    kz_log(KZ_LOG_INFO, "stopped", NULL);
    return 0;
}
