/* Group entitlement and member-data visibility (atr_entitle.c) on a temporary SQLite store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "check_atr.h"
#include "atr_db.h"
#include "atr_entitle.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_store.h"
#include "atr_time.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];

#define CONTRACT_SYS "http://payer.example.org/contracts"

static void put_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    int version = 0, changed = 0;
    const char *err = NULL;
    apr_time_t now;

    ck_assert_msg(j != NULL, "bad fixture JSON: %s", jerr.text);
    atr_json_pool_own(j, pool);
    atr_time_parse_instant(&now, "2024-03-01T10:00:00Z");
    ck_assert_msg(atr_store_put(&version, &changed, db, j, now, &err, pool) == APR_SUCCESS,
                  "put failed: %s", err ? err : "?");
}

/* A Group with a contract identifier and members (patient, coverage). */
static const char *group_json(const char *id, const char *contract, const char *const *patients,
                              const char *const *coverages)
{
    const char *members = "";
    int i;
    for (i = 0; patients[i]; i++) {
        members = apr_psprintf(pool, "%s%s{\"entity\":{\"reference\":\"Patient/%s\"},"
                               "\"extension\":[{\"url\":\"%s\",\"valueReference\":{\"reference\":\"Coverage/%s\"}}]}",
                               members, i ? "," : "", patients[i], ATR_EXT_COVERAGE_REF, coverages[i]);
    }
    return apr_psprintf(pool, "{\"resourceType\":\"Group\",\"id\":\"%s\",\"type\":\"person\",\"actual\":true,"
                        "\"identifier\":[{\"system\":\"%s\",\"value\":\"%s\"}],\"member\":[%s]}",
                        id, CONTRACT_SYS, contract, members);
}

static void setup(void)
{
    const char *err = NULL;
    static const char *const pa[] = { "pa1", "pa2", NULL }, *const ca[] = { "cova1", "cova2", NULL };
    static const char *const pb[] = { "pb1", NULL }, *const cb[] = { "covb1", NULL };
    static const char *const pc[] = { "pc1", NULL }, *const cc[] = { "covc1", NULL };

    apr_pool_create(&pool, NULL);
    strcpy(tmpdir, "/tmp/atr-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
    put_json(group_json("ga", "C-A", pa, ca));
    put_json(group_json("gb", "C-B", pb, cb));
    put_json(group_json("gc", "C-C", pc, cc));
    /* member data: cova1 is referenced by the member; covx only names its beneficiary */
    put_json("{\"resourceType\":\"Patient\",\"id\":\"pa1\"}");
    put_json("{\"resourceType\":\"Patient\",\"id\":\"pb1\"}");
    put_json("{\"resourceType\":\"Coverage\",\"id\":\"cova1\",\"status\":\"active\","
             "\"beneficiary\":{\"reference\":\"Patient/pa1\"}}");
    put_json("{\"resourceType\":\"Coverage\",\"id\":\"covx\",\"status\":\"active\","
             "\"beneficiary\":{\"reference\":\"http://payer.example.org/fhir/Patient/pa2\"}}");
    put_json("{\"resourceType\":\"Coverage\",\"id\":\"covb1\",\"status\":\"active\","
             "\"beneficiary\":{\"reference\":\"Patient/pb1\"}}");
    put_json("{\"resourceType\":\"RelatedPerson\",\"id\":\"rpa\",\"patient\":{\"reference\":\"Patient/pa1\"}}");
    put_json("{\"resourceType\":\"RelatedPerson\",\"id\":\"rpb\",\"patient\":{\"reference\":\"Patient/pb1\"}}");
}

static void teardown(void)
{
    const char *cmd = apr_psprintf(pool, "rm -rf '%s'", tmpdir);
    apr_pool_destroy(pool);
    ck_assert_int_eq(system(cmd), 0);
}

static apr_array_header_t *strs(const char *const *v)
{
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(const char *));
    for (; v && *v; v++) APR_ARRAY_PUSH(a, const char *) = *v;
    return a;
}

static atr_client_t *client(const char *const *groups, const char *const *contracts)
{
    atr_client_t *c = apr_pcalloc(pool, sizeof(*c));
    c->client_id = "test-client";
    c->groups = strs(groups);
    c->contracts = strs(contracts);
    return c;
}

static const char *joined(const apr_array_header_t *ids)
{
    const char *s = "";
    int i;
    for (i = 0; i < ids->nelts; i++) {
        s = apr_pstrcat(pool, s, i ? "," : "", APR_ARRAY_IDX(ids, i, const char *), NULL);
    }
    return s;
}

static const char *groups_of(const char *const *groups, const char *const *contracts)
{
    apr_array_header_t *ids = NULL;
    ck_assert_int_eq(atr_entitle_groups(&ids, db, client(groups, contracts), pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(ids);
    return joined(ids);
}

START_TEST(linked_ids)
{
    static const char *const g1[] = { "gc", "ga", "missing", "ga", NULL };
    ck_assert_str_eq(groups_of(g1, NULL), "ga,gc");
    ck_assert_str_eq(groups_of(NULL, NULL), "");
}
END_TEST

START_TEST(contract_ids)
{
    static const char *const c1[] = { CONTRACT_SYS "|C-B", NULL };
    static const char *const c2[] = { "http://other.example.org|C-B", CONTRACT_SYS "|nope", NULL };
    static const char *const c3[] = { "C-C", NULL };        /* no system: value under any system */
    static const char *const g[] = { "gb", NULL };
    ck_assert_str_eq(groups_of(NULL, c1), "gb");
    ck_assert_str_eq(groups_of(NULL, c2), "");
    ck_assert_str_eq(groups_of(NULL, c3), "gc");
    ck_assert_str_eq(groups_of(g, c1), "gb");               /* both ways: once */
}
END_TEST

START_TEST(has_and_filter)
{
    static const char *const ent[] = { "b", "d", "f", NULL };
    static const char *const ids[] = { "a", "b", "c", "d", "e", NULL };
    apr_array_header_t *e = strs(ent);
    ck_assert(atr_entitle_has(e, "b"));
    ck_assert(atr_entitle_has(e, "f"));
    ck_assert(!atr_entitle_has(e, "a"));
    ck_assert(!atr_entitle_has(e, "g"));
    ck_assert(!atr_entitle_has(NULL, "b"));
    ck_assert_str_eq(joined(atr_entitle_filter(strs(ids), e, pool)), "b,d");
    ck_assert_str_eq(joined(atr_entitle_filter(strs(ids), strs(NULL), pool)), "");
    ck_assert_str_eq(joined(atr_entitle_filter(strs(NULL), e, pool)), "");
}
END_TEST

static int visible(const apr_array_header_t *ent, const char *type, const char *id)
{
    atr_resource_t *res = NULL;
    const char *body = NULL;
    int v = -1;
    if (atr_store_get(&res, db, type, id, 0, pool) == APR_SUCCESS) body = res->body;
    ck_assert_int_eq(atr_entitle_resource(&v, db, ent, type, id, body, pool), APR_SUCCESS);
    return v;
}

START_TEST(member_data)
{
    static const char *const ga[] = { "ga", NULL };
    apr_array_header_t *ent = NULL;

    ck_assert_int_eq(atr_entitle_groups(&ent, db, client(ga, NULL), pool), APR_SUCCESS);
    ck_assert(visible(ent, "Group", "ga"));
    ck_assert(!visible(ent, "Group", "gb"));
    ck_assert(visible(ent, "Patient", "pa1"));
    ck_assert(visible(ent, "Patient", "pa2"));       /* member, even without a stored Patient */
    ck_assert(!visible(ent, "Patient", "pb1"));
    ck_assert(visible(ent, "Coverage", "cova1"));    /* member coverage reference */
    ck_assert(visible(ent, "Coverage", "covx"));     /* beneficiary is a member (absolute ref) */
    ck_assert(!visible(ent, "Coverage", "covb1"));
    ck_assert(visible(ent, "RelatedPerson", "rpa"));
    ck_assert(!visible(ent, "RelatedPerson", "rpb"));
    /* nothing entitled: no member data */
    ck_assert(!visible(strs(NULL), "Patient", "pa1"));
    ck_assert(!visible(NULL, "Coverage", "cova1"));
}
END_TEST

START_TEST(directory_always)
{
    ck_assert(visible(NULL, "Practitioner", "x"));
    ck_assert(visible(NULL, "PractitionerRole", "x"));
    ck_assert(visible(NULL, "Organization", "x"));
    ck_assert(visible(NULL, "Location", "x"));
    ck_assert(!visible(NULL, "Basic", "x"));
    ck_assert(!atr_entitle_is_member_data("Practitioner"));
    ck_assert(atr_entitle_is_member_data("Group"));
    ck_assert(atr_entitle_is_member_data("Coverage"));
}
END_TEST

START_TEST(old_version_members_not_visible)
{
    /* the next version of ga drops pa2: only the current version counts */
    static const char *const pa[] = { "pa1", NULL }, *const ca[] = { "cova1", NULL };
    static const char *const ga[] = { "ga", NULL };
    apr_array_header_t *ent = NULL;

    put_json(group_json("ga", "C-A", pa, ca));
    ck_assert_int_eq(atr_entitle_groups(&ent, db, client(ga, NULL), pool), APR_SUCCESS);
    ck_assert(visible(ent, "Patient", "pa1"));
    ck_assert(!visible(ent, "Patient", "pa2"));
    ck_assert(!visible(ent, "Coverage", "covx"));
}
END_TEST

Suite *entitle_suite(void)
{
    Suite *s = suite_create("entitle");
    TCase *tc = tcase_create("entitle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, linked_ids);
    tcase_add_test(tc, contract_ids);
    tcase_add_test(tc, has_and_filter);
    tcase_add_test(tc, member_data);
    tcase_add_test(tc, directory_always);
    tcase_add_test(tc, old_version_members_not_visible);
    suite_add_tcase(s, tc);
    return s;
}
