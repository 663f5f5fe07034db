/* Roster apply (atr_roster.c) on a temporary SQLite store: every changeType case,
 * multi-provider members, previously dropped entries, DM-02, bad rows, nothing written on error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "check_atr.h"
#include "atr_db.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_roster.h"
#include "atr_store.h"
#include "atr_time.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];

#define HEADER "member_id,payer_id,contract_id,plan_id,provider,period_start,period_end,coverage\n"

static void put(const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    const char *err = NULL;
    int version = 0, changed = 0;
    ck_assert_msg(j != NULL, "bad fixture JSON: %s", jerr.text);
    atr_json_pool_own(j, pool);
    ck_assert_int_eq(atr_store_put(&version, &changed, db, j, apr_time_now(), &err, pool), APR_SUCCESS);
}

static void setup(void)
{
    const char *err = NULL;
    int i;

    apr_pool_create(&pool, NULL);
    strcpy(tmpdir, "/tmp/atr-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
    for (i = 1; i <= 4; i++) {
        put(apr_psprintf(pool, "{\"resourceType\":\"Patient\",\"id\":\"pat-%d\",\"identifier\":[{\"type\":"
                         "{\"coding\":[{\"system\":\"" ATR_SYS_V2_0203 "\",\"code\":\"MB\"}]},"
                         "\"system\":\"http://example.org/member\",\"value\":\"M%d\"}]}", i, i));
    }
    /* roster coverage references must name stored Coverages */
    for (i = 1; i <= 4; i++) {
        put(apr_psprintf(pool, "{\"resourceType\":\"Coverage\",\"id\":\"cov-%d\",\"status\":\"active\"}", i));
    }
    put("{\"resourceType\":\"Practitioner\",\"id\":\"prac-1\",\"identifier\":[{\"system\":\"" ATR_SYS_NPI
        "\",\"value\":\"1234567893\"}]}");
    put("{\"resourceType\":\"Organization\",\"id\":\"org-1\",\"identifier\":[{\"system\":\"" ATR_SYS_TIN
        "\",\"value\":\"12-3456789\"}]}");
    put("{\"resourceType\":\"Group\",\"id\":\"g1\",\"identifier\":[{\"system\":\"http://example.org/contract\","
        "\"value\":\"C1\"}],\"name\":\"Roster test\",\"type\":\"person\",\"actual\":true}");
}

static void teardown(void)
{
    const char *cmd = apr_psprintf(pool, "rm -rf '%s'", tmpdir);
    apr_pool_destroy(pool);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *roster(const char *name, const char *text)
{
    const char *path = apr_psprintf(pool, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static apr_status_t collect(void *baton, const char *member_json, apr_pool_t *ptemp)
{
    (void)ptemp;
    APR_ARRAY_PUSH((apr_array_header_t *)baton, const char *) = apr_pstrdup(pool, member_json);
    return APR_SUCCESS;
}

static apr_array_header_t *members(int version)
{
    apr_array_header_t *a = apr_array_make(pool, 8, sizeof(const char *));
    ck_assert_int_eq(atr_store_group_members(db, "g1", version, 2, collect, a, pool), APR_SUCCESS);
    return a;
}

/* The entry of entity x provider in a member list: "changeType/inactive", or "absent". */
static const char *entry(apr_array_header_t *a, const char *entity, const char *provider)
{
    int i;
    for (i = 0; i < a->nelts; i++) {
        const char *m = APR_ARRAY_IDX(a, i, const char *);
        json_error_t jerr;
        json_t *j = json_loads(m, 0, &jerr), *e;
        size_t k;
        const char *prov = NULL, *ct = NULL;
        ck_assert_ptr_nonnull(j);
        atr_json_pool_own(j, pool);
        json_array_foreach(json_object_get(j, "extension"), k, e) {
            const char *url = atr_json_str(e, "url");
            if (!strcmp(url, ATR_EXT_PROVIDER)) prov = atr_json_path_str(e, "valueReference", "reference", NULL);
            if (!strcmp(url, ATR_EXT_CHANGE_TYPE)) ct = atr_json_str(e, "valueCode");
        }
        if (strcmp(atr_json_path_str(j, "entity", "reference", NULL), entity) || !prov || strcmp(prov, provider))
            continue;
        return apr_psprintf(pool, "%s/%s", ct, json_is_true(json_object_get(j, "inactive")) ? "inactive" : "active");
    }
    return "absent";
}

static atr_roster_result_t *apply(const char *path, int dry_run, apr_status_t want)
{
    atr_roster_result_t *res = NULL;
    const char *err = NULL;
    apr_status_t rv = atr_roster_apply(&res, db, "g1", path, dry_run, apr_time_now(), &err, pool);
    if (rv != want && res) { int k; for (k = 0; k < res->errors->nelts; k++) fprintf(stderr, "%s\n", APR_ARRAY_IDX(res->errors, k, const char *)); }
    ck_assert_msg(rv == want, "apply %s: %d (%s)", path, rv, err ? err : "");
    return res;
}

static int current_version(void)
{
    atr_resource_t *r = NULL;
    ck_assert_int_eq(atr_store_get(&r, db, "Group", "g1", 0, pool), APR_SUCCESS);
    return r->version;
}

static void counts_are(const atr_roster_result_t *r, long n, long c, long u, long d)
{
    ck_assert_int_eq(r->counts[ATR_ROSTER_NEW], n);
    ck_assert_int_eq(r->counts[ATR_ROSTER_CHANGED], c);
    ck_assert_int_eq(r->counts[ATR_ROSTER_NOCHANGE], u);
    ck_assert_int_eq(r->counts[ATR_ROSTER_DROPPED], d);
}

START_TEST(test_three_months)
{
    atr_roster_result_t *r;
    apr_array_header_t *a;
    atr_resource_t *g;

    /* month 1: member ids and NPI/TIN resolve; pat-2 has two providers (DM-13) */
    r = apply(roster("m1.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"
        "M2,P1,C1,PLAN-A,1234567893,2025-01-01,2025-06-30,Coverage/cov-2\n"
        "M2,P1,C1,PLAN-A,123456789,2025-07-01,2025-12-31,Coverage/cov-2\n"
        "Patient/pat-3,P1,C1,PLAN-A,Practitioner/prac-1,2025-01-01,,\n"), 0, APR_SUCCESS);
    counts_are(r, 4, 0, 0, 0);
    ck_assert_int_eq(r->version, 2);
    ck_assert_int_eq(r->written, 1);
    a = members(2);
    ck_assert_int_eq(a->nelts, 4);
    ck_assert_str_eq(entry(a, "Patient/pat-2", "Practitioner/prac-1"), "new/active");
    ck_assert_str_eq(entry(a, "Patient/pat-2", "Organization/org-1"), "new/active");
    ck_assert_str_eq(entry(a, "Patient/pat-3", "Practitioner/prac-1"), "new/active");

    /* month 2: nochange, changed (period; coverage), dropped, new */
    r = apply(roster("m2.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"
        "M2,P1,C1,PLAN-A,1234567893,2025-01-01,2025-05-31,Coverage/cov-2\n"
        "M3,P1,C1,PLAN-A,1234567893,2025-01-01,,Coverage/cov-3\n"
        "M4,P1,C1,PLAN-A,Practitioner/prac-1,2025-02-01,2025-12-31,Coverage/cov-4\n"), 0, APR_SUCCESS);
    counts_are(r, 1, 2, 1, 1);
    ck_assert_int_eq(r->version, 3);
    a = members(3);
    ck_assert_int_eq(a->nelts, 5);
    ck_assert_str_eq(entry(a, "Patient/pat-1", "Practitioner/prac-1"), "nochange/active");
    ck_assert_str_eq(entry(a, "Patient/pat-2", "Practitioner/prac-1"), "changed/active");
    ck_assert_str_eq(entry(a, "Patient/pat-2", "Organization/org-1"), "dropped/inactive");
    ck_assert_str_eq(entry(a, "Patient/pat-3", "Practitioner/prac-1"), "changed/active");
    ck_assert_str_eq(entry(a, "Patient/pat-4", "Practitioner/prac-1"), "new/active");

    /* month 3: the entry dropped in month 2 is not carried again; a returning member x
     * provider is new */
    r = apply(roster("m3.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"
        "M2,P1,C1,PLAN-A,12-3456789,2025-07-01,2025-12-31,Coverage/cov-2\n"), 0, APR_SUCCESS);
    counts_are(r, 1, 0, 1, 3);
    a = members(4);
    ck_assert_int_eq(a->nelts, 5);
    ck_assert_str_eq(entry(a, "Patient/pat-2", "Organization/org-1"), "new/active");
    ck_assert_str_eq(entry(a, "Patient/pat-2", "Practitioner/prac-1"), "dropped/inactive");
    ck_assert_str_eq(entry(a, "Patient/pat-4", "Practitioner/prac-1"), "dropped/inactive");

    /* earlier versions stay as they were; the Group's own content is kept */
    a = members(2);
    ck_assert_int_eq(a->nelts, 4);
    ck_assert_int_eq(atr_store_get(&g, db, "Group", "g1", 4, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(g->body, "Roster test"));

    /* the same roster again and again: pat-2 x org-1 is dropped once, then no longer
     * carried; after that nothing changes and no version is written */
    r = apply(roster("m3.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"), 0, APR_SUCCESS);
    counts_are(r, 0, 0, 1, 1);
    r = apply(roster("m3.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"), 0, APR_SUCCESS);
    counts_are(r, 0, 0, 1, 0);
    ck_assert_int_eq(r->written, 1);
    ck_assert_int_eq(members(r->version)->nelts, 1);
    r = apply(roster("m3.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"), 0, APR_SUCCESS);
    counts_are(r, 0, 0, 1, 0);
    ck_assert_int_eq(r->written, 0);
    ck_assert_int_eq(current_version(), r->version);
}
END_TEST

START_TEST(test_dry_run)
{
    atr_roster_result_t *r;
    r = apply(roster("d.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"
        "M2,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,\n"), 1, APR_SUCCESS);
    counts_are(r, 2, 0, 0, 0);
    ck_assert_int_eq(r->sample->nelts, 2);
    ck_assert_ptr_nonnull(strstr(APR_ARRAY_IDX(r->sample, 0, const char *), "line 2: new Patient/pat-1"));
    ck_assert_int_eq(r->written, 0);
    ck_assert_int_eq(current_version(), 1);
    ck_assert_int_eq(members(1)->nelts, 0);
}
END_TEST

static int has_error(const atr_roster_result_t *r, const char *text)
{
    int i;
    for (i = 0; i < r->errors->nelts; i++) {
        if (strstr(APR_ARRAY_IDX(r->errors, i, const char *), text)) return 1;
    }
    return 0;
}

START_TEST(test_bad_rows)
{
    atr_roster_result_t *r;
    int i;
    r = apply(roster("bad.csv", HEADER
        "M1,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-1\n"     /* 2: good */
        "M9,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,\n"                   /* 3: unknown member */
        "M2,P1,C1,PLAN-A,9999999999,2025-01-01,2025-12-31,\n"                   /* 4: unknown provider */
        "M2,P1,C1,PLAN-A,Organization/org-1,2025-13-01,2025-12-31,\n"           /* 5: bad date */
        "M3,P1,C1,PLAN-A,1234567893,2025-06-01,2025-05-31,\n"                   /* 6: end before start */
        "M3,P1,C1,PLAN-A,1234567893,2025-06-01\n"                               /* 7: columns */
        "M4,P\"1,C1,PLAN-A,1234567893,2025-06-01,,\n"                           /* 8: quoting */
        "M1,P1,C1,PLAN-A,Practitioner/prac-1,2025-01-01,2025-12-31,\n"         /* 9: repeats 2 */
        "M4,P1,C1,PLAN-A,1234567893,2025-01-01,2025-12-31,Coverage/cov-9\n"),   /* 10: unknown coverage */
        0, APR_EINVAL);
    ck_assert_int_eq(r->nerrors, 8);
    ck_assert(has_error(r, "line 10: unknown coverage Coverage/cov-9"));
    ck_assert(has_error(r, "line 3: unknown member (member identifier M9)"));
    ck_assert(has_error(r, "line 4: unknown provider (NPI 9999999999)"));
    ck_assert(has_error(r, "line 5: period_start"));
    ck_assert(has_error(r, "line 6: period_end 2025-05-31 is before"));
    ck_assert(has_error(r, "line 7: 6 columns"));
    ck_assert(has_error(r, "line 8: quote inside"));
    ck_assert(has_error(r, "line 9: same member and provider as line 2"));
    ck_assert(has_error(r, "DM-02"));
    ck_assert_int_eq(current_version(), 1);
    ck_assert_int_eq(members(1)->nelts, 0);

    /* more than ATR_ROSTER_MAX_ERRORS: all counted, the first ones listed */
    {
        const char *text = HEADER;
        for (i = 0; i < 30; i++) text = apr_pstrcat(pool, text, "M9,P1,C1,PLAN-A,1234567893,2025-01-01,,\n", NULL);
        r = apply(roster("many.csv", text), 0, APR_EINVAL);
        ck_assert_int_eq(r->nerrors, 30);
        ck_assert_int_eq(r->errors->nelts, ATR_ROSTER_MAX_ERRORS);
    }
    ck_assert_int_eq(current_version(), 1);
}
END_TEST

START_TEST(test_csv_quoting)
{
    atr_roster_result_t *r;
    const char *err = NULL;
    r = apply(roster("q.csv",
        "provider,member_id,payer_id,contract_id,plan_id,period_start,period_end,coverage\r\n"
        "\"1234567893\",\"M1\",\"Payer, \"\"Inc\"\"\",C1,\"PLAN\nA\",2025-01-01,2025-12-31,Coverage/cov-1\r\n"
        "\r\n"
        "1234567893,M2,P1,C1,PLAN-A,2025,2025-12,\r\n"), 0, APR_SUCCESS);
    counts_are(r, 2, 0, 0, 0);
    ck_assert_int_eq(r->rows, 2);
    /* header problems are refused outright */
    ck_assert_int_eq(atr_roster_apply(&r, db, "g1", roster("h.csv", "member_id,payer_id\n"), 0, apr_time_now(),
                                      &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "header lacks column"));
    ck_assert_int_eq(atr_roster_apply(&r, db, "nope", roster("n.csv", HEADER), 0, apr_time_now(), &err, pool),
                     APR_NOTFOUND);
    ck_assert_int_eq(atr_roster_apply(&r, db, "g1", roster("u.csv", HEADER "\"M1,P1\n"), 0, apr_time_now(),
                                      &err, pool), APR_EINVAL);
    ck_assert(has_error(r, "line 2: unterminated quoted field"));
}
END_TEST

START_TEST(test_find_group)
{
    const char *g = NULL, *err = NULL;
    ck_assert_int_eq(atr_roster_find_group(&g, db, "http://example.org/contract", "C1", &err, pool), APR_SUCCESS);
    ck_assert_str_eq(g, "g1");
    ck_assert_int_eq(atr_roster_find_group(&g, db, "", "C1", &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_roster_find_group(&g, db, "http://example.org/contract", "C2", &err, pool), APR_NOTFOUND);
}
END_TEST

Suite *roster_suite(void)
{
    Suite *s = suite_create("roster");
    TCase *tc = tcase_create("apply");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_three_months);
    tcase_add_test(tc, test_dry_run);
    tcase_add_test(tc, test_bad_rows);
    tcase_add_test(tc, test_csv_quoting);
    tcase_add_test(tc, test_find_group);
    suite_add_tcase(s, tc);
    return s;
}
