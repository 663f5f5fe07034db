/* Unit tests of the token endpoint core: our HS256 access tokens (atr_token), client assertion
 * validation with a substituted registry, JWKS fetch and jti store (atr_assertion,
 * SMART-TOK-02..06, D28/D29), and the JWKS fetcher's pure parts (Cache-Control, loopback). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_file_io.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include "check_atr.h"
#include "atr_assertion.h"
#include "atr_db.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_jwks_fetch.h"
#include "atr_scope.h"
#include "atr_token.h"

#define ISSUER "https://payer.example/fhir"
#define TOKEN_URL ISSUER "/auth/token"

static apr_pool_t *pool;
static void setup(void) { apr_pool_create(&pool, NULL); }
static void teardown(void) { apr_pool_destroy(pool); }

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

/* ---------------------------------------------------------------- tokens */

static atr_token_key_t *test_key(void) { return atr_token_key_make(secret, sizeof(secret), pool); }

START_TEST(test_token_roundtrip)
{
    const char *tok, *err = NULL;
    atr_token_claims_t *c;
    apr_time_t now = apr_time_now();
    ck_assert_int_eq(atr_token_issue(&tok, test_key(), ISSUER, "client-1", "system/*.read system/Group.rs",
                                     apr_time_from_sec(300), now, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, tok, now + apr_time_from_sec(10), &err, pool),
                     APR_SUCCESS);
    ck_assert_str_eq(c->client_id, "client-1");
    ck_assert_str_eq(c->scope, "system/*.read system/Group.rs");
    ck_assert_int_eq(c->scopes->nelts, 2);
    ck_assert(atr_scope_allows(c->scopes, "Patient", ATR_PERM_R));
    ck_assert_int_eq(apr_time_sec(c->exp), apr_time_sec(now) + 300);
}
END_TEST

START_TEST(test_token_refused)
{
    const char *tok, *err = NULL, *bad;
    atr_token_claims_t *c;
    apr_time_t now = apr_time_now();
    unsigned char other[32];
    char *t;
    const char *dot2;

    ck_assert_int_eq(atr_token_issue(&tok, test_key(), ISSUER, "client-1", "system/*.read",
                                     apr_time_from_sec(300), now, pool), APR_SUCCESS);
    /* expired */
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, tok, now + apr_time_from_sec(301), &err, pool),
                     APR_EINVAL);
    ck_assert_str_eq(err, "token expired");
    ck_assert_ptr_null(c);
    /* other key */
    memset(other, 7, sizeof(other));
    ck_assert_int_eq(atr_token_verify(&c, atr_token_key_make(other, sizeof(other), pool), ISSUER, tok, now,
                                      &err, pool), APR_EINVAL);
    ck_assert_str_eq(err, "bad signature");
    /* wrong issuer */
    ck_assert_int_eq(atr_token_verify(&c, test_key(), "https://other.example/fhir", tok, now, &err, pool),
                     APR_EINVAL);
    /* tampered payload: a character of the payload changed */
    t = apr_pstrdup(pool, tok);
    t[strchr(t, '.') - t + 5] ^= 1;
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, t, now, &err, pool), APR_EINVAL);
    /* tampered signature */
    t = apr_pstrdup(pool, tok);
    t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, t, now, &err, pool), APR_EINVAL);
    /* alg none (header {"alg":"none","typ":"JWT"}) with and without the signature */
    dot2 = strrchr(tok, '.');
    bad = apr_pstrcat(pool, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", strchr(tok, '.'), NULL);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, bad, now, &err, pool), APR_EINVAL);
    ck_assert_str_eq(err, "unsupported token algorithm");
    bad = apr_pstrcat(pool, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
                      apr_pstrmemdup(pool, strchr(tok, '.'), (apr_size_t)(dot2 - strchr(tok, '.'))), ".", NULL);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, bad, now, &err, pool), APR_EINVAL);
    /* RS256 header ({"alg":"RS256","typ":"JWT"}) */
    bad = apr_pstrcat(pool, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9", strchr(tok, '.'), NULL);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, bad, now, &err, pool), APR_EINVAL);
    /* malformed */
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, "abc", now, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, "a.b.c.d", now, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, "", now, &err, pool), APR_EINVAL);
    ck_assert(strstr(err, tok) == NULL);
}
END_TEST

static const char *write_file(const char *content, apr_size_t len, apr_fileperms_t perms)
{
    char *path = apr_pstrdup(pool, "/tmp/atr-check-key-XXXXXX");
    apr_file_t *f;
    apr_size_t n = len;
    ck_assert_int_eq(apr_file_mktemp(&f, path, APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE
                                     | APR_FOPEN_EXCL, pool), APR_SUCCESS);
    ck_assert_int_eq(apr_file_write_full(f, content, len, &n), APR_SUCCESS);
    apr_file_close(f);
    ck_assert_int_eq(apr_file_perms_set(path, perms), APR_SUCCESS);
    return path;
}

START_TEST(test_token_key_load)
{
    atr_token_key_t *k;
    const char *err = NULL, *tok, *path;
    atr_token_claims_t *c;
    apr_time_t now = apr_time_now();

    /* hex text of the test secret, with a newline: same key as the raw bytes */
    path = write_file("30313233343536373839616263646566"
                      "30313233343536373839616263646566\n", 65, APR_UREAD | APR_UWRITE);
    ck_assert_int_eq(atr_token_key_load(&k, path, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_token_issue(&tok, k, ISSUER, "c", "system/*.read", apr_time_from_sec(60), now, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(atr_token_verify(&c, test_key(), ISSUER, tok, now, &err, pool), APR_SUCCESS);
    apr_file_remove(path, pool);
    /* base64 of 48 random-ish bytes */
    path = write_file("q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJ\n", 65, APR_UREAD);
    ck_assert_int_eq(atr_token_key_load(&k, path, &err, pool), APR_SUCCESS);
    apr_file_remove(path, pool);
    /* too short */
    path = write_file("short secret\n", 13, APR_UREAD | APR_UWRITE);
    ck_assert_int_eq(atr_token_key_load(&k, path, &err, pool), APR_EINVAL);
    ck_assert(strstr(err, "32") != NULL);
    apr_file_remove(path, pool);
    /* readable by others */
    path = write_file((const char *)secret, sizeof(secret), APR_UREAD | APR_UWRITE | APR_WREAD);
    ck_assert_int_eq(atr_token_key_load(&k, path, &err, pool), APR_EINVAL);
    ck_assert(strstr(err, "group/other") != NULL);
    apr_file_remove(path, pool);
    /* missing */
    ck_assert_int_ne(atr_token_key_load(&k, "/nonexistent/atr-key", &err, pool), APR_SUCCESS);
}
END_TEST

/* ---------------------------------------------------------------- assertions */

static EVP_PKEY *ec_key, *rsa_key, *ec_key2;

static void keys_make(void)
{
    ec_key = EVP_EC_gen("P-384");
    ec_key2 = EVP_EC_gen("P-384");
    rsa_key = EVP_RSA_gen(2048);
}

static void keys_free(void)
{
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec_key2);
    EVP_PKEY_free(rsa_key);
}

typedef struct fake_t {
    atr_client_t client;
    apr_status_t registry_rv;
    const char *url_jwks;          /* served at the URL (force = 0) */
    const char *url_jwks_forced;   /* served on a forced refresh (NULL: same) */
    int url_down;
    int fetches, forced;
    apr_hash_t *jtis;
    apr_status_t jti_rv;
} fake_t;

static apr_status_t fake_client(atr_client_t **pclient, void *baton, const char *client_id, apr_pool_t *p)
{
    fake_t *f = baton;
    (void)p;
    *pclient = NULL;
    if (f->registry_rv != APR_SUCCESS) return f->registry_rv;
    if (strcmp(client_id, f->client.client_id)) return APR_NOTFOUND;
    *pclient = &f->client;
    return APR_SUCCESS;
}

static apr_status_t fake_jwks(apr_array_header_t **pkeys, int *pfetched, void *baton, const char *url, int force,
                              const char **perr, apr_pool_t *p)
{
    fake_t *f = baton;
    const char *text = force && f->url_jwks_forced ? f->url_jwks_forced : f->url_jwks;
    json_t *j;
    (void)url;
    f->fetches++;
    if (force) f->forced++;
    *pfetched = 0;
    if (f->url_down || !text) {
        *perr = "connection refused";
        return APR_EGENERAL;
    }
    ck_assert_int_eq(atr_json_parse(&j, text, strlen(text), perr, p), APR_SUCCESS);
    return atr_jwks_parse(pkeys, NULL, j, perr, p);
}

static apr_status_t fake_jti(int *preplay, void *baton, const char *client_id, const char *jti,
                             apr_time_t expires, apr_pool_t *p)
{
    fake_t *f = baton;
    const char *k = apr_pstrcat(pool, client_id, "|", jti, NULL);
    (void)expires;
    (void)p;
    *preplay = 0;
    if (f->jti_rv != APR_SUCCESS) return f->jti_rv;
    if (apr_hash_get(f->jtis, k, APR_HASH_KEY_STRING)) *preplay = 1;
    else apr_hash_set(f->jtis, k, APR_HASH_KEY_STRING, "1");
    return APR_SUCCESS;
}

static const char *jwks_text(EVP_PKEY *key, const char *kid)
{
    json_t *jwks = atr_json_pool_own(json_pack("{s:[O]}", "keys", atr_jwk_from_pkey(key, kid, pool)), pool);
    return atr_json_dump(jwks, pool);
}

static fake_t *fake_make(void)
{
    fake_t *f = apr_pcalloc(pool, sizeof(*f));
    f->client.client_id = "client-1";
    f->client.jwks_url = "https://client.example/jwks.json";
    f->url_jwks = jwks_text(ec_key, "ec-1");
    f->client.scopes = apr_array_make(pool, 1, sizeof(const char *));
    APR_ARRAY_PUSH(f->client.scopes, const char *) = "system/*.read";
    f->jtis = apr_hash_make(pool);
    return f;
}

static atr_assertion_ctx_t ctx_make(fake_t *f)
{
    atr_assertion_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.token_url = TOKEN_URL;
    ctx.now = apr_time_now();
    ctx.client_get = fake_client;
    ctx.client_baton = f;
    ctx.jwks_get = fake_jwks;
    ctx.jwks_baton = f;
    ctx.jti_remember = fake_jti;
    ctx.jti_baton = f;
    return ctx;
}

static json_t *claims(const char *iss, apr_int64_t exp_in)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:s}", "iss", iss, "sub", iss, "aud", TOKEN_URL,
                          "exp", (json_int_t)(now + exp_in), "jti",
                          apr_psprintf(pool, "jti-%d-%ld", rand(), (long)now));
    return atr_json_pool_own(c, pool);
}

static const char *sign(json_t *payload, EVP_PKEY *key, const char *kid)
{
    const char *compact;
    ck_assert_int_eq(atr_jws_sign(&compact, payload, key, kid, pool), APR_SUCCESS);
    return compact;
}

/* An RS384 JWS with a header of our choosing (the signature is real). */
static const char *sign_rsa_header(json_t *header, json_t *payload, EVP_PKEY *key)
{
    const char *h = atr_json_dump(header, pool), *pl = atr_json_dump(payload, pool), *input;
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    input = apr_pstrcat(pool, atr_b64url_encode((const unsigned char *)h, strlen(h), pool), ".",
                        atr_b64url_encode((const unsigned char *)pl, strlen(pl), pool), NULL);
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    return apr_pstrcat(pool, input, ".", atr_b64url_encode(sig, siglen, pool), NULL);
}

static apr_status_t validate(fake_t *f, const char *assertion, const char **perr)
{
    atr_client_t *client = NULL;
    atr_assertion_ctx_t ctx = ctx_make(f);
    apr_status_t rv = atr_assertion_validate(&client, &ctx, assertion, perr, pool);
    if (rv == APR_SUCCESS) ck_assert_str_eq(client->client_id, "client-1");
    else ck_assert_ptr_null(client);
    return rv;
}

START_TEST(test_assertion_good)
{
    fake_t *f = fake_make();
    const char *err = NULL;
    json_t *hdr;
    /* ES384 at the URL */
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_SUCCESS);
    ck_assert_int_eq(f->forced, 0);
    /* RS384 inline only */
    f->client.jwks_url = NULL;
    f->client.jwks = jwks_text(rsa_key, "rsa-1");
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), rsa_key, "rsa-1"), &err), APR_SUCCESS);
    /* both: the same key inline and at the URL is one candidate, not two */
    f->client.jwks_url = "https://client.example/jwks.json";
    f->client.jwks = jwks_text(ec_key, "ec-1");
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_SUCCESS);
    /* union: inline RSA + URL EC */
    f->client.jwks = jwks_text(rsa_key, "rsa-1");
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), rsa_key, "rsa-1"), &err), APR_SUCCESS);
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_SUCCESS);
    /* typ missing is accepted (D28); aud as an array containing the token URL; jku = registered */
    hdr = atr_json_pool_own(json_pack("{s:s, s:s, s:s}", "alg", "RS384", "kid", "rsa-1",
                                      "jku", "https://client.example/jwks.json"), pool);
    f->url_jwks = jwks_text(rsa_key, "rsa-1");
    f->client.jwks = NULL;
    {
        json_t *c = claims("client-1", 240);
        json_object_set_new(c, "aud", json_pack("[s, s]", "https://other.example/", TOKEN_URL));
        json_object_set_new(c, "iat", json_integer(apr_time_sec(apr_time_now())));
        json_object_set_new(c, "nbf", json_integer(apr_time_sec(apr_time_now()) - 10));
        ck_assert_int_eq(validate(f, sign_rsa_header(hdr, c, rsa_key), &err), APR_SUCCESS);
    }
    /* slightly expired but within the 60 s skew */
    ck_assert_int_eq(validate(f, sign(claims("client-1", -30), rsa_key, "rsa-1"), &err), APR_SUCCESS);
}
END_TEST

START_TEST(test_assertion_claims_refused)
{
    fake_t *f = fake_make();
    const char *err = NULL;
    json_t *c;
    struct { const char *name; const char *value; } cases[] = {
        { "aud", "https://payer.example/fhir/auth/token/" },
        { "sub", "client-2" },
        { "iss", "client-2" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = claims("client-1", 240);
        json_object_set_new(c, cases[i].name, json_string(cases[i].value));
        ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    }
    c = claims("client-1", 240);
    json_object_set_new(c, "aud", json_pack("[s]", "https://other.example/"));
    ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "aud") != NULL);
    /* expired beyond the skew */
    ck_assert_int_eq(validate(f, sign(claims("client-1", -61), ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "expired") != NULL);
    /* exp too far: 300 + 60 s skew is the limit */
    ck_assert_int_eq(validate(f, sign(claims("client-1", 400), ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "5 minutes") != NULL);
    /* exp not an integer */
    c = claims("client-1", 240);
    json_object_set_new(c, "exp", json_string("1999999999"));
    ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    c = claims("client-1", 240);
    json_object_del(c, "exp");
    ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    /* nbf / iat in the future */
    c = claims("client-1", 240);
    json_object_set_new(c, "nbf", json_integer(apr_time_sec(apr_time_now()) + 120));
    ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    c = claims("client-1", 240);
    json_object_set_new(c, "iat", json_integer(apr_time_sec(apr_time_now()) + 120));
    ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    /* no jti */
    c = claims("client-1", 240);
    json_object_del(c, "jti");
    ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "jti") != NULL);
    /* not a JWT */
    ck_assert_int_eq(validate(f, "not.a.jwt", &err), APR_EINVAL);
    ck_assert_int_eq(validate(f, "", &err), APR_EINVAL);
    ck_assert_int_eq(f->fetches, 0);   /* none of these needed the keys */
}
END_TEST

START_TEST(test_assertion_header_refused)
{
    fake_t *f = fake_make();
    const char *err = NULL, *a, *dot;
    json_t *h;
    f->url_jwks = jwks_text(rsa_key, "rsa-1");

    /* typ other than JWT (D28) */
    h = atr_json_pool_own(json_pack("{s:s, s:s, s:s}", "alg", "RS384", "kid", "rsa-1", "typ", "JWS"), pool);
    ck_assert_int_eq(validate(f, sign_rsa_header(h, claims("client-1", 240), rsa_key), &err), APR_EINVAL);
    ck_assert(strstr(err, "typ") != NULL);
    /* no kid */
    h = atr_json_pool_own(json_pack("{s:s, s:s}", "alg", "RS384", "typ", "JWT"), pool);
    ck_assert_int_eq(validate(f, sign_rsa_header(h, claims("client-1", 240), rsa_key), &err), APR_EINVAL);
    ck_assert(strstr(err, "kid") != NULL);
    /* jku not the registered URL */
    h = atr_json_pool_own(json_pack("{s:s, s:s, s:s}", "alg", "RS384", "kid", "rsa-1",
                                    "jku", "https://evil.example/jwks.json"), pool);
    ck_assert_int_eq(validate(f, sign_rsa_header(h, claims("client-1", 240), rsa_key), &err), APR_EINVAL);
    ck_assert(strstr(err, "jku") != NULL);
    /* RS256 signed with the right key */
    h = atr_json_pool_own(json_pack("{s:s, s:s}", "alg", "RS256", "kid", "rsa-1"), pool);
    ck_assert_int_eq(validate(f, sign_rsa_header(h, claims("client-1", 240), rsa_key), &err), APR_EINVAL);
    /* alg none, and HS256: header swapped onto a real payload */
    a = sign(claims("client-1", 240), rsa_key, "rsa-1");
    dot = strchr(a, '.');
    h = atr_json_pool_own(json_pack("{s:s, s:s}", "alg", "none", "kid", "rsa-1"), pool);
    ck_assert_int_eq(validate(f, apr_pstrcat(pool, atr_b64url_encode((const unsigned char *)atr_json_dump(h, pool),
                                                                     strlen(atr_json_dump(h, pool)), pool),
                                             apr_pstrmemdup(pool, dot, (apr_size_t)(strrchr(a, '.') - dot)),
                                             ".", NULL), &err), APR_EINVAL);
    h = atr_json_pool_own(json_pack("{s:s, s:s}", "alg", "HS256", "kid", "rsa-1"), pool);
    ck_assert_int_eq(validate(f, apr_pstrcat(pool, atr_b64url_encode((const unsigned char *)atr_json_dump(h, pool),
                                                                     strlen(atr_json_dump(h, pool)), pool),
                                             dot, NULL), &err), APR_EINVAL);
    ck_assert(strstr(err, "RS384") != NULL);
}
END_TEST

START_TEST(test_assertion_client_and_keys_refused)
{
    fake_t *f = fake_make();
    const char *err = NULL;

    /* unknown client */
    ck_assert_int_eq(validate(f, sign(claims("client-9", 240), ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert_str_eq(err, "unknown client");
    /* disabled client */
    f->client.disabled = 1;
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "disabled") != NULL);
    f->client.disabled = 0;
    /* registry unreachable: a distinct status, never a grant */
    f->registry_rv = APR_EGENERAL;
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_EGENERAL);
    f->registry_rv = APR_SUCCESS;
    /* bad signature: another key under the registered kid */
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key2, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "signature") != NULL);
    /* unknown kid: one forced refresh, then refused */
    f->fetches = f->forced = 0;
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-9"), &err), APR_EINVAL);
    ck_assert_int_eq(f->forced, 1);
    /* kty does not fit alg: an RSA-signed assertion whose kid names the EC key */
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), rsa_key, "ec-1"), &err), APR_EINVAL);
    /* URL down, no inline keys */
    f->url_down = 1;
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_EINVAL);
    ck_assert(strstr(err, "could not be fetched") != NULL);
    /* URL down but the key is inline too */
    f->client.jwks = jwks_text(ec_key, "ec-1");
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_SUCCESS);
    /* two keys with the same kid and kty: no single candidate */
    f->url_down = 0;
    f->client.jwks = jwks_text(ec_key2, "ec-1");
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_EINVAL);
}
END_TEST

START_TEST(test_assertion_rotation_and_replay)
{
    fake_t *f = fake_make();
    const char *err = NULL, *a;

    /* the client rotated to ec-2: the cached set lacks it, the forced refresh has it */
    f->url_jwks_forced = jwks_text(ec_key2, "ec-2");
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key2, "ec-2"), &err), APR_SUCCESS);
    ck_assert_int_eq(f->forced, 1);
    /* replay */
    a = sign(claims("client-1", 240), ec_key, "ec-1");
    ck_assert_int_eq(validate(f, a, &err), APR_SUCCESS);
    ck_assert_int_eq(validate(f, a, &err), APR_EINVAL);
    ck_assert(strstr(err, "replay") != NULL);
    /* a refused assertion does not burn its jti */
    {
        json_t *c = claims("client-1", 240);
        ck_assert_int_eq(validate(f, sign(c, ec_key2, "ec-1"), &err), APR_EINVAL);
        ck_assert_int_eq(validate(f, sign(c, ec_key, "ec-1"), &err), APR_SUCCESS);
    }
    /* store down: distinct status */
    f->jti_rv = APR_EGENERAL;
    ck_assert_int_eq(validate(f, sign(claims("client-1", 240), ec_key, "ec-1"), &err), APR_EGENERAL);
}
END_TEST

START_TEST(test_jti_store)
{
    char dir[64];
    atr_db_t *db;
    const char *err = NULL;
    int replay = -1, i;
    apr_time_t now = apr_time_now();

    strcpy(dir, "/tmp/atr-check-jti-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", dir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c1", "j1", now + apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(replay, 0);
    ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c1", "j1", now + apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(replay, 1);
    ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c2", "j1", now + apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(replay, 0);
    /* an expired row is purged within the next few hundred inserts, then the jti is new again */
    ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c3", "old", now - apr_time_from_sec(10), pool), APR_SUCCESS);
    for (i = 0; i < 300; i++) {
        ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c4", apr_psprintf(pool, "j%d", i),
                                              now + apr_time_from_sec(60), pool), APR_SUCCESS);
        ck_assert_int_eq(replay, 0);
    }
    ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c3", "old", now + apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(replay, 0);
    ck_assert_int_eq(atr_assertion_jti_db(&replay, db, "c1", "j1", now + apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(replay, 1);
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -rf '%s'", dir)), 0);
}
END_TEST

/* ---------------------------------------------------------------- JWKS fetcher */

START_TEST(test_cache_control)
{
    ck_assert_int_eq(atr_jwks_cache_lifetime(NULL), 300);
    ck_assert_int_eq(atr_jwks_cache_lifetime(""), 300);
    ck_assert_int_eq(atr_jwks_cache_lifetime("public"), 300);
    ck_assert_int_eq(atr_jwks_cache_lifetime("max-age=60"), 60);
    ck_assert_int_eq(atr_jwks_cache_lifetime("public, max-age=120"), 120);
    ck_assert_int_eq(atr_jwks_cache_lifetime("Max-Age=0"), 0);
    ck_assert_int_eq(atr_jwks_cache_lifetime("max-age=99999999999"), 86400);
    ck_assert_int_eq(atr_jwks_cache_lifetime("max-age=abc"), 0);
    ck_assert_int_eq(atr_jwks_cache_lifetime("no-store"), 0);
    ck_assert_int_eq(atr_jwks_cache_lifetime("max-age=600, no-cache"), 0);
    ck_assert_int_eq(atr_jwks_cache_lifetime("private, no-store, max-age=600"), 0);
    ck_assert_int_eq(atr_jwks_cache_lifetime("no-storex"), 300);
}
END_TEST

START_TEST(test_loopback_and_url)
{
    const char *err;
    ck_assert(atr_jwks_host_is_loopback("127.0.0.1"));
    ck_assert(atr_jwks_host_is_loopback("127.255.0.9"));
    ck_assert(atr_jwks_host_is_loopback("localhost"));
    ck_assert(atr_jwks_host_is_loopback("LOCALHOST"));
    ck_assert(atr_jwks_host_is_loopback("[::1]"));
    ck_assert(atr_jwks_host_is_loopback("::1"));
    ck_assert(!atr_jwks_host_is_loopback("128.0.0.1"));
    ck_assert(!atr_jwks_host_is_loopback("10.0.0.1"));
    ck_assert(!atr_jwks_host_is_loopback("127.0.0.1.evil.example"));
    ck_assert(!atr_jwks_host_is_loopback("localhost.evil.example"));
    ck_assert(!atr_jwks_host_is_loopback("[::2]"));
    ck_assert(!atr_jwks_host_is_loopback(""));
    ck_assert(!atr_jwks_host_is_loopback(NULL));

    ck_assert_int_eq(atr_jwks_url_check("https://client.example/jwks.json", 0, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_jwks_url_check("http://client.example/jwks.json", 1, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_jwks_url_check("http://127.0.0.1:8080/jwks.json", 0, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_jwks_url_check("http://127.0.0.1:8080/jwks.json", 1, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_jwks_url_check("http://[::1]:8080/jwks.json", 1, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_jwks_url_check("http://user@127.0.0.1.evil.example/", 1, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_jwks_url_check("ftp://client.example/jwks.json", 1, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_jwks_url_check("file:///etc/passwd", 1, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_jwks_url_check("not a url", 1, &err, pool), APR_EINVAL);
}
END_TEST

START_TEST(test_fetch_refused_without_network)
{
    /* refused URLs fail before any connection; a closed loopback port fails fast */
    atr_jwks_fetch_conf_t conf = { apr_time_from_sec(2), 65536, 1 };
    atr_jwks_cache_t *cache;
    apr_array_header_t *keys;
    const char *err = NULL;
    int fetched;
    ck_assert_int_eq(atr_jwks_cache_create(&cache, &conf, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jwks_cache_get(&keys, &fetched, cache, "http://client.example/jwks", 0, &err, pool),
                     APR_SUCCESS);
    ck_assert(strstr(err, "https") != NULL);
    ck_assert_int_ne(atr_jwks_cache_get(&keys, &fetched, cache, "http://127.0.0.1:1/jwks", 0, &err, pool),
                     APR_SUCCESS);
    ck_assert(strstr(err, "could not be fetched") != NULL);
}
END_TEST

Suite *token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("access_token");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_token_roundtrip);
    tcase_add_test(tc, test_token_refused);
    tcase_add_test(tc, test_token_key_load);
    suite_add_tcase(s, tc);
    tc = tcase_create("assertion");
    tcase_add_unchecked_fixture(tc, keys_make, keys_free);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_assertion_good);
    tcase_add_test(tc, test_assertion_claims_refused);
    tcase_add_test(tc, test_assertion_header_refused);
    tcase_add_test(tc, test_assertion_client_and_keys_refused);
    tcase_add_test(tc, test_assertion_rotation_and_replay);
    tcase_add_test(tc, test_jti_store);
    suite_add_tcase(s, tc);
    tc = tcase_create("jwks_fetch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_cache_control);
    tcase_add_test(tc, test_loopback_and_url);
    tcase_add_test(tc, test_fetch_refused_without_network);
    suite_add_tcase(s, tc);
    return s;
}
