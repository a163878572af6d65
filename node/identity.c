/*
 * identity.c — organisation and role from a client certificate's subject
 * (identity.h), and the role table.
 *
 * Happy path: the subject holds exactly one O and one OU; each value is
 * converted to UTF-8 by OpenSSL (whatever its ASN.1 string type: UTF8String,
 * PrintableString, BMPString...), checked, copied; the OU is looked up in
 * role_names[].
 *
 * Failure modes: see identity.h. Every refusal leaves *out empty apart from
 * `refused`, so a caller that ignores the return value still sees no role.
 * OpenSSL errors raised while converting a value are popped from the
 * thread's error queue before returning: this runs on the node's loop
 * thread, where a stale queued error would make the next TLS read on any
 * connection look failed.
 */
#include "identity.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <string.h>

static const struct {
    const char *name;
    int bit;
} role_names[] = {
    {"registrar", KZ_NODE_ROLE_REGISTRAR}, {"caseworker", KZ_NODE_ROLE_CASEWORKER},
    {"terminal", KZ_NODE_ROLE_TERMINAL},   {"payout", KZ_NODE_ROLE_PAYOUT},
    {"auditor", KZ_NODE_ROLE_AUDITOR},     {"operator", KZ_NODE_ROLE_OPERATOR},
    {"org", KZ_NODE_ROLE_ORG},             {"citizen", KZ_NODE_ROLE_CITIZEN},
};

int kz_node_role_bit(const char *name)
{
    for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
        if (strcmp(name, role_names[i].name) == 0)
            return role_names[i].bit;
    return KZ_NODE_ROLE_NONE;
}

/* True when the n bytes of UTF-8 at s hold no control character: C0 (NUL
 * included), DEL, or C1 (U+0080..U+009F, encoded C2 80..C2 9F). The input
 * comes from ASN1_STRING_to_UTF8, which only writes valid UTF-8. */
static bool clean_value(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
        if (s[i] == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return false;
    }
    return true;
}

/* Why a value was refused; the index into reasons[field][]. */
enum value_fault {
    V_OK = 0,
    V_MISSING,
    V_REPEATED,
    V_ENCODING,
    V_EMPTY,
    V_TOO_LONG,
    V_CONTROL
};

static const char *const reasons[2][7] = {
    {NULL, "O missing", "O present more than once",
     "O is not a valid string", "O is empty", "O is too long",
     "O contains NUL or control characters"},
    {NULL, "OU missing", "OU present more than once",
     "OU is not a valid string", "OU is empty", "OU is too long",
     "OU contains NUL or control characters"},
};

/* Copies the one entry of nid in subj, as checked UTF-8, into buf (cap
 * bytes, NUL-terminated). */
static enum value_fault read_single(const X509_NAME *subj, int nid, char *buf,
                                    size_t cap)
{
    int i = X509_NAME_get_index_by_NID(subj, nid, -1);
    if (i < 0)
        return V_MISSING;
    if (X509_NAME_get_index_by_NID(subj, nid, i) >= 0)
        return V_REPEATED;
    const ASN1_STRING *data =
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
    if (data == NULL)
        return V_MISSING;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    enum value_fault f = V_OK;
    if (n < 0 || utf8 == NULL)
        f = V_ENCODING;
    else if (n == 0)
        f = V_EMPTY;
    else if ((size_t)n >= cap)
        f = V_TOO_LONG;
    else if (!clean_value(utf8, (size_t)n))
        f = V_CONTROL;
    else
        memcpy(buf, utf8, (size_t)n + 1);
    OPENSSL_free(utf8);
    return f;
}

int kz_node_identity_from_cert(X509 *cert, struct kz_node_identity *out)
{
    memset(out, 0, sizeof *out);
    const X509_NAME *subj = cert ? X509_get_subject_name(cert) : NULL;
    if (subj == NULL) {
        out->refused = "no certificate subject";
        return -1;
    }
    ERR_set_mark();
    enum value_fault f;
    if ((f = read_single(subj, NID_organizationName, out->org,
                         sizeof out->org)) != V_OK) {
        memset(out, 0, sizeof *out);
        out->refused = reasons[0][f];
    } else if ((f = read_single(subj, NID_organizationalUnitName,
                                out->role_name, sizeof out->role_name)) !=
               V_OK) {
        memset(out, 0, sizeof *out);
        out->refused = reasons[1][f];
    } else {
        out->role = kz_node_role_bit(out->role_name);
    }
    ERR_pop_to_mark();
    return out->refused == NULL ? 0 : -1;
}
