/* atr_json (parsing with positions, getters, extension lookup, OperationOutcome) and atr_time. */
#include <string.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include "check_atr.h"
#include "atr_json.h"
#include "atr_jscan.h"
#include "atr_time.h"

static apr_pool_t *pool;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

START_TEST(json_parse_ok)
{
    const char *text = "{\"b\":1,\"a\":[true,null]}";
    const char *err = "x";
    json_t *j = NULL;

    ck_assert_int_eq(atr_json_parse(&j, text, strlen(text), &err, pool), APR_SUCCESS);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(j);
    /* compact dump keeps the key order */
    ck_assert_str_eq(atr_json_dump(j, pool), text);
}
END_TEST

START_TEST(json_parse_error_position)
{
    const char *text = "{\"a\":1,\n \"b\": tru}";
    const char *err = NULL;
    json_t *j = (json_t *)1;

    ck_assert_int_eq(atr_json_parse(&j, text, strlen(text), &err, pool), APR_EINVAL);
    ck_assert_ptr_null(j);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, "line 2") != NULL, "no line in \"%s\"", err);
    ck_assert_msg(strstr(err, "column") != NULL, "no column in \"%s\"", err);
}
END_TEST

START_TEST(json_parse_rejects_duplicates_and_garbage)
{
    const char *dup = "{\"a\":1,\"a\":2}";
    const char *trailing = "{\"a\":1} x";
    const char *err = NULL;
    json_t *j;

    ck_assert_int_eq(atr_json_parse(&j, dup, strlen(dup), &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(atr_json_parse(&j, trailing, strlen(trailing), &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_json_parse(&j, "", 0, &err, pool), APR_EINVAL);
}
END_TEST

START_TEST(json_getters)
{
    const char *text = "{\"meta\":{\"versionId\":\"3\",\"n\":4},\"s\":\"x\",\"i\":5}";
    json_t *j;

    ck_assert_int_eq(atr_json_parse(&j, text, strlen(text), NULL, pool), APR_SUCCESS);
    ck_assert_str_eq(atr_json_str(j, "s"), "x");
    ck_assert_ptr_null(atr_json_str(j, "i"));
    ck_assert_ptr_null(atr_json_str(j, "missing"));
    ck_assert_ptr_null(atr_json_str(NULL, "s"));
    ck_assert_str_eq(atr_json_path_str(j, "meta", "versionId", NULL), "3");
    ck_assert_ptr_null(atr_json_path_str(j, "meta", "n", NULL));
    ck_assert_ptr_null(atr_json_path_str(j, "s", "deeper", NULL));
}
END_TEST

START_TEST(json_ext_find)
{
    /* The first extension with the url wins; elements without a string url are passed over. */
    const char *text = "{\"extension\":[{\"valueCode\":\"nourl\"},{\"url\":5},"
                       "{\"url\":\"http://x/a\",\"valueCode\":\"a1\"},"
                       "{\"url\":\"http://x/b\",\"valueCode\":\"b\"},"
                       "{\"url\":\"http://x/a\",\"valueCode\":\"a2\"}],"
                       "\"notarray\":{\"extension\":{\"url\":\"http://x/a\"}}}";
    json_t *j;

    ck_assert_int_eq(atr_json_parse(&j, text, strlen(text), NULL, pool), APR_SUCCESS);
    ck_assert_str_eq(atr_json_str(atr_json_ext_find(j, "http://x/a"), "valueCode"), "a1");
    ck_assert_str_eq(atr_json_str(atr_json_ext_find(j, "http://x/b"), "valueCode"), "b");
    ck_assert_ptr_null(atr_json_ext_find(j, "http://x/c"));
    ck_assert_ptr_null(atr_json_ext_find(j, "http://x/"));
    ck_assert_ptr_null(atr_json_ext_find(json_object_get(j, "notarray"), "http://x/a"));
    ck_assert_ptr_null(atr_json_ext_find(json_object_get(j, "extension"), "http://x/a"));
    ck_assert_ptr_null(atr_json_ext_find(NULL, "http://x/a"));
}
END_TEST

START_TEST(json_operation_outcome)
{
    json_t *oo = atr_json_pool_own(atr_oo_make("error", "invalid", "bad thing"), pool);
    json_t *issue;

    ck_assert_str_eq(atr_json_str(oo, "resourceType"), "OperationOutcome");
    ck_assert_int_eq(json_array_size(json_object_get(oo, "issue")), 1);
    issue = json_array_get(json_object_get(oo, "issue"), 0);
    ck_assert_str_eq(atr_json_str(issue, "severity"), "error");
    ck_assert_str_eq(atr_json_str(issue, "code"), "invalid");
    ck_assert_str_eq(atr_json_str(issue, "diagnostics"), "bad thing");
    atr_oo_add(oo, "warning", "not-supported", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(oo, "issue")), 2);
    issue = json_array_get(json_object_get(oo, "issue"), 1);
    ck_assert_ptr_null(json_object_get(issue, "diagnostics"));
}
END_TEST

START_TEST(time_instant_round_trip)
{
    apr_time_t t = 0, t2 = 0;

    ck_assert_int_eq(atr_time_parse_instant(&t, "2024-01-31T12:00:00.123Z"), APR_SUCCESS);
    ck_assert_str_eq(atr_time_instant(t, pool), "2024-01-31T12:00:00.123Z");
    /* zones are folded to UTC */
    ck_assert_int_eq(atr_time_parse_instant(&t2, "2024-01-31T07:00:00.123-05:00"), APR_SUCCESS);
    ck_assert(t == t2);
    ck_assert_int_eq(atr_time_parse_instant(&t, "2019-06-06T03:04:12.348-04:00"), APR_SUCCESS);
    ck_assert_str_eq(atr_time_instant(t, pool), "2019-06-06T07:04:12.348Z");
    ck_assert_int_eq(atr_time_parse_instant(&t, "2024-02-29T00:00:00Z"), APR_SUCCESS);
    ck_assert_str_eq(atr_time_instant(t, pool), "2024-02-29T00:00:00.000Z");
}
END_TEST

START_TEST(time_bad_values)
{
    apr_time_t t, e;
    static const char *const bad[] = {
        "", "2024", "2024-01-31", "2024-01-31T12:00:00", "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z", "2024-01-31T24:00:00Z", "2024-01-31T12:00:00.Z",
        "2024-01-31T12:00:00Zjunk", "2024-01-31 12:00:00Z", "abcd-01-01T00:00:00Z",
        "2024-01-31T12:00:00+5:00", NULL
    };
    int i;

    for (i = 0; bad[i]; i++) {
        ck_assert_msg(atr_time_parse_instant(&t, bad[i]) == APR_EINVAL, "accepted \"%s\"", bad[i]);
    }
    ck_assert_int_eq(atr_time_parse_instant(&t, NULL), APR_EINVAL);
    /* dates of any precision are datetimes, with the end of their range */
    ck_assert_int_eq(atr_time_parse_datetime(&t, &e, "2024-02"), APR_SUCCESS);
    ck_assert_str_eq(atr_time_instant(t, pool), "2024-02-01T00:00:00.000Z");
    ck_assert_str_eq(atr_time_instant(e, pool), "2024-03-01T00:00:00.000Z");
    ck_assert_int_eq(atr_time_parse_datetime(&t, &e, "2024-12-31"), APR_SUCCESS);
    ck_assert_str_eq(atr_time_instant(e, pool), "2025-01-01T00:00:00.000Z");
    ck_assert(atr_time_is_date("2024-12-31"));
    ck_assert(!atr_time_is_date("2024-12"));
    ck_assert(!atr_time_is_date("2024-12-32"));
}
END_TEST

/* Scan text; returns the compacted copy (NULL when the scanner refuses it). */
static const char *scan(atr_jscan_t *sc, const char *text)
{
    char *buf = apr_pstrdup(pool, text);
    if (!atr_jscan_object(sc, buf, strlen(buf))) return NULL;
    buf[sc->len] = '\0';
    return buf;
}

static const char *span(const char *text, apr_size_t s, apr_size_t e)
{
    return apr_pstrmemdup(pool, text + s, e - s);
}

START_TEST(jscan_compacts_like_jansson)
{
    static const char *const texts[] = {
        "{\"resourceType\":\"Patient\",\"id\":\"a\"}",
        " { \"a\" : [ 1 , -2 , true , false , null , { } , [ ] ] ,\n \"b\":\"x y\\n\\\"q\\\"\" }\r\n",
        "{\"name\":\"Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"n\":123456789012345678}",
        NULL
    };
    int i;

    for (i = 0; texts[i]; i++) {
        atr_jscan_t sc;
        const char *out = scan(&sc, texts[i]);
        json_t *j;
        ck_assert_msg(out != NULL, "refused %s", texts[i]);
        ck_assert_msg(sc.canonical, "not canonical: %s", texts[i]);
        ck_assert_int_eq(atr_json_parse(&j, texts[i], strlen(texts[i]), NULL, pool), APR_SUCCESS);
        ck_assert_str_eq(out, atr_json_dump(j, pool));
    }
}
END_TEST

START_TEST(jscan_not_canonical)
{
    static const char *const texts[] = {
        "{\"a\":\"\\u00e9\"}", "{\"a\":\"x\\/y\"}", "{\"a\":1.5}", "{\"a\":1e3}", "{\"a\":-0}",
        "{\"a\":1234567890123456789}", NULL
    };
    int i;

    for (i = 0; texts[i]; i++) {
        atr_jscan_t sc;
        ck_assert_msg(scan(&sc, texts[i]) != NULL, "refused %s", texts[i]);
        ck_assert_msg(!sc.canonical, "canonical: %s", texts[i]);
    }
}
END_TEST

START_TEST(jscan_refuses_bad_json)
{
    static const char *const texts[] = {
        "", "[1]", "\"s\"", "{", "{\"a\":1,}", "{\"a\":1}{}", "{\"a\":1} x", "{\"a\" 1}", "{a:1}",
        "{\"a\":01}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"tab\there\"}",
        "{\"a\":1,\"a\":2}", "{\"o\":{\"k\":1,\"k\":1}}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":[1,]}", "{\"a\":\"\\u12\"}", "{\"a\":1.}", "{\"a\":1e}",
        NULL
    };
    int i;

    for (i = 0; texts[i]; i++) {
        atr_jscan_t sc;
        ck_assert_msg(scan(&sc, texts[i]) == NULL, "accepted %s", texts[i]);
    }
}
END_TEST

START_TEST(jscan_spans_and_members)
{
    atr_jscan_t sc;
    const char *t;
    apr_size_t pos, s, e, vs, ve;

    t = scan(&sc, "{\"resourceType\":\"Group\",\"id\":\"g1\",\"meta\":{\"versionId\":\"3\"},"
                  "\"member\":[{\"entity\":{\"reference\":\"Patient/1\"}}, {\"entity\":{\"reference\":\"P,]\\\"2\"}}],\"name\":\"n\"}");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(span(t, sc.type_s, sc.type_e), "\"Group\"");
    ck_assert_str_eq(span(t, sc.id_s, sc.id_e), "\"g1\"");
    ck_assert(sc.meta_version);
    ck_assert_int_eq(sc.member_count, 2);
    ck_assert_str_eq(apr_pstrcat(pool, span(t, 0, sc.member_pair_s), t + sc.member_pair_e, NULL),
                     "{\"resourceType\":\"Group\",\"id\":\"g1\",\"meta\":{\"versionId\":\"3\"},\"name\":\"n\"}");
    pos = sc.member_s + 1;
    ck_assert(atr_jscan_next(t, &pos, sc.member_e, &s, &e));
    ck_assert_str_eq(span(t, s, e), "{\"entity\":{\"reference\":\"Patient/1\"}}");
    ck_assert(atr_jscan_next(t, &pos, sc.member_e, &s, &e));
    ck_assert_str_eq(span(t, s, e), "{\"entity\":{\"reference\":\"P,]\\\"2\"}}");
    ck_assert(atr_jscan_field(t, s, e, "entity", &vs, &ve));
    ck_assert_str_eq(span(t, vs, ve), "{\"reference\":\"P,]\\\"2\"}");
    ck_assert(!atr_jscan_field(t, s, e, "period", &vs, &ve));
    ck_assert(!atr_jscan_next(t, &pos, sc.member_e, &s, &e));

    /* member first: the comma after it goes with it */
    t = scan(&sc, "{\"member\":[],\"resourceType\":\"Group\"}");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sc.member_count, 0);
    ck_assert_str_eq(apr_pstrcat(pool, span(t, 0, sc.member_pair_s), t + sc.member_pair_e, NULL),
                     "{\"resourceType\":\"Group\"}");
    /* a nested meta.versionId is not the resource's */
    t = scan(&sc, "{\"x\":{\"meta\":{\"versionId\":\"1\"}}}");
    ck_assert(!sc.meta_version);
}
END_TEST

Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_parse_ok);
    tcase_add_test(tc, json_parse_error_position);
    tcase_add_test(tc, json_parse_rejects_duplicates_and_garbage);
    tcase_add_test(tc, json_getters);
    tcase_add_test(tc, json_ext_find);
    tcase_add_test(tc, json_operation_outcome);
    tcase_add_test(tc, jscan_compacts_like_jansson);
    tcase_add_test(tc, jscan_not_canonical);
    tcase_add_test(tc, jscan_refuses_bad_json);
    tcase_add_test(tc, jscan_spans_and_members);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, time_instant_round_trip);
    tcase_add_test(tc, time_bad_values);
    suite_add_tcase(s, tc);
    return s;
}
