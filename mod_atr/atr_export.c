/* Member Attribution List export: references of one Group version are collected into the
 * store's atr_export_ref (its key deduplicates a member attributed twice, a payor shared by
 * every Coverage, ...) and read back type by type in keyset pages joined to the current
 * versions, so memory does not grow with the Group. Each line is what the FHIR read renders. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include "atr_export.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_jscan.h"
#include "atr_log.h"
#include "atr_out.h"
#include "atr_render.h"
#include "atr_store.h"
#include "atr_time.h"

#define DEFAULT_PAGE 1000
/* atr_export_opts_t.export_id (the header's contract) */
#define ATR_EXPORT_ID_MAX 64

enum { T_GROUP, T_PATIENT, T_COVERAGE, T_RELATEDPERSON, T_PRACTITIONER, T_PRACTITIONERROLE,
       T_ORGANIZATION, T_LOCATION };

/* Referenced types are read after the types that reference them (Coverage -> RelatedPerson,
 * Organization; PractitionerRole -> Practitioner, Organization, Location). */
static const int read_order[] = { T_PATIENT, T_COVERAGE, T_PRACTITIONERROLE, T_RELATEDPERSON,
                                  T_PRACTITIONER, T_ORGANIZATION, T_LOCATION };

typedef struct export_t export_t;

/* The files of one type: <Type>-1.ndjson, <Type>-2.ndjson, ... */
typedef struct writer_t {
    export_t *x;
    const char *type;
    apr_array_header_t *list;   /* where its files are recorded */
    int n;
    FILE *f;
    const char *tmp;
    atr_export_file_t *cur;
} writer_t;

struct export_t {
    atr_db_t *db;
    const atr_export_opts_t *opts;
    atr_export_result_t *res;
    apr_pool_t *p;
    const char *xid;            /* this run's key in atr_export_ref */
    const char *since, *until;  /* store format, or NULL */
    apr_off_t max;
    int page;
    int want[ATR_EXPORT_NTYPES];
    int need[ATR_EXPORT_NTYPES];  /* read (to write or to follow its references) */
    apr_array_header_t *created;  /* final paths already renamed (removed on failure) */
    writer_t *open;               /* the writer with a file open (removed on failure) */
    apr_array_header_t *issues;   /* OperationOutcome lines (JSON text) */
    int fast;                     /* render without jansson where the body allows (tests: 0) */
    char *buf;                    /* one rendered resource */
    apr_size_t len, cap;
    const char **perr;
};

int atr_export_type_index(const char *type)
{
    int i;
    for (i = 0; type && atr_fhir_types[i]; i++) {
        if (!strcmp(atr_fhir_types[i], type)) return i;
    }
    return -1;
}

static apr_status_t fail(export_t *x, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static apr_status_t fail(export_t *x, apr_status_t rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *x->perr = apr_pvsprintf(x->p, fmt, ap);
    va_end(ap);
    return rv;
}

static apr_status_t os_error(void)
{
    return errno ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
}

/* ---- files ---- */

static apr_status_t writer_close(writer_t *w)
{
    export_t *x = w->x;
    int bad;

    if (!w->f) return APR_SUCCESS;
    errno = 0;
    bad = ferror(w->f);
    if (fclose(w->f) != 0) bad = 1;
    w->f = NULL;
    x->open = NULL;
    if (bad) {
        apr_status_t rv = os_error();
        remove(w->tmp);
        return fail(x, rv, "cannot write %s", w->cur->path);
    }
    if (rename(w->tmp, w->cur->path) != 0) {
        apr_status_t rv = os_error();
        remove(w->tmp);
        return fail(x, rv, "cannot rename %s to %s", w->tmp, w->cur->path);
    }
    APR_ARRAY_PUSH(x->created, const char *) = w->cur->path;
    return APR_SUCCESS;
}

static apr_status_t writer_open(writer_t *w)
{
    export_t *x = w->x;
    atr_export_file_t *file = apr_array_push(w->list);

    file->type = w->type;
    file->name = apr_psprintf(x->p, "%s-%d.ndjson", w->type, ++w->n);
    file->path = apr_pstrcat(x->p, x->opts->outdir, "/", file->name, NULL);
    file->count = 0;
    file->bytes = 0;
    w->cur = file;
    w->tmp = apr_pstrcat(x->p, x->opts->outdir, "/.", file->name, ".tmp", NULL);
    errno = 0;
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        w->list->nelts--;
        return fail(x, os_error(), "cannot create %s", w->tmp);
    }
    x->open = w;
    return APR_SUCCESS;
}

static apr_status_t writer_raw(writer_t *w, const char *data, apr_size_t len)
{
    if (len && fwrite(data, 1, len, w->f) != len) return fail(w->x, os_error(), "cannot write %s", w->cur->path);
    w->cur->bytes += (apr_off_t)len;
    return APR_SUCCESS;
}

static apr_status_t file_sink(void *ctx, const char *data, apr_size_t len)
{
    return writer_raw(ctx, data, len);
}

/* One NDJSON line; a new file first when this line would take the current one past the
 * size limit (a line longer than the limit gets a file of its own). */
static apr_status_t writer_line(writer_t *w, const char *data, apr_size_t len)
{
    apr_status_t rv;

    if (w->f && w->cur->count > 0 && w->cur->bytes + (apr_off_t)len + 1 > w->x->max) {
        rv = writer_close(w);
        if (rv != APR_SUCCESS) return rv;
    }
    if (!w->f && (rv = writer_open(w)) != APR_SUCCESS) return rv;
    rv = writer_raw(w, data, len);
    if (rv == APR_SUCCESS) rv = writer_raw(w, "\n", 1);
    if (rv == APR_SUCCESS) w->cur->count++;
    return rv;
}

static void writer_init(writer_t *w, export_t *x, const char *type, apr_array_header_t *list)
{
    memset(w, 0, sizeof(*w));
    w->x = x;
    w->type = type;
    w->list = list;
}

/* Remove every file of a failed run: no partial export is ever left for someone to serve. */
static void discard_files(export_t *x)
{
    int i;

    if (x->open) {
        fclose(x->open->f);
        x->open->f = NULL;
        remove(x->open->tmp);
        x->open = NULL;
    }
    for (i = 0; i < x->created->nelts; i++) remove(APR_ARRAY_IDX(x->created, i, const char *));
    apr_array_clear(x->res->files);
    apr_array_clear(x->res->errors);
}

/* ---- the rendered line buffer (malloc'ed: reused for every resource, freed at the end) ---- */

static apr_status_t buf_sink(void *ctx, const char *data, apr_size_t len)
{
    export_t *x = ctx;

    if (x->len + len > x->cap) {
        apr_size_t cap = x->cap ? x->cap : 4096;
        char *nb;
        while (cap < x->len + len) cap *= 2;
        nb = realloc(x->buf, cap);
        if (!nb) return APR_ENOMEM;
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    return APR_SUCCESS;
}

static apr_status_t free_buf(void *data)
{
    export_t *x = data;
    free(x->buf);
    x->buf = NULL;
    return APR_SUCCESS;
}

static void add_issue(export_t *x, const char *severity, const char *code, const char *text)
{
    json_t *oo = atr_oo_make(severity, code, text);
    APR_ARRAY_PUSH(x->issues, const char *) = atr_json_dump(oo, x->p);
    json_decref(oo);
}

/* The caller's notes (opts->issues) go first in the error file, in the shape of ours. A
 * severity FHIR does not know, a missing code or text that is not UTF-8 (jansson would drop
 * it) is the caller's mistake: refused before anything is written. */
static apr_status_t add_caller_issues(export_t *x, const apr_array_header_t *issues)
{
    int i;

    for (i = 0; issues && i < issues->nelts; i++) {
        const atr_export_issue_t *is = &APR_ARRAY_IDX(issues, i, atr_export_issue_t);
        json_t *text = NULL;

        if (!is->severity || (strcmp(is->severity, "fatal") && strcmp(is->severity, "error")
                              && strcmp(is->severity, "warning") && strcmp(is->severity, "information"))) {
            return fail(x, APR_EINVAL, "issue %d: severity '%s' is not fatal, error, warning or information", i + 1,
                        is->severity ? is->severity : "");
        }
        if (!is->code || !*is->code || strpbrk(is->code, " \t\r\n")) {
            return fail(x, APR_EINVAL, "issue %d: code '%s' is not a FHIR code", i + 1, is->code ? is->code : "");
        }
        if (is->text && !(text = json_string(is->text))) {
            return fail(x, APR_EINVAL, "issue %d: diagnostics are not UTF-8 text", i + 1);
        }
        json_decref(text);
        add_issue(x, is->severity, is->code, is->text);
    }
    return APR_SUCCESS;
}

/* ---- references ---- */

static const char *ref_args_len(apr_pool_t *p, const char *type, int extra)
{
    return apr_itoa(p, (int)strlen(type) + extra);
}

/* Member references of one kind (entity/coverage/provider column) with type prefix into
 * atr_export_ref, for all members or those of one entity_ref. */
static apr_status_t collect_members(export_t *x, const char *label, const char *type, const char *gid,
                                    const char *gver, const char *entity, apr_pool_t *ptemp)
{
    const char *args[8];
    apr_status_t rv;

    args[0] = x->xid;
    args[1] = type;
    args[2] = ref_args_len(ptemp, type, 2);
    args[3] = gid;
    args[4] = gver;
    args[5] = ref_args_len(ptemp, type, 1);
    args[6] = apr_pstrcat(ptemp, type, "/", NULL);
    args[7] = entity;
    rv = atr_db_exec(x->db, NULL, entity ? apr_pstrcat(ptemp, label, "_p", NULL) : label, ptemp,
                     entity ? 8 : 7, args);
    if (rv != APR_SUCCESS) return fail(x, rv, "cannot collect %s references: %s", type, atr_db_error(x->db, rv));
    return APR_SUCCESS;
}

/* A relative reference "Type/id" to one of the allowed types (bit mask of T_) goes to refs.
 * [s, e) is a Reference object in compact JSON text. */
static void note_ref(apr_hash_t *refs, const char *text, apr_size_t s, apr_size_t e, unsigned mask)
{
    apr_size_t vs, ve;
    const char *slash;
    char *ref;
    int t;

    if (!atr_jscan_field(text, s, e, "reference", &vs, &ve) || text[vs] != '"' || ve - vs < 4) return;
    ref = apr_pstrmemdup(apr_hash_pool_get(refs), text + vs + 1, ve - vs - 2);
    if (strchr(ref, '\\') || !(slash = strchr(ref, '/')) || !atr_fhir_is_id(slash + 1)) return;
    ref[slash - ref] = '\0';
    t = atr_export_type_index(ref);
    ref[slash - ref] = '/';
    if (t < 0 || !(mask & (1u << t))) return;
    apr_hash_set(refs, ref, APR_HASH_KEY_STRING, ref);
}

/* The Reference (or array of References) at top-level key of body. */
static void note_refs(apr_hash_t *refs, const char *body, apr_size_t len, const char *key, unsigned mask)
{
    apr_size_t vs, ve, pos, es, ee;

    if (!atr_jscan_field(body, 0, len, key, &vs, &ve)) return;
    if (body[vs] == '{') {
        note_ref(refs, body, vs, ve, mask);
    }
    else if (body[vs] == '[') {
        pos = vs + 1;
        while (atr_jscan_next(body, &pos, ve, &es, &ee)) note_ref(refs, body, es, ee, mask);
    }
}

/* References of a Coverage / PractitionerRole body that the export follows (EXP-07). Stored
 * bodies are compact JSON as atr_json_dump writes it, so they are read without a tree. */
static apr_status_t follow_refs(export_t *x, apr_hash_t *refs, int t, const char *body)
{
    apr_size_t len = strlen(body);
    unsigned mask = 0;
    int i;

    if (len < 2 || body[0] != '{') return APR_EGENERAL;
    for (i = 0; i < ATR_EXPORT_NTYPES; i++) {
        if (x->need[i]) mask |= 1u << i;
    }
    if (t == T_COVERAGE) {
        mask &= (1u << T_RELATEDPERSON) | (1u << T_ORGANIZATION);
        note_refs(refs, body, len, "subscriber", mask);
        note_refs(refs, body, len, "policyHolder", mask);
        note_refs(refs, body, len, "payor", mask);
    }
    else {
        mask &= (1u << T_PRACTITIONER) | (1u << T_ORGANIZATION) | (1u << T_LOCATION);
        note_refs(refs, body, len, "practitioner", mask);
        note_refs(refs, body, len, "organization", mask);
        note_refs(refs, body, len, "location", mask);
    }
    return APR_SUCCESS;
}

/* What atr_render_resource writes for a non-Group resource, without a JSON tree: stored
 * bodies are exactly what atr_json_dump writes (the store's contract), so the read's text is
 * the body with versionId/lastUpdated put first into its meta, or with a new meta right after
 * id. 0 when the body has another shape (the caller then renders with jansson). */
static int fast_render(export_t *x, const atr_resource_t *res)
{
    const char *b = res->body;
    apr_size_t len = strlen(b), ms, me, vs, ve;
    char meta[128];
    int n;

    n = apr_snprintf(meta, sizeof(meta), "\"versionId\":\"%d\",\"lastUpdated\":\"%s\"", res->version,
                     res->last_updated);
    if (n <= 0 || n >= (int)sizeof(meta) - 1 || len < 2 || b[0] != '{') return 0;
    x->len = 0;
    if (atr_jscan_field(b, 0, len, "meta", &ms, &me)) {
        if (atr_jscan_field(b, ms, me, "versionId", &vs, &ve) || atr_jscan_field(b, ms, me, "lastUpdated", &vs, &ve)) {
            return 0;
        }
        return buf_sink(x, b, ms + 1) == APR_SUCCESS && buf_sink(x, meta, (apr_size_t)n) == APR_SUCCESS
               && (b[ms + 1] == '}' || buf_sink(x, ",", 1) == APR_SUCCESS)
               && buf_sink(x, b + ms + 1, len - ms - 1) == APR_SUCCESS;
    }
    if (!atr_jscan_field(b, 0, len, "id", &vs, &ve) || b[vs] != '"') {
        /* "meta" present but not an object, or no id: leave it to the renderer */
        return 0;
    }
    return buf_sink(x, b, ve) == APR_SUCCESS && buf_sink(x, ",\"meta\":{", 9) == APR_SUCCESS
           && buf_sink(x, meta, (apr_size_t)n) == APR_SUCCESS && buf_sink(x, "}", 1) == APR_SUCCESS
           && buf_sink(x, b + ve, len - ve) == APR_SUCCESS;
}

static apr_status_t store_refs(export_t *x, apr_hash_t *refs, apr_pool_t *ptemp)
{
    apr_hash_index_t *hi;
    atr_db_tx_t *tx = NULL;
    apr_status_t rv;

    if (apr_hash_count(refs) == 0) return APR_SUCCESS;
    /* one transaction per page: one commit instead of one per reference */
    rv = atr_db_tx_begin(&tx, x->db, ptemp);
    for (hi = apr_hash_first(ptemp, refs); rv == APR_SUCCESS && hi; hi = apr_hash_next(hi)) {
        const char *ref = apr_hash_this_key(hi), *slash = strchr(ref, '/'), *args[3];
        args[0] = x->xid;
        args[1] = apr_pstrmemdup(ptemp, ref, (apr_size_t)(slash - ref));
        args[2] = slash + 1;
        rv = atr_db_exec(x->db, NULL, "atr_exp_ref_insert", ptemp, 3, args);
        if (rv != APR_SUCCESS) atr_db_tx_fail(tx);
    }
    if (tx) {
        apr_status_t rv2 = atr_db_tx_end(tx);
        if (rv == APR_SUCCESS) rv = rv2;
    }
    if (rv != APR_SUCCESS) return fail(x, rv, "cannot record references: %s", atr_db_error(x->db, rv));
    return APR_SUCCESS;
}

static int in_window(const export_t *x, const char *last_updated)
{
    if (x->since && strcmp(last_updated, x->since) <= 0) return 0;
    if (x->until && strcmp(last_updated, x->until) > 0) return 0;
    return 1;
}

/* Read one type's collected references page by page: write the current versions that pass
 * _since/_until, follow the references of Coverage/PractitionerRole, count the missing. */
static apr_status_t export_type(export_t *x, int t, apr_pool_t *p)
{
    const char *type = atr_fhir_types[t], *after = "", *args[4];
    char keyset[128] = "";   /* last id of the previous page (ids are at most 64 chars) */
    apr_pool_t *ptemp, *prow;
    writer_t w;
    apr_status_t rv = APR_SUCCESS;
    atr_render_opts_t ropts = { ATR_SUMMARY_FALSE, NULL, 0 };
    int follow = (t == T_COVERAGE || t == T_PRACTITIONERROLE), last_page = 0;
    atr_out_t out;

    writer_init(&w, x, type, x->res->files);
    out.write = buf_sink;
    out.ctx = x;
    apr_pool_create(&ptemp, p);
    while (rv == APR_SUCCESS && !last_page) {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        apr_hash_t *refs;
        int n = 0;

        apr_pool_clear(ptemp);
        apr_pool_create(&prow, ptemp);
        refs = apr_hash_make(ptemp);
        args[0] = x->xid;
        args[1] = type;
        args[2] = keyset;
        args[3] = apr_itoa(ptemp, x->page);
        rv = atr_db_select(&rows, x->db, "atr_exp_ref_page", ptemp, 4, args);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "cannot read %s: %s", type, atr_db_error(x->db, rv));
            break;
        }
        while (rv == APR_SUCCESS && atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *ver = atr_db_col(rows, row, 1), *deleted = atr_db_col(rows, row, 3);
            atr_resource_t res;

            n++;
            after = atr_db_col(rows, row, 0);
            if (!ver || (deleted && strcmp(deleted, "0"))) {
                x->res->missing[t]++;
                continue;
            }
            apr_pool_clear(prow);
            res.type = type;
            res.id = after;
            res.version = atoi(ver);
            res.last_updated = atr_db_col(rows, row, 2);
            res.deleted = 0;
            res.body = atr_db_col(rows, row, 4);
            if (!res.last_updated || !res.body) {
                x->res->missing[t]++;
                continue;
            }
            if (follow && follow_refs(x, refs, t, res.body) != APR_SUCCESS) {
                atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_EGENERAL, prow,
                               "ATR00700: export: stored %s/%s is not JSON; its references are not followed",
                               type, after);
            }
            if (!x->want[t] || !in_window(x, res.last_updated)) continue;
            if (x->fast && fast_render(x, &res)) {
                rv = APR_SUCCESS;
            }
            else {
                x->len = 0;
                rv = atr_render_resource(&out, x->db, &res, &ropts, prow);
            }
            if (rv != APR_SUCCESS) {
                rv = fail(x, rv, "cannot render %s/%s", type, after);
                break;
            }
            rv = writer_line(&w, x->buf, x->len);
            if (rv == APR_SUCCESS) {
                x->res->counts[t]++;
                x->res->total++;
            }
        }
        /* the keyset must survive the clear of ptemp */
        if (n) apr_cpystrn(keyset, after, sizeof(keyset));
        if (rv == APR_SUCCESS) rv = store_refs(x, refs, ptemp);
        if (rv == APR_SUCCESS && x->opts->progress) rv = x->opts->progress(x->opts->progress_baton, x->res->total);
        if (n < x->page) last_page = 1;
    }
    if (rv == APR_SUCCESS) rv = writer_close(&w);
    if (rv == APR_SUCCESS && x->want[t] && x->res->missing[t]) {
        add_issue(x, "warning", "not-found",
                  apr_psprintf(p, "%ld referenced %s resource%s not in the store (or deleted): not exported",
                               x->res->missing[t], type, x->res->missing[t] == 1 ? " is" : "s are"));
    }
    apr_pool_destroy(ptemp);
    return rv;
}

/* ---- setup ---- */

static apr_status_t check_opts(export_t *x, const atr_export_opts_t *o)
{
    int i, t;
    apr_time_t tm;

    if (!o->group_id || !atr_fhir_is_id(o->group_id)) {
        return fail(x, APR_EINVAL, "Group id '%s' is not a valid FHIR id", o->group_id ? o->group_id : "");
    }
    if (!o->outdir || !*o->outdir) return fail(x, APR_EINVAL, "no output directory");
    if (!o->types || o->types->nelts == 0) {
        for (t = 0; t < ATR_EXPORT_NTYPES; t++) x->want[t] = 1;
    }
    for (i = 0; o->types && i < o->types->nelts; i++) {
        const char *type = APR_ARRAY_IDX(o->types, i, const char *);
        t = atr_export_type_index(type);
        if (t < 0) {
            return fail(x, APR_EINVAL, "'%s' is not a resource type of the attribution list export", type);
        }
        x->want[t] = 1;
    }
    if (o->since) {
        if (atr_time_parse_instant(&tm, o->since) != APR_SUCCESS) {
            return fail(x, APR_EINVAL, "_since '%s' is not a FHIR instant", o->since);
        }
        x->since = atr_time_instant(tm, x->p);
    }
    if (o->until) {
        if (atr_time_parse_instant(&tm, o->until) != APR_SUCCESS) {
            return fail(x, APR_EINVAL, "_until '%s' is not a FHIR instant", o->until);
        }
        x->until = atr_time_instant(tm, x->p);
    }
    for (i = 0; o->patients && i < o->patients->nelts; i++) {
        const char *ref = APR_ARRAY_IDX(o->patients, i, const char *);
        if (!ref || strncmp(ref, "Patient/", 8) || !atr_fhir_is_id(ref + 8)) {
            return fail(x, APR_EINVAL, "patient '%s' is not a Patient reference (Patient/id)", ref ? ref : "");
        }
    }
    if (o->export_id && (!*o->export_id || strlen(o->export_id) > ATR_EXPORT_ID_MAX)) {
        return fail(x, APR_EINVAL, "export id must be 1 to %d characters", ATR_EXPORT_ID_MAX);
    }
    x->max = o->max_file_size > 0 ? o->max_file_size : ATR_EXPORT_DEFAULT_MAX_FILE;
    x->page = o->page_size > 0 ? o->page_size : DEFAULT_PAGE;
    /* what must be read: the wanted types and those whose references lead to them */
    memcpy(x->need, x->want, sizeof(x->need));
    if (x->want[T_RELATEDPERSON] || x->want[T_ORGANIZATION]) x->need[T_COVERAGE] = 1;
    if (x->want[T_PRACTITIONER] || x->want[T_ORGANIZATION] || x->want[T_LOCATION]) x->need[T_PRACTITIONERROLE] = 1;
    return APR_SUCCESS;
}

static apr_status_t collect_for(export_t *x, const char *gid, const char *gver, const char *entity,
                                apr_pool_t *ptemp)
{
    apr_status_t rv = APR_SUCCESS;

    if (x->need[T_PATIENT]) rv = collect_members(x, "atr_exp_ref_entity", "Patient", gid, gver, entity, ptemp);
    if (rv == APR_SUCCESS && x->need[T_COVERAGE]) {
        rv = collect_members(x, "atr_exp_ref_coverage", "Coverage", gid, gver, entity, ptemp);
    }
    if (rv == APR_SUCCESS && x->need[T_PRACTITIONER]) {
        rv = collect_members(x, "atr_exp_ref_provider", "Practitioner", gid, gver, entity, ptemp);
    }
    if (rv == APR_SUCCESS && x->need[T_PRACTITIONERROLE]) {
        rv = collect_members(x, "atr_exp_ref_provider", "PractitionerRole", gid, gver, entity, ptemp);
    }
    if (rv == APR_SUCCESS && x->need[T_ORGANIZATION]) {
        rv = collect_members(x, "atr_exp_ref_provider", "Organization", gid, gver, entity, ptemp);
    }
    return rv;
}

/* EXP-06: only the listed members; a reference that is not a member of this Group version
 * is reported in the error file and otherwise ignored. */
static apr_status_t collect_patients(export_t *x, const char *gid, const char *gver, apr_pool_t *p)
{
    apr_pool_t *ptemp;
    apr_status_t rv = APR_SUCCESS;
    int i;

    apr_pool_create(&ptemp, p);
    for (i = 0; rv == APR_SUCCESS && i < x->opts->patients->nelts; i++) {
        const char *ref = APR_ARRAY_IDX(x->opts->patients, i, const char *), *args[2];
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;

        apr_pool_clear(ptemp);
        args[0] = gid;
        args[1] = ref;
        rv = atr_db_select(&rows, x->db, "atr_ent_member_entity", ptemp, 2, args);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "cannot check the members: %s", atr_db_error(x->db, rv));
            break;
        }
        if (atr_db_next(&row, rows) != APR_SUCCESS) {
            x->res->not_members++;
            add_issue(x, "error", "not-found",
                      apr_psprintf(x->p, "patient %s is not a member of Group/%s: ignored", ref, gid));
            continue;
        }
        while (atr_db_next(&row, rows) == APR_SUCCESS) {}
        rv = collect_for(x, gid, gver, ref, ptemp);
    }
    apr_pool_destroy(ptemp);
    return rv;
}

static apr_status_t export_group_line(export_t *x, const atr_resource_t *g, apr_pool_t *p)
{
    writer_t w;
    atr_out_t out;
    atr_render_opts_t ropts = { ATR_SUMMARY_FALSE, NULL, 0 };
    apr_status_t rv;

    writer_init(&w, x, "Group", x->res->files);
    rv = writer_open(&w);
    if (rv != APR_SUCCESS) return rv;
    out.write = file_sink;
    out.ctx = &w;
    /* streamed straight to the file: the member list can be any size */
    rv = atr_render_resource(&out, x->db, g, &ropts, p);
    if (rv != APR_SUCCESS && !*x->perr) rv = fail(x, rv, "cannot render Group/%s: %s", g->id, atr_db_error(x->db, rv));
    if (rv == APR_SUCCESS) rv = writer_raw(&w, "\n", 1);
    if (rv == APR_SUCCESS) {
        w.cur->count = 1;
        x->res->counts[T_GROUP] = 1;
        x->res->total++;
        rv = writer_close(&w);
    }
    return rv;
}

static apr_status_t write_issues(export_t *x)
{
    writer_t w;
    apr_status_t rv = APR_SUCCESS;
    int i;

    writer_init(&w, x, "OperationOutcome", x->res->errors);
    for (i = 0; rv == APR_SUCCESS && i < x->issues->nelts; i++) {
        const char *line = APR_ARRAY_IDX(x->issues, i, const char *);
        rv = writer_line(&w, line, strlen(line));
    }
    if (rv == APR_SUCCESS) rv = writer_close(&w);
    return rv;
}

static apr_status_t new_export_id(const char **pid, apr_pool_t *p)
{
    unsigned char raw[12];
    char *hex = apr_palloc(p, sizeof(raw) * 2 + 1);
    apr_size_t i;
    apr_status_t rv = apr_generate_random_bytes(raw, sizeof(raw));

    if (rv != APR_SUCCESS) return rv;
    for (i = 0; i < sizeof(raw); i++) apr_snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    *pid = hex;
    return APR_SUCCESS;
}

apr_status_t atr_export_group(atr_export_result_t **pres, atr_db_t *db, const atr_export_opts_t *opts,
                              const char **perr, apr_pool_t *p)
{
    export_t *x = apr_pcalloc(p, sizeof(*x));
    atr_resource_t *g = NULL;
    apr_pool_t *ptemp = NULL;
    apr_status_t rv;
    int i, scratch = 0;
    const char *dummy = NULL;

    if (!perr) perr = &dummy;
    *perr = NULL;
    *pres = NULL;
    x->db = db;
    x->opts = opts;
    x->p = p;
    x->perr = perr;
    x->fast = !opts->jansson_render;
    x->res = apr_pcalloc(p, sizeof(*x->res));
    x->res->files = apr_array_make(p, 8, sizeof(atr_export_file_t));
    x->res->errors = apr_array_make(p, 1, sizeof(atr_export_file_t));
    x->created = apr_array_make(p, 8, sizeof(const char *));
    x->issues = apr_array_make(p, 4, sizeof(const char *));
    apr_pool_cleanup_register(p, x, free_buf, apr_pool_cleanup_null);

    rv = check_opts(x, opts);
    if (rv == APR_SUCCESS) rv = add_caller_issues(x, opts->issues);
    if (rv != APR_SUCCESS) goto leave;
    apr_pool_create(&ptemp, p);
    rv = atr_store_get(&g, db, "Group", opts->group_id, 0, p);
    if (rv == APR_NOTFOUND || (rv == APR_SUCCESS && g->deleted)) {
        rv = fail(x, APR_NOTFOUND, "Group/%s is not in the store", opts->group_id);
        goto leave;
    }
    if (rv != APR_SUCCESS) {
        rv = fail(x, rv, "cannot read Group/%s: %s", opts->group_id, atr_db_error(db, rv));
        goto leave;
    }
    x->res->group_version = apr_itoa(p, g->version);
    if (opts->export_id) {
        x->xid = opts->export_id;
        /* a key the caller chose may hold what an earlier run under it left behind: those
         * rows would be taken for this run's references */
        rv = atr_export_forget(db, x->xid, ptemp);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "cannot clear the scratch rows of export %s: %s", x->xid, atr_db_error(db, rv));
            goto leave;
        }
    }
    else {
        rv = new_export_id(&x->xid, p);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "no random bytes for the export id");
            goto leave;
        }
    }
    scratch = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, ptemp, "ATR00701: export %s: Group/%s version %d to %s",
                   x->xid, g->id, g->version, opts->outdir);

    if (opts->patients && opts->patients->nelts > 0) {
        rv = collect_patients(x, g->id, x->res->group_version, p);
    }
    else {
        rv = collect_for(x, g->id, x->res->group_version, NULL, ptemp);
    }
    if (rv != APR_SUCCESS) goto leave;

    if (x->want[T_GROUP]) {
        rv = export_group_line(x, g, ptemp);
        if (rv != APR_SUCCESS) goto leave;
    }
    for (i = 0; i < (int)(sizeof(read_order) / sizeof(read_order[0])); i++) {
        if (!x->need[read_order[i]]) continue;
        rv = export_type(x, read_order[i], p);
        if (rv != APR_SUCCESS) goto leave;
    }
    /* output files in atr_fhir_types order, whatever order they were read in */
    if (x->res->files->nelts > 1) {
        apr_array_header_t *sorted = apr_array_make(p, x->res->files->nelts, sizeof(atr_export_file_t));
        int t, k;
        for (t = 0; t < ATR_EXPORT_NTYPES; t++) {
            for (k = 0; k < x->res->files->nelts; k++) {
                atr_export_file_t *f = &APR_ARRAY_IDX(x->res->files, k, atr_export_file_t);
                if (!strcmp(f->type, atr_fhir_types[t])) *(atr_export_file_t *)apr_array_push(sorted) = *f;
            }
        }
        x->res->files = sorted;
    }
    rv = write_issues(x);

leave:
    if (scratch) {
        apr_status_t rv2;
        if (!ptemp) apr_pool_create(&ptemp, p);
        apr_pool_clear(ptemp);
        rv2 = atr_export_forget(db, x->xid, ptemp);
        if (rv2 != APR_SUCCESS) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, rv2, ptemp,
                           "ATR00702: export %s: cannot remove its scratch rows: %s", x->xid, atr_db_error(db, rv2));
        }
    }
    if (rv != APR_SUCCESS) {
        discard_files(x);
        if (!*perr) *perr = "export failed";
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, rv, p, "ATR00703: export of Group/%s failed: %s",
                       opts->group_id ? opts->group_id : "", *perr);
    }
    else {
        *pres = x->res;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p, "ATR00704: export %s: %ld resources in %d files",
                       x->xid, x->res->total, x->res->files->nelts);
    }
    if (ptemp) apr_pool_destroy(ptemp);
    free_buf(x);
    return rv;
}

apr_status_t atr_export_forget(atr_db_t *db, const char *export_id, apr_pool_t *p)
{
    const char *args[1];
    apr_status_t rv;

    if (!export_id || !*export_id) return APR_EINVAL;
    args[0] = export_id;
    rv = atr_db_exec(db, NULL, "atr_exp_ref_delete", p, 1, args);
    if (rv == APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p, "ATR00705: export %s: scratch rows removed",
                       export_id);
    }
    return rv;
}
