/* Versioned resources; Group members as rows, never one blob. */
#include <stdlib.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "atr_store.h"
#include "atr_store_batch.h"
#include "atr_fhir.h"
#include "atr_jscan.h"
#include "atr_json.h"
#include "atr_log.h"
#include "atr_time.h"

#define MEMBER_PAGE 1000
#define HISTORY_UNLIMITED "1000000000"

/* The extension of obj with this url, or NULL. */
static const char *empty_if_null(const char *s)
{
    return s ? s : "";
}

/* What we keep: no meta.versionId/lastUpdated (the store owns them), no Group.member. */
static const char *stored_body(json_t *res, int is_group, apr_pool_t *p)
{
    json_t *meta = json_object_get(res, "meta");
    json_t *copy;
    const char *body;

    if (!is_group && !(json_is_object(meta) && (json_object_get(meta, "versionId")
                                                || json_object_get(meta, "lastUpdated")))) {
        return atr_json_dump(res, p);
    }
    copy = json_copy(res);  /* shallow: the member array is shared, not duplicated */
    if (is_group) json_object_del(copy, "member");
    if (json_is_object(meta)) {
        json_t *m = json_copy(meta);
        json_object_del(m, "versionId");
        json_object_del(m, "lastUpdated");
        if (json_object_size(m) == 0) {
            json_decref(m);
            json_object_del(copy, "meta");
        }
        else {
            json_object_set_new(copy, "meta", m);  /* replaces in place: key order kept */
        }
    }
    body = atr_json_dump(copy, p);
    json_decref(copy);
    return body;
}

/* A member as we store it: an object whose entity has a reference. */
static apr_status_t check_member(const char **perr, const json_t *m, const char *id, apr_size_t i, apr_pool_t *p)
{
    const char *ref = atr_json_path_str(m, "entity", "reference", NULL);
    json_t *inactive = json_object_get(m, "inactive");

    if (!json_is_object(m)) {
        *perr = apr_psprintf(p, "Group/%s: member[%lu] is not an object", id, (unsigned long)i);
        return APR_EINVAL;
    }
    if (!ref || !*ref) {
        *perr = apr_psprintf(p, "Group/%s: member[%lu].entity.reference is missing", id, (unsigned long)i);
        return APR_EINVAL;
    }
    if (inactive && !json_is_boolean(inactive)) {
        *perr = apr_psprintf(p, "Group/%s: member[%lu].inactive is not a boolean", id, (unsigned long)i);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static apr_status_t validate(const char **perr, const json_t *res, apr_pool_t *p)
{
    const char *type = atr_json_str(res, "resourceType");
    const char *id = atr_json_str(res, "id");
    json_t *v;
    size_t i;

    if (!json_is_object(res)) {
        *perr = "not a JSON object";
        return APR_EINVAL;
    }
    if (!type) {
        *perr = "resourceType is missing";
        return APR_EINVAL;
    }
    if (!atr_fhir_is_type(type)) {
        *perr = apr_psprintf(p, "resourceType %s is not one mod_atr stores (Group, Patient, Coverage, "
                             "RelatedPerson, Practitioner, PractitionerRole, Organization, Location)", type);
        return APR_EINVAL;
    }
    if (!json_object_get(res, "id")) {
        *perr = apr_psprintf(p, "%s without id", type);
        return APR_EINVAL;
    }
    if (!id || !atr_fhir_is_id(id)) {
        *perr = apr_psprintf(p, "%s id %s is not a valid FHIR id ([A-Za-z0-9-.]{1,64})", type,
                             id ? apr_psprintf(p, "\"%s\"", id) : "(not a string)");
        return APR_EINVAL;
    }
    v = json_object_get(res, "meta");
    if (v && !json_is_object(v)) {
        *perr = apr_psprintf(p, "%s/%s: meta is not an object", type, id);
        return APR_EINVAL;
    }
    if (!strcmp(type, "Group")) {
        json_t *members = json_object_get(res, "member"), *m;
        if (members && !json_is_array(members)) {
            *perr = apr_psprintf(p, "Group/%s: member is not an array", id);
            return APR_EINVAL;
        }
        json_array_foreach(members, i, m) {
            if (check_member(perr, m, id, i, p) != APR_SUCCESS) return APR_EINVAL;
        }
        v = json_object_get(res, "name");
        if (v && !json_is_string(v)) {
            *perr = apr_psprintf(p, "Group/%s: name is not a string", id);
            return APR_EINVAL;
        }
    }
    return APR_SUCCESS;
}

/* 1 when the stored members of group_id at version are, in order, exactly members. Streams
 * stored rows page by page: the stored Group is never held whole next to the new one. */
static apr_status_t members_equal(int *pequal, atr_db_t *db, const char *group_id, const char *version,
                                  const atr_store_members_t *ms, apr_pool_t *p)
{
    apr_size_t n = ms ? ms->count : 0, i = 0;
    const char *args[4];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_pool_t *ptemp;
    apr_status_t rv;
    long last = 0, stored = -1;

    *pequal = 0;
    args[0] = group_id;
    args[1] = version;
    rv = atr_db_select(&rows, db, "atr_mem_count", p, 2, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *c = atr_db_col(rows, row, 0);
        if (stored < 0) stored = c ? atol(c) : 0;
    }
    if (stored != (long)n) return APR_SUCCESS;
    if (n == 0) {
        *pequal = 1;
        return APR_SUCCESS;
    }
    apr_pool_create(&ptemp, p);
    for (;;) {
        int in_page = 0;
        apr_pool_clear(ptemp);
        args[2] = apr_ltoa(ptemp, last);
        args[3] = apr_itoa(ptemp, MEMBER_PAGE);
        rv = atr_db_select(&rows, db, "atr_mem_page", ptemp, 4, args);
        if (rv != APR_SUCCESS) goto leave;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *seq = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1);
            const char *mine = NULL;
            in_page++;
            last = seq ? atol(seq) : last + 1;
            if (i >= n) goto leave;
            rv = ms->get(ms->baton, i++, &mine, ptemp);
            if (rv != APR_SUCCESS) goto leave;
            if (!mine || !body || strcmp(mine, body)) goto leave;
        }
        if (in_page < MEMBER_PAGE) break;
    }
    *pequal = (i == n);
leave:
    apr_pool_destroy(ptemp);
    return rv;
}

/* A plain string value (no escapes) at [vs, ve), copied; NULL otherwise. */
static const char *plain_str(const char *t, apr_size_t vs, apr_size_t ve, apr_pool_t *p)
{
    if (ve < vs + 2 || t[vs] != '"' || t[ve - 1] != '"' || memchr(t + vs, '\\', ve - vs)) return NULL;
    return apr_pstrmemdup(p, t + vs + 1, ve - vs - 2);
}

/* Optional string field: 1 and *pv (NULL when absent), 0 when present but not a plain string. */
static int opt_str(const char **pv, const char *t, apr_size_t s, apr_size_t e, const char *key, apr_pool_t *p)
{
    apr_size_t vs, ve;
    *pv = NULL;
    if (!atr_jscan_field(t, s, e, key, &vs, &ve)) return 1;
    *pv = plain_str(t, vs, ve, p);
    return *pv != NULL;
}

/* The columns of a member row read straight from its compact text (a million-member Group
 * would otherwise cost a million small jansson trees). 0: not plain enough, use jansson,
 * which also words any error. Fills args[3..9] as insert_members does. */
static int member_fields_fast(const char **args, const char *t, apr_pool_t *p)
{
    apr_size_t e = strlen(t), pos, ks, ke, vs, ve;
    int have_provider = 0, have_coverage = 0, have_change = 0;

    if (!e || t[0] != '{' || t[e - 1] != '}') return 0;
    args[3] = args[4] = args[5] = args[6] = args[8] = args[9] = NULL;
    args[7] = "0";
    pos = 1;
    /* one pass over the member's keys */
    while (atr_jscan_pair(t, &pos, e, &ks, &ke, &vs, &ve)) {
        apr_size_t kl = ke - ks;
        if (kl == 6 && !memcmp(t + ks, "entity", 6)) {
            if (!opt_str(&args[3], t, vs, ve, "reference", p)) return 0;
        }
        else if (kl == 8 && !memcmp(t + ks, "inactive", 8)) {
            if (ve - vs == 4 && !memcmp(t + vs, "true", 4)) args[7] = "1";
            else if (!(ve - vs == 5 && !memcmp(t + vs, "false", 5))) return 0;
        }
        else if (kl == 6 && !memcmp(t + ks, "period", 6)) {
            if (t[vs] != '{') return 0;
            if (!opt_str(&args[8], t, vs, ve, "start", p) || !opt_str(&args[9], t, vs, ve, "end", p)) return 0;
        }
        else if (kl == 9 && !memcmp(t + ks, "extension", 9)) {
            apr_size_t xpos = vs + 1, es, ee;
            if (t[vs] != '[') return 0;
            while (atr_jscan_next(t, &xpos, ve, &es, &ee)) {
                const char *url, *v = NULL;
                if (!opt_str(&url, t, es, ee, "url", p)) return 0;
                if (!url) continue;
                if ((!strcmp(url, ATR_EXT_PROVIDER) && !have_provider)
                    || (!strcmp(url, ATR_EXT_COVERAGE_REF) && !have_coverage)) {
                    apr_size_t rs, re;
                    if (atr_jscan_field(t, es, ee, "valueReference", &rs, &re)
                        && !opt_str(&v, t, rs, re, "reference", p)) return 0;
                    if (!strcmp(url, ATR_EXT_PROVIDER)) { args[4] = v; have_provider = 1; }
                    else { args[5] = v; have_coverage = 1; }
                }
                else if (!strcmp(url, ATR_EXT_CHANGE_TYPE) && !have_change) {
                    if (!opt_str(&v, t, es, ee, "valueCode", p)) return 0;
                    args[6] = v;
                    have_change = 1;
                }
            }
        }
    }
    return args[3] != NULL && *args[3];
}

/* Member rows go through a batch: one statement per row on SQLite, one per
 * batch of rows on PostgreSQL (a million-member Group was a million round trips). */
static apr_status_t insert_members(const char **perr, atr_db_t *db, const char *group_id, const char *version,
                                   const atr_store_members_t *ms, apr_pool_t *p)
{
    apr_pool_t *pbatch, *ptemp;
    atr_store_batch_t *batch;
    apr_status_t rv = APR_SUCCESS;
    apr_size_t i, first, count;

    apr_pool_create(&pbatch, p);
    apr_pool_create(&ptemp, pbatch);
    atr_store_batch_create(&batch, db, "atr_mem_insert", "atr_mem_insert_batch", 11, NULL, NULL, pbatch);
    for (i = 0; ms && i < ms->count; i++) {
        const char *args[11], *body = NULL;
        json_t *m, *e;
        json_error_t jerr;

        apr_pool_clear(ptemp);
        rv = ms->get(ms->baton, i, &body, ptemp);
        if (rv != APR_SUCCESS) goto leave;
        args[0] = group_id;
        args[1] = version;
        args[2] = apr_ltoa(ptemp, (long)i + 1);
        args[10] = body;
        if (body && member_fields_fast(args, body, ptemp)) goto insert;
        m = body ? json_loads(body, 0, &jerr) : NULL;
        if (!m) {
            *perr = apr_psprintf(p, "Group/%s: member[%lu] is not valid JSON", group_id, (unsigned long)i);
            rv = APR_EINVAL;
            goto leave;
        }
        atr_json_pool_own(m, ptemp);
        rv = check_member(perr, m, group_id, i, p);
        if (rv != APR_SUCCESS) goto leave;
        args[3] = atr_json_path_str(m, "entity", "reference", NULL);
        e = atr_json_ext_find(m, ATR_EXT_PROVIDER);
        args[4] = e ? atr_json_path_str(e, "valueReference", "reference", NULL) : NULL;
        e = atr_json_ext_find(m, ATR_EXT_COVERAGE_REF);
        args[5] = e ? atr_json_path_str(e, "valueReference", "reference", NULL) : NULL;
        e = atr_json_ext_find(m, ATR_EXT_CHANGE_TYPE);
        args[6] = e ? atr_json_str(e, "valueCode") : NULL;
        args[7] = json_is_true(json_object_get(m, "inactive")) ? "1" : "0";
        args[8] = atr_json_path_str(m, "period", "start", NULL);
        args[9] = atr_json_path_str(m, "period", "end", NULL);
insert:
        rv = atr_store_batch_add(batch, args, ptemp);
        if (rv != APR_SUCCESS) goto store_error;
    }
    rv = atr_store_batch_flush(batch, ptemp);
    if (rv == APR_SUCCESS) goto leave;
store_error:
    atr_store_batch_failed(batch, &first, &count);
    if (count <= 1) {
        *perr = apr_psprintf(p, "store error writing Group/%s member %lu: %s", group_id, (unsigned long)first + 1,
                             atr_db_error(db, (int)rv));
    }
    else {
        *perr = apr_psprintf(p, "store error writing Group/%s members %lu to %lu: %s", group_id,
                             (unsigned long)first + 1, (unsigned long)(first + count), atr_db_error(db, (int)rv));
    }
leave:
    apr_pool_destroy(pbatch);
    return rv;
}

/* Replace the search index rows of a Group with those of its new current version. */
static apr_status_t index_group(atr_db_t *db, const json_t *res, const char *group_id, apr_size_t nmembers,
                                apr_pool_t *p)
{
    const char *args[7];
    json_t *e, *item, *coding, *codings;
    const char *name = atr_json_str(res, "name");
    apr_status_t rv;
    size_t i, j;

    e = atr_json_ext_find(res, ATR_EXT_LIST_STATUS);
    args[0] = group_id;
    args[1] = name;
    args[2] = name ? atr_fhir_name_norm(name, p) : NULL;
    args[3] = e ? atr_json_str(e, "valueCode") : NULL;
    e = atr_json_ext_find(res, ATR_EXT_CONTRACT_PERIOD);
    args[4] = e ? atr_json_path_str(e, "valuePeriod", "start", NULL) : NULL;
    args[5] = e ? atr_json_path_str(e, "valuePeriod", "end", NULL) : NULL;
    args[6] = apr_ltoa(p, (long)nmembers);
    rv = atr_db_exec(db, NULL, "atr_gidx_upsert", p, 7, args);
    if (rv != APR_SUCCESS) return rv;

    rv = atr_db_exec(db, NULL, "atr_gident_delete", p, 1, args);
    if (rv != APR_SUCCESS) return rv;
    json_array_foreach(json_object_get(res, "identifier"), i, item) {
        args[1] = empty_if_null(atr_json_str(item, "system"));
        args[2] = empty_if_null(atr_json_str(item, "value"));
        codings = json_object_get(json_object_get(item, "type"), "coding");
        if (json_array_size(codings) == 0) {
            args[3] = args[4] = "";
            rv = atr_db_exec(db, NULL, "atr_gident_insert", p, 5, args);
            if (rv != APR_SUCCESS) return rv;
        }
        json_array_foreach(codings, j, coding) {
            args[3] = empty_if_null(atr_json_str(coding, "system"));
            args[4] = empty_if_null(atr_json_str(coding, "code"));
            rv = atr_db_exec(db, NULL, "atr_gident_insert", p, 5, args);
            if (rv != APR_SUCCESS) return rv;
        }
    }

    rv = atr_db_exec(db, NULL, "atr_gchar_delete", p, 1, args);
    if (rv != APR_SUCCESS) return rv;
    json_array_foreach(json_object_get(res, "characteristic"), i, item) {
        json_t *vcc = json_array_get(json_object_get(json_object_get(item, "valueCodeableConcept"), "coding"), 0);
        args[3] = empty_if_null(atr_json_path_str(item, "valueReference", "reference", NULL));
        args[4] = empty_if_null(atr_json_str(vcc, "system"));
        args[5] = empty_if_null(atr_json_str(vcc, "code"));
        codings = json_object_get(json_object_get(item, "code"), "coding");
        if (json_array_size(codings) == 0) {
            args[1] = args[2] = "";
            rv = atr_db_exec(db, NULL, "atr_gchar_insert", p, 6, args);
            if (rv != APR_SUCCESS) return rv;
        }
        json_array_foreach(codings, j, coding) {
            args[1] = empty_if_null(atr_json_str(coding, "system"));
            args[2] = empty_if_null(atr_json_str(coding, "code"));
            rv = atr_db_exec(db, NULL, "atr_gchar_insert", p, 6, args);
            if (rv != APR_SUCCESS) return rv;
        }
    }
    return APR_SUCCESS;
}

static atr_resource_t *row_resource(atr_db_rows_t *rows, apr_dbd_row_t *row, const char *type, const char *id,
                                    apr_pool_t *p)
{
    atr_resource_t *r = apr_pcalloc(p, sizeof(*r));
    const char *v;

    r->type = type;
    r->id = id;
    v = atr_db_col(rows, row, 0);
    r->version = v ? atoi(v) : 0;
    v = atr_db_col(rows, row, 1);
    r->last_updated = apr_pstrdup(p, v ? v : "");
    v = atr_db_col(rows, row, 2);
    r->deleted = v ? atoi(v) : 0;
    v = atr_db_col(rows, row, 3);
    r->body = apr_pstrdup(p, v ? v : "{}");
    return r;
}

apr_status_t atr_store_get(atr_resource_t **pres, atr_db_t *db, const char *type, const char *id,
                           int version, apr_pool_t *p)
{
    const char *args[3];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    *pres = NULL;
    args[0] = type;
    args[1] = id;
    args[2] = apr_itoa(p, version);
    if (version < 0) return APR_NOTFOUND;
    rv = atr_db_select(&rows, db, version ? "atr_res_get" : "atr_res_get_current", p, version ? 3 : 2, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        if (!*pres) *pres = row_resource(rows, row, apr_pstrdup(p, type), apr_pstrdup(p, id), p);
    }
    return *pres ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t atr_store_history(atr_db_t *db, const char *type, const char *id, const char *since,
                               int max, atr_store_res_cb *cb, void *baton, apr_pool_t *p)
{
    const char *args[4];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_pool_t *ptemp;
    apr_status_t rv;
    int found = 0;

    args[0] = type;
    args[1] = id;
    rv = atr_db_select(&rows, db, "atr_res_current", p, 2, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) found = 1;
    if (!found) return APR_NOTFOUND;

    args[2] = since ? since : "";
    args[3] = max > 0 ? apr_itoa(p, max) : HISTORY_UNLIMITED;
    rv = atr_db_select(&rows, db, "atr_res_history", p, 4, args);
    if (rv != APR_SUCCESS) return rv;
    apr_pool_create(&ptemp, p);
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        atr_resource_t *res;
        apr_pool_clear(ptemp);
        res = row_resource(rows, row, type, id, ptemp);
        rv = cb(baton, res, ptemp);
        if (rv != APR_SUCCESS) break;
    }
    apr_pool_destroy(ptemp);
    return rv;
}

apr_status_t atr_store_lock(atr_db_t *db, const char *type, const char *id, apr_pool_t *p)
{
    const char *args[2];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    if (!db->driver_name || strcmp(db->driver_name, "pgsql")) return APR_SUCCESS;
    args[0] = type;
    args[1] = id;
    rv = atr_db_select(&rows, db, "atr_res_lock", p, 2, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
    }
    return APR_SUCCESS;
}

/* Write body as the next version unless it (and for a Group its members) equals the current. */
static apr_status_t put_stored(int *pversion, int *pchanged, atr_db_t *db, const char *type, const char *id,
                               const char *body, const json_t *group, const atr_store_members_t *ms,
                               apr_time_t now, const char **perr, apr_pool_t *p)
{
    const char *cur_body = NULL, *args[6];
    int cur_version = 0, cur_deleted = 0;
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    /* Groups are what several writers change at once (roster applies, reconciliation
     * operations on any node): take turns on the version number */
    if (group && (rv = atr_store_lock(db, type, id, p)) != APR_SUCCESS) goto store_error;
    /* DM-20/D10: a Group's quantity counts its member entries. Every writer (load, roster,
     * reconciliation) passes the previous or given body: a quantity there is made true here,
     * once, for all of them (the body is small: members are rows). */
    if (group) {
        json_t *q = json_object_get(group, "quantity");
        json_int_t n = ms ? (json_int_t)ms->count : 0;
        if (json_is_integer(q) && json_integer_value(q) != n) {
            json_t *copy = atr_json_pool_own(json_deep_copy(group), p);
            json_object_set_new(copy, "quantity", json_integer(n));
            body = atr_json_dump(copy, p);
            group = copy;
        }
    }
    args[0] = type;
    args[1] = id;
    rv = atr_db_select(&rows, db, "atr_res_get_current", p, 2, args);
    if (rv != APR_SUCCESS) goto store_error;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *v = atr_db_col(rows, row, 0);
        cur_version = v ? atoi(v) : 0;
        v = atr_db_col(rows, row, 2);
        cur_deleted = v ? atoi(v) : 0;
        cur_body = atr_db_col(rows, row, 3);
    }
    if (cur_version > 0 && !cur_deleted && cur_body && !strcmp(cur_body, body)) {
        int equal = 1;
        if (group) {
            rv = members_equal(&equal, db, id, apr_itoa(p, cur_version), ms, p);
            if (rv != APR_SUCCESS) goto store_error;
        }
        if (equal) {
            *pversion = cur_version;
            goto leave;
        }
    }

    args[2] = apr_itoa(p, cur_version + 1);
    args[3] = atr_time_instant(now, p);
    args[4] = "0";
    args[5] = body;
    rv = atr_db_exec(db, NULL, "atr_res_insert", p, 6, args);
    if (rv != APR_SUCCESS) goto store_error;
    {
        const char *cargs[5];
        cargs[0] = type;
        cargs[1] = id;
        cargs[2] = args[2];
        cargs[3] = args[3];
        cargs[4] = "0";
        rv = atr_db_exec(db, NULL, "atr_cur_upsert", p, 5, cargs);
        if (rv != APR_SUCCESS) goto store_error;
    }
    if (group) {
        rv = insert_members(perr, db, id, args[2], ms, p);
        if (rv != APR_SUCCESS) goto leave;
        rv = index_group(db, group, id, ms ? ms->count : 0, p);
        if (rv != APR_SUCCESS) goto store_error;
    }
    *pversion = cur_version + 1;
    *pchanged = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_TRACE1, APR_SUCCESS, p, "ATR00110: stored %s/%s version %d",
                   type, id, *pversion);
    goto leave;

store_error:
    *perr = apr_psprintf(p, "store error writing %s/%s: %s", type, id, atr_db_error(db, (int)rv));
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00111: cannot store %s/%s: %s", type, id,
                   atr_db_error(db, (int)rv));
leave:
    return rv;
}

static apr_status_t json_member_get(void *baton, apr_size_t i, const char **pjson, apr_pool_t *ptemp)
{
    *pjson = atr_json_dump(json_array_get((const json_t *)baton, i), ptemp);
    return *pjson ? APR_SUCCESS : APR_ENOMEM;
}

/* atr_store_put's checks and stored form: type, id, body, and the members as text. */
static apr_status_t prepare_json(const char **ptype, const char **pid, const char **pbody, int *pis_group,
                                 atr_store_members_t *ms, json_t *resource, const char **perr, apr_pool_t *p)
{
    json_t *members;
    apr_status_t rv;

    rv = validate(perr, resource, p);
    if (rv != APR_SUCCESS) return rv;
    *ptype = atr_json_str(resource, "resourceType");
    *pid = atr_json_str(resource, "id");
    *pis_group = !strcmp(*ptype, "Group");
    *pbody = stored_body(resource, *pis_group, p);
    if (!*pbody) {
        *perr = "cannot serialise the resource";
        return APR_EINVAL;
    }
    members = *pis_group ? json_object_get(resource, "member") : NULL;
    ms->count = json_array_size(members);
    ms->get = json_member_get;
    ms->baton = members;
    return APR_SUCCESS;
}

/* atr_store_put_text's checks. */
static apr_status_t check_text(const char **perr, const char *type, const char *id, const json_t *parsed,
                               apr_pool_t *p)
{
    if (!atr_fhir_is_type(type)) {
        *perr = apr_psprintf(p, "resourceType %s is not one mod_atr stores (Group, Patient, Coverage, "
                             "RelatedPerson, Practitioner, PractitionerRole, Organization, Location)",
                             type ? type : "(none)");
        return APR_EINVAL;
    }
    if (!atr_fhir_is_id(id)) {
        *perr = apr_psprintf(p, "%s id \"%s\" is not a valid FHIR id ([A-Za-z0-9-.]{1,64})", type, id ? id : "");
        return APR_EINVAL;
    }
    if (!strcmp(type, "Group") && !json_is_object(parsed)) {
        *perr = "Group body not given parsed";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t atr_store_put(int *pversion, int *pchanged, atr_db_t *db, json_t *resource,
                           apr_time_t now, const char **perr, apr_pool_t *p)
{
    const char *type, *id, *body, *errs = NULL;
    atr_store_members_t ms;
    int is_group;
    apr_status_t rv;

    *pversion = 0;
    *pchanged = 0;
    rv = prepare_json(&type, &id, &body, &is_group, &ms, resource, &errs, p);
    if (rv == APR_SUCCESS) {
        rv = put_stored(pversion, pchanged, db, type, id, body, is_group ? resource : NULL, &ms, now, &errs, p);
    }
    if (perr) *perr = rv == APR_SUCCESS ? NULL : errs;
    return rv;
}

apr_status_t atr_store_put_text(int *pversion, int *pchanged, atr_db_t *db, const char *type,
                                const char *id, const char *body, const json_t *parsed,
                                const atr_store_members_t *members, apr_time_t now,
                                const char **perr, apr_pool_t *p)
{
    const char *errs = NULL;
    int is_group = type && !strcmp(type, "Group");
    apr_status_t rv;

    *pversion = 0;
    *pchanged = 0;
    rv = check_text(&errs, type, id, parsed, p);
    if (rv == APR_SUCCESS) {
        rv = put_stored(pversion, pchanged, db, type, id, body, is_group ? parsed : NULL, members, now, &errs, p);
    }
    if (perr) *perr = rv == APR_SUCCESS ? NULL : errs;
    return rv;
}

/* ---- many writes (a loaded file) ---- */

struct atr_store_bulk_t {
    atr_db_t *db;
    atr_store_bulk_cb *done;
    void *baton;
    atr_store_batch_t *batch;      /* NULL: every resource is written at once (put_stored) */
    apr_pool_t *pool;              /* the pending resources' names; cleared once they are sent */
    apr_hash_t *pending;           /* "type/id" of the pending resources */
    apr_array_header_t *names;     /* type, id of each pending resource, in order */
    apr_size_t base;               /* batch row index of the first pending resource */
};

static void bulk_reset(atr_store_bulk_t *b)
{
    if (b->names) b->base += (apr_size_t)b->names->nelts / 2;
    apr_pool_clear(b->pool);
    b->pending = apr_hash_make(b->pool);
    b->names = apr_array_make(b->pool, 512, sizeof(const char *));
}

/* One answer row of atr_res_put_batch: the version the resource had, 1 when unchanged. */
static apr_status_t bulk_row(void *baton, apr_size_t index, atr_db_rows_t *rows, apr_dbd_row_t *row,
                             apr_pool_t *ptemp)
{
    atr_store_bulk_t *b = baton;
    apr_size_t k = index - b->base;
    const char *type, *id, *v, *same;
    int version, changed;

    if (index < b->base || 2 * k + 1 >= (apr_size_t)b->names->nelts) return APR_EGENERAL;
    type = APR_ARRAY_IDX(b->names, 2 * k, const char *);
    id = APR_ARRAY_IDX(b->names, 2 * k + 1, const char *);
    v = atr_db_col(rows, row, 0);
    same = atr_db_col(rows, row, 1);
    version = v ? atoi(v) : 0;
    changed = !(same && !strcmp(same, "1"));
    if (changed) {
        version++;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_TRACE1, APR_SUCCESS, ptemp, "ATR01012: stored %s/%s version %d",
                       type, id, version);
    }
    if (b->done) b->done(b->baton, type, id, version, changed);
    return APR_SUCCESS;
}

static apr_status_t bulk_store_error(const char **perr, atr_store_bulk_t *b, apr_status_t rv, apr_pool_t *p)
{
    apr_size_t first = 0, count = 0, k;
    const char *what = "resources";

    atr_store_batch_failed(b->batch, &first, &count);
    k = first - b->base;
    if (first >= b->base && 2 * k + 1 < (apr_size_t)b->names->nelts) {
        what = apr_psprintf(p, "%s/%s", APR_ARRAY_IDX(b->names, 2 * k, const char *),
                            APR_ARRAY_IDX(b->names, 2 * k + 1, const char *));
        if (count > 1) what = apr_psprintf(p, "%s and the %lu resources after it", what, (unsigned long)count - 1);
    }
    if (perr) *perr = apr_psprintf(p, "store error writing %s: %s", what, atr_db_error(b->db, (int)rv));
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR01013: cannot store %s: %s", what,
                   atr_db_error(b->db, (int)rv));
    return rv;
}

apr_status_t atr_store_bulk_create(atr_store_bulk_t **pbulk, atr_db_t *db, atr_store_bulk_cb *done, void *baton,
                                   apr_pool_t *p)
{
    atr_store_bulk_t *b = apr_pcalloc(p, sizeof(*b));

    b->db = db;
    b->done = done;
    b->baton = baton;
    if (atr_store_batch_rows(db, "atr_res_put_batch", 5) > 0) {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        apr_status_t rv = atr_db_select(&rows, db, "atr_res_put_batch_plan", p, 0, NULL);
        if (rv != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
        }
        atr_store_batch_create(&b->batch, db, NULL, "atr_res_put_batch", 5, bulk_row, b, p);
        apr_pool_create(&b->pool, p);
        bulk_reset(b);
    }
    *pbulk = b;
    return APR_SUCCESS;
}

apr_status_t atr_store_bulk_flush(atr_store_bulk_t *b, const char **perr, apr_pool_t *p)
{
    apr_status_t rv;

    if (perr) *perr = NULL;
    if (!b->batch || !atr_store_batch_pending(b->batch)) return APR_SUCCESS;
    rv = atr_store_batch_flush(b->batch, p);
    if (rv != APR_SUCCESS) return bulk_store_error(perr, b, rv, p);
    bulk_reset(b);
    return APR_SUCCESS;
}

/* Write one resource, or queue it for the next batch (a repeat of a queued one sends the
 * batch first, so that it is based on the version the first one writes). */
static apr_status_t bulk_write(atr_store_bulk_t *b, const char *type, const char *id, const char *body,
                               const json_t *group, const atr_store_members_t *ms, apr_time_t now,
                               const char **perr, apr_pool_t *p)
{
    const char *args[5], *key;
    apr_size_t klen;
    apr_status_t rv;

    if (!b->batch || group) {
        int version = 0, changed = 0;
        rv = put_stored(&version, &changed, b->db, type, id, body, group, ms, now, perr, p);
        if (rv == APR_SUCCESS && b->done) b->done(b->baton, type, id, version, changed);
        return rv;
    }
    key = apr_pstrcat(p, type, "/", id, NULL);
    klen = strlen(key);
    if (apr_hash_get(b->pending, key, (apr_ssize_t)klen)) {
        rv = atr_store_bulk_flush(b, perr, p);
        if (rv != APR_SUCCESS) return rv;
    }
    APR_ARRAY_PUSH(b->names, const char *) = apr_pstrdup(b->pool, type);
    APR_ARRAY_PUSH(b->names, const char *) = apr_pstrdup(b->pool, id);
    apr_hash_set(b->pending, apr_pstrmemdup(b->pool, key, klen), (apr_ssize_t)klen, "");
    args[0] = apr_itoa(p, b->names->nelts / 2);   /* the row's number: answers come in its order */
    args[1] = type;
    args[2] = id;
    args[3] = atr_time_instant(now, p);
    args[4] = body;
    rv = atr_store_batch_add(b->batch, args, p);
    if (rv != APR_SUCCESS) return bulk_store_error(perr, b, rv, p);
    if (!atr_store_batch_pending(b->batch)) bulk_reset(b);   /* the batch was full: sent */
    return APR_SUCCESS;
}

apr_status_t atr_store_bulk_put(atr_store_bulk_t *bulk, json_t *resource, apr_time_t now, const char **perr,
                                apr_pool_t *p)
{
    const char *type, *id, *body, *errs = NULL;
    atr_store_members_t ms;
    int is_group;
    apr_status_t rv;

    rv = prepare_json(&type, &id, &body, &is_group, &ms, resource, &errs, p);
    if (rv == APR_SUCCESS) {
        rv = bulk_write(bulk, type, id, body, is_group ? resource : NULL, &ms, now, &errs, p);
    }
    if (perr) *perr = rv == APR_SUCCESS ? NULL : errs;
    return rv;
}

apr_status_t atr_store_bulk_put_text(atr_store_bulk_t *bulk, const char *type, const char *id, const char *body,
                                     const json_t *parsed, const atr_store_members_t *members, apr_time_t now,
                                     const char **perr, apr_pool_t *p)
{
    const char *errs = NULL;
    int is_group = type && !strcmp(type, "Group");
    apr_status_t rv;

    rv = check_text(&errs, type, id, parsed, p);
    if (rv == APR_SUCCESS) {
        rv = bulk_write(bulk, type, id, body, is_group ? parsed : NULL, members, now, &errs, p);
    }
    if (perr) *perr = rv == APR_SUCCESS ? NULL : errs;
    return rv;
}

apr_status_t atr_store_group_members(atr_db_t *db, const char *group_id, int version, int page_size,
                                     atr_store_member_cb *cb, void *baton, apr_pool_t *p)
{
    const char *args[4];
    apr_pool_t *ptemp;
    apr_status_t rv = APR_SUCCESS;
    long last = 0;

    if (page_size <= 0) page_size = MEMBER_PAGE;
    apr_pool_create(&ptemp, p);
    args[0] = group_id;
    args[1] = apr_itoa(p, version);
    for (;;) {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        int in_page = 0;

        apr_pool_clear(ptemp);
        args[2] = apr_ltoa(ptemp, last);
        args[3] = apr_itoa(ptemp, page_size);
        rv = atr_db_select(&rows, db, "atr_mem_page", ptemp, 4, args);
        if (rv != APR_SUCCESS) break;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *seq = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1);
            in_page++;
            last = seq ? atol(seq) : last + 1;
            rv = cb(baton, body ? body : "{}", ptemp);
            if (rv != APR_SUCCESS) goto leave;
        }
        if (in_page < page_size) break;
    }
leave:
    apr_pool_destroy(ptemp);
    return rv;
}

apr_status_t atr_store_delete(int *pversion, int *pchanged, atr_db_t *db, const char *type, const char *id,
                              apr_time_t now, const char **perr, apr_pool_t *p)
{
    atr_resource_t *cur;
    const char *args[6];
    apr_status_t rv;

    *pchanged = 0;
    *perr = NULL;
    if (!strcmp(type, "Group") && (rv = atr_store_lock(db, type, id, p)) != APR_SUCCESS) goto store_error;
    rv = atr_store_get(&cur, db, type, id, 0, p);
    if (rv == APR_NOTFOUND) {
        *perr = apr_psprintf(p, "%s/%s does not exist", type, id);
        return rv;
    }
    if (rv != APR_SUCCESS) goto store_error;
    *pversion = cur->version;
    if (cur->deleted) return APR_SUCCESS;

    args[0] = type;
    args[1] = id;
    args[2] = apr_itoa(p, cur->version + 1);
    args[3] = atr_time_instant(now, p);
    args[4] = "1";
    args[5] = cur->body;   /* kept so the history still says what was deleted */
    rv = atr_db_exec(db, NULL, "atr_res_insert", p, 6, args);
    if (rv != APR_SUCCESS) goto store_error;
    {
        const char *cargs[5] = { type, id, args[2], args[3], "1" };
        rv = atr_db_exec(db, NULL, "atr_cur_upsert", p, 5, cargs);
        if (rv != APR_SUCCESS) goto store_error;
    }
    if (!strcmp(type, "Group")) {
        static const char *const unindex[] = { "atr_gidx_delete", "atr_gident_delete", "atr_gchar_delete" };
        int i;
        for (i = 0; i < 3; i++) {
            rv = atr_db_exec(db, NULL, unindex[i], p, 1, &id);
            if (rv != APR_SUCCESS) goto store_error;
        }
    }
    *pversion = cur->version + 1;
    *pchanged = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_TRACE1, APR_SUCCESS, p, "ATR00112: deleted %s/%s (version %d)",
                   type, id, *pversion);
    return APR_SUCCESS;

store_error:
    *perr = apr_psprintf(p, "store error deleting %s/%s: %s", type, id, atr_db_error(db, (int)rv));
    return rv;
}
