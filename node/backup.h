/*
 * backup.h — online backups of one node's state (POST /v1/cluster/backups).
 *
 * A backup is a RocksDB checkpoint of the node's state at its applied index
 * (taken once the audited read point of the request is applied here, so it
 * holds everything committed before the call), kept in
 * DATA/backups/<id>/ with its manifest in DATA/backups/<id>.json, where id
 * is "<applied index, 20 digits>-<unix ms>". The files are downloaded one by
 * one (GET /v1/cluster/backups/<id>?file=NAME) and the backup deleted
 * (DELETE); backups older than a day are removed when the next one is made.
 * Values in the files are sealed as they are at rest: a restore needs the
 * cluster's master key file, which a backup never contains.
 */
#ifndef KZ_NODE_BACKUP_H
#define KZ_NODE_BACKUP_H

#include <jansson.h>
#include <stddef.h>

struct kz_node;

/* Makes a backup: KZ_OK and its manifest (the caller owns it), or an error
 * with err. request_id (NULL: none) goes into the log line of the backup. */
int kz_node_backup_create(struct kz_node *n, const char *request_id,
                          json_t **manifest, char *err, size_t errlen);
/* The manifest of backup id: KZ_OK, KZ_ENOTFOUND. */
int kz_node_backup_manifest(struct kz_node *n, const char *id,
                            json_t **manifest);
/* The path of file name of backup id: KZ_OK, KZ_EINVAL (not a file name),
 * KZ_ENOTFOUND. */
int kz_node_backup_file(struct kz_node *n, const char *id, const char *name,
                        char *path, size_t len);
/* Removes backup id: KZ_OK, KZ_ENOTFOUND, KZ_EIO. */
int kz_node_backup_delete(struct kz_node *n, const char *id);

#endif
