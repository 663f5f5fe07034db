/* The attribution list export writer (atr_export.c) on a temporary SQLite store holding the
 * ATR 2.1.0 IG examples: exact lines per type (EXP-07, BULK-FILE-02/04), dedupe, _since
 * (EXP-12/D15), patient filter and its error file (EXP-06), empty types (EXP-08/D14), splits,
 * the caller's run key and notes, and forgetting a dead run's scratch rows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <dirent.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "check_atr.h"
#include "atr_db.h"
#include "atr_export.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_render.h"
#include "atr_store.h"
#include "atr_time.h"

static apr_pool_t *pool;
static atr_db_t *db;
static char tmpdir[64];
static const char *outdir;

static void put_at(json_t *j, const char *instant)
{
    int version = 0, changed = 0;
    const char *err = NULL;
    apr_time_t now;

    atr_time_parse_instant(&now, instant);
    ck_assert_msg(atr_store_put(&version, &changed, db, j, now, &err, pool) == APR_SUCCESS,
                  "put failed: %s", err ? err : "?");
}

static void put_text(const char *text, const char *instant)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    ck_assert_msg(j != NULL, "bad fixture JSON: %s", jerr.text);
    atr_json_pool_own(j, pool);
    put_at(j, instant);
}

static void put_example(const char *name)
{
    const char *d = getenv("ATR_SPEC_DIR");
    const char *path = apr_psprintf(pool, "%s/atr/2.1.0/examples/%s", d ? d : ATR_TEST_SPEC_DIR, name);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);

    ck_assert_msg(j != NULL, "%s: %s", path, jerr.text);
    atr_json_pool_own(j, pool);
    put_at(j, "2024-03-01T10:00:00Z");
}

static void setup(void)
{
    static const char *const examples[] = {
        "Organization-1.json", "Organization-2.json", "Location-1.json", "Practitioner-1.json",
        "PractitionerRole-1.json", "Patient-1.json", "Patient-2.json", "Patient-3.json",
        "RelatedPerson-1.json", "RelatedPerson-2.json", "Coverage-1.json", "Coverage-2.json",
        "Coverage-3.json", "Group-fullexample.json", "Group-davincipatientlistexample.json", NULL };
    const char *err = NULL;
    int i;

    apr_pool_create(&pool, NULL);
    strcpy(tmpdir, "/tmp/atr-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(atr_db_open(&db, apr_psprintf(pool, "sqlite3:%s/store.db", tmpdir), &err, pool), APR_SUCCESS);
    ck_assert_int_eq(atr_db_init_schema(db, &err, pool), APR_SUCCESS);
    for (i = 0; examples[i]; i++) put_example(examples[i]);
    outdir = apr_pstrcat(pool, tmpdir, "/out", NULL);
    ck_assert_int_eq(mkdir(outdir, 0700), 0);
}

static void teardown(void)
{
    char cmd[96];
    apr_pool_destroy(pool);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Names of the files in outdir, sorted, comma separated ("" when none). */
static const char *dir_listing(void)
{
    struct dirent **list;
    int n = scandir(outdir, &list, NULL, alphasort), i;
    const char *s = "";

    ck_assert_int_ge(n, 0);
    for (i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.' || (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, ".."))) {
            s = apr_pstrcat(pool, s, *s ? "," : "", list[i]->d_name, NULL);
        }
        free(list[i]);
    }
    free(list);
    return s;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *s;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = apr_palloc(pool, (apr_size_t)n + 1);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* What the FHIR read returns for type/id, plus the newline of NDJSON. */
static const char *read_line(const char *type, const char *id)
{
    atr_resource_t *res = NULL;
    atr_out_t out;
    atr_outbuf_t buf;

    ck_assert_int_eq(atr_store_get(&res, db, type, id, 0, pool), APR_SUCCESS);
    atr_outbuf_init(&out, &buf, pool);
    ck_assert_int_eq(atr_render_resource(&out, db, res, NULL, pool), APR_SUCCESS);
    return apr_pstrcat(pool, apr_pstrmemdup(pool, buf.data, buf.len), "\n", NULL);
}

/* The file <Type>-<n>.ndjson holds exactly the reads of ids (NULL-terminated), in order. */
static void assert_file(const char *name, const char *type, const char *const *ids)
{
    const char *want = "";
    int i;

    for (i = 0; ids[i]; i++) want = apr_pstrcat(pool, want, read_line(type, ids[i]), NULL);
    ck_assert_str_eq(slurp(apr_pstrcat(pool, outdir, "/", name, NULL)), want);
}

static apr_array_header_t *list_of(const char *a, const char *b)
{
    apr_array_header_t *arr = apr_array_make(pool, 2, sizeof(const char *));
    if (a) APR_ARRAY_PUSH(arr, const char *) = a;
    if (b) APR_ARRAY_PUSH(arr, const char *) = b;
    return arr;
}

static atr_export_result_t *run(atr_export_opts_t *o)
{
    atr_export_result_t *res = NULL;
    const char *err = NULL;

    o->outdir = outdir;
    if (!o->group_id) o->group_id = "fullexample";
    ck_assert_msg(atr_export_group(&res, db, o, &err, pool) == APR_SUCCESS, "export failed: %s", err ? err : "?");
    return res;
}

START_TEST(fullexample_every_type)
{
    static const char *const p123[] = { "1", "2", "3", NULL }, *const one[] = { "1", NULL };
    static const char *const o12[] = { "1", "2", NULL }, *const rp[] = { "1", "2", NULL };
    atr_export_opts_t o;
    atr_export_result_t *res;
    const char *group;

    memset(&o, 0, sizeof(o));
    res = run(&o);
    ck_assert_str_eq(dir_listing(), "Coverage-1.ndjson,Group-1.ndjson,Location-1.ndjson,Organization-1.ndjson,"
                                    "Patient-1.ndjson,Practitioner-1.ndjson,PractitionerRole-1.ndjson,"
                                    "RelatedPerson-1.ndjson");
    /* the Group line is the full read: every member, meta included */
    group = slurp(apr_pstrcat(pool, outdir, "/Group-1.ndjson", NULL));
    ck_assert_str_eq(group, read_line("Group", "fullexample"));
    ck_assert_ptr_nonnull(strstr(group, "\"member\":[{"));
    assert_file("Patient-1.ndjson", "Patient", p123);
    assert_file("Coverage-1.ndjson", "Coverage", p123);
    /* Coverage.subscriber/policyHolder */
    assert_file("RelatedPerson-1.ndjson", "RelatedPerson", rp);
    /* attributed Practitioner/1, and PractitionerRole/1's practitioner: one line */
    assert_file("Practitioner-1.ndjson", "Practitioner", one);
    assert_file("PractitionerRole-1.ndjson", "PractitionerRole", one);
    /* Organization/2 (attributed, payor), Organization/1 (PractitionerRole, payor): deduplicated */
    assert_file("Organization-1.ndjson", "Organization", o12);
    assert_file("Location-1.ndjson", "Location", one);
    ck_assert_int_eq(res->total, 14);
    ck_assert_int_eq(res->files->nelts, 8);
    ck_assert_str_eq(APR_ARRAY_IDX(res->files, 0, atr_export_file_t).type, "Group");
    ck_assert_str_eq(APR_ARRAY_IDX(res->files, 7, atr_export_file_t).type, "Location");
    ck_assert_int_eq(APR_ARRAY_IDX(res->files, 1, atr_export_file_t).count, 3);
    ck_assert_int_eq(res->errors->nelts, 0);
    ck_assert_str_eq(res->group_version, "1");
}
END_TEST

/* The default text splice of stored bodies and the jansson renderer write the same bytes,
 * whatever the body's shape (meta first, last, empty, absent). */
START_TEST(splice_equals_renderer)
{
    static const char *const types[] = { "Patient", "Coverage", "RelatedPerson", "Practitioner",
                                         "PractitionerRole", "Organization", "Location", NULL };
    atr_export_opts_t o;
    const char *fast[8], *slow[8];
    int i;

    put_text("{\"resourceType\":\"Practitioner\",\"active\":true,\"id\":\"1\",\"meta\":{}}",
             "2024-03-03T00:00:00Z");
    put_text("{\"meta\":{\"tag\":[{\"code\":\"x\"}]},\"resourceType\":\"Location\",\"id\":\"1\","
             "\"name\":\"\\u00e9\\\"\"}",
             "2024-03-03T00:00:00Z");
    put_text("{\"resourceType\":\"Patient\",\"id\":\"2\",\"active\":false,\"multipleBirthInteger\":2}",
             "2024-03-03T00:00:00Z");
    memset(&o, 0, sizeof(o));
    run(&o);
    for (i = 0; types[i]; i++) fast[i] = slurp(apr_psprintf(pool, "%s/%s-1.ndjson", outdir, types[i]));
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -f %s/*.ndjson", outdir)), 0);
    memset(&o, 0, sizeof(o));
    o.jansson_render = 1;
    run(&o);
    for (i = 0; types[i]; i++) {
        slow[i] = slurp(apr_psprintf(pool, "%s/%s-1.ndjson", outdir, types[i]));
        ck_assert_str_eq(fast[i], slow[i]);
    }
    ck_assert_ptr_nonnull(strstr(fast[3],
                                 "\"meta\":{\"versionId\":\"2\",\"lastUpdated\":\"2024-03-03T00:00:00.000Z\"}"));
}
END_TEST

START_TEST(member_attributed_twice_once)
{
    static const char *const one[] = { "1", NULL };
    atr_export_opts_t o;
    atr_export_result_t *res;

    put_text("{\"resourceType\":\"Group\",\"id\":\"twice\",\"type\":\"person\",\"actual\":true,\"member\":["
             "{\"entity\":{\"reference\":\"Patient/1\"},\"extension\":["
             "{\"url\":\"" ATR_EXT_COVERAGE_REF "\",\"valueReference\":{\"reference\":\"Coverage/1\"}},"
             "{\"url\":\"" ATR_EXT_PROVIDER "\",\"valueReference\":{\"reference\":\"Practitioner/1\"}}]},"
             "{\"entity\":{\"reference\":\"Patient/1\"},\"extension\":["
             "{\"url\":\"" ATR_EXT_COVERAGE_REF "\",\"valueReference\":{\"reference\":\"Coverage/1\"}},"
             "{\"url\":\"" ATR_EXT_PROVIDER "\",\"valueReference\":{\"reference\":\"PractitionerRole/1\"}}]}]}",
             "2024-03-02T10:00:00Z");
    memset(&o, 0, sizeof(o));
    o.group_id = "twice";
    res = run(&o);
    assert_file("Patient-1.ndjson", "Patient", one);
    assert_file("Coverage-1.ndjson", "Coverage", one);
    /* attributed directly and through PractitionerRole/1: one line */
    assert_file("Practitioner-1.ndjson", "Practitioner", one);
    ck_assert_int_eq(res->counts[1], 1);
    ck_assert_int_eq(res->counts[4], 1);
}
END_TEST

START_TEST(since_filters_all_but_group)
{
    static const char *const two[] = { "2", NULL };
    atr_export_opts_t o;
    atr_export_result_t *res;

    put_text("{\"resourceType\":\"Patient\",\"id\":\"2\",\"active\":false}", "2024-05-01T00:00:00Z");
    memset(&o, 0, sizeof(o));
    o.since = "2024-04-01T00:00:00+02:00";
    res = run(&o);
    /* D15: the Group line always; D14: no file for types with nothing to export */
    ck_assert_str_eq(dir_listing(), "Group-1.ndjson,Patient-1.ndjson");
    assert_file("Patient-1.ndjson", "Patient", two);
    ck_assert_int_eq(res->total, 2);

    /* _until before the change: everything else, not the changed Patient */
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -f %s/*.ndjson", outdir)), 0);
    memset(&o, 0, sizeof(o));
    o.until = "2024-04-01T00:00:00Z";
    res = run(&o);
    ck_assert_int_eq(res->counts[1], 2);
    ck_assert_int_eq(res->total, 13);
}
END_TEST

START_TEST(patient_filter_and_error_file)
{
    static const char *const one[] = { "1", NULL }, *const two[] = { "2", NULL };
    atr_export_opts_t o;
    atr_export_result_t *res;
    const char *errors;

    memset(&o, 0, sizeof(o));
    o.patients = list_of("Patient/1", "Patient/nobody");
    o.types = list_of("Patient", "Organization");
    res = run(&o);
    ck_assert_str_eq(dir_listing(), "OperationOutcome-1.ndjson,Organization-1.ndjson,Patient-1.ndjson");
    assert_file("Patient-1.ndjson", "Patient", one);
    /* Patient/1: attributed to Organization/2, which is also its Coverage's payor */
    assert_file("Organization-1.ndjson", "Organization", two);
    errors = slurp(apr_pstrcat(pool, outdir, "/OperationOutcome-1.ndjson", NULL));
    ck_assert_ptr_nonnull(strstr(errors, "\"resourceType\":\"OperationOutcome\""));
    ck_assert_ptr_nonnull(strstr(errors, "Patient/nobody"));
    ck_assert_ptr_eq(strchr(errors, '\n'), errors + strlen(errors) - 1);   /* one line */
    ck_assert_int_eq(res->not_members, 1);
    ck_assert_int_eq(res->errors->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(res->errors, 0, atr_export_file_t).type, "OperationOutcome");
}
END_TEST

START_TEST(size_split)
{
    static const char *const p1[] = { "1", NULL }, *const p2[] = { "2", NULL }, *const p3[] = { "3", NULL };
    atr_export_opts_t o;
    atr_export_result_t *res;

    memset(&o, 0, sizeof(o));
    o.types = list_of("Patient", NULL);
    o.max_file_size = 10;   /* smaller than any line: one line per file */
    res = run(&o);
    ck_assert_str_eq(dir_listing(), "Patient-1.ndjson,Patient-2.ndjson,Patient-3.ndjson");
    assert_file("Patient-1.ndjson", "Patient", p1);
    assert_file("Patient-2.ndjson", "Patient", p2);
    assert_file("Patient-3.ndjson", "Patient", p3);
    ck_assert_int_eq(res->files->nelts, 3);

    /* room for two lines, not three */
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -f %s/*.ndjson", outdir)), 0);
    memset(&o, 0, sizeof(o));
    o.types = list_of("Patient", NULL);
    o.max_file_size = (apr_off_t)(strlen(read_line("Patient", "1")) + strlen(read_line("Patient", "2")));
    res = run(&o);
    ck_assert_str_eq(dir_listing(), "Patient-1.ndjson,Patient-2.ndjson");
    ck_assert_int_eq(APR_ARRAY_IDX(res->files, 0, atr_export_file_t).count, 2);
}
END_TEST

START_TEST(missing_reference_warns)
{
    atr_export_opts_t o;
    atr_export_result_t *res;
    int version = 0, changed = 0;
    const char *err = NULL;

    ck_assert_int_eq(atr_store_delete(&version, &changed, db, "Location", "1", apr_time_now(), &err, pool),
                     APR_SUCCESS);
    memset(&o, 0, sizeof(o));
    o.types = list_of("Location", NULL);
    res = run(&o);
    ck_assert_str_eq(dir_listing(), "OperationOutcome-1.ndjson");
    ck_assert_int_eq(res->missing[7], 1);
    ck_assert_ptr_nonnull(strstr(slurp(apr_pstrcat(pool, outdir, "/OperationOutcome-1.ndjson", NULL)),
                                 "\"severity\":\"warning\""));
}
END_TEST

START_TEST(refusals_leave_nothing)
{
    atr_export_opts_t o;
    atr_export_result_t *res = NULL;
    const char *err = NULL;

    memset(&o, 0, sizeof(o));
    o.outdir = outdir;
    o.group_id = "nosuch";
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "Group/nosuch"));
    o.group_id = "fullexample";
    o.types = list_of("Observation", NULL);
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    o.types = NULL;
    o.since = "yesterday";
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    o.since = NULL;
    o.patients = list_of("1", NULL);
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    ck_assert_str_eq(dir_listing(), "");
    /* a write error (output directory gone) removes what was written, and the scratch rows */
    o.patients = NULL;
    o.outdir = apr_pstrcat(pool, tmpdir, "/missing", NULL);
    ck_assert_int_ne(atr_export_group(&res, db, &o, &err, pool), APR_SUCCESS);
    ck_assert_ptr_null(res);
}
END_TEST

/* Disk full in the middle of the export (the Patient file is /dev/full): the error comes back
 * and the files already completed (Group-1.ndjson) are removed. */
START_TEST(disk_full_removes_everything)
{
    atr_export_opts_t o;
    atr_export_result_t *res = NULL;
    const char *err = NULL;
    apr_status_t rv;

    ck_assert_int_eq(symlink("/dev/full", apr_pstrcat(pool, outdir, "/.Patient-1.ndjson.tmp", NULL)), 0);
    memset(&o, 0, sizeof(o));
    o.outdir = outdir;
    o.group_id = "fullexample";
    rv = atr_export_group(&res, db, &o, &err, pool);
    ck_assert_int_eq(rv, APR_FROM_OS_ERROR(ENOSPC));
    ck_assert_ptr_null(res);
    ck_assert_ptr_nonnull(strstr(err, "Patient-1.ndjson"));
    ck_assert_str_eq(dir_listing(), "");
    /* the store is untouched and a second run completes */
    memset(&o, 0, sizeof(o));
    res = run(&o);
    ck_assert_int_eq(res->total, 14);
}
END_TEST

/* Rows of atr_export_ref under key xid (the scratch table has no statement label for this:
 * read it directly). */
static int scratch_rows(const char *xid)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *sql = apr_psprintf(pool, "SELECT COUNT(*) FROM atr_export_ref WHERE export_id = '%s'", xid);
    int n = -1;

    ck_assert_int_eq(apr_dbd_select(db->driver, pool, db->handle, &res, sql, 1), 0);
    while (apr_dbd_get_row(db->driver, pool, res, &row, -1) == 0) n = atoi(apr_dbd_get_entry(db->driver, row, 0));
    return n;
}

static void scratch_put(const char *xid, const char *rtype, const char *id)
{
    int n = 0;
    const char *sql = apr_psprintf(pool, "INSERT INTO atr_export_ref (export_id, rtype, id) VALUES ('%s', '%s', '%s')",
                                   xid, rtype, id);
    ck_assert_int_eq(apr_dbd_query(db->driver, db->handle, &n, sql), 0);
    ck_assert_int_eq(n, 1);
}

/* A caller-chosen run key (the httpd worker's claim): rows an earlier run left under the same
 * key are not taken for this run's references, and none remain afterwards. */
START_TEST(export_id_chosen_by_caller)
{
    atr_export_opts_t o;
    atr_export_result_t *res = NULL;
    const char *err = NULL;
    char id65[66];

    scratch_put("job-17.claim-3", "Patient", "ghost");
    scratch_put("job-17.claim-3", "Location", "ghost");
    memset(&o, 0, sizeof(o));
    o.export_id = "job-17.claim-3";
    res = run(&o);
    ck_assert_int_eq(res->total, 14);
    ck_assert_int_eq(res->missing[1], 0);
    ck_assert_int_eq(res->missing[7], 0);
    ck_assert_int_eq(res->errors->nelts, 0);
    ck_assert_int_eq(scratch_rows("job-17.claim-3"), 0);

    /* at most 64 characters, not empty: refused before anything is written */
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -f %s/*.ndjson", outdir)), 0);
    memset(id65, 'k', 65);
    id65[65] = '\0';
    memset(&o, 0, sizeof(o));
    o.outdir = outdir;
    o.group_id = "fullexample";
    o.export_id = id65;
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    ck_assert_ptr_null(res);
    ck_assert_ptr_nonnull(strstr(err, "64"));
    o.export_id = "";
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    ck_assert_str_eq(dir_listing(), "");
    id65[64] = '\0';
    o.export_id = id65;
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_SUCCESS);
    ck_assert_int_eq(res->total, 14);
    ck_assert_int_eq(scratch_rows(id65), 0);
}
END_TEST

/* What a dead run left behind goes, and only that run's rows. */
START_TEST(forget_removes_one_run)
{
    scratch_put("dead-run", "Patient", "1");
    scratch_put("dead-run", "Coverage", "1");
    scratch_put("live-run", "Patient", "1");
    ck_assert_int_eq(atr_export_forget(db, "dead-run", pool), APR_SUCCESS);
    ck_assert_int_eq(scratch_rows("dead-run"), 0);
    ck_assert_int_eq(scratch_rows("live-run"), 1);
    /* nothing to remove is not an error */
    ck_assert_int_eq(atr_export_forget(db, "dead-run", pool), APR_SUCCESS);
    ck_assert_int_eq(atr_export_forget(db, NULL, pool), APR_EINVAL);
    ck_assert_int_eq(scratch_rows("live-run"), 1);
}
END_TEST

static const char *oo_line(const char *severity, const char *code, const char *text)
{
    json_t *oo = atr_oo_make(severity, code, text);
    const char *line = apr_pstrcat(pool, atr_json_dump(oo, pool), "\n", NULL);
    json_decref(oo);
    return line;
}

/* The caller's notes (e.g. a kick-off parameter ignored under handling=lenient) open the
 * error file, one OperationOutcome line each in the given order, before the export's own. */
START_TEST(caller_issues_first_in_error_file)
{
    atr_export_opts_t o;
    atr_export_result_t *res = NULL;
    apr_array_header_t *issues = apr_array_make(pool, 2, sizeof(atr_export_issue_t));
    atr_export_issue_t *is;
    const char *want, *err = NULL;

    is = apr_array_push(issues);
    is->severity = "information";
    is->code = "not-supported";
    is->text = "_typeFilter is not supported: ignored";
    is = apr_array_push(issues);
    is->severity = "warning";
    is->code = "informational";
    is->text = "\xc3\xa9l\xc3\xa8ve \"quoted\"";
    memset(&o, 0, sizeof(o));
    o.issues = issues;
    o.patients = list_of("Patient/1", "Patient/nobody");
    o.types = list_of("Patient", NULL);
    res = run(&o);
    want = apr_pstrcat(pool, oo_line("information", "not-supported", "_typeFilter is not supported: ignored"),
                       oo_line("warning", "informational", "\xc3\xa9l\xc3\xa8ve \"quoted\""),
                       oo_line("error", "not-found", "patient Patient/nobody is not a member of Group/fullexample: ignored"),
                       NULL);
    ck_assert_str_eq(slurp(apr_pstrcat(pool, outdir, "/OperationOutcome-1.ndjson", NULL)), want);
    ck_assert_int_eq(res->errors->nelts, 1);
    ck_assert_int_eq(APR_ARRAY_IDX(res->errors, 0, atr_export_file_t).count, 3);
    ck_assert_int_eq(APR_ARRAY_IDX(res->errors, 0, atr_export_file_t).bytes, (apr_off_t)strlen(want));

    /* an export with no problem of its own: the error file holds just the caller's notes */
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -f %s/*.ndjson", outdir)), 0);
    issues->nelts = 1;
    memset(&o, 0, sizeof(o));
    o.issues = issues;
    res = run(&o);
    ck_assert_str_eq(slurp(apr_pstrcat(pool, outdir, "/OperationOutcome-1.ndjson", NULL)),
                     oo_line("information", "not-supported", "_typeFilter is not supported: ignored"));
    ck_assert_int_eq(res->total, 14);

    /* a severity FHIR does not know, no code, text that is not UTF-8: refused, nothing written */
    ck_assert_int_eq(system(apr_psprintf(pool, "rm -f %s/*.ndjson", outdir)), 0);
    memset(&o, 0, sizeof(o));
    o.outdir = outdir;
    o.group_id = "fullexample";
    o.issues = issues;
    APR_ARRAY_IDX(issues, 0, atr_export_issue_t).severity = "notice";
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "notice"));
    APR_ARRAY_IDX(issues, 0, atr_export_issue_t).severity = "error";
    APR_ARRAY_IDX(issues, 0, atr_export_issue_t).code = NULL;
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    APR_ARRAY_IDX(issues, 0, atr_export_issue_t).code = "invalid";
    APR_ARRAY_IDX(issues, 0, atr_export_issue_t).text = "\xff\xfe";
    ck_assert_int_eq(atr_export_group(&res, db, &o, &err, pool), APR_EINVAL);
    ck_assert_ptr_null(res);
    ck_assert_str_eq(dir_listing(), "");
}
END_TEST

Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, fullexample_every_type);
    tcase_add_test(tc, splice_equals_renderer);
    tcase_add_test(tc, member_attributed_twice_once);
    tcase_add_test(tc, since_filters_all_but_group);
    tcase_add_test(tc, patient_filter_and_error_file);
    tcase_add_test(tc, size_split);
    tcase_add_test(tc, missing_reference_warns);
    tcase_add_test(tc, refusals_leave_nothing);
    tcase_add_test(tc, disk_full_removes_everything);
    tcase_add_test(tc, export_id_chosen_by_caller);
    tcase_add_test(tc, forget_removes_one_run);
    tcase_add_test(tc, caller_issues_first_in_error_file);
    suite_add_tcase(s, tc);
    return s;
}
