/* Reconciliation against the store: member and provider resolution, the next Group version
 * generated from the previous version's rows (one page at a time), and $attribution-status.
 * changeType of a version written here is relative to the previous version (DM-16, DM-17, as a
 * roster apply does): the entry an operation adds is new, the one it removes is dropped (draft,
 * kept inactive: OP-REM-03) or gone (open: OP-REM-04), an entry whose period it changes is
 * changed, every other active entry is nochange. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "atr_recon.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_log.h"
#include "atr_render.h"
#include "atr_store.h"
#include "atr_time.h"

#define EDIT_PAGE 500
#define LIKE_MAX "1000"     /* candidates read per identifier lookup */

/* ---------------------------------------------------------------- lookups */

static const char *like_pattern(const char *value, apr_pool_t *p)
{
    char *out = apr_palloc(p, strlen(value) * 2 + 3), *o = out;
    *o++ = '%';
    for (; *value; value++) {
        if (*value == '%' || *value == '_' || *value == '\\') *o++ = '\\';
        *o++ = *value;
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

static int ident_is_npi(const json_t *ident)
{
    const char *sys = atr_json_str(ident, "system");
    const json_t *cd;
    size_t k;
    if (sys && !strcmp(sys, ATR_SYS_NPI)) return 1;
    json_array_foreach(json_object_get(json_object_get(ident, "type"), "coding"), k, cd) {
        const char *code = atr_json_str(cd, "code");
        if (code && !strcmp(code, "NPI")) return 1;
    }
    return 0;
}

/* References ("Type/id") of current resources of type with an identifier value (and system,
 * when given; npi: an NPI identifier). The body LIKE narrows the scan in SQL; the identifier
 * is then checked on the parsed body. */
static apr_status_t find_by_ident(apr_array_header_t *refs, atr_db_t *db, const char *type, const char *system,
                                  const char *value, int npi, apr_pool_t *p)
{
    const char *args[3];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    args[0] = type;
    args[1] = like_pattern(value, p);
    args[2] = LIKE_MAX;
    rv = atr_db_select(&rows, db, "atr_rec_find_like", p, 3, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *id = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1);
        json_t *res, *ident;
        json_error_t jerr;
        size_t k;
        if (!id || !body || !(res = json_loads(body, 0, &jerr))) continue;
        json_array_foreach(json_object_get(res, "identifier"), k, ident) {
            const char *v = atr_json_str(ident, "value"), *s = atr_json_str(ident, "system");
            if (!v || strcmp(v, value)) continue;
            if (npi ? !ident_is_npi(ident) : (system && (!s || strcmp(s, system)))) continue;
            APR_ARRAY_PUSH(refs, const char *) = apr_pstrcat(p, type, "/", id, NULL);
            break;
        }
        json_decref(res);
    }
    return APR_SUCCESS;
}

/* The first current resource of type (by id) whose field.reference is ref ("beneficiary",
 * "patient"), pushed onto refs; all of them when all. */
static apr_status_t find_referring(apr_array_header_t *refs, atr_db_t *db, const char *type, const char *field,
                                   const char *ref, int all, apr_pool_t *p)
{
    const char *args[3];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;
    int found = 0;

    args[0] = type;
    args[1] = like_pattern(apr_pstrcat(p, "\"", ref, "\"", NULL), p);
    args[2] = LIKE_MAX;
    rv = atr_db_select(&rows, db, "atr_rec_find_like", p, 3, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *id = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1), *r, *status;
        json_t *res;
        json_error_t jerr;
        if ((found && !all) || !id || !body || !(res = json_loads(body, 0, &jerr))) continue;
        r = atr_json_path_str(res, field, "reference", NULL);
        status = atr_json_str(res, "status");
        if (r && !strcmp(r, ref) && !(status && (!strcmp(status, "cancelled") || !strcmp(status, "entered-in-error")))) {
            APR_ARRAY_PUSH(refs, const char *) = apr_pstrcat(p, type, "/", id, NULL);
            found = 1;
        }
        json_decref(res);
    }
    return APR_SUCCESS;
}

/* 1 in *pexists when "Type/id" is a current, not deleted resource. */
static apr_status_t ref_exists(int *pexists, atr_db_t *db, const char *ref, apr_pool_t *p)
{
    const char *slash = strchr(ref, '/');
    atr_resource_t *res;
    apr_status_t rv;
    *pexists = 0;
    if (!slash) return APR_SUCCESS;
    rv = atr_store_get(&res, db, apr_pstrmemdup(p, ref, (apr_size_t)(slash - ref)), slash + 1, 0, p);
    if (rv == APR_NOTFOUND) return APR_SUCCESS;
    if (rv != APR_SUCCESS) return rv;
    *pexists = !res->deleted;
    return APR_SUCCESS;
}

static int in_list(const apr_array_header_t *a, const char *s)
{
    int i;
    for (i = 0; a && s && i < a->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(a, i, const char *), s)) return 1;
    }
    return 0;
}

static void push_unique(apr_array_header_t *a, const char *s)
{
    if (s && !in_list(a, s)) APR_ARRAY_PUSH(a, const char *) = s;
}

/* ---------------------------------------------------------------- owner */

apr_status_t atr_recon_is_owner(int *powner, atr_db_t *db, const char *group_id, const char *client_id,
                                apr_pool_t *p)
{
    const char *args[2] = { group_id, client_id };
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv = atr_db_select(&rows, db, "atr_rec_owner_get", p, 2, args);
    *powner = 0;
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) *powner = 1;
    return APR_SUCCESS;
}

apr_status_t atr_recon_create(int *pversion, atr_db_t *db, json_t *group, const char *client_id,
                              apr_time_t now, const char **perr, apr_pool_t *p)
{
    atr_db_tx_t *tx;
    const char *args[3];
    int changed = 0;
    apr_status_t rv;

    *pversion = 0;
    rv = atr_db_tx_begin(&tx, db, p);
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot start a transaction: %s", atr_db_error(db, (int)rv));
        return rv;
    }
    rv = atr_store_put(pversion, &changed, db, group, now, perr, p);
    if (rv == APR_SUCCESS) {
        args[0] = atr_json_str(group, "id");
        args[1] = client_id;
        args[2] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now));
        rv = atr_db_exec(db, NULL, "atr_rec_owner_insert", p, 3, args);
        if (rv != APR_SUCCESS) *perr = apr_psprintf(p, "store error: %s", atr_db_error(db, (int)rv));
    }
    if (rv != APR_SUCCESS) atr_db_tx_fail(tx);
    if (atr_db_tx_end(tx) != APR_SUCCESS && rv == APR_SUCCESS) {
        *perr = apr_psprintf(p, "commit failed: %s", atr_db_error(db, (int)rv));
        rv = APR_EGENERAL;
    }
    return rv;
}

/* ---------------------------------------------------------------- the next version */

typedef enum { EDIT_NONE, EDIT_ADD, EDIT_REMOVE } edit_kind_e;

typedef struct edit_t {
    atr_db_t *db;
    const char *group_id, *version;     /* the previous version */
    edit_kind_e kind;
    int keep_inactive;                  /* draft: dropped entries stay on the list (OP-REM-03) */
    int drop_matched;                   /* remove in draft: matched entries become dropped */
    /* remove: entity in entities, provider in providers (NULL: any), coverage (NULL: any) */
    const apr_array_header_t *entities, *providers;
    const char *coverage;
    /* add: the member x provider, the changed period when update */
    const char *add_entity, *add_provider, *upd_start, *upd_end;
    int update;
    const char *append;                 /* the entry appended at the end, or NULL */
    /* generator state */
    apr_size_t count, next_i;
    long after_seq;
    int prev_done, appended, buf_pos;
    apr_array_header_t *buf;
    apr_pool_t *page_pool;
    long matched;
} edit_t;

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static const char *member_ref(const json_t *m, const char *ext_url)
{
    return atr_json_path_str(atr_json_ext_find(m, ext_url), "valueReference", "reference", NULL);
}

/* The entry that follows from one previous entry, or NULL when it leaves the list. */
static const char *edit_member(edit_t *ed, const char *body, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *m = json_loads(body, 0, &jerr);
    const char *entity, *provider, *out = NULL;
    int inactive;

    if (!m) return NULL;
    entity = atr_json_path_str(m, "entity", "reference", NULL);
    provider = member_ref(m, ATR_EXT_PROVIDER);
    inactive = json_is_true(json_object_get(m, "inactive"));
    if (ed->kind == EDIT_ADD && same(entity, ed->add_entity) && same(provider, ed->add_provider)) {
        if (inactive || !ed->update) goto leave;          /* replaced by the appended entry */
        json_object_set_new(m, "period", ed->upd_end
                            ? json_pack("{s:s,s:s}", "start", ed->upd_start, "end", ed->upd_end)
                            : json_pack("{s:s}", "start", ed->upd_start));
        atr_recon_set_change_type(m, "changed");
        ed->matched++;
        out = atr_json_dump(m, p);
        goto leave;
    }
    if (ed->kind == EDIT_REMOVE && !inactive && in_list(ed->entities, entity)
        && (!ed->providers || in_list(ed->providers, provider))
        && (!ed->coverage || same(ed->coverage, member_ref(m, ATR_EXT_COVERAGE_REF)))) {
        ed->matched++;
        if (ed->drop_matched) {
            json_object_set_new(m, "inactive", json_true());
            atr_recon_set_change_type(m, "dropped");
            out = atr_json_dump(m, p);
        }
        goto leave;
    }
    if (inactive) {
        if (ed->keep_inactive) out = apr_pstrdup(p, body);
        goto leave;
    }
    atr_recon_set_change_type(m, "nochange");
    out = atr_json_dump(m, p);
leave:
    json_decref(m);
    return out;
}

static apr_status_t edit_page(edit_t *ed)
{
    const char *args[4];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;
    int n = 0;

    apr_pool_clear(ed->page_pool);
    ed->buf = apr_array_make(ed->page_pool, EDIT_PAGE, sizeof(const char *));
    ed->buf_pos = 0;
    args[0] = ed->group_id;
    args[1] = ed->version;
    args[2] = apr_ltoa(ed->page_pool, ed->after_seq);
    args[3] = apr_itoa(ed->page_pool, EDIT_PAGE);
    rv = atr_db_select(&rows, ed->db, "atr_mem_page", ed->page_pool, 4, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *seq = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1), *out;
        n++;
        ed->after_seq = seq ? atol(seq) : ed->after_seq + 1;
        out = body ? edit_member(ed, body, ed->page_pool) : NULL;
        if (out) APR_ARRAY_PUSH(ed->buf, const char *) = out;
    }
    if (n < EDIT_PAGE) ed->prev_done = 1;
    return APR_SUCCESS;
}

static void edit_reset(edit_t *ed)
{
    ed->next_i = 0;
    ed->after_seq = 0;
    ed->prev_done = 0;
    ed->appended = 0;
    ed->buf = NULL;
    ed->buf_pos = 0;
    ed->matched = 0;
}

/* The next entry in order; *pjson NULL at the end. */
static apr_status_t edit_next(edit_t *ed, const char **pjson)
{
    apr_status_t rv;
    *pjson = NULL;
    for (;;) {
        if (ed->buf && ed->buf_pos < ed->buf->nelts) {
            *pjson = APR_ARRAY_IDX(ed->buf, ed->buf_pos++, const char *);
            break;
        }
        if (!ed->prev_done) {
            if ((rv = edit_page(ed)) != APR_SUCCESS) return rv;
            continue;
        }
        if (ed->append && !ed->appended) {
            ed->appended = 1;
            *pjson = ed->append;
        }
        break;
    }
    if (*pjson) ed->next_i++;
    return APR_SUCCESS;
}

static apr_status_t edit_get(void *baton, apr_size_t i, const char **pjson, apr_pool_t *ptemp)
{
    edit_t *ed = baton;
    apr_status_t rv;
    (void)ptemp;
    if (i == 0) edit_reset(ed);     /* a new pass (the store may compare, then write) */
    if (i != ed->next_i || i >= ed->count) return APR_EGENERAL;
    rv = edit_next(ed, pjson);
    if (rv == APR_SUCCESS && !*pjson) rv = APR_EGENERAL;
    return rv;
}

/* Count the entries of the next version (and what matched). */
static apr_status_t edit_count(edit_t *ed)
{
    const char *json;
    apr_status_t rv;
    edit_reset(ed);
    ed->count = (apr_size_t)-1;
    for (;;) {
        if ((rv = edit_next(ed, &json)) != APR_SUCCESS) return rv;
        if (!json) break;
    }
    ed->count = ed->next_i;
    return APR_SUCCESS;
}

/* ---------------------------------------------------------------- operations */

typedef struct op_ctx_t {
    atr_recon_result_t *res;
    atr_db_t *db;
    atr_db_tx_t *tx;
    atr_resource_t *cur;
    json_t *body;
    const char *status;
    apr_pool_t *p;
} op_ctx_t;

static apr_status_t refuse(atr_recon_result_t *res, atr_recon_err_e err, apr_pool_t *p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static apr_status_t refuse(atr_recon_result_t *res, atr_recon_err_e err, apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    res->err = err;
    res->text = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    return APR_SUCCESS;
}

static apr_status_t store_failed(atr_recon_result_t *res, atr_db_t *db, apr_status_t rv, const char *what,
                                 apr_pool_t *p)
{
    res->err = ATR_RECON_E_STORE;
    res->text = apr_psprintf(p, "store error %s: %s", what, atr_db_error(db, (int)rv));
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00840: %s", res->text);
    return rv;
}

/* Begin the transaction and read the current Group; res says why when it cannot go on
 * (*pgo = 0; the transaction is then closed). */
static apr_status_t op_begin(op_ctx_t *c, int *pgo, const char *group_id, int need_open)
{
    json_error_t jerr;
    apr_status_t rv;

    *pgo = 0;
    c->tx = NULL;
    rv = atr_db_tx_begin(&c->tx, c->db, c->p);
    if (rv != APR_SUCCESS) return store_failed(c->res, c->db, rv, "starting a transaction", c->p);
    /* the edit is computed from the version read next: no other writer (any node) may write
     * its successor before this one commits */
    rv = atr_store_lock(c->db, "Group", group_id, c->p);
    if (rv != APR_SUCCESS) {
        store_failed(c->res, c->db, rv, apr_psprintf(c->p, "locking Group/%s", group_id), c->p);
        goto stop;
    }
    rv = atr_store_get(&c->cur, c->db, "Group", group_id, 0, c->p);
    if (rv == APR_NOTFOUND) {
        refuse(c->res, ATR_RECON_E_GROUP, c->p, "Group/%s is not known", group_id);
        goto stop;
    }
    if (rv != APR_SUCCESS) {
        store_failed(c->res, c->db, rv, apr_psprintf(c->p, "reading Group/%s", group_id), c->p);
        goto stop;
    }
    c->res->version = c->cur->version;
    if (c->cur->deleted) {
        refuse(c->res, ATR_RECON_E_GONE, c->p, "Group/%s was deleted", group_id);
        goto stop;
    }
    c->body = json_loads(c->cur->body, 0, &jerr);
    if (!c->body) {
        rv = APR_EGENERAL;
        store_failed(c->res, c->db, rv, apr_psprintf(c->p, "Group/%s: stored body is not JSON", group_id), c->p);
        goto stop;
    }
    atr_json_pool_own(c->body, c->p);
    c->status = atr_recon_list_status(c->body);
    c->res->status = c->status;
    if (need_open && !(c->status && (!strcmp(c->status, "draft") || !strcmp(c->status, "open")))) {
        refuse(c->res, ATR_RECON_E_FINAL, c->p, "Group/%s is %s%s: its members can change only while the "
               "list is draft or open", group_id, c->status ? "" : "an attribution list without status",
               c->status ? apr_pstrcat(c->p, "a ", c->status, " attribution list", NULL) : "");
        goto stop;
    }
    *pgo = 1;
    return APR_SUCCESS;
stop:
    atr_db_tx_fail(c->tx);
    atr_db_tx_end(c->tx);
    c->tx = NULL;
    return rv == APR_NOTFOUND ? APR_SUCCESS : rv;
}

/* Write the next version (body text + parsed, members from ed) and commit. */
static apr_status_t op_write(op_ctx_t *c, const char *group_id, const char *body, json_t *parsed, edit_t *ed,
                             apr_time_t now)
{
    atr_store_members_t ms;
    const char *err = NULL;
    int changed = 0;
    apr_status_t rv;

    ms.count = ed->count;
    ms.get = edit_get;
    ms.baton = ed;
    rv = atr_store_put_text(&c->res->version, &changed, c->db, "Group", group_id, body, parsed, &ms, now, &err,
                            c->p);
    if (rv != APR_SUCCESS) {
        atr_db_tx_fail(c->tx);
        atr_db_tx_end(c->tx);
        c->tx = NULL;
        return store_failed(c->res, c->db, rv, err ? err : apr_psprintf(c->p, "writing Group/%s", group_id), c->p);
    }
    rv = atr_db_tx_end(c->tx);
    c->tx = NULL;
    if (rv != APR_SUCCESS) return store_failed(c->res, c->db, rv, "committing", c->p);
    c->res->written = changed;
    c->res->status = atr_recon_list_status(parsed);
    return APR_SUCCESS;
}

static void op_abort(op_ctx_t *c)
{
    if (c->tx) {
        atr_db_tx_fail(c->tx);
        atr_db_tx_end(c->tx);
        c->tx = NULL;
    }
}

static void edit_init(edit_t *ed, op_ctx_t *c, const char *group_id)
{
    memset(ed, 0, sizeof(*ed));
    ed->db = c->db;
    ed->group_id = group_id;
    ed->version = apr_itoa(c->p, c->cur->version);
    ed->keep_inactive = c->status && !strcmp(c->status, "draft");
    apr_pool_create(&ed->page_pool, c->p);
}

/* The patients a memberId names (*prefs may end up empty). */
static apr_status_t member_refs(apr_array_header_t **prefs, atr_db_t *db, const atr_recon_params_t *pa,
                                apr_pool_t *p)
{
    *prefs = apr_array_make(p, 2, sizeof(const char *));
    if (pa->patient_ref) {
        APR_ARRAY_PUSH(*prefs, const char *) = pa->patient_ref;
        return APR_SUCCESS;
    }
    return find_by_ident(*prefs, db, "Patient", pa->member_system, pa->member_value, 0, p);
}

/* The providers an NPI names: Practitioners and Organizations, sorted. */
static apr_status_t npi_refs(apr_array_header_t **prefs, atr_db_t *db, const char *npi, apr_pool_t *p)
{
    apr_status_t rv;
    *prefs = apr_array_make(p, 2, sizeof(const char *));
    rv = find_by_ident(*prefs, db, "Organization", NULL, npi, 1, p);
    if (rv == APR_SUCCESS) rv = find_by_ident(*prefs, db, "Practitioner", NULL, npi, 1, p);
    return rv;
}

static const char *today(apr_time_t now, apr_pool_t *p)
{
    apr_time_exp_t tm;
    apr_time_exp_gmt(&tm, now);
    return apr_psprintf(p, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

apr_status_t atr_recon_member_add(atr_recon_result_t *res, atr_db_t *db, const char *group_id,
                                  const atr_recon_params_t *pa, apr_time_t now, apr_pool_t *p)
{
    op_ctx_t c = { res, db, NULL, NULL, NULL, NULL, p };
    apr_array_header_t *ents, *provs, *covs;
    const char *entity, *provider, *start, *end, *mdesc;
    edit_t ed;
    apr_status_t rv;
    int go, exists, i;

    memset(res, 0, sizeof(*res));
    if ((rv = op_begin(&c, &go, group_id, 1)) != APR_SUCCESS || !go) return rv;
    mdesc = pa->patient_ref ? pa->patient_ref
          : apr_psprintf(p, "memberId %s%s%s", pa->member_system ? pa->member_system : "",
                         pa->member_system ? "|" : "", pa->member_value);
    /* the member (OP-ADD-03, D21: 422 not-found) */
    if ((rv = member_refs(&ents, db, pa, p)) != APR_SUCCESS) goto store_error;
    if (pa->patient_ref) {
        if ((rv = ref_exists(&exists, db, pa->patient_ref, p)) != APR_SUCCESS) goto store_error;
        if (!exists) ents->nelts = 0;
    }
    if (ents->nelts == 0) {
        refuse(res, ATR_RECON_E_UNKNOWN, p, "the member %s is not known to this Producer", mdesc);
        goto refused;
    }
    if (ents->nelts > 1) {
        refuse(res, ATR_RECON_E_UNKNOWN, p, "several Patients carry %s (%s, %s%s): send patientReference",
               mdesc, APR_ARRAY_IDX(ents, 0, const char *), APR_ARRAY_IDX(ents, 1, const char *),
               ents->nelts > 2 ? ", ..." : "");
        goto refused;
    }
    entity = APR_ARRAY_IDX(ents, 0, const char *);
    /* the provider */
    if (pa->provider_ref) {
        if ((rv = ref_exists(&exists, db, pa->provider_ref, p)) != APR_SUCCESS) goto store_error;
        if (!exists) {
            refuse(res, ATR_RECON_E_UNKNOWN, p, "the provider %s is not known to this Producer", pa->provider_ref);
            goto refused;
        }
        provider = pa->provider_ref;
    }
    else {
        if ((rv = npi_refs(&provs, db, pa->npi, p)) != APR_SUCCESS) goto store_error;
        if (provs->nelts == 0) {
            refuse(res, ATR_RECON_E_UNKNOWN, p, "no provider with NPI %s is known to this Producer", pa->npi);
            goto refused;
        }
        /* as a roster does: the first reference in order (Organization before Practitioner) */
        provider = APR_ARRAY_IDX(provs, 0, const char *);
        for (i = 1; i < provs->nelts; i++) {
            if (strcmp(APR_ARRAY_IDX(provs, i, const char *), provider) < 0) provider = APR_ARRAY_IDX(provs, i, const char *);
        }
    }
    /* the period: given, else the contract's validity period, else from today */
    if (pa->period_start) {
        start = pa->period_start;
        end = pa->period_end;
    }
    else {
        json_t *cp = NULL, *e;
        size_t k;
        json_array_foreach(json_object_get(c.body, "extension"), k, e) {
            const char *u = atr_json_str(e, "url");
            if (u && !strcmp(u, ATR_EXT_CONTRACT_PERIOD)) cp = json_object_get(e, "valuePeriod");
        }
        start = atr_json_str(cp, "start");
        end = start ? atr_json_str(cp, "end") : NULL;
        if (!start) start = today(now, p);
    }
    /* the member's Coverage (DM-08): the first active one whose beneficiary it is */
    covs = apr_array_make(p, 1, sizeof(const char *));
    if ((rv = find_referring(covs, db, "Coverage", "beneficiary", entity, 0, p)) != APR_SUCCESS) goto store_error;

    edit_init(&ed, &c, group_id);
    ed.kind = EDIT_ADD;
    ed.add_entity = entity;
    ed.add_provider = provider;
    {
        /* already attributed to that provider? */
        const char *args[3] = { group_id, ed.version, entity };
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        int active = 0, differs = 0;
        rv = atr_db_select(&rows, db, "atr_rec_mem_by_entity", p, 3, args);
        if (rv != APR_SUCCESS) goto store_error;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *body = atr_db_col(rows, row, 0);
            json_error_t jerr;
            json_t *m = body ? json_loads(body, 0, &jerr) : NULL;
            if (!m) continue;
            if (!json_is_true(json_object_get(m, "inactive")) && same(member_ref(m, ATR_EXT_PROVIDER), provider)) {
                active = 1;
                differs = !same(atr_json_path_str(m, "period", "start", NULL), start)
                          || !same(atr_json_path_str(m, "period", "end", NULL), end);
            }
            json_decref(m);
        }
        if (active && !(pa->period_start && differs)) {
            refuse(res, ATR_RECON_E_DUPLICATE, p, "%s is already attributed to %s on Group/%s%s", entity, provider,
                   group_id, pa->period_start ? " for that period" : "");
            goto refused;
        }
        ed.update = active;
        ed.upd_start = start;
        ed.upd_end = end;
    }
    if (!ed.update) {
        ed.append = atr_recon_entry_json(entity, provider, covs->nelts ? APR_ARRAY_IDX(covs, 0, const char *) : NULL,
                                         start, end, p);
    }
    if ((rv = edit_count(&ed)) != APR_SUCCESS) goto store_error;
    rv = op_write(&c, group_id, c.cur->body, c.body, &ed, now);
    if (rv != APR_SUCCESS) return rv;
    res->matched = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p, "ATR00841: $member-add on Group/%s: %s with %s "
                   "%s (version %d)", group_id, entity, provider, ed.update ? "changed" : "added", res->version);
    return APR_SUCCESS;

store_error:
    op_abort(&c);
    return store_failed(res, db, rv, apr_psprintf(p, "in $member-add on Group/%s", group_id), p);
refused:
    op_abort(&c);
    return APR_SUCCESS;
}

apr_status_t atr_recon_member_remove(atr_recon_result_t *res, atr_db_t *db, const char *group_id,
                                     const atr_recon_params_t *pa, apr_time_t now, apr_pool_t *p)
{
    op_ctx_t c = { res, db, NULL, NULL, NULL, NULL, p };
    apr_array_header_t *ents, *provs = NULL;
    edit_t ed;
    apr_status_t rv;
    int go;

    memset(res, 0, sizeof(*res));
    if ((rv = op_begin(&c, &go, group_id, 1)) != APR_SUCCESS || !go) return rv;
    if ((rv = member_refs(&ents, db, pa, p)) != APR_SUCCESS) goto store_error;
    if (pa->provider_ref) {
        provs = apr_array_make(p, 1, sizeof(const char *));
        APR_ARRAY_PUSH(provs, const char *) = pa->provider_ref;
    }
    else if (pa->npi && (rv = npi_refs(&provs, db, pa->npi, p)) != APR_SUCCESS) goto store_error;

    edit_init(&ed, &c, group_id);
    ed.kind = EDIT_REMOVE;
    ed.entities = ents;
    ed.providers = provs;
    ed.coverage = pa->coverage_ref;
    ed.drop_matched = ed.keep_inactive;       /* draft: dropped and kept; open: removed */
    if ((rv = edit_count(&ed)) != APR_SUCCESS) goto store_error;
    if (ed.matched == 0) {
        /* OP-REM-05 */
        refuse(res, ATR_RECON_E_NO_MEMBER, p, "Group/%s has no active attribution of %s%s%s%s%s", group_id,
               pa->patient_ref ? pa->patient_ref : apr_psprintf(p, "the member with memberId %s", pa->member_value),
               pa->provider_ref || pa->npi ? " to " : "",
               pa->provider_ref ? pa->provider_ref : pa->npi ? apr_pstrcat(p, "NPI ", pa->npi, NULL) : "",
               pa->coverage_ref ? " with " : "", pa->coverage_ref ? pa->coverage_ref : "");
        op_abort(&c);
        return APR_SUCCESS;
    }
    rv = op_write(&c, group_id, c.cur->body, c.body, &ed, now);
    if (rv != APR_SUCCESS) return rv;
    res->matched = ed.matched;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p, "ATR00842: $member-remove on Group/%s: %ld "
                   "entr%s %s (version %d)", group_id, ed.matched, ed.matched == 1 ? "y" : "ies",
                   ed.drop_matched ? "dropped" : "removed", res->version);
    return APR_SUCCESS;

store_error:
    op_abort(&c);
    return store_failed(res, db, rv, apr_psprintf(p, "in $member-remove on Group/%s", group_id), p);
}

apr_status_t atr_recon_confirm(atr_recon_result_t *res, atr_db_t *db, const char *group_id,
                               apr_time_t now, apr_pool_t *p)
{
    op_ctx_t c = { res, db, NULL, NULL, NULL, NULL, p };
    json_t *body, *e;
    edit_t ed;
    apr_status_t rv;
    size_t k;
    int go, set = 0;

    memset(res, 0, sizeof(*res));
    if ((rv = op_begin(&c, &go, group_id, 1)) != APR_SUCCESS || !go) return rv;
    /* OP-CONF-02: the list becomes final; OP-REM-04: its inactive entries leave it */
    body = json_deep_copy(c.body);
    atr_json_pool_own(body, p);
    json_array_foreach(json_object_get(body, "extension"), k, e) {
        const char *u = atr_json_str(e, "url");
        if (u && !strcmp(u, ATR_EXT_LIST_STATUS)) {
            json_object_set_new(e, "valueCode", json_string("final"));
            set = 1;
        }
    }
    if (!set) {
        /* op_begin let only draft and open lists through, so the extension is there */
        op_abort(&c);
        return store_failed(res, db, APR_EGENERAL, "confirm: no attributionListStatus", p);
    }
    edit_init(&ed, &c, group_id);
    ed.kind = EDIT_NONE;
    ed.keep_inactive = 0;
    if ((rv = edit_count(&ed)) != APR_SUCCESS) {
        op_abort(&c);
        return store_failed(res, db, rv, apr_psprintf(p, "in $confirm-attribution-list on Group/%s", group_id), p);
    }
    rv = op_write(&c, group_id, atr_json_dump(body, p), body, &ed, now);
    if (rv != APR_SUCCESS) return rv;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p, "ATR00843: Group/%s confirmed: final, version %d, "
                   "%lu members", group_id, res->version, (unsigned long)ed.count);
    return APR_SUCCESS;
}

/* ---------------------------------------------------------------- $attribution-status */

struct atr_recon_status_t {
    atr_db_t *db;
    atr_resource_t *group;
    json_t *entries;                  /* the member entries of the member */
    apr_array_header_t *refs;         /* resources to include after the Group, in order */
};

apr_status_t atr_recon_status_prepare(atr_recon_status_t **pst, atr_recon_result_t *res, atr_db_t *db,
                                      const char *group_id, const atr_recon_params_t *pa, apr_pool_t *p)
{
    atr_recon_status_t *st = apr_pcalloc(p, sizeof(*st));
    apr_array_header_t *ents, *patients, *covs, *provs, *related;
    apr_status_t rv;
    int i;

    memset(res, 0, sizeof(*res));
    *pst = NULL;
    st->db = db;
    rv = atr_store_get(&st->group, db, "Group", group_id, 0, p);
    if (rv == APR_NOTFOUND) return refuse(res, ATR_RECON_E_GROUP, p, "Group/%s is not known", group_id);
    if (rv != APR_SUCCESS) return store_failed(res, db, rv, apr_psprintf(p, "reading Group/%s", group_id), p);
    if (st->group->deleted) return refuse(res, ATR_RECON_E_GONE, p, "Group/%s was deleted", group_id);
    res->version = st->group->version;
    if ((rv = member_refs(&ents, db, pa, p)) != APR_SUCCESS) {
        return store_failed(res, db, rv, "resolving the member", p);
    }
    st->entries = atr_json_pool_own(json_array(), p);
    patients = apr_array_make(p, 2, sizeof(const char *));
    covs = apr_array_make(p, 2, sizeof(const char *));
    provs = apr_array_make(p, 2, sizeof(const char *));
    related = apr_array_make(p, 2, sizeof(const char *));
    for (i = 0; i < ents->nelts; i++) {
        const char *args[3];
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        args[0] = group_id;
        args[1] = apr_itoa(p, st->group->version);
        args[2] = APR_ARRAY_IDX(ents, i, const char *);
        rv = atr_db_select(&rows, db, "atr_rec_mem_by_entity", p, 3, args);
        if (rv != APR_SUCCESS) return store_failed(res, db, rv, "reading member entries", p);
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *body = atr_db_col(rows, row, 0);
            json_error_t jerr;
            json_t *m = body ? json_loads(body, 0, &jerr) : NULL;
            if (!m) continue;
            push_unique(patients, apr_pstrdup(p, args[2]));
            push_unique(covs, apr_pstrdup(p, member_ref(m, ATR_EXT_COVERAGE_REF) ? member_ref(m, ATR_EXT_COVERAGE_REF) : ""));
            push_unique(provs, member_ref(m, ATR_EXT_PROVIDER) ? apr_pstrdup(p, member_ref(m, ATR_EXT_PROVIDER)) : NULL);
            json_array_append_new(st->entries, m);
        }
    }
    if (json_array_size(st->entries) == 0) {
        return refuse(res, ATR_RECON_E_NO_MEMBER, p, "%s is not a member of Group/%s",
                      pa->patient_ref ? pa->patient_ref : apr_psprintf(p, "the member with memberId %s", pa->member_value),
                      group_id);
    }
    /* related people: the Coverage subscribers and the member's RelatedPerson resources */
    for (i = 0; i < covs->nelts; i++) {
        const char *cov = APR_ARRAY_IDX(covs, i, const char *), *slash;
        atr_resource_t *cr;
        json_error_t jerr;
        json_t *cj;
        if (!*cov || !(slash = strchr(cov, '/'))) continue;
        rv = atr_store_get(&cr, db, "Coverage", slash + 1, 0, p);
        if (rv == APR_NOTFOUND) continue;
        if (rv != APR_SUCCESS) return store_failed(res, db, rv, "reading a Coverage", p);
        if (cr->deleted || !(cj = json_loads(cr->body, 0, &jerr))) continue;
        {
            const char *sub = atr_json_path_str(cj, "subscriber", "reference", NULL);
            if (sub && !strncmp(sub, "RelatedPerson/", 14)) push_unique(related, apr_pstrdup(p, sub));
        }
        json_decref(cj);
    }
    for (i = 0; i < patients->nelts; i++) {
        rv = find_referring(related, db, "RelatedPerson", "patient", APR_ARRAY_IDX(patients, i, const char *), 1, p);
        if (rv != APR_SUCCESS) return store_failed(res, db, rv, "finding RelatedPerson resources", p);
    }
    st->refs = apr_array_make(p, 8, sizeof(const char *));
    apr_array_cat(st->refs, patients);
    for (i = 0; i < covs->nelts; i++) push_unique(st->refs, *APR_ARRAY_IDX(covs, i, const char *) ? APR_ARRAY_IDX(covs, i, const char *) : NULL);
    apr_array_cat(st->refs, provs);
    for (i = 0; i < related->nelts; i++) push_unique(st->refs, APR_ARRAY_IDX(related, i, const char *));
    res->matched = (long)json_array_size(st->entries);
    *pst = st;
    return APR_SUCCESS;
}

/* s as a JSON string literal */
static apr_status_t out_str(atr_out_t *out, const char *s)
{
    json_t *j = json_string(s);
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    apr_status_t rv = text ? atr_out_puts(out, text) : APR_ENOMEM;
    free(text);
    json_decref(j);
    return rv;
}

static apr_status_t write_entry_head(atr_out_t *out, const char *base, const char *type, const char *id,
                                     apr_pool_t *p)
{
    apr_status_t rv = atr_out_puts(out, ",{\"fullUrl\":");
    if (rv == APR_SUCCESS) rv = out_str(out, apr_pstrcat(p, base, "/", type, "/", id, NULL));
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, ",\"resource\":");
    return rv;
}

apr_status_t atr_recon_status_write(atr_out_t *out, atr_recon_status_t *st, const char *base,
                                    int (*can_read)(void *baton, const char *type), void *baton,
                                    apr_pool_t *p)
{
    atr_resource_t *g = st->group;
    json_error_t jerr;
    json_t *body, *grp, *meta, *tags, *val;
    const char *key;
    apr_pool_t *ptemp;
    apr_status_t rv;
    int i;

    /* D24: first the Group restricted to the member's entries (so: SUBSETTED) */
    body = json_loads(g->body, 0, &jerr);
    if (!body) return APR_EGENERAL;
    grp = json_pack("{s:s,s:s}", "resourceType", "Group", "id", g->id);
    meta = json_is_object(json_object_get(body, "meta")) ? json_deep_copy(json_object_get(body, "meta")) : json_object();
    json_object_set_new(meta, "versionId", json_string(apr_itoa(p, g->version)));
    if (g->last_updated) json_object_set_new(meta, "lastUpdated", json_string(g->last_updated));
    tags = json_object_get(meta, "tag");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(meta, "tag", tags);
    }
    json_array_append_new(tags, json_pack("{s:s,s:s}", "system", ATR_SUBSETTED_SYSTEM, "code", "SUBSETTED"));
    json_object_set_new(grp, "meta", meta);
    json_object_foreach(body, key, val) {
        if (strcmp(key, "resourceType") && strcmp(key, "id") && strcmp(key, "meta") && strcmp(key, "quantity")
            && strcmp(key, "member")) {
            json_object_set(grp, key, val);
        }
    }
    json_object_set(grp, "member", st->entries);
    json_decref(body);
    atr_json_pool_own(grp, p);

    rv = atr_out_puts(out, "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":");
    if (rv == APR_SUCCESS) rv = out_str(out, apr_pstrcat(p, base, "/Group/", g->id, NULL));
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, ",\"resource\":");
    if (rv == APR_SUCCESS) rv = atr_out_json(out, grp);
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, "}");
    apr_pool_create(&ptemp, p);
    for (i = 0; rv == APR_SUCCESS && i < st->refs->nelts; i++) {
        const char *ref = APR_ARRAY_IDX(st->refs, i, const char *), *slash = strchr(ref, '/');
        const char *type;
        atr_resource_t *res;
        atr_render_opts_t opts;
        apr_status_t grv;

        apr_pool_clear(ptemp);
        if (!slash) continue;
        type = apr_pstrmemdup(ptemp, ref, (apr_size_t)(slash - ref));
        if (!atr_fhir_is_type(type) || (can_read && !can_read(baton, type))) continue;
        grv = atr_store_get(&res, st->db, type, slash + 1, 0, ptemp);
        if (grv == APR_NOTFOUND || (grv == APR_SUCCESS && res->deleted)) continue;
        if (grv != APR_SUCCESS) {
            rv = grv;
            break;
        }
        memset(&opts, 0, sizeof(opts));
        rv = write_entry_head(out, base, type, slash + 1, ptemp);
        if (rv == APR_SUCCESS) rv = atr_render_resource(out, st->db, res, &opts, ptemp);
        if (rv == APR_SUCCESS) rv = atr_out_puts(out, "}");
    }
    apr_pool_destroy(ptemp);
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, "]}");
    return rv;
}
