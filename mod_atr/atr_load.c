/* Loading NDJSON / Bundle files: one transaction per file, first bad line rolls it all back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <apr_strings.h>
#include "atr_load.h"
#include "atr_json.h"
#include "atr_fhir.h"
#include "atr_log.h"
#include "atr_store.h"
#include "atr_jscan.h"

typedef struct load_ctx_t {
    atr_db_t *db;
    atr_store_bulk_t *bulk;   /* the file's writes, batched where the store allows */
    atr_load_stats_t st;
    const char *path;
} load_ctx_t;

/* Called by the store once a resource is written (with batching, some lines later). */
static void count(void *baton, const char *type, const char *id, int version, int changed)
{
    load_ctx_t *ctx = baton;
    (void)type;
    (void)id;
    ctx->st.resources++;
    if (!changed) ctx->st.unchanged++;
    else if (version == 1) ctx->st.created++;
    else ctx->st.updated++;
}

static apr_status_t put_one(load_ctx_t *ctx, json_t *res, const char **perr, apr_pool_t *p)
{
    return atr_store_bulk_put(ctx->bulk, res, apr_time_now(), perr, p);
}

/* Members of a scanned Group line, cut out of the text one at a time. */
typedef struct span_members_t {
    const char *text;
    apr_size_t start, end;     /* the member array: text[start] == '[' */
    apr_size_t pos, next;      /* cursor and the index it is at */
} span_members_t;

static apr_status_t span_member_get(void *baton, apr_size_t i, const char **pjson, apr_pool_t *ptemp)
{
    span_members_t *sm = baton;
    apr_size_t s, e;

    if (i == 0) {
        sm->pos = sm->start + 1;
        sm->next = 0;
    }
    if (i != sm->next || !atr_jscan_next(sm->text, &sm->pos, sm->end, &s, &e)) return APR_EGENERAL;
    sm->next++;
    *pjson = apr_pstrmemdup(ptemp, sm->text + s, e - s);
    return APR_SUCCESS;
}

static const char *span_str(const char *line, apr_size_t s, apr_size_t e, apr_pool_t *p)
{
    if (e < s + 2 || line[s] != '"' || memchr(line + s, '\\', e - s)) return NULL;
    return apr_pstrmemdup(p, line + s + 1, e - s - 2);
}

/* The fast path: a line the scanner found canonical is stored from its text, without a
 * jansson tree (a Group's members are handed over one by one). *phandled = 0 leaves the line
 * to the jansson path (Bundles, meta.versionId present, unusual spellings, errors to word). */
static apr_status_t load_scanned(int *phandled, load_ctx_t *ctx, char *line, const atr_jscan_t *sc,
                                 const char **perr, apr_pool_t *p)
{
    const char *type, *id, *body;
    json_t *parsed = NULL;
    atr_store_members_t ms, *msp = NULL;
    span_members_t sm;

    *phandled = 0;
    if (!sc->canonical || sc->meta_version) return APR_SUCCESS;
    type = span_str(line, sc->type_s, sc->type_e, p);
    id = span_str(line, sc->id_s, sc->id_e, p);
    if (!type || !id || !atr_fhir_is_type(type) || !atr_fhir_is_id(id)) return APR_SUCCESS;
    if (sc->meta_e && line[sc->meta_s] != '{') return APR_SUCCESS;
    line[sc->len] = '\0';
    if (strcmp(type, "Group")) {
        if (sc->member_e) return APR_SUCCESS;  /* not a Group element: let jansson path decide */
        body = line;
    }
    else {
        json_error_t jerr;
        if (sc->member_e && line[sc->member_s] != '[') return APR_SUCCESS;
        if (sc->member_e) {
            body = apr_pstrcat(p, apr_pstrmemdup(p, line, sc->member_pair_s), line + sc->member_pair_e, NULL);
            sm.text = line;
            sm.start = sc->member_s;
            sm.end = sc->member_e;
            sm.pos = sm.start + 1;
            sm.next = 0;
            ms.count = sc->member_count;
            ms.get = span_member_get;
            ms.baton = &sm;
            msp = &ms;
        }
        else {
            body = line;
        }
        parsed = json_loads(body, 0, &jerr);
        if (!parsed) return APR_SUCCESS;
        atr_json_pool_own(parsed, p);
    }
    *phandled = 1;
    return atr_store_bulk_put_text(ctx->bulk, type, id, body, parsed, msp, apr_time_now(), perr, p);
}

/* A resource, or a Bundle whose entries' resources are loaded. */
static apr_status_t load_value(load_ctx_t *ctx, json_t *j, const char **perr, apr_pool_t *p)
{
    const char *type = atr_json_str(j, "resourceType");
    apr_status_t rv;

    if (!json_is_object(j)) {
        *perr = "not a JSON object (a FHIR resource or Bundle)";
        return APR_EINVAL;
    }
    if (type && !strcmp(type, "Bundle")) {
        json_t *entries = json_object_get(j, "entry"), *e;
        size_t i;
        if (entries && !json_is_array(entries)) {
            *perr = "Bundle.entry is not an array";
            return APR_EINVAL;
        }
        json_array_foreach(entries, i, e) {
            json_t *res = json_object_get(e, "resource");
            const char *err = NULL;
            if (!json_is_object(res)) {
                *perr = apr_psprintf(p, "Bundle.entry[%lu] has no resource", (unsigned long)i);
                return APR_EINVAL;
            }
            rv = put_one(ctx, res, &err, p);
            if (rv != APR_SUCCESS) {
                *perr = apr_psprintf(p, "Bundle.entry[%lu]: %s", (unsigned long)i, err ? err : "cannot store");
                return rv;
            }
        }
        return APR_SUCCESS;
    }
    return put_one(ctx, j, perr, p);
}

static int is_blank(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    }
    return 1;
}

static const char *json_err(const json_error_t *err, int with_line, apr_pool_t *p)
{
    if (with_line) return apr_psprintf(p, "malformed JSON at line %d column %d: %s", err->line, err->column, err->text);
    return apr_psprintf(p, "malformed JSON at column %d: %s", err->column, err->text);
}

apr_status_t atr_load_file(atr_load_stats_t *stats, atr_db_t *db, const char *path,
                           const char **perr, apr_pool_t *p)
{
    load_ctx_t ctx;
    atr_db_tx_t *tx = NULL;
    apr_pool_t *ptemp = NULL;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int first = 1, whole = 0;
    const char *err = NULL;
    apr_status_t rv = APR_SUCCESS;

    memset(stats, 0, sizeof(*stats));
    memset(&ctx, 0, sizeof(ctx));
    ctx.db = db;
    ctx.path = path;
    if (perr) *perr = NULL;

    f = fopen(path, "r");
    if (!f) {
        rv = APR_FROM_OS_ERROR(errno);
        if (perr) *perr = apr_psprintf(p, "%s: cannot open: %s", path, strerror(errno));
        goto leave;
    }
    apr_pool_create(&ptemp, p);
    rv = atr_db_tx_begin(&tx, db, p);
    if (rv != APR_SUCCESS) {
        if (perr) *perr = apr_psprintf(p, "%s: cannot start a transaction: %s", path, atr_db_error(db, 1));
        goto leave;
    }
    rv = atr_store_bulk_create(&ctx.bulk, db, count, &ctx, p);
    if (rv != APR_SUCCESS) {
        if (perr) *perr = apr_psprintf(p, "%s: cannot start writing: %s", path, atr_db_error(db, (int)rv));
        goto leave;
    }

    for (;;) {
        off_t start = ftello(f);
        json_error_t jerr;
        atr_jscan_t scan;
        int handled = 0;
        json_t *j;

        if ((len = getline(&line, &cap, f)) < 0) break;
        lineno++;
        if (is_blank(line, (size_t)len)) continue;
        apr_pool_clear(ptemp);
        if (atr_jscan_object(&scan, line, (apr_size_t)len)) {
            rv = load_scanned(&handled, &ctx, line, &scan, &err, ptemp);
            if (rv != APR_SUCCESS) {
                err = apr_pstrdup(p, err ? err : "cannot store");
                goto bad;
            }
            if (handled) {
                first = 0;
                continue;
            }
            len = (ssize_t)scan.len;  /* same JSON, compacted */
        }
        else if (start < 0 || fseeko(f, start, SEEK_SET) != 0 || (len = getline(&line, &cap, f)) < 0) {
            /* the scanner wrote over the line: read it again for jansson's error message */
            err = apr_psprintf(p, "cannot re-read the line: %s", strerror(errno));
            rv = APR_EGENERAL;
            goto bad;
        }
        j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
            if (first && json_error_code(&jerr) == json_error_premature_end_of_input) {
                whole = 1;  /* a pretty-printed resource or Bundle: read the file as one value */
                break;
            }
            err = json_err(&jerr, 0, p);
            rv = APR_EINVAL;
            goto bad;
        }
        first = 0;
        atr_json_pool_own(j, ptemp);
        rv = load_value(&ctx, j, &err, ptemp);
        if (rv != APR_SUCCESS) {
            err = apr_pstrdup(p, err ? err : "cannot store");
            goto bad;
        }
    }
    if (!whole && ferror(f)) {
        err = apr_psprintf(p, "read error: %s", strerror(errno));
        rv = APR_EGENERAL;
        goto bad;
    }
    if (whole) {
        json_error_t jerr;
        json_t *j;
        rewind(f);
        apr_pool_clear(ptemp);
        j = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
            lineno = jerr.line;
            err = json_err(&jerr, 0, p);
            rv = APR_EINVAL;
            goto bad;
        }
        atr_json_pool_own(j, ptemp);
        lineno = 1;
        rv = load_value(&ctx, j, &err, ptemp);
        if (rv != APR_SUCCESS) {
            err = apr_pstrdup(p, err ? err : "cannot store");
            goto bad;
        }
    }
    /* the last batch: a store error here is still this file's, at its last line */
    rv = atr_store_bulk_flush(ctx.bulk, &err, ptemp);
    if (rv != APR_SUCCESS) {
        err = apr_pstrdup(p, err ? err : "cannot store");
        goto bad;
    }
    rv = atr_db_tx_end(tx);
    tx = NULL;
    if (rv != APR_SUCCESS) {
        if (perr) *perr = apr_psprintf(p, "%s: cannot commit: %s", path, atr_db_error(db, 1));
        goto leave;
    }
    *stats = ctx.st;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                   "ATR00130: loaded %s: %ld resources (%ld created, %ld updated, %ld unchanged)",
                   path, ctx.st.resources, ctx.st.created, ctx.st.updated, ctx.st.unchanged);
    goto leave;

bad:
    if (perr) *perr = apr_psprintf(p, "%s:%ld: %s", path, lineno, err);
    if (rv != APR_EGENERAL) rv = APR_EINVAL;  /* EGENERAL: the store itself failed */
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, rv, p, "ATR00131: load of %s rolled back at line %ld",
                   path, lineno);
leave:
    if (tx) {
        atr_db_tx_fail(tx);
        atr_db_tx_end(tx);
    }
    if (ptemp) apr_pool_destroy(ptemp);
    free(line);
    if (f) fclose(f);
    return rv;
}
