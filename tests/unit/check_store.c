/* Store, render and load on a temporary SQLite file, with the IG examples as fixtures. */
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
#include "atr_load.h"
#include "atr_render.h"
#include "atr_store.h"
#include "atr_store_batch.h"
#include "atr_sql.h"
#include "atr_time.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];

static const char *spec_dir(void)
{
    const char *d = getenv("ATR_SPEC_DIR");
    return d ? d : ATR_TEST_SPEC_DIR;
}

static void setup(void)
{
    const char *err = NULL;

    apr_pool_create(&pool, NULL);
    strcpy(tmpdir, "/tmp/atr-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
}

static void teardown(void)
{
    const char *cmd = apr_psprintf(pool, "rm -rf '%s'", tmpdir);
    apr_pool_destroy(pool);
    ck_assert_int_eq(system(cmd), 0);
}

static json_t *fixture(const char *name)
{
    const char *path = apr_psprintf(pool, "%s/atr/2.1.0/examples/%s", spec_dir(), name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    ck_assert_msg(j != NULL, "cannot read fixture %s: %s", path, err.text);
    return atr_json_pool_own(j, pool);
}

static apr_time_t at(int sec)
{
    apr_time_t t;
    atr_time_parse_instant(&t, "2024-03-01T10:00:00Z");
    return t + apr_time_from_sec(sec);
}

static void put_ok(json_t *res, int sec, int want_version, int want_changed)
{
    int version = -1, changed = -1;
    const char *err = NULL;
    ck_assert_int_eq(atr_store_put(&version, &changed, db, res, at(sec), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(version, want_version);
    ck_assert_int_eq(changed, want_changed);
}

static json_t *render(const atr_resource_t *res, const atr_render_opts_t *opts)
{
    atr_outbuf_t buf;
    atr_out_t out;
    json_t *j = NULL;
    const char *err = NULL;

    atr_outbuf_init(&out, &buf, pool);
    ck_assert_int_eq(atr_render_resource(&out, db, res, opts, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_json_parse(&j, buf.data, buf.len, &err, pool), APR_SUCCESS);
    return j;
}

static int has_subsetted(const json_t *j)
{
    json_t *tags = json_object_get(json_object_get(j, "meta"), "tag"), *t;
    size_t i;
    json_array_foreach(tags, i, t) {
        const char *s = atr_json_str(t, "system"), *c = atr_json_str(t, "code");
        if (s && c && !strcmp(s, ATR_SUBSETTED_SYSTEM) && !strcmp(c, "SUBSETTED")) return 1;
    }
    return 0;
}

START_TEST(store_put_get_versions)
{
    json_t *pat = fixture("Patient-1.json");
    atr_resource_t *res;

    put_ok(pat, 0, 1, 1);
    put_ok(pat, 1, 1, 0);  /* same content: unchanged */
    /* only meta.versionId/lastUpdated differ: still unchanged */
    json_object_set_new(pat, "meta", json_pack("{s:s, s:s}", "versionId", "77", "lastUpdated", "2020-01-01T00:00:00Z"));
    put_ok(pat, 2, 1, 0);
    json_object_set_new(pat, "gender", json_string("other"));
    put_ok(pat, 3, 2, 1);

    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "1", 0, pool), APR_SUCCESS);
    ck_assert_int_eq(res->version, 2);
    ck_assert_str_eq(res->last_updated, "2024-03-01T10:00:03.000Z");
    ck_assert_int_eq(res->deleted, 0);
    ck_assert_ptr_null(strstr(res->body, "versionId"));
    ck_assert_ptr_null(strstr(res->body, "\"meta\""));  /* meta left empty is dropped */
    ck_assert_ptr_nonnull(strstr(res->body, "\"other\""));
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "1", 1, pool), APR_SUCCESS);
    ck_assert_int_eq(res->version, 1);
    ck_assert_str_eq(res->last_updated, "2024-03-01T10:00:00.000Z");
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "1", 3, pool), APR_NOTFOUND);
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "nope", 0, pool), APR_NOTFOUND);
    ck_assert_int_eq(atr_store_get(&res, db, "Coverage", "1", 0, pool), APR_NOTFOUND);
}
END_TEST

START_TEST(store_keeps_other_meta)
{
    json_t *cov = fixture("Coverage-1.json");
    atr_resource_t *res;
    json_t *r;

    json_object_set_new(cov, "meta", json_pack("{s:s, s:[s]}", "versionId", "9", "profile", "http://x/p"));
    put_ok(cov, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Coverage", "1", 0, pool), APR_SUCCESS);
    ck_assert_ptr_null(strstr(res->body, "versionId"));
    ck_assert_ptr_nonnull(strstr(res->body, "http://x/p"));
    r = render(res, NULL);
    ck_assert_str_eq(atr_json_path_str(r, "meta", "versionId", NULL), "1");
    ck_assert_str_eq(atr_json_path_str(r, "meta", "lastUpdated", NULL), "2024-03-01T10:00:00.000Z");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(json_object_get(r, "meta"), "profile"), 0)),
                     "http://x/p");
    ck_assert(!has_subsetted(r));
}
END_TEST

typedef struct hist_t { int versions[8]; int n; } hist_t;

static apr_status_t hist_cb(void *baton, const atr_resource_t *res, apr_pool_t *ptemp)
{
    hist_t *h = baton;
    (void)ptemp;
    if (h->n < 8) h->versions[h->n++] = res->version;
    return APR_SUCCESS;
}

START_TEST(store_history_order)
{
    json_t *org = fixture("Organization-1.json");
    hist_t h;

    put_ok(org, 0, 1, 1);
    json_object_set_new(org, "name", json_string("v2"));
    put_ok(org, 10, 2, 1);
    json_object_set_new(org, "name", json_string("v3"));
    put_ok(org, 20, 3, 1);

    memset(&h, 0, sizeof(h));
    ck_assert_int_eq(atr_store_history(db, "Organization", "1", NULL, 0, hist_cb, &h, pool), APR_SUCCESS);
    ck_assert_int_eq(h.n, 3);
    ck_assert_int_eq(h.versions[0], 3);
    ck_assert_int_eq(h.versions[1], 2);
    ck_assert_int_eq(h.versions[2], 1);
    memset(&h, 0, sizeof(h));
    ck_assert_int_eq(atr_store_history(db, "Organization", "1", NULL, 2, hist_cb, &h, pool), APR_SUCCESS);
    ck_assert_int_eq(h.n, 2);
    ck_assert_int_eq(h.versions[1], 2);
    memset(&h, 0, sizeof(h));
    ck_assert_int_eq(atr_store_history(db, "Organization", "1", "2024-03-01T10:00:00.000Z", 0, hist_cb, &h, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(h.n, 2);
    memset(&h, 0, sizeof(h));
    ck_assert_int_eq(atr_store_history(db, "Organization", "zzz", NULL, 0, hist_cb, &h, pool), APR_NOTFOUND);
}
END_TEST

typedef struct members_t { const char *refs[8]; int n; } members_t;

static apr_status_t member_cb(void *baton, const char *member_json, apr_pool_t *ptemp)
{
    members_t *m = baton;
    json_t *j = json_loads(member_json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    if (m->n < 8) m->refs[m->n++] = apr_pstrdup(pool, atr_json_path_str(j, "entity", "reference", NULL));
    json_decref(j);
    (void)ptemp;
    return APR_SUCCESS;
}

static members_t members_of(const char *id, int version, int page)
{
    members_t m;
    memset(&m, 0, sizeof(m));
    ck_assert_int_eq(atr_store_group_members(db, id, version, page, member_cb, &m, pool), APR_SUCCESS);
    return m;
}

START_TEST(store_group_members_and_index)
{
    json_t *grp = fixture("Group-fullexample.json");
    json_t *members = json_object_get(grp, "member");
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    atr_resource_t *res;
    members_t m;
    const char *args[3];
    int n;

    put_ok(grp, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "fullexample", 0, pool), APR_SUCCESS);
    ck_assert_ptr_null(strstr(res->body, "\"member\""));
    m = members_of("fullexample", 1, 2);  /* page of 2: crosses a page boundary */
    ck_assert_int_eq(m.n, 3);
    ck_assert_str_eq(m.refs[0], "Patient/1");
    ck_assert_str_eq(m.refs[2], "Patient/3");
    put_ok(grp, 1, 1, 0);

    /* member order is content: swapping makes a new version, the old one stays */
    json_array_insert(members, 0, json_array_get(members, 2));
    json_array_remove(members, 3);
    put_ok(grp, 2, 2, 1);
    m = members_of("fullexample", 2, 0);
    ck_assert_str_eq(m.refs[0], "Patient/3");
    m = members_of("fullexample", 1, 0);
    ck_assert_str_eq(m.refs[0], "Patient/1");
    /* a changed member attribute is a new version (DM-05) */
    json_object_set_new(json_array_get(members, 1), "inactive", json_true());
    put_ok(grp, 3, 3, 1);
    json_array_remove(members, 2);
    put_ok(grp, 4, 4, 1);
    ck_assert_int_eq(members_of("fullexample", 4, 0).n, 2);

    /* search index rows of the current version */
    args[0] = ATR_SYS_NPI;
    args[1] = "9941339108";
    ck_assert_int_eq(atr_db_select(&rows, db, "atr_gs_ident_sys_val", pool, 2, args), APR_SUCCESS);
    n = 0;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        ck_assert_str_eq(atr_db_col(rows, row, 0), "fullexample");
        n++;
    }
    ck_assert_int_eq(n, 1);
    args[0] = ATR_SYS_V2_0203;
    args[1] = "TAX";
    args[2] = "789456231";
    ck_assert_int_eq(atr_db_select(&rows, db, "atr_gs_ident_type_val", pool, 3, args), APR_SUCCESS);
    n = 0;
    while (atr_db_next(&row, rows) == APR_SUCCESS) n++;
    ck_assert_int_eq(n, 1);
    args[0] = "test group%";
    ck_assert_int_eq(atr_db_select(&rows, db, "atr_gs_name_like", pool, 1, args), APR_SUCCESS);
    n = 0;
    while (atr_db_next(&row, rows) == APR_SUCCESS) n++;
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(store_group_characteristic_index)
{
    json_t *grp = fixture("Group-davincipatientlistexample.json");
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    const char *args[3];
    int n = 0;

    put_ok(grp, 0, 1, 1);
    args[0] = ATR_SYS_CHARACTERISTIC;
    args[1] = "attributed-to";
    args[2] = "Practitioner/1";
    ck_assert_int_eq(atr_db_select(&rows, db, "atr_gs_charval_ref_sys", pool, 3, args), APR_SUCCESS);
    while (atr_db_next(&row, rows) == APR_SUCCESS) n++;
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(store_rejects_bad_resources)
{
    int v, c;
    const char *err;
    json_t *j;

    j = atr_json_pool_own(json_pack("{s:s, s:s}", "resourceType", "Observation", "id", "1"), pool);
    err = NULL;
    ck_assert_int_eq(atr_store_put(&v, &c, db, j, at(0), &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "Observation"));
    j = atr_json_pool_own(json_pack("{s:s, s:s}", "resourceType", "Patient", "id", "bad id!"), pool);
    err = NULL;
    ck_assert_int_eq(atr_store_put(&v, &c, db, j, at(0), &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    j = atr_json_pool_own(json_pack("{s:s}", "resourceType", "Patient"), pool);
    ck_assert_int_eq(atr_store_put(&v, &c, db, j, at(0), &err, pool), APR_EINVAL);
    j = atr_json_pool_own(json_pack("{s:s, s:s, s:[{s:{s:s}}]}", "resourceType", "Group", "id", "g",
                                    "member", "entity", "display", "no reference"), pool);
    err = NULL;
    ck_assert_int_eq(atr_store_put(&v, &c, db, j, at(0), &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "entity.reference"));
}
END_TEST

START_TEST(render_group_round_trip)
{
    json_t *grp = fixture("Group-fullexample.json");
    atr_render_opts_t opts;
    atr_resource_t *res;
    json_t *r, *expect;

    put_ok(grp, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "fullexample", 0, pool), APR_SUCCESS);
    memset(&opts, 0, sizeof(opts));
    opts.member_page_size = 2;
    r = render(res, &opts);
    ck_assert_str_eq(atr_json_path_str(r, "meta", "versionId", NULL), "1");
    ck_assert_str_eq(atr_json_path_str(r, "meta", "lastUpdated", NULL), "2024-03-01T10:00:00.000Z");
    ck_assert(!has_subsetted(r));
    /* everything else is what was loaded, members in order */
    expect = atr_json_pool_own(json_deep_copy(grp), pool);
    json_object_del(expect, "meta");
    json_object_del(r, "meta");
    ck_assert_msg(json_equal(expect, r), "round trip differs: %s", atr_json_dump(r, pool));
    /* key order: resourceType, id, meta first; member last */
    {
        atr_outbuf_t buf;
        atr_out_t out;
        const char *start;
        atr_outbuf_init(&out, &buf, pool);
        ck_assert_int_eq(atr_render_resource(&out, db, res, NULL, pool), APR_SUCCESS);
        start = "{\"resourceType\":\"Group\",\"id\":\"fullexample\",\"meta\":{\"versionId\":\"1\"";
        ck_assert_msg(!strncmp(buf.data, start, strlen(start)), "unexpected start %.80s", buf.data);
        ck_assert_ptr_nonnull(strstr(buf.data, "]}"));
    }
}
END_TEST

START_TEST(render_group_summary_and_elements)
{
    json_t *grp = fixture("Group-fullexample.json");
    atr_render_opts_t opts;
    apr_array_header_t *elements;
    atr_resource_t *res;
    json_t *r, *ext;

    put_ok(grp, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "fullexample", 0, pool), APR_SUCCESS);
    memset(&opts, 0, sizeof(opts));
    opts.summary = ATR_SUMMARY_TRUE;
    r = render(res, &opts);
    ck_assert_ptr_null(json_object_get(r, "member"));
    ck_assert_ptr_null(json_object_get(r, "text"));
    ck_assert_ptr_nonnull(json_object_get(r, "identifier"));
    ck_assert_str_eq(atr_json_str(r, "name"), "Test Group 3");
    ck_assert_ptr_nonnull(json_object_get(r, "managingEntity"));
    ext = json_object_get(r, "extension");
    ck_assert_int_eq(json_array_size(ext), 2);  /* D6: contract period and list status stay */
    ck_assert_str_eq(atr_json_str(json_array_get(ext, 0), "url"), ATR_EXT_CONTRACT_PERIOD);
    ck_assert_str_eq(atr_json_str(json_array_get(ext, 1), "url"), ATR_EXT_LIST_STATUS);
    ck_assert(has_subsetted(r));
    ck_assert_str_eq(atr_json_path_str(r, "meta", "versionId", NULL), "1");

    elements = apr_array_make(pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(elements, const char *) = "identifier";
    memset(&opts, 0, sizeof(opts));
    opts.elements = elements;
    r = render(res, &opts);
    ck_assert_int_eq(json_object_size(r), 4);  /* resourceType, id, meta, identifier */
    ck_assert_ptr_nonnull(json_object_get(r, "identifier"));
    ck_assert(has_subsetted(r));
    APR_ARRAY_PUSH(elements, const char *) = "member";
    r = render(res, &opts);
    ck_assert_int_eq(json_array_size(json_object_get(r, "member")), 3);
    ck_assert_ptr_null(json_object_get(r, "name"));
}
END_TEST

START_TEST(render_patient_summary)
{
    json_t *pat = fixture("Patient-1.json");
    atr_render_opts_t opts;
    atr_resource_t *res;
    json_t *r;

    put_ok(pat, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "1", 0, pool), APR_SUCCESS);
    memset(&opts, 0, sizeof(opts));
    opts.summary = ATR_SUMMARY_TRUE;
    r = render(res, &opts);
    ck_assert_ptr_null(json_object_get(r, "text"));
    ck_assert_ptr_nonnull(json_object_get(r, "name"));
    ck_assert(has_subsetted(r));
}
END_TEST

static const char *write_file(const char *name, const char *content)
{
    const char *path = apr_psprintf(pool, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    return path;
}

START_TEST(load_bad_file_changes_nothing)
{
    atr_load_stats_t st;
    atr_resource_t *res;
    const char *err = NULL, *path;

    path = write_file("bad.ndjson",
                      "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n"
                      "\n"
                      "{\"resourceType\":\"Patient\",\"id\":\"b\"}\n"
                      "{\"resourceType\":\"Patient\",\"id\":\"c\",}\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_EINVAL);
    ck_assert_msg(strstr(err, "bad.ndjson:4: ") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "column") != NULL, "message: %s", err);
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "a", 0, pool), APR_NOTFOUND);

    path = write_file("type.ndjson",
                      "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n"
                      "{\"resourceType\":\"Observation\",\"id\":\"o\"}\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_EINVAL);
    ck_assert_msg(strstr(err, "type.ndjson:2: ") && strstr(err, "Observation"), "message: %s", err);
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "a", 0, pool), APR_NOTFOUND);

    path = write_file("array.ndjson", "[1,2]\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_EINVAL);
    ck_assert_msg(strstr(err, "array.ndjson:1: ") != NULL, "message: %s", err);

    path = write_file("noid.ndjson", "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\"}\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_EINVAL);
    ck_assert_msg(strstr(err, "noid.ndjson:2: ") && strstr(err, "id"), "message: %s", err);

    ck_assert_int_eq(atr_load_file(&st, db, apr_pstrcat(pool, tmpdir, "/missing", NULL), &err, pool) != APR_SUCCESS, 1);
}
END_TEST

START_TEST(load_ndjson_bundle_and_pretty)
{
    atr_load_stats_t st;
    atr_resource_t *res;
    const char *err = NULL, *path;

    path = write_file("ok.ndjson",
                      "{\"resourceType\":\"Patient\",\"id\":\"a\"}\r\n"
                      "\n"
                      "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
                      "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"b\"}},"
                      "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"a\",\"gender\":\"male\"}}]}\n"
                      "   \n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(st.resources, 3);
    ck_assert_int_eq(st.created, 2);
    ck_assert_int_eq(st.updated, 1);
    ck_assert_int_eq(st.unchanged, 0);
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(st.updated, 2);   /* a flips between two contents within the file */
    ck_assert_int_eq(st.unchanged, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "b", 0, pool), APR_SUCCESS);

    path = apr_psprintf(pool, "%s/atr/2.1.0/examples/Group-fullexample.json", spec_dir());
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(st.created, 1);
    ck_assert_int_eq(members_of("fullexample", 1, 0).n, 3);

    path = write_file("pretty-bad.json", "{\n  \"resourceType\": \"Patient\",\n  \"id\": \"x\"\n  \"gender\": 1\n}\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_EINVAL);
    ck_assert_msg(strstr(err, "pretty-bad.json:4: ") != NULL, "message: %s", err);
}
END_TEST

/* The loader's text path (no jansson tree) stores exactly what atr_store_put stores. */
START_TEST(load_fast_path_matches_put)
{
    json_t *grp = fixture("Group-fullexample.json");
    json_t *pat = fixture("Patient-2.json");
    atr_load_stats_t st;
    atr_resource_t *res;
    const char *err = NULL, *path, *spaced, *compact;
    char *gs, *ps;
    int v, c;

    gs = json_dumps(grp, JSON_PRESERVE_ORDER);  /* one line, with spaces */
    ps = json_dumps(pat, JSON_COMPACT | JSON_PRESERVE_ORDER);
    spaced = apr_pstrdup(pool, gs);
    compact = apr_pstrdup(pool, ps);
    free(gs);
    free(ps);
    path = write_file("fast.ndjson", apr_pstrcat(pool, spaced, "\n", compact, "\n", NULL));
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(st.created, 2);
    ck_assert_int_eq(atr_store_put(&v, &c, db, grp, at(5), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(c, 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(atr_store_put(&v, &c, db, pat, at(5), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(c, 0);
    ck_assert_int_eq(members_of("fullexample", 1, 0).n, 3);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "fullexample", 0, pool), APR_SUCCESS);
    ck_assert_ptr_null(strstr(res->body, "member"));
    ck_assert_ptr_null(strstr(res->body, "versionId"));

    /* member first in the object, escapes that force the jansson path, both load */
    path = write_file("g2.ndjson",
                      "{\"member\":[{\"entity\":{\"reference\":\"Patient/1\"}}],\"resourceType\":\"Group\",\"id\":\"g2\"}\n"
                      "{\"resourceType\":\"Group\",\"id\":\"g3\",\"name\":\"Jos\\u00e9\",\"member\":[{\"entity\":{\"reference\":\"Patient/\\u0031\"}}]}\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "g2", 0, pool), APR_SUCCESS);
    ck_assert_str_eq(res->body, "{\"resourceType\":\"Group\",\"id\":\"g2\"}");
    ck_assert_str_eq(members_of("g2", 1, 0).refs[0], "Patient/1");
    ck_assert_str_eq(members_of("g3", 1, 0).refs[0], "Patient/1");

    /* a bad member in a text-path Group rolls the file back */
    path = write_file("g4.ndjson",
                      "{\"resourceType\":\"Patient\",\"id\":\"p4\"}\n"
                      "{\"resourceType\":\"Group\",\"id\":\"g4\",\"member\":[{\"entity\":{\"reference\":\"Patient/1\"}},{\"entity\":{}}]}\n");
    ck_assert_int_eq(atr_load_file(&st, db, path, &err, pool), APR_EINVAL);
    ck_assert_msg(strstr(err, "g4.ndjson:2: ") && strstr(err, "member[1].entity.reference"), "message: %s", err);
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "p4", 0, pool), APR_NOTFOUND);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "g4", 0, pool), APR_NOTFOUND);
}
END_TEST

START_TEST(db_schema_checks)
{
    const char *err = NULL;
    int version = 0;

    ck_assert_int_eq(atr_db_check_schema(db, &version, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(version, ATR_SCHEMA_VERSION);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_EEXIST);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_ne(atr_db_open(&db, "nosuchdriver:x", &err, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_ne(atr_db_open(&db, "no-colon", &err, pool), APR_SUCCESS);
}
END_TEST

const char *atr_schema_sql(const char *driver);
const char *atr_schema_migration(const char *driver, int version);

/* Every driver has one migration per version up to this build's, none beyond, and a fresh
 * schema that records this build's version. */
START_TEST(db_migrations_complete)
{
    static const char *const drivers[] = { "sqlite3", "pgsql" };
    char marker[64];
    int d, v;

    snprintf(marker, sizeof marker, "VALUES (%d);", ATR_SCHEMA_VERSION);
    for (d = 0; d < 2; d++) {
        ck_assert_ptr_nonnull(strstr(atr_schema_sql(drivers[d]), marker));
        for (v = 2; v <= ATR_SCHEMA_VERSION; v++) {
            ck_assert_msg(atr_schema_migration(drivers[d], v) != NULL, "no %s migration to %d", drivers[d], v);
        }
        ck_assert_ptr_null(atr_schema_migration(drivers[d], ATR_SCHEMA_VERSION + 1));
        ck_assert_ptr_null(atr_schema_migration(drivers[d], 1));
    }
    ck_assert_ptr_null(atr_schema_migration("mysql", 2));
}
END_TEST

/* A current store needs nothing; a newer one is refused by check and migrate alike, and
 * migrate leaves it as it was. */
START_TEST(db_migrate_current_and_newer)
{
    const char *err = NULL;
    int from = -1, to = -1, version = 0, n = 0;

    ck_assert_int_eq(atr_db_migrate(db, &from, &to, 0, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(from, ATR_SCHEMA_VERSION);
    ck_assert_int_eq(to, ATR_SCHEMA_VERSION);

    ck_assert_int_eq(apr_dbd_query(db->driver, db->handle, &n, "UPDATE atr_schema_version SET version = 99"), 0);
    ck_assert_int_ne(atr_db_check_schema(db, &version, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(version, 99);
    ck_assert_msg(strstr(err, "99 is newer than this build's"), "message: %s", err);
    ck_assert_int_ne(atr_db_migrate(db, &from, &to, 0, &err, pool), APR_SUCCESS);
    ck_assert_msg(strstr(err, "newer") && strstr(err, "nothing done"), "message: %s", err);
    ck_assert_int_eq(atr_db_check_schema(db, &version, &err, pool), APR_EGENERAL);
    ck_assert_int_eq(version, 99);

    ck_assert_int_eq(apr_dbd_query(db->driver, db->handle, &n, "UPDATE atr_schema_version SET version = 1"), 0);
    ck_assert_int_ne(atr_db_check_schema(db, &version, &err, pool), APR_SUCCESS);
    ck_assert_msg(strstr(err, "older than this build's") && strstr(err, "run atrctl db migrate"), "message: %s", err);
    /* dry run: says where it would go, changes nothing */
    ck_assert_int_eq(atr_db_migrate(db, &from, &to, 1, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(from, 1);
    ck_assert_int_eq(to, ATR_SCHEMA_VERSION);
    ck_assert_int_ne(atr_db_check_schema(db, &version, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(apr_dbd_query(db->driver, db->handle, &n,
                                   apr_psprintf(pool, "UPDATE atr_schema_version SET version = %d",
                                                ATR_SCHEMA_VERSION)), 0);
    ck_assert_int_eq(atr_db_check_schema(db, &version, &err, pool), APR_SUCCESS);
}
END_TEST

/* DM-20/D10: a stored Group's quantity is its number of member entries, whatever the writer
 * said; a Group without quantity keeps none */
START_TEST(group_quantity_counts_members)
{
    json_t *g = atr_json_pool_own(json_pack("{s:s,s:s,s:s,s:b,s:i,s:[{s:{s:s}},{s:{s:s}}]}",
                                            "resourceType", "Group", "id", "q1", "type", "person",
                                            "actual", 1, "quantity", 5, "member",
                                            "entity", "reference", "Patient/a",
                                            "entity", "reference", "Patient/b"), pool);
    atr_resource_t *res;

    put_ok(g, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "q1", 0, pool), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(res->body, "\"quantity\":2"));
    json_object_del(g, "quantity");
    json_object_set_new(g, "id", json_string("q2"));
    put_ok(g, 0, 1, 1);
    ck_assert_int_eq(atr_store_get(&res, db, "Group", "q2", 0, pool), APR_SUCCESS);
    ck_assert_ptr_null(strstr(res->body, "quantity"));
}
END_TEST

/* What the bulk writer reports per resource, in order. */
typedef struct bulk_seen_t {
    int n;
    char what[16][48];
} bulk_seen_t;

static void bulk_seen(void *baton, const char *type, const char *id, int version, int changed)
{
    bulk_seen_t *s = baton;
    ck_assert_int_lt(s->n, 16);
    snprintf(s->what[s->n++], sizeof(s->what[0]), "%s/%s v%d %s", type, id, version, changed ? "new" : "same");
}

START_TEST(bulk_writes_like_one_put_each)
{
    /* SQLite has no batched statements: the bulk writer writes each resource at once, with
     * the results of atr_store_put (a repeat is a new version, the same content unchanged) */
    json_t *a = json_pack("{s:s, s:s, s:s}", "resourceType", "Patient", "id", "b1", "gender", "male");
    json_t *b = json_pack("{s:s, s:s, s:s}", "resourceType", "Patient", "id", "b1", "gender", "female");
    json_t *g = json_pack("{s:s, s:s, s:[{s:{s:s}}]}", "resourceType", "Group", "id", "bg", "member", "entity",
                          "reference", "Patient/b1");
    json_t *bad = json_pack("{s:s, s:s}", "resourceType", "Patient", "id", "bad id");
    atr_store_bulk_t *bulk;
    atr_resource_t *res;
    bulk_seen_t seen;
    const char *err = NULL;

    memset(&seen, 0, sizeof(seen));
    ck_assert_int_eq(atr_store_batch_available(db, "atr_res_put_batch"), 0);
    ck_assert_int_eq(atr_store_bulk_create(&bulk, db, bulk_seen, &seen, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_bulk_put(bulk, a, at(1), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_bulk_put(bulk, a, at(2), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_bulk_put(bulk, b, at(3), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_bulk_put_text(bulk, "Patient", "b2", "{\"resourceType\":\"Patient\",\"id\":\"b2\"}",
                                             NULL, NULL, at(4), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_bulk_put(bulk, g, at(5), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_bulk_put(bulk, bad, at(6), &err, pool), APR_EINVAL);
    ck_assert_msg(err && strstr(err, "not a valid FHIR id"), "message: %s", err ? err : "(none)");
    ck_assert_int_eq(atr_store_bulk_put_text(bulk, "Observation", "o", "{}", NULL, NULL, at(6), &err, pool),
                     APR_EINVAL);
    ck_assert_int_eq(atr_store_bulk_flush(bulk, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(seen.n, 5);
    ck_assert_str_eq(seen.what[0], "Patient/b1 v1 new");
    ck_assert_str_eq(seen.what[1], "Patient/b1 v1 same");
    ck_assert_str_eq(seen.what[2], "Patient/b1 v2 new");
    ck_assert_str_eq(seen.what[3], "Patient/b2 v1 new");
    ck_assert_str_eq(seen.what[4], "Group/bg v1 new");
    ck_assert_int_eq(atr_store_get(&res, db, "Patient", "b1", 0, pool), APR_SUCCESS);
    ck_assert_int_eq(res->version, 2);
    ck_assert_ptr_nonnull(strstr(res->body, "female"));
    ck_assert_int_eq(members_of("bg", 1, 0).n, 1);
    json_decref(a);
    json_decref(b);
    json_decref(g);
    json_decref(bad);
}
END_TEST

START_TEST(batch_statements_hold_whole_rows)
{
    /* The batched statements exist for pgsql only, and their parameters are whole rows of the
     * per-row statements' arguments (a row one short would shift every column after it) */
    static const struct { const char *label, *row_label; int nargs; } batched[] = {
        { "atr_res_put_batch", NULL, 5 },
        { "atr_mem_insert_batch", "atr_mem_insert", 11 },
    };
    const atr_sql_stmt_t *st;
    atr_db_t fake;
    size_t i;

    memset(&fake, 0, sizeof(fake));
    fake.driver_name = "pgsql";
    fake.prepared = apr_hash_make(pool);
    for (st = atr_sql_statements("pgsql"); st->label; st++) {
        apr_hash_set(fake.prepared, st->label, APR_HASH_KEY_STRING, (void *)st);
    }
    for (st = atr_sql_statements("sqlite3"); st->label; st++) {
        for (i = 0; i < sizeof(batched) / sizeof(batched[0]); i++) {
            ck_assert_str_ne(st->label, batched[i].label);
        }
    }
    for (i = 0; i < sizeof(batched) / sizeof(batched[0]); i++) {
        ck_assert_int_eq(atr_store_batch_available(&fake, batched[i].label), 1);
        ck_assert_int_eq(atr_store_batch_available(db, batched[i].label), 0);
        ck_assert_uint_eq(atr_store_batch_rows(db, batched[i].label, batched[i].nargs), 0);
        ck_assert_uint_eq(atr_store_batch_rows(&fake, batched[i].label, batched[i].nargs), 251);
        ck_assert_uint_eq(atr_store_batch_rows(&fake, batched[i].label, batched[i].nargs + 1), 0);
        if (batched[i].row_label) {
            ck_assert_uint_eq(atr_store_batch_rows(&fake, batched[i].row_label, batched[i].nargs), 1);
        }
    }
}
END_TEST

START_TEST(batch_without_batched_statement_writes_each_row)
{
    /* On SQLite a batch runs the per-row statement at once: a failing row is named alone */
    atr_store_batch_t *batch;
    apr_size_t first = 9, count = 9;
    const char *row[11] = { "g", "1", "1", "Patient/1", NULL, NULL, NULL, "0", NULL, NULL, "{}" };

    ck_assert_int_eq(atr_store_batch_create(&batch, db, "atr_mem_insert", "atr_mem_insert_batch", 11, NULL, NULL,
                                            pool), APR_SUCCESS);
    ck_assert_int_eq(atr_store_batch_add(batch, row, pool), APR_SUCCESS);
    ck_assert_uint_eq(atr_store_batch_pending(batch), 0);
    row[2] = "2";
    ck_assert_int_eq(atr_store_batch_add(batch, row, pool), APR_SUCCESS);
    ck_assert_int_ne(atr_store_batch_add(batch, row, pool), APR_SUCCESS);   /* seq 2 again */
    atr_store_batch_failed(batch, &first, &count);
    ck_assert_uint_eq(first, 2);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(atr_store_batch_flush(batch, pool), APR_SUCCESS);
    ck_assert_int_eq(members_of("g", 1, 0).n, 2);
}
END_TEST

Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, group_quantity_counts_members);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, db_schema_checks);
    tcase_add_test(tc, db_migrations_complete);
    tcase_add_test(tc, db_migrate_current_and_newer);
    tcase_add_test(tc, store_put_get_versions);
    tcase_add_test(tc, store_keeps_other_meta);
    tcase_add_test(tc, store_history_order);
    tcase_add_test(tc, store_group_members_and_index);
    tcase_add_test(tc, store_group_characteristic_index);
    tcase_add_test(tc, store_rejects_bad_resources);
    tcase_add_test(tc, render_group_round_trip);
    tcase_add_test(tc, render_group_summary_and_elements);
    tcase_add_test(tc, render_patient_summary);
    tcase_add_test(tc, load_bad_file_changes_nothing);
    tcase_add_test(tc, load_ndjson_bundle_and_pretty);
    tcase_add_test(tc, load_fast_path_matches_put);
    tcase_add_test(tc, bulk_writes_like_one_put_each);
    tcase_add_test(tc, batch_statements_hold_whole_rows);
    tcase_add_test(tc, batch_without_batched_statement_writes_each_row);
    suite_add_tcase(s, tc);
    return s;
}
