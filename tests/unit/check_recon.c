/* Reconciliation (atr_recon.c, atr_recon_store.c): Parameters and their combinations
 * (OP-ADD-01, OP-REM-01, OP-STAT-01), the created Group (CRE-01, D25), and the versions the
 * operations write on a temporary SQLite store (draft, open, final rules). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include "check_atr.h"
#include "atr_db.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_recon.h"
#include "atr_store.h"
#include "atr_subscription.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];

#define MB "{\"name\":\"memberId\",\"valueIdentifier\":{\"system\":\"http://example.org/member\",\"value\":\"M1\"}}"
#define NPI_P "{\"name\":\"providerNpi\",\"valueIdentifier\":{\"system\":\"" ATR_SYS_NPI "\",\"value\":\"1234567893\"}}"
#define PAT(id) "{\"name\":\"patientReference\",\"valueReference\":{\"reference\":\"Patient/" id "\"}}"
#define PROV "{\"name\":\"providerReference\",\"valueReference\":{\"reference\":\"Practitioner/prac-1\"}}"
#define COV "{\"name\":\"coverageReference\",\"valueReference\":{\"reference\":\"Coverage/cov-1\"}}"
#define PER "{\"name\":\"attributionPeriod\",\"valuePeriod\":{\"start\":\"2026-01-01\",\"end\":\"2026-12-31\"}}"
#define PARAMS(...) "{\"resourceType\":\"Parameters\",\"parameter\":[" __VA_ARGS__ "]}"

static apr_status_t parse(atr_recon_op_e op, const char *body, const char **pcode)
{
    atr_recon_params_t *pa;
    const char *err;
    return atr_recon_params_parse(&pa, op, body, pcode, &err, pool);
}

static void setup_pool(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown_pool(void)
{
    apr_pool_destroy(pool);
}

START_TEST(test_add_combinations)
{
    /* OP-ADD-01: the four combinations */
    static const char *const ok[] = {
        PARAMS(MB "," NPI_P), PARAMS(MB "," NPI_P "," PER), PARAMS(PAT("pat-1") "," PROV),
        PARAMS(PAT("pat-1") "," PROV "," PER), NULL
    };
    static const char *const bad[] = {
        PARAMS(MB), PARAMS(NPI_P), PARAMS(PAT("pat-1")), PARAMS(MB "," PROV), PARAMS(PAT("pat-1") "," NPI_P),
        PARAMS(MB "," NPI_P "," PAT("pat-1")), PARAMS(PER), PARAMS(MB "," PER), NULL
    };
    const char *code;
    int i;
    for (i = 0; ok[i]; i++) ck_assert_msg(parse(ATR_RECON_ADD, ok[i], &code) == APR_SUCCESS, "%s", ok[i]);
    for (i = 0; bad[i]; i++) {
        ck_assert_msg(parse(ATR_RECON_ADD, bad[i], &code) == APR_EINVAL, "%s", bad[i]);
        ck_assert_str_eq(code, "invalid");
    }
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(""), &code), APR_EINVAL);
    ck_assert_str_eq(code, "required");
    ck_assert_int_eq(parse(ATR_RECON_ADD, NULL, &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(PAT("pat-1") "," PROV "," COV), &code), APR_EINVAL);
    ck_assert_str_eq(code, "not-supported");
}
END_TEST

START_TEST(test_remove_and_status_combinations)
{
    static const char *const ok[] = {
        PARAMS(MB), PARAMS(MB "," NPI_P), PARAMS(PAT("pat-1")), PARAMS(PAT("pat-1") "," PROV),
        PARAMS(PAT("pat-1") "," PROV "," COV), NULL
    };
    static const char *const bad[] = {
        PARAMS(NPI_P), PARAMS(PROV), PARAMS(MB "," PROV), PARAMS(PAT("pat-1") "," COV),
        PARAMS(MB "," COV), PARAMS(MB "," PAT("pat-1")), PARAMS(""), NULL
    };
    const char *code;
    int i;
    for (i = 0; ok[i]; i++) ck_assert_msg(parse(ATR_RECON_REMOVE, ok[i], &code) == APR_SUCCESS, "%s", ok[i]);
    for (i = 0; bad[i]; i++) ck_assert_msg(parse(ATR_RECON_REMOVE, bad[i], &code) == APR_EINVAL, "%s", bad[i]);
    ck_assert_int_eq(parse(ATR_RECON_REMOVE, PARAMS(PAT("pat-1") "," PER), &code), APR_EINVAL);
    ck_assert_str_eq(code, "not-supported");
    ck_assert_int_eq(parse(ATR_RECON_STATUS, PARAMS(MB), &code), APR_SUCCESS);
    ck_assert_int_eq(parse(ATR_RECON_STATUS, PARAMS(PAT("pat-1")), &code), APR_SUCCESS);
    ck_assert_int_eq(parse(ATR_RECON_STATUS, PARAMS(MB "," PAT("pat-1")), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_CONFIRM, NULL, &code), APR_SUCCESS);
    ck_assert_int_eq(parse(ATR_RECON_CONFIRM, "", &code), APR_SUCCESS);
    ck_assert_int_eq(parse(ATR_RECON_CONFIRM, PARAMS(""), &code), APR_SUCCESS);
    ck_assert_int_eq(parse(ATR_RECON_CONFIRM, PARAMS(MB), &code), APR_EINVAL);
}
END_TEST

START_TEST(test_param_values)
{
    atr_recon_params_t *pa;
    const char *code, *err;
    ck_assert_int_eq(atr_recon_params_parse(&pa, ATR_RECON_ADD, PARAMS(
        "{\"name\":\"patientReference\",\"valueReference\":{\"reference\":\"https://payer.example/fhir/Patient/p9\"}},"
        PROV "," PER), &code, &err, pool), APR_SUCCESS);
    ck_assert_str_eq(pa->patient_ref, "Patient/p9");
    ck_assert_str_eq(pa->provider_ref, "Practitioner/prac-1");
    ck_assert_str_eq(pa->period_start, "2026-01-01");
    ck_assert_str_eq(pa->period_end, "2026-12-31");
    /* wrong reference types, bad NPI, bad dates, repeats, not Parameters, not JSON */
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(PAT("a/b") "," PROV), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(
        "{\"name\":\"patientReference\",\"valueReference\":{\"reference\":\"Coverage/c\"}}," PROV), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(MB ",{\"name\":\"providerNpi\",\"valueIdentifier\":"
                                                 "{\"value\":\"123\"}}"), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(MB ",{\"name\":\"providerNpi\",\"valueIdentifier\":"
                                                 "{\"system\":\"urn:x\",\"value\":\"1234567893\"}}"), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(MB "," NPI_P ",{\"name\":\"attributionPeriod\",\"valuePeriod\":"
                                                 "{\"start\":\"2026-13-01\"}}"), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(MB "," NPI_P ",{\"name\":\"attributionPeriod\",\"valuePeriod\":"
                                                 "{\"end\":\"2026-12-01\"}}"), &code), APR_EINVAL);
    ck_assert_str_eq(code, "required");
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS(MB "," MB "," NPI_P), &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, "{\"resourceType\":\"Group\"}", &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, "[1,", &code), APR_EINVAL);
    ck_assert_int_eq(parse(ATR_RECON_ADD, PARAMS("{\"name\":\"memberId\",\"valueString\":\"M1\"}," NPI_P), &code),
                     APR_EINVAL);
}
END_TEST

START_TEST(test_new_group)
{
    json_t *g;
    const char *code, *err;
    ck_assert_int_eq(atr_recon_new_group(&g, "{\"resourceType\":\"Group\",\"id\":\"x\",\"name\":\"N\","
                                         "\"meta\":{\"versionId\":\"9\"}}", "newid", &code, &err, pool), APR_SUCCESS);
    ck_assert_str_eq(atr_json_str(g, "id"), "newid");
    ck_assert_str_eq(atr_recon_list_status(g), "draft");          /* D25 */
    ck_assert_str_eq(atr_json_str(g, "type"), "person");
    ck_assert(json_is_true(json_object_get(g, "actual")));
    ck_assert_ptr_null(json_object_get(g, "meta"));
    ck_assert_int_eq(atr_recon_new_group(&g, "{\"resourceType\":\"Group\",\"extension\":[{\"url\":\""
                                         ATR_EXT_LIST_STATUS "\",\"valueCode\":\"open\"}]}", "i", &code, &err, pool),
                     APR_SUCCESS);
    ck_assert_str_eq(atr_recon_list_status(g), "open");
    ck_assert_int_eq(atr_recon_new_group(&g, "{\"resourceType\":\"Group\",\"member\":[{\"entity\":{\"reference\":"
                                         "\"Patient/1\"}}]}", "i", &code, &err, pool), APR_EINVAL);
    ck_assert_str_eq(code, "business-rule");
    ck_assert_int_eq(atr_recon_new_group(&g, "{\"resourceType\":\"Group\",\"extension\":[{\"url\":\""
                                         ATR_EXT_LIST_STATUS "\",\"valueCode\":\"closed\"}]}", "i", &code, &err, pool),
                     APR_EINVAL);
    ck_assert_int_eq(atr_recon_new_group(&g, "{\"resourceType\":\"Patient\"}", "i", &code, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_recon_new_group(&g, "", "i", &code, &err, pool), APR_EINVAL);
    ck_assert_int_eq(strlen(atr_recon_new_id(pool)), 32);
}
END_TEST

/* ---- on a store ---- */

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

static void setup_store(void)
{
    const char *err = NULL;
    int i;
    setup_pool();
    strcpy(tmpdir, "/tmp/atr-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
    for (i = 1; i <= 3; i++) {
        put(apr_psprintf(pool, "{\"resourceType\":\"Patient\",\"id\":\"pat-%d\",\"identifier\":[{"
                         "\"system\":\"http://example.org/member\",\"value\":\"M%d\"}]}", i, i));
    }
    put("{\"resourceType\":\"Coverage\",\"id\":\"cov-1\",\"status\":\"active\",\"beneficiary\":{\"reference\":"
        "\"Patient/pat-1\"}}");
    put("{\"resourceType\":\"Practitioner\",\"id\":\"prac-1\",\"identifier\":[{\"system\":\"" ATR_SYS_NPI
        "\",\"value\":\"1234567893\"}]}");
}

static void teardown_store(void)
{
    (void)!system(apr_psprintf(pool, "rm -rf '%s'", tmpdir));
    teardown_pool();
}

static const char *new_list(const char *status)
{
    json_t *g;
    const char *code, *err, *id = atr_recon_new_id(pool);
    int version;
    ck_assert_int_eq(atr_recon_new_group(&g, apr_psprintf(pool, "{\"resourceType\":\"Group\",\"extension\":[{"
                     "\"url\":\"" ATR_EXT_LIST_STATUS "\",\"valueCode\":\"%s\"}]}", status), id, &code, &err, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(atr_recon_create(&version, db, g, "client-1", apr_time_now(), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(version, 1);
    return id;
}

static atr_recon_params_t *params(atr_recon_op_e op, const char *body)
{
    atr_recon_params_t *pa;
    const char *code, *err;
    ck_assert_int_eq(atr_recon_params_parse(&pa, op, body, &code, &err, pool), APR_SUCCESS);
    return pa;
}

typedef struct seen_t { int n, inactive; char change[8][16]; } seen_t;

static apr_status_t collect(void *baton, const char *json, apr_pool_t *ptemp)
{
    seen_t *s = baton;
    json_error_t jerr;
    json_t *m = json_loads(json, 0, &jerr);
    (void)ptemp;
    if (s->n < 8) apr_cpystrn(s->change[s->n], atr_recon_change_type(m), 16);
    s->inactive += json_is_true(json_object_get(m, "inactive"));
    s->n++;
    json_decref(m);
    return APR_SUCCESS;
}

static seen_t members(const char *id, int version)
{
    seen_t s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(atr_store_group_members(db, id, version, 0, collect, &s, pool), APR_SUCCESS);
    return s;
}

START_TEST(test_draft_flow)
{
    const char *id = new_list("draft");
    atr_recon_result_t res;
    int owner = 0;
    seen_t s;

    ck_assert_int_eq(atr_recon_is_owner(&owner, db, id, "client-1", pool), APR_SUCCESS);
    ck_assert_int_eq(owner, 1);
    ck_assert_int_eq(atr_recon_is_owner(&owner, db, id, "client-2", pool), APR_SUCCESS);
    ck_assert_int_eq(owner, 0);
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(MB "," NPI_P "," PER)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_OK);
    ck_assert_int_eq(res.version, 2);
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-2") "," PROV)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.version, 3);
    s = members(id, 3);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.change[0], "nochange");
    ck_assert_str_eq(s.change[1], "new");
    /* duplicate, unknown */
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-2") "," PROV)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_E_DUPLICATE);
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-9") "," PROV)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_E_UNKNOWN);
    /* OP-REM-03: draft keeps the entry, inactive and dropped */
    ck_assert_int_eq(atr_recon_member_remove(&res, db, id, params(ATR_RECON_REMOVE, PARAMS(PAT("pat-1") "," PROV
                                             "," COV)), apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_OK);
    ck_assert_int_eq(res.version, 4);
    s = members(id, 4);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(s.inactive, 1);
    ck_assert_str_eq(s.change[0], "dropped");
    ck_assert_int_eq(atr_recon_member_remove(&res, db, id, params(ATR_RECON_REMOVE, PARAMS(MB)), apr_time_now(), pool),
                     APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_E_NO_MEMBER);
    /* confirm: final, inactive entries leave (OP-REM-04), then changes are refused */
    ck_assert_int_eq(atr_recon_confirm(&res, db, id, apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_OK);
    ck_assert_str_eq(res.status, "final");
    s = members(id, 5);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.inactive, 0);
    ck_assert_int_eq(atr_recon_confirm(&res, db, id, apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_E_FINAL);
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-3") "," PROV)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_E_FINAL);
    ck_assert_int_eq(atr_recon_member_remove(&res, db, "no-such", params(ATR_RECON_REMOVE, PARAMS(MB)),
                                             apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_E_GROUP);
}
END_TEST

START_TEST(test_open_remove)
{
    const char *id = new_list("open");
    atr_recon_result_t res;
    seen_t s;
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-1") "," PROV)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-2") "," PROV)),
                                          apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(atr_recon_member_remove(&res, db, id, params(ATR_RECON_REMOVE, PARAMS(MB "," NPI_P)),
                                             apr_time_now(), pool), APR_SUCCESS);
    ck_assert_int_eq(res.err, ATR_RECON_OK);
    s = members(id, res.version);
    ck_assert_int_eq(s.n, 1);             /* OP-REM-04: gone from an open list */
    ck_assert_int_eq(s.inactive, 0);
}
END_TEST

#define SUB_BODY(filter, type, endpoint, content) \
    "{\"resourceType\":\"Subscription\",\"status\":\"requested\",\"criteria\":\"" ATR_SUB_TOPIC "\"," \
    "\"_criteria\":{\"extension\":[{\"url\":\"" ATR_SUB_BACKPORT "backport-filter-criteria\",\"valueString\":\"" \
    filter "\"}]},\"channel\":{\"type\":\"" type "\",\"endpoint\":\"" endpoint "\",\"header\":[\"X-A: b\"]," \
    "\"_payload\":{\"extension\":[{\"url\":\"" ATR_SUB_BACKPORT "backport-payload-content\",\"valueCode\":\"" \
    content "\"}]}}}"

START_TEST(test_subscription_parse)
{
    atr_sub_t *sub;
    const char *err;
    json_error_t jerr;
    json_t *b;
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Group/g1", "rest-hook", "https://c.example/hook", "id-only"),
                                   "s1", 0, &err, pool), APR_SUCCESS);
    ck_assert_str_eq(sub->group_id, "g1");
    ck_assert_str_eq(sub->endpoint, "https://c.example/hook");
    ck_assert_int_eq(sub->headers->nelts, 1);
    b = json_loads(sub->body, 0, &jerr);
    ck_assert_str_eq(atr_json_str(b, "status"), "active");
    ck_assert_str_eq(atr_json_str(b, "id"), "s1");
    json_decref(b);
    /* SUB-01, SUB-03 refusals; http only to loopback, only when allowed */
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Patient/p", "rest-hook", "https://c.example/h", "id-only"),
                                   "s", 0, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Group/g1", "websocket", "https://c.example/h", "id-only"),
                                   "s", 0, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Group/g1", "rest-hook", "https://c.example/h", "empty"),
                                   "s", 0, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Group/g1", "rest-hook", "http://127.0.0.1:9/h", "id-only"),
                                   "s", 0, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Group/g1", "rest-hook", "http://127.0.0.1:9/h", "id-only"),
                                   "s", 1, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_sub_parse(&sub, SUB_BODY("Group/g1", "rest-hook", "http://c.example/h", "id-only"),
                                   "s", 1, &err, pool), APR_EINVAL);
    ck_assert_int_eq(atr_sub_parse(&sub, "{\"resourceType\":\"Group\"}", "s", 0, &err, pool), APR_EINVAL);
}
END_TEST

START_TEST(test_subscription_notification)
{
    atr_sub_t sub;
    json_error_t jerr;
    json_t *b, *params, *p;
    size_t i;
    const char *focus = NULL, *n = NULL;
    memset(&sub, 0, sizeof(sub));
    sub.id = "s1";
    sub.group_id = "g1";
    sub.base_url = "https://payer.example/fhir";
    b = json_loads(atr_sub_notification(&sub, 7, 3, apr_time_now(), pool), 0, &jerr);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(atr_json_str(b, "type"), "history");
    params = json_object_get(json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource"), "parameter");
    json_array_foreach(params, i, p) {
        if (!strcmp(atr_json_str(p, "name"), "events-since-subscription-start")) n = atr_json_str(p, "valueString");
        if (!strcmp(atr_json_str(p, "name"), "notification-event")) {
            focus = atr_json_path_str(json_array_get(json_object_get(p, "part"), 2), "valueReference", "reference", NULL);
        }
    }
    ck_assert_str_eq(n, "3");
    ck_assert_str_eq(focus, "https://payer.example/fhir/Group/g1/_history/7");
    ck_assert_str_eq(atr_json_str(json_array_get(json_object_get(b, "entry"), 1), "fullUrl"), focus);
    json_decref(b);
}
END_TEST

START_TEST(test_subscription_due_and_retries)
{
    const char *id = new_list("draft"), *err;
    apr_array_header_t *ids, *versions;
    atr_recon_result_t res;
    atr_sub_t *sub, *got;
    apr_time_t now = apr_time_now();
    int created = 0, mine = 0;

    ck_assert_int_eq(atr_sub_parse(&sub, apr_psprintf(pool, SUB_BODY("Group/%s", "rest-hook", "https://h.example/x",
                     "id-only"), id), "sub-1", 0, &err, pool), APR_SUCCESS);
    sub->client_id = "client-1";
    sub->base_url = "https://payer.example/fhir";
    ck_assert_int_eq(atr_sub_put(&created, db, sub, now, pool), APR_SUCCESS);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(sub->notified_version, 1);
    sub->client_id = "client-2";               /* another client's id */
    ck_assert_int_eq(atr_sub_put(&created, db, sub, now, pool), APR_EEXIST);
    ck_assert_int_eq(atr_sub_due(&ids, &versions, db, now, apr_time_from_sec(60), 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);           /* nothing new yet */
    ck_assert_int_eq(atr_recon_member_add(&res, db, id, params(ATR_RECON_ADD, PARAMS(PAT("pat-1") "," PROV)),
                                          now, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_sub_due(&ids, &versions, db, now, apr_time_from_sec(60), 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 1);
    ck_assert_int_eq(APR_ARRAY_IDX(versions, 0, int), 2);
    /* one claim at a time */
    ck_assert_int_eq(atr_sub_claim(&mine, db, "sub-1", "c1", now, apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 1);
    ck_assert_int_eq(atr_sub_claim(&mine, db, "sub-1", "c2", now, apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 0);
    ck_assert_int_eq(atr_sub_due(&ids, &versions, db, now, apr_time_from_sec(60), 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);
    /* a failure: due again after the delay, not before */
    ck_assert_int_eq(atr_sub_get(&got, db, "sub-1", pool), APR_SUCCESS);
    ck_assert_int_eq(atr_sub_failed(db, got, "c1", "POST answered 500", now, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_sub_due(&ids, &versions, db, now, apr_time_from_sec(60), 10, pool), APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);
    ck_assert_int_eq(atr_sub_due(&ids, &versions, db, now + apr_time_from_sec(2), apr_time_from_sec(60), 10, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 1);
    /* delivered: nothing due, events counted */
    ck_assert_int_eq(atr_sub_claim(&mine, db, "sub-1", "c3", now, apr_time_from_sec(60), pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 0);                 /* not due yet: the retry delay */
    ck_assert_int_eq(atr_sub_claim(&mine, db, "sub-1", "c3", now + apr_time_from_sec(2), apr_time_from_sec(60),
                                   pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 1);
    ck_assert_int_eq(atr_sub_delivered(db, got, "c3", 2, pool), APR_SUCCESS);
    /* a worker that read the due list before this delivery must not deliver it again */
    ck_assert_int_eq(atr_sub_claim(&mine, db, "sub-1", "c4", now + apr_time_from_sec(3), apr_time_from_sec(60),
                                   pool), APR_SUCCESS);
    ck_assert_int_eq(mine, 0);
    ck_assert_int_eq(atr_sub_get(&got, db, "sub-1", pool), APR_SUCCESS);
    ck_assert_int_eq(got->events, 1);
    ck_assert_int_eq(got->attempts, 0);
    ck_assert_int_eq(got->notified_version, 2);
    ck_assert_int_eq(atr_sub_due(&ids, &versions, db, now + apr_time_from_sec(10), apr_time_from_sec(60), 10, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(ids->nelts, 0);
}
END_TEST

Suite *recon_suite(void)
{
    Suite *s = suite_create("recon");
    TCase *tc = tcase_create("params");
    tcase_add_checked_fixture(tc, setup_pool, teardown_pool);
    tcase_add_test(tc, test_add_combinations);
    tcase_add_test(tc, test_remove_and_status_combinations);
    tcase_add_test(tc, test_param_values);
    tcase_add_test(tc, test_new_group);
    tcase_add_test(tc, test_subscription_parse);
    tcase_add_test(tc, test_subscription_notification);
    suite_add_tcase(s, tc);
    tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup_store, teardown_store);
    tcase_add_test(tc, test_draft_flow);
    tcase_add_test(tc, test_open_remove);
    tcase_add_test(tc, test_subscription_due_and_retries);
    suite_add_tcase(s, tc);
    return s;
}
