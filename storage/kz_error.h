/*
 * kz_error.h — the one table of Kizuna error codes, shared by every layer.
 *
 * Each layer converts foreign errors (RocksDB's char **errptr, raft's codes,
 * libuv's negative errno, the OpenSSL error queue) into one of these at its
 * boundary, and writes the detail into the errmsg buffer of the object that
 * failed. Codes are positive; 0 is success.
 */
#ifndef KZ_ERROR_H
#define KZ_ERROR_H

#define KZ_ERROR_TABLE(X)                                              \
    X(KZ_OK, 0, "ok")                                                  \
    X(KZ_ENOMEM, 1, "out of memory")                                   \
    X(KZ_EIO, 2, "storage I/O error")                                  \
    X(KZ_ENOTFOUND, 3, "not found")                                    \
    X(KZ_EINVAL, 4, "invalid argument")                                \
    X(KZ_ECORRUPT, 5, "corrupt data")                                  \
    X(KZ_ENOTLEADER, 6, "not the leader")                              \
    X(KZ_ENOLEADER, 7, "no leader known")                              \
    X(KZ_ENOQUORUM, 8, "no quorum")                                    \
    X(KZ_ETIMEDOUT, 9, "timed out")                                    \
    X(KZ_ECANCELED, 10, "canceled")                                    \
    X(KZ_ESHUTDOWN, 11, "shutting down")                               \
    X(KZ_ETOOBIG, 12, "too big")                                       \
    X(KZ_ECONFIG, 13, "bad configuration")                             \
    X(KZ_ENET, 14, "network error")                                    \
    X(KZ_EBUSY, 15, "busy: another change is in progress")

enum kz_error {
#define KZ__ERR_ENUM(name, value, text) name = value,
    KZ_ERROR_TABLE(KZ__ERR_ENUM)
#undef KZ__ERR_ENUM
};

/* Static text for a code; never NULL. */
const char *kz_strerror(int code);

#endif
