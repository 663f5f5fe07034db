/* Unit tests of the authorization core: JOSE (SMART-TOK-02/05, SMART-REG-02/04, D27) and
 * scopes (SCOPE-01..05, SMART-TOK-09). Vectors: the SMART 2.1.0 sample keys and worked example. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include "check_atr.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_scope.h"

static apr_pool_t *pool;
static void setup(void) { apr_pool_create(&pool, NULL); }
static void teardown(void) { apr_pool_destroy(pool); }

static json_t *load_spec(const char *rel)
{
    json_error_t e;
    const char *dir = getenv("ATR_SPEC_DIR") ? getenv("ATR_SPEC_DIR") : ATR_TEST_SPEC_DIR;
    json_t *j = json_load_file(apr_pstrcat(pool, dir, "/smart/2.1.0/", rel, NULL), 0, &e);
    ck_assert_msg(j != NULL, "cannot load %s: %s", rel, e.text);
    return atr_json_pool_own(j, pool);
}

static const char *worked_example_jws(void)
{
    json_t *ex = load_spec("examples/worked-example-client-assertion-RS384.json");
    const char *compact = atr_json_str(ex, "compact");
    ck_assert_ptr_nonnull(compact);
    return compact;
}

START_TEST(test_b64url_roundtrip)
{
    const unsigned char data[] = { 0xfb, 0xff, 0x00, 'a', 'b' };
    unsigned char *out;
    apr_size_t n, len;
    for (len = 0; len <= sizeof(data); len++) {
        const char *s = atr_b64url_encode(data, len, pool);
        ck_assert(strchr(s, '=') == NULL && strchr(s, '+') == NULL && strchr(s, '/') == NULL);
        ck_assert_int_eq(atr_b64url_decode(&out, &n, s, strlen(s), pool), APR_SUCCESS);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(out, data, len) == 0);
    }
    ck_assert_int_ne(atr_b64url_decode(&out, &n, "ab+/", 4, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_b64url_decode(&out, &n, "YQ==", 4, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_b64url_decode(&out, &n, "a", 1, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_smart_worked_example_verifies)
{
    apr_array_header_t *keys;
    atr_jws_t *jws;
    const char *err = NULL;
    const atr_jwk_t *key;
    int skipped;

    ck_assert_int_eq(atr_jwks_parse(&keys, &skipped, load_spec("sample-jwks-RS384.public.json"), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(keys->nelts, 1);
    ck_assert_int_eq(atr_jws_parse(&jws, worked_example_jws(), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(jws->alg, ATR_JOSE_RS384);
    key = atr_jwks_select(keys, "eee9f17a3b598fd86417a980b591fbe6", jws->alg);
    ck_assert_ptr_nonnull(key);
    ck_assert_int_eq(atr_jws_verify(jws, key, pool), APR_SUCCESS);
    /* the same kid with the other algorithm family selects nothing */
    ck_assert_ptr_null(atr_jwks_select(keys, "eee9f17a3b598fd86417a980b591fbe6", ATR_JOSE_ES384));
}
END_TEST

START_TEST(test_tampered_and_wrong_key_fail)
{
    apr_array_header_t *keys, *eckeys;
    atr_jws_t *jws;
    const char *err, *compact = apr_pstrdup(pool, worked_example_jws());
    char *dot = strchr(compact, '.');
    int skipped;

    atr_jwks_parse(&keys, &skipped, load_spec("sample-jwks-RS384.public.json"), &err, pool);
    atr_jwks_parse(&eckeys, &skipped, load_spec("sample-jwks-ES384.public.json"), &err, pool);
    ck_assert_int_eq(eckeys->nelts, 1);
    dot[-2] = dot[-2] == 'A' ? 'B' : 'A';  /* flip a header character */
    if (atr_jws_parse(&jws, compact, &err, pool) == APR_SUCCESS) {
        ck_assert_int_ne(atr_jws_verify(jws, APR_ARRAY_IDX(keys, 0, atr_jwk_t *), pool), APR_SUCCESS);
    }
    ck_assert_int_eq(atr_jws_parse(&jws, worked_example_jws(), &err, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jws_verify(jws, APR_ARRAY_IDX(eckeys, 0, atr_jwk_t *), pool), APR_SUCCESS);
}
END_TEST

static const char *forge(const char *alg, apr_pool_t *p)
{
    const char *h = apr_psprintf(p, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"k\"}", alg);
    const char *b = "{\"iss\":\"x\"}";
    return apr_pstrcat(p, atr_b64url_encode((const unsigned char *)h, strlen(h), p), ".",
                       atr_b64url_encode((const unsigned char *)b, strlen(b), p), ".", "c2ln", NULL);
}

START_TEST(test_none_and_hmac_refused)
{
    atr_jws_t *jws;
    const char *err;
    atr_jwk_t key = { "k", "RSA", NULL, NULL };
    ck_assert_int_eq(atr_jose_alg_parse("none"), ATR_JOSE_ALG_NONE);
    ck_assert_int_eq(atr_jose_alg_parse("HS256"), ATR_JOSE_ALG_NONE);
    ck_assert_int_eq(atr_jose_alg_parse("RS256"), ATR_JOSE_ALG_NONE);
    ck_assert_int_eq(atr_jws_parse(&jws, forge("none", pool), &err, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jws_verify(jws, &key, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_jws_parse(&jws, forge("HS384", pool), &err, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jws_verify(jws, &key, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_malformed_jws)
{
    atr_jws_t *jws;
    const char *err;
    ck_assert_int_ne(atr_jws_parse(&jws, "a.b", &err, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jws_parse(&jws, "a.b.c.d", &err, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jws_parse(&jws, "!!.e30.c2ln", &err, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_jws_parse(&jws, "e30.WzFd.c2ln", &err, pool), APR_SUCCESS); /* payload [1] */
    ck_assert_int_ne(atr_jws_parse(&jws, NULL, &err, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_sign_verify_roundtrip)
{
    EVP_PKEY *keys[2];
    int i;
    keys[0] = EVP_EC_gen("P-384");
    keys[1] = EVP_RSA_gen(2048);
    for (i = 0; i < 2; i++) {
        json_t *payload = atr_json_pool_own(json_pack("{s:s, s:i}", "iss", "client", "exp", 1), pool);
        json_t *jwks = atr_json_pool_own(json_pack("{s:[O]}", "keys", atr_jwk_from_pkey(keys[i], "kid1", pool)), pool);
        apr_array_header_t *parsed;
        const char *compact, *err;
        atr_jws_t *jws;
        int skipped;
        ck_assert_int_eq(atr_jws_sign(&compact, payload, keys[i], "kid1", pool), APR_SUCCESS);
        ck_assert_int_eq(atr_jwks_parse(&parsed, &skipped, jwks, &err, pool), APR_SUCCESS);
        ck_assert_int_eq(parsed->nelts, 1);
        ck_assert_int_eq(atr_jws_parse(&jws, compact, &err, pool), APR_SUCCESS);
        ck_assert_int_eq(jws->alg, i == 0 ? ATR_JOSE_ES384 : ATR_JOSE_RS384);
        ck_assert_str_eq(atr_json_str(jws->header, "typ"), "JWT");
        ck_assert_int_eq(atr_jws_verify(jws, atr_jwks_select(parsed, "kid1", jws->alg), pool), APR_SUCCESS);
        EVP_PKEY_free(keys[i]);
    }
}
END_TEST

/* PyJWT 2.6 and others drop leading zero bytes of EC x/y: such keys must still verify. */
START_TEST(test_ec_short_coordinates_accepted)
{
    int tries;
    for (tries = 0; tries < 4000; tries++) {
        EVP_PKEY *k = EVP_EC_gen("P-384");
        json_t *jwk = atr_jwk_from_pkey(k, "short", pool);
        const char *coord[2] = { "x", "y" };
        int c;
        for (c = 0; c < 2; c++) {
            unsigned char *raw;
            apr_size_t n;
            const char *v = atr_json_str(jwk, coord[c]), *err, *compact;
            apr_array_header_t *keys;
            atr_jws_t *jws;
            json_t *jwks, *payload;
            int skipped;
            ck_assert_int_eq(atr_b64url_decode(&raw, &n, v, strlen(v), pool), APR_SUCCESS);
            if (raw[0] != 0) continue;
            json_object_set_new(jwk, coord[c], json_string(atr_b64url_encode(raw + 1, n - 1, pool)));
            jwks = atr_json_pool_own(json_pack("{s:[O]}", "keys", jwk), pool);
            ck_assert_int_eq(atr_jwks_parse(&keys, &skipped, jwks, &err, pool), APR_SUCCESS);
            ck_assert_int_eq(keys->nelts, 1);
            payload = atr_json_pool_own(json_pack("{s:s}", "iss", "c"), pool);
            ck_assert_int_eq(atr_jws_sign(&compact, payload, k, "short", pool), APR_SUCCESS);
            ck_assert_int_eq(atr_jws_parse(&jws, compact, &err, pool), APR_SUCCESS);
            ck_assert_int_eq(atr_jws_verify(jws, atr_jwks_select(keys, "short", jws->alg), pool), APR_SUCCESS);
            EVP_PKEY_free(k);
            return;
        }
        EVP_PKEY_free(k);
    }
    ck_abort_msg("no P-384 key with a leading zero coordinate byte in 4000 tries");
}
END_TEST

START_TEST(test_jwks_rejects_bad_keys)
{
    apr_array_header_t *keys;
    const char *err;
    int skipped;
    json_t *j = atr_json_pool_own(json_loads(
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"short\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
        "{\"kty\":\"EC\",\"kid\":\"p256\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"},{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        0, NULL), pool);
    ck_assert_int_eq(atr_jwks_parse(&keys, &skipped, j, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(keys->nelts, 0);
    ck_assert_int_eq(skipped, 4);
    j = atr_json_pool_own(json_loads("{\"key\":[]}", 0, NULL), pool);
    ck_assert_int_eq(atr_jwks_parse(&keys, &skipped, j, &err, pool), APR_EINVAL);
}
END_TEST

START_TEST(test_scope_parse)
{
    atr_scope_t *s;
    ck_assert_int_eq(atr_scope_parse(&s, "system/*.read", pool), APR_SUCCESS);
    ck_assert_uint_eq(s->perms, ATR_PERM_READ);
    ck_assert_int_eq(atr_scope_parse(&s, "system/Group.write", pool), APR_SUCCESS);
    ck_assert_uint_eq(s->perms, ATR_PERM_WRITE);
    ck_assert_int_eq(atr_scope_parse(&s, "system/Patient.rs", pool), APR_SUCCESS);
    ck_assert(s->v2 && s->perms == ATR_PERM_READ);
    ck_assert_int_eq(atr_scope_parse(&s, "system/Group.cruds", pool), APR_SUCCESS);
    ck_assert_uint_eq(s->perms, ATR_PERM_ALL);
    ck_assert_int_eq(atr_scope_parse(&s, "system/Patient.rs?identifier=x", pool), APR_SUCCESS);
    ck_assert(s->granular && s->perms == 0);  /* D32 */
    ck_assert_int_ne(atr_scope_parse(&s, "system/Patient.dus", pool), APR_SUCCESS);
    ck_assert_int_ne(atr_scope_parse(&s, "patient/*.read", pool), APR_SUCCESS);
    ck_assert_int_ne(atr_scope_parse(&s, "system/patient.read", pool), APR_SUCCESS);
    ck_assert_int_ne(atr_scope_parse(&s, "system/Patient.readx", pool), APR_SUCCESS);
    ck_assert_int_ne(atr_scope_parse(&s, "openid", pool), APR_SUCCESS);
    ck_assert_int_ne(atr_scope_parse(&s, "system/Patient.read?x=1", pool), APR_SUCCESS);
}
END_TEST

static const char *mediate(const char *req, const char *allowed)
{
    apr_array_header_t *r, *a;
    atr_scope_parse_list(&r, NULL, req, pool);
    atr_scope_parse_list(&a, NULL, allowed, pool);
    return atr_scope_mediate(r, a, pool);
}

START_TEST(test_scope_mediation)
{
    ck_assert_str_eq(mediate("system/*.read", "system/*.read system/Group.write"), "system/*.read");
    ck_assert_str_eq(mediate("system/Group.read system/Patient.rs", "system/*.read"),
                     "system/Group.read system/Patient.rs");
    ck_assert_str_eq(mediate("system/*.read", "system/Group.read system/Patient.read"),
                     "system/Group.read system/Patient.read");
    ck_assert_str_eq(mediate("system/*.cruds", "system/*.read"), "system/*.rs");
    ck_assert_str_eq(mediate("system/Group.write", "system/*.read"), "");
    ck_assert_str_eq(mediate("system/Group.read system/Group.read", "system/*.*"), "system/Group.read");
    ck_assert_str_eq(mediate("system/Group.r", "system/Group.read"), "system/Group.r");
}
END_TEST

START_TEST(test_scope_allows)
{
    apr_array_header_t *g;
    atr_scope_parse_list(&g, NULL, "system/Group.read system/Patient.r system/Coverage.rs?x=1", pool);
    ck_assert(atr_scope_allows(g, "Group", ATR_PERM_R));
    ck_assert(atr_scope_allows(g, "Group", ATR_PERM_S));
    ck_assert(!atr_scope_allows(g, "Group", ATR_PERM_U));
    ck_assert(atr_scope_allows(g, "Patient", ATR_PERM_R));
    ck_assert(!atr_scope_allows(g, "Patient", ATR_PERM_S));
    ck_assert(!atr_scope_allows(g, "Coverage", ATR_PERM_R));
    ck_assert(!atr_scope_allows(g, "Location", ATR_PERM_R));
    atr_scope_parse_list(&g, NULL, "system/*.read", pool);
    ck_assert(atr_scope_allows(g, "Location", ATR_PERM_READ));
}
END_TEST

Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("jose");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_b64url_roundtrip);
    tcase_add_test(tc, test_smart_worked_example_verifies);
    tcase_add_test(tc, test_tampered_and_wrong_key_fail);
    tcase_add_test(tc, test_none_and_hmac_refused);
    tcase_add_test(tc, test_malformed_jws);
    tcase_add_test(tc, test_sign_verify_roundtrip);
    tcase_add_test(tc, test_jwks_rejects_bad_keys);
    tcase_add_test(tc, test_ec_short_coordinates_accepted);
    suite_add_tcase(s, tc);
    tc = tcase_create("scope");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_scope_parse);
    tcase_add_test(tc, test_scope_mediation);
    tcase_add_test(tc, test_scope_allows);
    suite_add_tcase(s, tc);
    return s;
}
