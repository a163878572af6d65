/*
 * backup_cmd.h — `kizuna backup create` and `kizuna backup restore`: an
 * online backup downloaded from one node with a manifest of SHA-256 sums,
 * and an offline restore into a new node's data directory (node/backup.h
 * has the server's side).
 */
#ifndef KZ_CLI_BACKUP_CMD_H
#define KZ_CLI_BACKUP_CMD_H

#include "cli_args.h"
#include "kizuna.h"

/* Returns a KZ_CLI_EXIT_* code, having told the user why. */
int kz_cli_backup_create(kz_cli *cli, const char *dir, int json_out);
int kz_cli_backup_restore(const char *dir, const char *data_dir, int json_out);

#endif
