/* Group entitlement (CS-GRP-08) and visibility of member data. Everything goes through the
 * prepared statements of atr_sql.c; the id lists are small (the Groups of one client), so
 * they are plain sorted arrays searched by bisection. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "atr_json.h"
#include "atr_log.h"
#include "atr_entitle.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Push every group_id (column 0) of a query onto ids. */
static apr_status_t collect(apr_array_header_t *ids, atr_db_t *db, const char *label, int nargs,
                            const char **args, apr_pool_t *p)
{
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv = atr_db_select(&rows, db, label, p, nargs, args);

    if (rv != APR_SUCCESS) return rv;
    while ((rv = atr_db_next(&row, rows)) == APR_SUCCESS) {
        const char *id = atr_db_col(rows, row, 0);
        if (id) APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(p, id);
    }
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

/* 1 (*pfound) when the query returns a row. */
static apr_status_t exists(int *pfound, atr_db_t *db, const char *label, int nargs, const char **args,
                           apr_pool_t *p)
{
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv = atr_db_select(&rows, db, label, p, nargs, args);

    *pfound = 0;
    if (rv != APR_SUCCESS) return rv;
    rv = atr_db_next(&row, rows);
    if (rv == APR_SUCCESS) *pfound = 1;
    /* drain: some drivers keep the statement busy until the end is read */
    while (rv == APR_SUCCESS) rv = atr_db_next(&row, rows);
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

apr_status_t atr_entitle_groups(apr_array_header_t **pids, atr_db_t *db, const atr_client_t *client,
                                apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(p, 8, sizeof(const char *)), *out;
    apr_pool_t *ptemp = NULL;
    apr_status_t rv = APR_SUCCESS;
    int i;

    *pids = NULL;
    apr_pool_create(&ptemp, p);
    /* Linked ids count when the Group exists at all (a deleted one too: its reads answer
     * 410 and its history stays readable to the client it was linked to). */
    for (i = 0; client && client->groups && i < client->groups->nelts; i++) {
        const char *args[2];
        int found = 0;
        args[0] = "Group";
        args[1] = APR_ARRAY_IDX(client->groups, i, const char *);
        if (!args[1] || !*args[1]) continue;
        apr_pool_clear(ptemp);
        rv = exists(&found, db, "atr_res_current", 2, args, ptemp);
        if (rv != APR_SUCCESS) goto leave;
        if (found) APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(p, args[1]);
    }
    /* Contract ids match the identifiers of current Groups ("system|value"; a contract
     * written without a system matches the value under any system). */
    for (i = 0; client && client->contracts && i < client->contracts->nelts; i++) {
        const char *c = APR_ARRAY_IDX(client->contracts, i, const char *);
        const char *bar = c ? strchr(c, '|') : NULL;
        const char *args[2];

        if (!c || !*c) continue;
        if (bar && bar > c) {
            args[0] = apr_pstrmemdup(p, c, (apr_size_t)(bar - c));
            args[1] = bar + 1;
            if (!*args[1]) continue;
            rv = collect(ids, db, "atr_gs_ident_sys_val", 2, args, p);
        }
        else {
            args[0] = bar ? bar + 1 : c;
            if (!*args[0]) continue;
            rv = collect(ids, db, "atr_gs_ident_val", 1, args, p);
        }
        if (rv != APR_SUCCESS) goto leave;
    }
    qsort(ids->elts, (size_t)ids->nelts, sizeof(const char *), cmp_str);
    out = apr_array_make(p, ids->nelts ? ids->nelts : 1, sizeof(const char *));
    for (i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (out->nelts && !strcmp(APR_ARRAY_IDX(out, out->nelts - 1, const char *), id)) continue;
        APR_ARRAY_PUSH(out, const char *) = id;
    }
    *pids = out;
leave:
    if (rv != APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, rv, p, "ATR00600: entitlement of client %s: store query failed",
                       client && client->client_id ? client->client_id : "?");
    }
    apr_pool_destroy(ptemp);
    return rv;
}

int atr_entitle_has(const apr_array_header_t *ids, const char *id)
{
    int lo = 0, hi;

    if (!ids || !id) return 0;
    hi = ids->nelts - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(APR_ARRAY_IDX(ids, mid, const char *), id);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

apr_array_header_t *atr_entitle_filter(const apr_array_header_t *ids, const apr_array_header_t *entitled,
                                       apr_pool_t *p)
{
    apr_array_header_t *out;
    int i, j = 0;

    out = apr_array_make(p, entitled && entitled->nelts ? entitled->nelts : 1, sizeof(const char *));
    if (!ids || !entitled) return out;
    /* both sorted: one merge pass */
    for (i = 0; i < ids->nelts && j < entitled->nelts; ) {
        const char *a = APR_ARRAY_IDX(ids, i, const char *);
        int c = strcmp(a, APR_ARRAY_IDX(entitled, j, const char *));
        if (c == 0) {
            APR_ARRAY_PUSH(out, const char *) = a;
            i++;
            j++;
        }
        else if (c < 0) i++;
        else j++;
    }
    return out;
}

int atr_entitle_is_member_data(const char *type)
{
    return type && (!strcmp(type, "Group") || !strcmp(type, "Patient") || !strcmp(type, "Coverage")
                    || !strcmp(type, "RelatedPerson"));
}

static int is_directory(const char *type)
{
    return !strcmp(type, "Practitioner") || !strcmp(type, "PractitionerRole")
        || !strcmp(type, "Organization") || !strcmp(type, "Location");
}

/* "Type/id" for a reference that names a resource of type: relative ("Patient/1"),
 * absolute (".../Patient/1"), or versioned (".../Patient/1/_history/2"). NULL otherwise. */
static const char *ref_relative(const char *ref, const char *type, apr_pool_t *p)
{
    const char *h, *s, *id;
    apr_size_t tl = strlen(type);
    char *copy;

    if (!ref || !*ref) return NULL;
    copy = apr_pstrdup(p, ref);
    if ((h = strstr(copy, "/_history/")) != NULL) copy[h - copy] = '\0';
    for (s = copy + strlen(copy); s > copy && s[-1] != '/'; s--) ;
    id = s;
    if (s == copy || !*id) return NULL;
    s--;                                   /* at the '/' before the id */
    if ((apr_size_t)(s - copy) < tl || strncmp(s - tl, type, tl)) return NULL;
    if (s - tl > copy && s[-(long)tl - 1] != '/') return NULL;
    return apr_pstrcat(p, type, "/", id, NULL);
}

/* 1 when a member of an entitled Group's current version has column = value. */
static apr_status_t member_has(int *pvisible, atr_db_t *db, const apr_array_header_t *entitled,
                               const char *label, const char *value, apr_pool_t *p)
{
    apr_pool_t *ptemp;
    apr_status_t rv = APR_SUCCESS;
    int i;

    *pvisible = 0;
    if (!entitled || !value) return APR_SUCCESS;
    apr_pool_create(&ptemp, p);
    for (i = 0; i < entitled->nelts && !*pvisible; i++) {
        const char *args[2];
        args[0] = APR_ARRAY_IDX(entitled, i, const char *);
        args[1] = value;
        apr_pool_clear(ptemp);
        rv = exists(pvisible, db, label, 2, args, ptemp);
        if (rv != APR_SUCCESS) break;
    }
    apr_pool_destroy(ptemp);
    return rv;
}

static apr_status_t patient_visible(int *pvisible, atr_db_t *db, const apr_array_header_t *entitled,
                                    const char *ref, apr_pool_t *p)
{
    return member_has(pvisible, db, entitled, "atr_ent_member_entity", ref, p);
}

/* The reference at obj.name.reference in a stored body. */
static const char *body_ref(const char *body, const char *name, apr_pool_t *p)
{
    json_t *j;
    json_error_t jerr;
    const char *ref;

    if (!body) return NULL;
    j = json_loads(body, 0, &jerr);
    if (!j) return NULL;
    atr_json_pool_own(j, p);
    ref = atr_json_path_str(j, name, "reference", NULL);
    return ref ? apr_pstrdup(p, ref) : NULL;
}

apr_status_t atr_entitle_resource(int *pvisible, atr_db_t *db, const apr_array_header_t *entitled,
                                  const char *type, const char *id, const char *body, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;

    *pvisible = 0;
    if (!type || !id) return APR_SUCCESS;
    if (is_directory(type)) {
        *pvisible = 1;
    }
    else if (!strcmp(type, "Group")) {
        *pvisible = atr_entitle_has(entitled, id);
    }
    else if (!strcmp(type, "Patient")) {
        rv = patient_visible(pvisible, db, entitled, apr_pstrcat(p, "Patient/", id, NULL), p);
    }
    else if (!strcmp(type, "Coverage")) {
        rv = member_has(pvisible, db, entitled, "atr_ent_member_coverage",
                        apr_pstrcat(p, "Coverage/", id, NULL), p);
        if (rv == APR_SUCCESS && !*pvisible) {
            const char *ben = ref_relative(body_ref(body, "beneficiary", p), "Patient", p);
            if (ben) rv = patient_visible(pvisible, db, entitled, ben, p);
        }
    }
    else if (!strcmp(type, "RelatedPerson")) {
        const char *pat = ref_relative(body_ref(body, "patient", p), "Patient", p);
        if (pat) rv = patient_visible(pvisible, db, entitled, pat, p);
    }
    if (rv != APR_SUCCESS) {
        *pvisible = 0;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, rv, p, "ATR00601: visibility of %s/%s: store query failed",
                       type, id);
    }
    return rv;
}
