/* Unit tests of the Consumer's pure parts (atrctl fetch): RFC 7638 thumbprints, Retry-After,
 * line counting across chunks, error texts from OAuth and OperationOutcome answers, manifest
 * files and their local names. The HTTP flow is tested end to end in test_fetch.py. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_date.h>
#include "check_atr.h"
#include "atr_consumer.h"
#include "atr_jose.h"
#include "atr_json.h"

static apr_pool_t *pool;
static void setup(void) { apr_pool_create(&pool, NULL); }
static void teardown(void) { apr_pool_destroy(pool); }

static json_t *parse(const char *s)
{
    json_t *j = NULL;
    const char *err = NULL;
    ck_assert_int_eq(atr_json_parse(&j, s, strlen(s), &err, pool), APR_SUCCESS);
    return j;
}

START_TEST(test_thumbprint_rfc7638_example)
{
    /* RFC 7638 §3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs */
    json_t *jwks = parse("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"2011-04-29\",\"e\":\"AQAB\",\"n\":\""
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\"}]}");
    apr_array_header_t *keys = NULL;
    const char *err = NULL, *kid = NULL;
    ck_assert_int_eq(atr_jwks_parse(&keys, NULL, jwks, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(keys->nelts, 1);
    ck_assert_int_eq(atr_consumer_thumbprint(&kid, APR_ARRAY_IDX(keys, 0, atr_jwk_t *)->pkey, pool), APR_SUCCESS);
    ck_assert_str_eq(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}
END_TEST

START_TEST(test_thumbprint_ec_is_stable_and_differs)
{
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    const char *ka = NULL, *ka2 = NULL, *kb = NULL;
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(atr_consumer_thumbprint(&ka, a, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_consumer_thumbprint(&ka2, a, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_consumer_thumbprint(&kb, b, pool), APR_SUCCESS);
    ck_assert_str_eq(ka, ka2);
    ck_assert_str_ne(ka, kb);
    ck_assert_uint_eq(strlen(ka), 43);   /* 32 bytes, base64url without padding */
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}
END_TEST

START_TEST(test_retry_after)
{
    apr_time_t now = apr_date_parse_http("Wed, 25 Nov 2026 10:00:00 GMT");
    ck_assert_int_eq(atr_consumer_retry_after("7", now, 2), 7);
    ck_assert_int_eq(atr_consumer_retry_after(" 0 ", now, 2), 0);
    ck_assert_int_eq(atr_consumer_retry_after(NULL, now, 2), 2);
    ck_assert_int_eq(atr_consumer_retry_after("soon", now, 3), 3);
    ck_assert_int_eq(atr_consumer_retry_after("5s", now, 3), 3);
    ck_assert_int_eq(atr_consumer_retry_after("999999", now, 3), 3600);
    ck_assert_int_eq(atr_consumer_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now, 2), 30);
    ck_assert_int_eq(atr_consumer_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now, 2), 0);
}
END_TEST

START_TEST(test_count_lines_across_chunks)
{
    char last = 0;
    apr_int64_t n = 0;
    n += atr_consumer_count_lines("{\"a\":1}\n{\"b\"", 12, &last);
    n += atr_consumer_count_lines(":2}\n", 4, &last);
    n += atr_consumer_count_lines("{\"c\":3}", 7, &last);   /* no final newline: still a line */
    ck_assert_int_eq(n, 3);
    last = 0;
    ck_assert_int_eq(atr_consumer_count_lines("", 0, &last), 0);
    ck_assert_int_eq(atr_consumer_count_lines("x\n", 2, &last), 1);
    ck_assert_int_eq(atr_consumer_count_lines("\n", 1, &last), 1);   /* an empty line after x\n */
    last = 0;
    ck_assert_int_eq(atr_consumer_count_lines("a\nb\nc\n", 6, &last), 3);
}
END_TEST

START_TEST(test_error_text)
{
    const char *oauth = "{\"error\":\"invalid_client\",\"error_description\":\"client assertion\\nrefused\"}";
    const char *oo = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"not-found\","
                     "\"diagnostics\":\"Group/x is not known\"},{\"severity\":\"warning\",\"code\":\"processing\","
                     "\"details\":{\"text\":\"second\"}}]}";
    ck_assert_str_eq(atr_consumer_error_text(401, oauth, strlen(oauth), pool),
                     "HTTP 401, invalid_client: client assertion refused");
    ck_assert_str_eq(atr_consumer_error_text(404, oo, strlen(oo), pool),
                     "HTTP 404, OperationOutcome error/not-found: Group/x is not known; warning/processing: second");
    ck_assert_str_eq(atr_consumer_error_text(502, "Bad\r\nGateway", 12, pool), "HTTP 502: Bad  Gateway");
    ck_assert_str_eq(atr_consumer_error_text(500, NULL, 0, pool), "HTTP 500");
}
END_TEST

START_TEST(test_manifest_files)
{
    json_t *m = parse("{\"transactionTime\":\"2026-11-25T10:00:00Z\",\"requiresAccessToken\":true,\"output\":["
                      "{\"type\":\"Group\",\"url\":\"https://p.example/f/1\",\"count\":1},"
                      "{\"type\":\"Patient\",\"url\":\"https://p.example/f/2\",\"count\":5},"
                      "{\"type\":\"Patient\",\"url\":\"https://p.example/f/3\"}],"
                      "\"error\":[{\"type\":\"OperationOutcome\",\"url\":\"https://p.example/f/e\",\"count\":2}]}");
    apr_array_header_t *files = NULL;
    const char *err = NULL;
    int req = 0;
    atr_consumer_file_t *f;

    ck_assert_int_eq(atr_consumer_manifest_files(&files, &req, m, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(req, 1);
    ck_assert_int_eq(files->nelts, 4);
    f = &APR_ARRAY_IDX(files, 0, atr_consumer_file_t);
    ck_assert_str_eq(f->name, "Group-1.ndjson");
    ck_assert_int_eq(f->count, 1);
    f = &APR_ARRAY_IDX(files, 2, atr_consumer_file_t);
    ck_assert_str_eq(f->name, "Patient-2.ndjson");
    ck_assert_int_eq(f->count, -1);
    f = &APR_ARRAY_IDX(files, 3, atr_consumer_file_t);
    ck_assert_str_eq(f->name, "OperationOutcome-1.ndjson");
    ck_assert_int_eq(f->is_error, 1);

    m = parse("{\"requiresAccessToken\":false,\"output\":[],\"error\":[]}");
    ck_assert_int_eq(atr_consumer_manifest_files(&files, &req, m, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(req, 0);
    ck_assert_int_eq(files->nelts, 0);

    /* a type that would make a path, and an item without url, are refused */
    m = parse("{\"output\":[{\"type\":\"../../etc/passwd\",\"url\":\"https://p.example/x\"}]}");
    ck_assert_int_eq(atr_consumer_manifest_files(&files, &req, m, &err, pool), APR_EINVAL);
    m = parse("{\"output\":[{\"type\":\"Patient\"}]}");
    ck_assert_int_eq(atr_consumer_manifest_files(&files, &req, m, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "no url"));
}
END_TEST

START_TEST(test_create_refuses_plain_http_off_loopback)
{
    atr_consumer_opts_t o;
    atr_consumer_t *c = NULL;
    const char *err = NULL;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

    memset(&o, 0, sizeof(o));
    o.client_id = "c1";
    o.key = k;
    o.base = "http://payer.example/fhir";
    ck_assert_int_eq(atr_consumer_create(&c, &o, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "plain http"));
    o.base = "http://127.0.0.1:8080/fhir/";
    ck_assert_int_eq(atr_consumer_create(&c, &o, &err, pool), APR_SUCCESS);
    o.base = "https://payer.example/fhir";
    ck_assert_int_eq(atr_consumer_create(&c, &o, &err, pool), APR_SUCCESS);
    ck_assert_uint_eq(strlen(atr_consumer_kid(c)), 43);
    o.base = "ftp://payer.example/fhir";
    ck_assert_int_eq(atr_consumer_create(&c, &o, &err, pool), APR_EINVAL);
    EVP_PKEY_free(k);
}
END_TEST

Suite *consumer_suite(void)
{
    Suite *s = suite_create("consumer");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_thumbprint_rfc7638_example);
    tcase_add_test(tc, test_thumbprint_ec_is_stable_and_differs);
    tcase_add_test(tc, test_retry_after);
    tcase_add_test(tc, test_count_lines_across_chunks);
    tcase_add_test(tc, test_error_text);
    tcase_add_test(tc, test_manifest_files);
    tcase_add_test(tc, test_create_refuses_plain_http_off_loopback);
    suite_add_tcase(s, tc);
    return s;
}
