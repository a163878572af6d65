/*
 * identity.h — who a client is: organisation and role from the subject of
 * its (already verified) TLS certificate, and the one table of roles.
 *
 * Happy path: the dev PKI (deploy/gen-pki) issues client certificates with
 * subject /O=<organisation>/OU=<role>/CN=...; http_api.c takes the peer
 * certificate after OpenSSL verified the chain and calls
 * kz_node_identity_from_cert(); the route table then checks the role bit.
 *
 * Failure modes (the parser refuses, returns -1, and out->refused says why):
 *   - O or OU absent, or present more than once (two OUs would make the role
 *     ambiguous: the certificate is refused, never read as its first OU);
 *   - a value that is empty, not convertible to UTF-8 (bad BMPString,
 *     malformed UTF8String), longer than the field below, or that holds NUL
 *     or a control character (C0, DEL, C1): such a value could cut a log
 *     line or smuggle terminal escapes into one.
 * An OU that is well formed but names no role in the table is accepted with
 * role bit 0 (KZ_NODE_ROLE_NONE): authenticated, allowed nothing. The caller
 * treats a refused certificate the same way (no role), so a subject this
 * parser does not like can never gain more than a missing OU would.
 *
 * The parser only reads the certificate: it neither verifies it nor takes a
 * reference; the caller keeps ownership of cert.
 */
#ifndef KZ_NODE_IDENTITY_H
#define KZ_NODE_IDENTITY_H

#include <openssl/x509.h>

/* Buffer sizes, NUL included: O holds up to 127 bytes of UTF-8 (X.520 allows
 * 64 characters, some of them 3 bytes), OU up to 31 (role names are short). */
#define KZ_NODE_ORG_MAX 128
#define KZ_NODE_ROLE_NAME_MAX 32

/* Role bits, one per certificate OU in the role table. */
enum kz_node_role {
    KZ_NODE_ROLE_NONE = 0,
    KZ_NODE_ROLE_REGISTRAR = 1 << 0,
    KZ_NODE_ROLE_CASEWORKER = 1 << 1,
    KZ_NODE_ROLE_TERMINAL = 1 << 2,
    KZ_NODE_ROLE_PAYOUT = 1 << 3,
    KZ_NODE_ROLE_AUDITOR = 1 << 4,
    KZ_NODE_ROLE_OPERATOR = 1 << 5,
    KZ_NODE_ROLE_ORG = 1 << 6,
    KZ_NODE_ROLE_CITIZEN = 1 << 7,
    KZ_NODE_ROLE__ALL = (1 << 8) - 1 /* every bit above */
};

struct kz_node_identity {
    char org[KZ_NODE_ORG_MAX];             /* O, UTF-8 */
    char role_name[KZ_NODE_ROLE_NAME_MAX]; /* OU, UTF-8 */
    int role;                              /* KZ_NODE_ROLE_* bit, or 0 */
    const char *refused; /* static text when -1 was returned, else NULL */
};

/* Fills *out from cert's subject (caller-owned; not modified, no reference
 * taken). Returns 0, or -1 with out->org, out->role_name empty, out->role 0
 * and out->refused set. cert may be NULL (refused). */
int kz_node_identity_from_cert(X509 *cert, struct kz_node_identity *out);

/* The role bit of an OU value ("registrar" -> KZ_NODE_ROLE_REGISTRAR), or 0
 * for a name not in the table. Exact, case-sensitive match. */
int kz_node_role_bit(const char *name);

#endif
