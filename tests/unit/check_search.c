/* Group search: query-string decoding, parameter parsing (every identifier form, :of-type
 * errors, name modifiers, _count bounds, strict mode, self_query) and evaluation on a
 * temporary SQLite store holding the IG Group examples and a few Groups made here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "check_atr.h"
#include "atr_db.h"
#include "atr_json.h"
#include "atr_search.h"
#include "atr_store.h"
#include "atr_time.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];

/* ---------------------------------------------------------------- helpers */

static apr_array_header_t *params_of(const char *query)
{
    apr_array_header_t *params;
    const char *err = NULL;
    ck_assert_int_eq(atr_query_parse(&params, query, &err, pool), APR_SUCCESS);
    return params;
}

static atr_search_t *parse_ok(const char *query, int strict)
{
    atr_search_t *s;
    const char *err = NULL;
    apr_status_t rv = atr_search_parse(&s, params_of(query), strict, ATR_SEARCH_MAX_COUNT, &err, pool);
    ck_assert_msg(rv == APR_SUCCESS, "'%s' refused: %s", query, err ? err : "?");
    return s;
}

static const char *parse_err(const char *query, int strict)
{
    atr_search_t *s;
    const char *err = NULL;
    apr_status_t rv = atr_search_parse(&s, params_of(query), strict, ATR_SEARCH_MAX_COUNT, &err, pool);
    ck_assert_msg(rv == APR_EINVAL, "'%s' was accepted", query);
    ck_assert_ptr_nonnull(err);
    return err;
}

/* ---------------------------------------------------------------- query strings */

START_TEST(query_decoding)
{
    apr_array_header_t *p = params_of("a=1&b=x+y&&c=%41%2c%7C&flag&=orphan&d=");
    ck_assert_int_eq(p->nelts, 5);
    ck_assert_str_eq(APR_ARRAY_IDX(p, 0, atr_param_t).name, "a");
    ck_assert_str_eq(APR_ARRAY_IDX(p, 0, atr_param_t).value, "1");
    ck_assert_str_eq(APR_ARRAY_IDX(p, 1, atr_param_t).value, "x y");
    ck_assert_str_eq(APR_ARRAY_IDX(p, 2, atr_param_t).value, "A,|");
    ck_assert_str_eq(APR_ARRAY_IDX(p, 3, atr_param_t).name, "flag");
    ck_assert_str_eq(APR_ARRAY_IDX(p, 3, atr_param_t).value, "");
    ck_assert_str_eq(APR_ARRAY_IDX(p, 4, atr_param_t).name, "d");
    ck_assert_int_eq(params_of(NULL)->nelts, 0);
    ck_assert_int_eq(params_of("")->nelts, 0);
}
END_TEST

START_TEST(query_bad_escapes)
{
    static const char *const bad[] = { "a=%G1", "a=%4", "a=%", "a=x%00y", "%zz=1", NULL };
    int i;
    for (i = 0; bad[i]; i++) {
        apr_array_header_t *p;
        const char *err = NULL;
        ck_assert_msg(atr_query_parse(&p, bad[i], &err, pool) == APR_EINVAL, "'%s' accepted", bad[i]);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

/* ---------------------------------------------------------------- parsing */

START_TEST(parse_identifier_forms)
{
    parse_ok("identifier=http://hl7.org/fhir/sid/us-npi|9941339108", 0);
    parse_ok("identifier=9941339108", 0);
    parse_ok("identifier=|9941339108", 0);
    parse_ok("identifier=urn:oid:2.16.840.1.113883.4.4|", 0);
    parse_ok("identifier=s|a,s|b", 0);
    parse_ok("identifier=a\\|b", 0);                    /* escaped '|' is part of the value */
    ck_assert_ptr_nonnull(strstr(parse_err("identifier=|", 0), "identifier"));
    parse_err("identifier=a|b|c", 0);
    parse_err("identifier=a,", 0);                      /* empty alternative */
}
END_TEST

START_TEST(parse_of_type_needs_three_parts)
{
    parse_ok("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NPI|9941339108", 0);
    ck_assert_ptr_nonnull(strstr(parse_err("identifier:of-type=NPI|9941339108", 0), "of-type"));
    parse_err("identifier:of-type=9941339108", 0);
    parse_err("identifier:of-type=|NPI|9941339108", 0);
    parse_err("identifier:of-type=sys||9941339108", 0);
    parse_err("identifier:of-type=sys|NPI|", 0);
    parse_err("identifier:of-type=a|b|c|d", 0);
}
END_TEST

START_TEST(parse_name_and_characteristic)
{
    parse_ok("name=Test", 0);
    parse_ok("name:exact=Test%20Group%203", 0);
    parse_ok("name:contains=group", 0);
    parse_ok("characteristic=attributed-to", 0);
    parse_ok("characteristic=http://hl7.org/fhir/us/davinci-atr/CodeSystem/davinci-group-characteristic-codes|attributed-to", 0);
    parse_ok("characteristic-value=attributed-to$Practitioner/1", 0);
    parse_ok("characteristic-value=sys|attributed-to$Practitioner/1", 0);
    parse_ok("characteristic-value=code$token", 0);
    parse_err("characteristic-value=attributed-to", 0);
    parse_err("characteristic-value=attributed-to$", 0);
    parse_err("characteristic=sys|", 0);
    parse_ok("_id=a,b", 0);
}
END_TEST

START_TEST(parse_count_bounds)
{
    atr_search_t *s = parse_ok("identifier=x", 0);
    ck_assert_int_eq(s->count, ATR_SEARCH_DEFAULT_COUNT);
    ck_assert_int_eq(s->count_given, 0);
    s = parse_ok("_count=10&_offset=20", 0);
    ck_assert_int_eq(s->count, 10);
    ck_assert_int_eq(s->count_given, 1);
    ck_assert_int_eq(s->offset, 20);
    s = parse_ok("_count=0", 0);
    ck_assert_int_eq(s->count, 0);
    s = parse_ok("_count=999999", 0);
    ck_assert_int_eq(s->count, ATR_SEARCH_MAX_COUNT);
    parse_err("_count=-1", 0);
    parse_err("_count=abc", 0);
    parse_err("_count=1e3", 0);
    parse_err("_offset=x", 0);
}
END_TEST

START_TEST(parse_summary_elements)
{
    ck_assert_int_eq(parse_ok("_summary=true", 0)->summary, ATR_SUMMARY_TRUE);
    ck_assert_int_eq(parse_ok("_summary=false", 0)->summary, ATR_SUMMARY_FALSE);
    ck_assert_int_eq(parse_ok("_summary=count", 0)->summary, ATR_SUMMARY_COUNT);
    parse_err("_summary=text", 0);
    ck_assert_int_eq(parse_ok("_elements=identifier,name", 0)->elements->nelts, 2);
    parse_err("_elements=a.b", 0);
}
END_TEST

START_TEST(parse_unknown_and_strict)
{
    atr_search_t *s = parse_ok("foo=bar&identifier=x&_sort=name", 0);
    ck_assert_int_eq(s->ignored->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(s->ignored, 0, const char *), "foo");
    ck_assert_str_eq(s->self_query, "identifier=x");
    ck_assert_ptr_nonnull(strstr(parse_err("foo=bar&identifier=x", 1), "foo"));
    parse_err("identifier:text=x", 1);
    /* empty values are ignored (R4), strict or not; _format is the HTTP layer's */
    parse_ok("identifier=&_format=json", 1);
}
END_TEST

START_TEST(parse_self_query)
{
    atr_search_t *s = parse_ok("identifier=http://hl7.org/fhir/sid/us-npi%7C123&name=a+b&_summary=true"
                               "&_count=5&_offset=5&_format=json&zzz=1", 0);
    ck_assert_str_eq(s->self_query, "identifier=http://hl7.org/fhir/sid/us-npi|123&name=a%20b&_summary=true");
    ck_assert_str_eq(parse_ok("", 0)->self_query, "");
    ck_assert_str_eq(parse_ok("name=%26%3D", 0)->self_query, "name=%26%3D");
}
END_TEST

/* ---------------------------------------------------------------- evaluation */

static json_t *fixture(const char *name)
{
    const char *d = getenv("ATR_SPEC_DIR");
    const char *path = apr_psprintf(pool, "%s/atr/2.1.0/examples/%s", d ? d : ATR_TEST_SPEC_DIR, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    ck_assert_msg(j != NULL, "cannot read fixture %s: %s", path, err.text);
    return atr_json_pool_own(j, pool);
}

static void put(json_t *res)
{
    int version, changed;
    const char *err = NULL;
    apr_status_t rv = atr_store_put(&version, &changed, db, res, apr_time_now(), &err, pool);
    ck_assert_msg(rv == APR_SUCCESS, "store_put: %s", err ? err : "?");
}

static void put_group(const char *id, const char *name, const char *npi)
{
    json_t *g = json_pack("{s:s, s:s, s:s, s:s, s:b, s:[{s:s, s:s}]}", "resourceType", "Group", "id", id,
                          "name", name, "type", "person", "actual", 1,
                          "identifier", "system", "http://hl7.org/fhir/sid/us-npi", "value", npi);
    put(atr_json_pool_own(g, pool));
}

static void setup_store(void)
{
    const char *err = NULL;

    apr_pool_create(&pool, NULL);
    strcpy(tmpdir, "/tmp/atr-search-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
    put(fixture("Group-fullexample.json"));
    put(fixture("Group-davincipatientlistexample.json"));
    put_group("pct", "50% Off_Plan", "1111111111");
    put_group("pctx", "500 Offers", "2222222222");
    put_group("accent", "\xc3\x89" "cole Sant\xc3\xa9", "3333333333");
}

static void setup_plain(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown_store(void)
{
    const char *cmd = apr_psprintf(pool, "rm -rf '%s'", tmpdir);
    apr_pool_destroy(pool);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown_plain(void)
{
    apr_pool_destroy(pool);
}

/* Run query; the matching ids joined with ',' (sorted). */
static const char *run(const char *query)
{
    apr_array_header_t *ids;
    atr_search_t *s = parse_ok(query, 0);
    ck_assert_int_eq(atr_search_run(&ids, db, s, pool), APR_SUCCESS);
    return apr_array_pstrcat(pool, ids, ',');
}

START_TEST(run_identifier_forms)
{
    ck_assert_str_eq(run("identifier=http://hl7.org/fhir/sid/us-npi|9941339108"), "fullexample");
    ck_assert_str_eq(run("identifier=9941339108"), "fullexample");
    ck_assert_str_eq(run("identifier=|9941339108"), "");            /* it has a system */
    ck_assert_str_eq(run("identifier=urn:oid:2.16.840.1.113883.4.4|"), "fullexample");
    ck_assert_str_eq(run("identifier=http://hl7.org/fhir/sid/us-npi|"), "accent,fullexample,pct,pctx");
    ck_assert_str_eq(run("identifier=http://other|9941339108"), "");
    /* OR within, AND across */
    ck_assert_str_eq(run("identifier=1111111111,2222222222"), "pct,pctx");
    ck_assert_str_eq(run("identifier=1111111111,2222222222&identifier=2222222222"), "pctx");
    ck_assert_str_eq(run("identifier=1111111111&identifier=2222222222"), "");
}
END_TEST

START_TEST(run_of_type)
{
    ck_assert_str_eq(run("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NPI|9941339108"),
                     "fullexample");
    ck_assert_str_eq(run("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|TAX|9941339108"), "");
    ck_assert_str_eq(run("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|TAX|789456231"
                         "&identifier=http://hl7.org/fhir/sid/us-npi|9941339108"), "fullexample");
}
END_TEST

START_TEST(run_name_modifiers)
{
    ck_assert_str_eq(run("name=test"), "fullexample");
    ck_assert_str_eq(run("name=TEST%20GROUP"), "fullexample");
    ck_assert_str_eq(run("name=group"), "");                         /* starts-with by default */
    ck_assert_str_eq(run("name:contains=group"), "davincipatientlistexample,fullexample");
    ck_assert_str_eq(run("name:exact=Test%20Group%203"), "fullexample");
    ck_assert_str_eq(run("name:exact=test%20group%203"), "");
    /* LIKE metacharacters are literal */
    ck_assert_str_eq(run("name=50%25"), "pct");
    ck_assert_str_eq(run("name=50_"), "");
    ck_assert_str_eq(run("name:contains=f_p"), "pct");
    ck_assert_str_eq(run("name=5"), "pct,pctx");
    /* accent-insensitive both ways */
    ck_assert_str_eq(run("name=ecole"), "accent");
    ck_assert_str_eq(run("name:contains=SANT%C3%89"), "accent");
}
END_TEST

START_TEST(run_characteristic_and_id)
{
    ck_assert_str_eq(run("characteristic=attributed-to"), "davincipatientlistexample");
    ck_assert_str_eq(run("characteristic=http://hl7.org/fhir/us/davinci-atr/CodeSystem/davinci-group-characteristic-codes|attributed-to"),
                     "davincipatientlistexample");
    ck_assert_str_eq(run("characteristic=http://other|attributed-to"), "");
    ck_assert_str_eq(run("characteristic-value=attributed-to$Practitioner/1"), "davincipatientlistexample");
    ck_assert_str_eq(run("characteristic-value=attributed-to$Practitioner/2"), "");
    ck_assert_str_eq(run("_id=pct,fullexample,nope"), "fullexample,pct");
    ck_assert_str_eq(run(""), "accent,davincipatientlistexample,fullexample,pct,pctx");
    ck_assert_str_eq(run("foo=bar"), "accent,davincipatientlistexample,fullexample,pct,pctx");
}
END_TEST

Suite *search_suite(void)
{
    Suite *s = suite_create("search");
    TCase *tc = tcase_create("parse");
    TCase *tr = tcase_create("run");

    tcase_add_checked_fixture(tc, setup_plain, teardown_plain);
    tcase_add_test(tc, query_decoding);
    tcase_add_test(tc, query_bad_escapes);
    tcase_add_test(tc, parse_identifier_forms);
    tcase_add_test(tc, parse_of_type_needs_three_parts);
    tcase_add_test(tc, parse_name_and_characteristic);
    tcase_add_test(tc, parse_count_bounds);
    tcase_add_test(tc, parse_summary_elements);
    tcase_add_test(tc, parse_unknown_and_strict);
    tcase_add_test(tc, parse_self_query);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(tr, setup_store, teardown_store);
    tcase_add_test(tr, run_identifier_forms);
    tcase_add_test(tr, run_of_type);
    tcase_add_test(tr, run_name_modifiers);
    tcase_add_test(tr, run_characteristic_and_id);
    suite_add_tcase(s, tr);
    return s;
}
