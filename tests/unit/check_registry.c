/* Unit tests of the Consumer registry core without a directory: RFC 4515 filter escaping,
 * atr_client_validate (every field), the client cache (expiry, negative entries, bound) and
 * failing closed when no LDAP server answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "check_atr.h"
#include "atr_log.h"
#include "atr_registry.h"

static apr_pool_t *pool;
static void setup(void)
{
    apr_pool_create(&pool, NULL);
}
static void teardown(void)
{
    apr_pool_destroy(pool);
}

static void quiet_sink(void *baton, const char *file, int line, atr_log_level_e level,
                       apr_status_t rv, const char *message)
{
    (void)baton; (void)file; (void)line; (void)level; (void)rv; (void)message;
}

static const char *spec_file(const char *rel)
{
    const char *dir = getenv("ATR_SPEC_DIR") ? getenv("ATR_SPEC_DIR") : ATR_TEST_SPEC_DIR;
    const char *path = apr_pstrcat(pool, dir, "/smart/2.1.0/", rel, NULL);
    FILE *f = fopen(path, "rb");
    char *buf = apr_palloc(pool, 65537);
    size_t n;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    n = fread(buf, 1, 65536, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static apr_array_header_t *strs(const char *a, const char *b)
{
    apr_array_header_t *arr = apr_array_make(pool, 2, sizeof(const char *));
    if (a) APR_ARRAY_PUSH(arr, const char *) = a;
    if (b) APR_ARRAY_PUSH(arr, const char *) = b;
    return arr;
}

static atr_client_t *good_client(void)
{
    atr_client_t *c = apr_pcalloc(pool, sizeof(*c));
    c->client_id = "acme-clinic_1.x~";
    c->jwks_url = "https://acme.example/.well-known/jwks.json";
    c->scopes = strs("system/Group.read", "system/*.rs");
    c->npis = strs("1234567893", NULL);
    c->tins = strs("123456789", NULL);
    c->contracts = strs("http://payer.example/contracts|C-42", NULL);
    c->groups = strs("grp-1", "fullexample");
    c->name = "Acme Clinic \xc3\xa9";
    c->contact = "it@acme.example";
    c->description = "test";
    return c;
}

static void expect_invalid(const atr_client_t *c, int loopback, const char *field)
{
    const char *err = NULL;
    ck_assert_int_eq(atr_client_validate(c, loopback, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, field) == err, "error '%s' does not start with '%s'", err, field);
}

START_TEST(test_escape_rfc4515)
{
    ck_assert_str_eq(atr_registry_filter_escape("*", pool), "\\2a");
    ck_assert_str_eq(atr_registry_filter_escape("(", pool), "\\28");
    ck_assert_str_eq(atr_registry_filter_escape(")", pool), "\\29");
    ck_assert_str_eq(atr_registry_filter_escape("\\", pool), "\\5c");
    ck_assert_str_eq(atr_registry_filter_escape("", pool), "");
    ck_assert_str_eq(atr_registry_filter_escape(NULL, pool), "");
    ck_assert_str_eq(atr_registry_filter_escape("plain-id_1.x~", pool), "plain-id_1.x~");
    /* RFC 4515 section 4 examples. */
    ck_assert_str_eq(atr_registry_filter_escape("Parens R Us (for all your parenthetical needs)", pool),
                     "Parens R Us \\28for all your parenthetical needs\\29");
    ck_assert_str_eq(atr_registry_filter_escape("C:\\MyFile", pool), "C:\\5cMyFile");
    ck_assert_str_eq(atr_registry_filter_escape("Lu\xc4\x8di\xc4\x87", pool), "Lu\\c4\\8di\\c4\\87");
    /* An injection attempt stays one value. */
    ck_assert_str_eq(atr_registry_filter_escape("*)(objectClass=*", pool), "\\2a\\29\\28objectClass=\\2a");
    ck_assert_str_eq(atr_registry_filter_escape_len("a\0b*", 4, pool), "a\\00b\\2a");
    ck_assert_str_eq(atr_registry_filter_escape_len("\x04\x02\x48\x69", 4, pool), "\\04\\02Hi");
}
END_TEST

START_TEST(test_validate_good)
{
    const char *err = "x";
    atr_client_t *c = good_client();
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
    ck_assert_ptr_null(err);
    /* Inline JWKS only (the SMART sample ES384 key). */
    c->jwks_url = NULL;
    c->jwks = spec_file("sample-jwks-ES384.public.json");
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
    c->jwks = spec_file("sample-jwks-RS384.public.json");
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
    /* Empty lists and no texts are fine. */
    c->scopes = c->npis = c->tins = c->contracts = c->groups = NULL;
    c->name = c->contact = c->description = NULL;
    ck_assert_int_eq(atr_client_validate(c, 0, &err, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_validate_client_id)
{
    atr_client_t *c = good_client();
    char longid[130];
    c->client_id = "";
    expect_invalid(c, 0, "client_id");
    c->client_id = NULL;
    expect_invalid(c, 0, "client_id");
    c->client_id = "a b";
    expect_invalid(c, 0, "client_id");
    c->client_id = "a*)(x";
    expect_invalid(c, 0, "client_id");
    c->client_id = "a,ou=x";
    expect_invalid(c, 0, "client_id");
    memset(longid, 'a', 129);
    longid[129] = '\0';
    c->client_id = longid;
    expect_invalid(c, 0, "client_id");
    longid[128] = '\0';
    ck_assert_int_eq(atr_client_validate(c, 0, NULL, pool), APR_SUCCESS);
}
END_TEST

START_TEST(test_validate_jwks_url)
{
    atr_client_t *c = good_client();
    c->jwks_url = "http://acme.example/jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    expect_invalid(c, 1, "JWKS URL");
    c->jwks_url = "http://127.0.0.1:8080/jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    ck_assert_int_eq(atr_client_validate(c, 1, NULL, pool), APR_SUCCESS);
    c->jwks_url = "http://[::1]:8080/jwks.json";
    ck_assert_int_eq(atr_client_validate(c, 1, NULL, pool), APR_SUCCESS);
    c->jwks_url = "http://127.evil.example/jwks.json";
    expect_invalid(c, 1, "JWKS URL");
    c->jwks_url = "ftp://acme.example/jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = "jwks.json";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = "https://acme.example/a b";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = "https://user:pw@acme.example/jwks";
    expect_invalid(c, 0, "JWKS URL");
    c->jwks_url = NULL;
    expect_invalid(c, 0, "keys");
}
END_TEST

START_TEST(test_validate_inline_jwks)
{
    atr_client_t *c = good_client();
    c->jwks_url = NULL;
    c->jwks = "{not json";
    expect_invalid(c, 0, "inline JWKS");
    c->jwks = "{\"keys\":[]}";
    expect_invalid(c, 0, "inline JWKS");
    c->jwks = "[1]";
    expect_invalid(c, 0, "inline JWKS");
    /* HMAC keys are never usable. */
    c->jwks = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k\",\"k\":\"c2VjcmV0\"}]}";
    expect_invalid(c, 0, "inline JWKS");
}
END_TEST

START_TEST(test_validate_lists)
{
    atr_client_t *c = good_client();
    c->scopes = strs("patient/*.read", NULL);
    expect_invalid(c, 0, "scope");
    c->scopes = strs("openid", NULL);
    expect_invalid(c, 0, "scope");
    c->scopes = strs("system/Group.read", "system/Group.read");
    expect_invalid(c, 0, "scope");
    c->scopes = strs("", NULL);
    expect_invalid(c, 0, "scope");
    c = good_client();
    c->npis = strs("1234567890", NULL);       /* wrong check digit */
    expect_invalid(c, 0, "NPI");
    c->npis = strs("123456789", NULL);
    expect_invalid(c, 0, "NPI");
    c->npis = strs("12345678a3", NULL);
    expect_invalid(c, 0, "NPI");
    c = good_client();
    c->tins = strs("12345678", NULL);
    expect_invalid(c, 0, "TIN");
    c->tins = strs("12-3456789", NULL);
    expect_invalid(c, 0, "TIN");
    c = good_client();
    c->contracts = strs("C-42", NULL);
    expect_invalid(c, 0, "contract");
    c->contracts = strs("|C-42", NULL);
    expect_invalid(c, 0, "contract");
    c->contracts = strs("http://x|", NULL);
    expect_invalid(c, 0, "contract");
    c = good_client();
    c->groups = strs("grp 1", NULL);
    expect_invalid(c, 0, "group");
    c->groups = strs("grp/1", NULL);
    expect_invalid(c, 0, "group");
}
END_TEST

START_TEST(test_validate_texts)
{
    atr_client_t *c = good_client();
    c->contact = "nobody";
    expect_invalid(c, 0, "contact");
    c->contact = "caf\xc3\xa9@acme.example";
    expect_invalid(c, 0, "contact");
    c = good_client();
    c->name = "two\nlines";
    expect_invalid(c, 0, "name");
    c = good_client();
    c->description = "tab\there";
    expect_invalid(c, 0, "description");
}
END_TEST

static atr_registry_t *offline_registry(apr_interval_time_t ttl, const char *uris)
{
    atr_registry_conf_t conf;
    atr_registry_t *reg = NULL;
    memset(&conf, 0, sizeof(conf));
    conf.uris = uris;
    conf.base_dn = "ou=clients,dc=atr,dc=example";
    conf.timeout_ms = 500;
    conf.retries = 1;
    conf.cache_ttl = ttl;
    conf.pool_max = 2;
    ck_assert_int_eq(atr_registry_create(&reg, &conf, pool), APR_SUCCESS);
    return reg;
}

START_TEST(test_cache_expiry)
{
    atr_registry_t *reg = offline_registry(apr_time_from_sec(10), "ldap://127.0.0.1:19549");
    atr_client_t *c = good_client(), *got = NULL;
    apr_time_t t0 = apr_time_from_sec(1000000);

    ck_assert_int_eq(atr_registry_cache_get(&got, reg, c->client_id, t0, pool), 0);
    atr_registry_cache_put(reg, c->client_id, c, t0);
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, c->client_id, t0 + apr_time_from_sec(9), pool), 1);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_ne(got, c);   /* a copy */
    ck_assert_str_eq(got->client_id, c->client_id);
    ck_assert_int_eq(got->groups->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(got->groups, 1, const char *), "fullexample");
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, c->client_id, t0 + apr_time_from_sec(10), pool), 0);
    ck_assert_ptr_null(got);

    /* Negative entries. */
    atr_registry_cache_put(reg, "nobody", NULL, t0);
    got = c;
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "nobody", t0 + 1, pool), 1);
    ck_assert_ptr_null(got);
    atr_registry_cache_forget(reg, "nobody");
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "nobody", t0 + 1, pool), 0);
}
END_TEST

START_TEST(test_cache_off_and_bounded)
{
    atr_registry_t *reg = offline_registry(0, "ldap://127.0.0.1:19549");
    atr_client_t *got = NULL;
    apr_time_t t0 = apr_time_from_sec(1000000);
    int i;

    atr_registry_cache_put(reg, "a", good_client(), t0);
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "a", t0, pool), 0);

    reg = offline_registry(apr_time_from_sec(60), "ldap://127.0.0.1:19549");
    for (i = 0; i < ATR_REGISTRY_CACHE_MAX + 10; i++) {
        atr_registry_cache_put(reg, apr_psprintf(pool, "c%d", i), NULL, t0);
        ck_assert_uint_le(atr_registry_cache_count(reg), ATR_REGISTRY_CACHE_MAX);
    }
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, apr_psprintf(pool, "c%d", ATR_REGISTRY_CACHE_MAX + 9),
                                            t0, pool), 1);
}
END_TEST

START_TEST(test_unreachable_fails_closed)
{
    atr_registry_t *reg;
    atr_client_t *got = NULL;
    apr_array_header_t *list = NULL;
    const char *err = NULL, *last;

    atr_log_set_sink(quiet_sink, NULL, ATR_LOG_DEBUG);
    reg = offline_registry(apr_time_from_sec(60), "ldap://127.0.0.1:19548 ldap://127.0.0.1:19549");
    ck_assert_int_eq(atr_registry_client_get(&got, reg, "acme", pool), APR_EGENERAL);
    ck_assert_ptr_null(got);
    last = atr_registry_last_error(reg, pool);
    ck_assert_ptr_nonnull(last);
    ck_assert_ptr_nonnull(strstr(last, "ldap://127.0.0.1:19548"));
    ck_assert_ptr_nonnull(strstr(last, "ldap://127.0.0.1:19549"));
    /* Unreachable is never cached as "not found". */
    ck_assert_int_eq(atr_registry_cache_get(&got, reg, "acme", apr_time_now(), pool), 0);
    ck_assert_int_eq(atr_registry_client_list(&list, reg, NULL, pool), APR_EGENERAL);
    ck_assert_int_ne(atr_registry_client_add(reg, good_client(), &err, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    /* An invalid id never reaches the directory. */
    ck_assert_int_eq(atr_registry_client_get(&got, reg, "*", pool), APR_NOTFOUND);
    atr_log_set_sink(NULL, NULL, ATR_LOG_NOTICE);
}
END_TEST

Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_escape_rfc4515);
    tcase_add_test(tc, test_validate_good);
    tcase_add_test(tc, test_validate_client_id);
    tcase_add_test(tc, test_validate_jwks_url);
    tcase_add_test(tc, test_validate_inline_jwks);
    tcase_add_test(tc, test_validate_lists);
    tcase_add_test(tc, test_validate_texts);
    tcase_add_test(tc, test_cache_expiry);
    tcase_add_test(tc, test_cache_off_and_bounded);
    tcase_add_test(tc, test_unreachable_fails_closed);
    suite_add_tcase(s, tc);
    return s;
}
