/*
 * test_identity.c — organisation and role from a client certificate's
 * subject (node/identity.h), on real certificates.
 *
 * Each test builds a self-signed certificate with the OpenSSL API (EC P-256
 * key, SHA-256), encodes it to DER and decodes it again, so the parser sees
 * a certificate as d2i_X509 (and a TLS handshake) produces it. Values are
 * added with an explicit ASN.1 string type, which bypasses OpenSSL's X.520
 * length table: empty, over-long, NUL and control-character values reach
 * the parser as a misbehaving CA could issue them.
 */
#include "identity.h"

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <string.h>

struct attr {
    int nid;
    int type; /* V_ASN1_UTF8STRING, V_ASN1_BMPSTRING... */
    const char *val;
    int len; /* -1: strlen(val) */
    int set; /* 0: own RDN; -1: joins the previous RDN (multi-valued) */
};

static EVP_PKEY *key;

static void setup(void)
{
    key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
}

static void teardown(void)
{
    EVP_PKEY_free(key);
}

TestSuite(identity, .init = setup, .fini = teardown);

/* A certificate with these subject attributes (n of them), as built in
 * memory; self-signed when sign (OpenSSL cannot sign, or encode, a subject
 * it cannot canonicalise). Caller frees with X509_free. */
static X509 *make_cert_raw(const struct attr *a, size_t n, bool sign)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0x4b5a);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *subj = X509_get_subject_name(x);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(X509_NAME_add_entry_by_NID(
                         subj, a[i].nid, a[i].type,
                         (const unsigned char *)a[i].val,
                         a[i].len < 0 ? (int)strlen(a[i].val) : a[i].len, -1,
                         a[i].set),
                     1, "attribute %zu", i);
    X509_NAME *issuer = X509_NAME_new();
    X509_NAME_add_entry_by_NID(issuer, NID_commonName, MBSTRING_ASC,
                               (const unsigned char *)"Kizuna Test CA", -1, -1,
                               0);
    X509_set_issuer_name(x, issuer);
    X509_NAME_free(issuer);
    cr_assert_eq(X509_set_pubkey(x, key), 1);
    if (sign)
        cr_assert_gt(X509_sign(x, key, EVP_sha256()), 0);
    return x;
}

/* The same, as decoded from its DER: what a TLS handshake produces. */
static X509 *make_cert(const struct attr *a, size_t n)
{
    X509 *x = make_cert_raw(a, n, true);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    cr_assert_gt(len, 0);
    X509_free(x);
    const unsigned char *p = der;
    X509 *back = d2i_X509(NULL, &p, len);
    OPENSSL_free(der);
    cr_assert_not_null(back);
    return back;
}

#define U8 V_ASN1_UTF8STRING
#define PS V_ASN1_PRINTABLESTRING
#define O(v) {NID_organizationName, U8, (v), -1, 0}
#define OU(v) {NID_organizationalUnitName, U8, (v), -1, 0}
#define CN(v) {NID_commonName, U8, (v), -1, 0}

/* Parses a certificate with these attributes; returns the parser's result. */
static int parse(const struct attr *a, size_t n, struct kz_node_identity *id)
{
    X509 *x = make_cert(a, n);
    int rv = kz_node_identity_from_cert(x, id);
    X509_free(x);
    return rv;
}

static void assert_refused(int rv, const struct kz_node_identity *id,
                           const char *why)
{
    cr_assert_eq(rv, -1);
    cr_assert_str_eq(id->refused, why);
    cr_assert_str_empty(id->org);
    cr_assert_str_empty(id->role_name);
    cr_assert_eq(id->role, KZ_NODE_ROLE_NONE);
}

Test(identity, dev_pki_registrar)
{
    /* What deploy/gen-pki issues: /O=131016/OU=registrar/CN=registrar-dev */
    struct attr a[] = {O("131016"), OU("registrar"), CN("registrar-dev")};
    struct kz_node_identity id;
    cr_assert_eq(parse(a, 3, &id), 0);
    cr_assert_str_eq(id.org, "131016");
    cr_assert_str_eq(id.role_name, "registrar");
    cr_assert_eq(id.role, KZ_NODE_ROLE_REGISTRAR);
    cr_assert_null(id.refused);
}

Test(identity, every_role_maps_to_its_bit)
{
    static const struct {
        const char *name;
        int bit;
    } roles[] = {{"registrar", KZ_NODE_ROLE_REGISTRAR},
                 {"caseworker", KZ_NODE_ROLE_CASEWORKER},
                 {"terminal", KZ_NODE_ROLE_TERMINAL},
                 {"payout", KZ_NODE_ROLE_PAYOUT},
                 {"auditor", KZ_NODE_ROLE_AUDITOR},
                 {"operator", KZ_NODE_ROLE_OPERATOR},
                 {"org", KZ_NODE_ROLE_ORG},
                 {"citizen", KZ_NODE_ROLE_CITIZEN}};
    int seen = 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        struct attr a[] = {{NID_organizationName, PS, "131016", -1, 0},
                           {NID_organizationalUnitName, PS, roles[i].name, -1,
                            0}};
        struct kz_node_identity id;
        cr_assert_eq(parse(a, 2, &id), 0, "%s", roles[i].name);
        cr_assert_eq(id.role, roles[i].bit, "%s", roles[i].name);
        cr_assert_eq(kz_node_role_bit(roles[i].name), roles[i].bit);
        cr_assert_eq(seen & roles[i].bit, 0, "bits are distinct");
        seen |= roles[i].bit;
    }
    cr_assert_eq(seen, KZ_NODE_ROLE__ALL);
}

Test(identity, unknown_or_miscased_role_has_no_bit)
{
    const char *names[] = {"janitor", "Registrar", "registrar ", "registrars"};
    for (size_t i = 0; i < 4; i++) {
        struct attr a[] = {O("131016"), OU(names[i])};
        struct kz_node_identity id;
        cr_assert_eq(parse(a, 2, &id), 0, "%s", names[i]);
        cr_assert_str_eq(id.role_name, names[i]);
        cr_assert_eq(id.role, KZ_NODE_ROLE_NONE, "%s", names[i]);
    }
}

Test(identity, utf8_and_bmp_organisations_read_as_utf8)
{
    struct kz_node_identity id;
    struct attr u[] = {O("石巻市"), OU("caseworker"), CN("石巻市 職員")};
    cr_assert_eq(parse(u, 3, &id), 0);
    cr_assert_str_eq(id.org, "石巻市");
    cr_assert_eq(id.role, KZ_NODE_ROLE_CASEWORKER);

    /* 石巻市 as a BMPString (UCS-2 big-endian). */
    static const char bmp[] = {0x77, (char)0xF3, 0x5D, (char)0xFB, 0x5E, 0x02};
    struct attr b[] = {{NID_organizationName, V_ASN1_BMPSTRING, bmp, 6, 0},
                       OU("caseworker")};
    cr_assert_eq(parse(b, 2, &id), 0);
    cr_assert_str_eq(id.org, "石巻市");
}

Test(identity, multi_valued_rdn_is_read)
{
    struct attr a[] = {O("131016"),
                       {NID_organizationalUnitName, U8, "auditor", -1, -1},
                       CN("x")};
    struct kz_node_identity id;
    cr_assert_eq(parse(a, 3, &id), 0);
    cr_assert_eq(id.role, KZ_NODE_ROLE_AUDITOR);
}

Test(identity, missing_o_or_ou_is_refused)
{
    struct kz_node_identity id;
    struct attr no_ou[] = {O("131016"), CN("registrar-dev")};
    assert_refused(parse(no_ou, 2, &id), &id, "OU missing");
    struct attr no_o[] = {OU("registrar"), CN("registrar-dev")};
    assert_refused(parse(no_o, 2, &id), &id, "O missing");
    struct attr node[] = {CN("node-1")}; /* a node certificate */
    assert_refused(parse(node, 1, &id), &id, "O missing");
    assert_refused(parse(NULL, 0, &id), &id, "O missing");
    assert_refused(kz_node_identity_from_cert(NULL, &id), &id,
                   "no certificate subject");
}

Test(identity, repeated_o_or_ou_is_refused)
{
    /* Reading the first OU would make the role depend on attribute order. */
    struct kz_node_identity id;
    struct attr two_ou[] = {O("131016"), OU("caseworker"), OU("registrar")};
    assert_refused(parse(two_ou, 3, &id), &id, "OU present more than once");
    struct attr two_o[] = {O("131016"), O("131017"), OU("registrar")};
    assert_refused(parse(two_o, 3, &id), &id, "O present more than once");
}

Test(identity, empty_and_long_values)
{
    struct kz_node_identity id;
    struct attr empty_o[] = {O(""), OU("registrar")};
    assert_refused(parse(empty_o, 2, &id), &id, "O is empty");
    struct attr empty_ou[] = {O("131016"), OU("")};
    assert_refused(parse(empty_ou, 2, &id), &id, "OU is empty");

    /* 127 bytes of O and 31 of OU fit; one more byte does not. */
    char o[KZ_NODE_ORG_MAX + 1], ou[KZ_NODE_ROLE_NAME_MAX + 1];
    memset(o, 0, sizeof o);
    memset(ou, 0, sizeof ou);
    for (int i = 0; i < 42; i++)
        memcpy(o + 3 * i, "石", 3);
    o[126] = 'a';
    memset(ou, 'r', KZ_NODE_ROLE_NAME_MAX - 1);
    ou[KZ_NODE_ROLE_NAME_MAX - 1] = '\0';
    struct attr fit[] = {O(o), OU(ou)};
    cr_assert_eq(parse(fit, 2, &id), 0);
    cr_assert_eq(strlen(id.org), 127);
    cr_assert_eq(strlen(id.role_name), 31);

    o[127] = 'b';
    struct attr long_o[] = {O(o), OU("registrar")};
    assert_refused(parse(long_o, 2, &id), &id, "O is too long");
    ou[KZ_NODE_ROLE_NAME_MAX - 1] = 'r';
    struct attr long_ou[] = {O("131016"), OU(ou)};
    assert_refused(parse(long_ou, 2, &id), &id, "OU is too long");
}

Test(identity, nul_and_control_characters_are_refused)
{
    struct kz_node_identity id;
    /* "regi\0trar": a C string compare would read "regi". */
    struct attr nul[] = {O("131016"),
                         {NID_organizationalUnitName, U8, "regi\0trar", 9, 0}};
    assert_refused(parse(nul, 2, &id), &id,
                   "OU contains NUL or control characters");
    static const char bmp_nul[] = {0x77, (char)0xF3, 0x00, 0x00};
    struct attr bnul[] = {{NID_organizationName, V_ASN1_BMPSTRING, bmp_nul, 4,
                           0},
                          OU("registrar")};
    assert_refused(parse(bnul, 2, &id), &id,
                   "O contains NUL or control characters");
    const char *bad[] = {"regi\033[31mstrar", "registrar\x7f", "reg\nistrar",
                         ("13\xc2\x85" "016") /* U+0085, a C1 control */};
    for (size_t i = 0; i < 4; i++) {
        struct attr ou[] = {O("131016"), OU(bad[i])};
        assert_refused(parse(ou, 2, &id), &id,
                       "OU contains NUL or control characters");
        struct attr o[] = {O(bad[i]), OU("registrar")};
        assert_refused(parse(o, 2, &id), &id,
                       "O contains NUL or control characters");
    }
}

Test(identity, undecodable_value_leaves_the_error_queue_alone)
{
    /* A UTF8String that is not UTF-8 cannot be converted. (d2i_X509 and
     * X509_sign refuse such a subject, so the certificate is used as built,
     * unsigned.) OpenSSL's
     * error for it must not stay on the thread's queue, and an error already
     * queued must stay there. */
    struct attr a[] = {{NID_organizationName, U8, "13\xff\xfe" "16", -1, 0},
                       OU("registrar")};
    X509 *x = make_cert_raw(a, 2, false);
    ERR_clear_error();
    ERR_raise(ERR_LIB_USER, 42);
    unsigned long before = ERR_peek_last_error();
    struct kz_node_identity id;
    assert_refused(kz_node_identity_from_cert(x, &id), &id,
                   "O is not a valid string");
    cr_assert_eq(ERR_peek_last_error(), before);
    cr_assert_eq(ERR_peek_error(), before, "one error, the caller's");
    ERR_clear_error();
    X509_free(x);
}
