/* Group summaries and the free-text Group search of the admin CGI (see atr_admin_group.h). */
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>
#include "atr_admin_group.h"
#include "atr_json.h"
#include "atr_log.h"
#include "atr_search.h"
#include "atr_store.h"

#define EXT_PERIOD "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-contractValidityPeriod"
#define EXT_STATUS "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-attributionListStatus"

static const char *str_member(const json_t *o, const char *name, apr_pool_t *p)
{
    const json_t *v = json_object_get(o, name);
    return json_is_string(v) ? apr_pstrdup(p, json_string_value(v)) : NULL;
}

apr_status_t atr_admin_group_get(atr_admin_group_t **pgroup, atr_db_t *db, const char *id, apr_pool_t *p)
{
    atr_resource_t *res = NULL;
    atr_admin_group_t *g;
    json_t *j = NULL, *ext, *v;
    const char *err = NULL;
    apr_status_t rv;
    size_t i;

    *pgroup = NULL;
    rv = atr_store_get(&res, db, "Group", id, 0, p);
    if (rv != APR_SUCCESS) return rv;
    g = apr_pcalloc(p, sizeof(*g));
    g->id = apr_pstrdup(p, id);
    g->members = -1;
    g->active = 1;
    g->deleted = res->deleted;
    if (atr_json_parse(&j, res->body, strlen(res->body), &err, p) != APR_SUCCESS || !json_is_object(j)) {
        /* A stored body always parses; say so rather than show an empty row silently. */
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, 0, p, "ATR00930: Group %s: stored body "
                       "does not parse (%s)", id, err ? err : "not an object");
        *pgroup = g;
        return APR_SUCCESS;
    }
    g->name = str_member(j, "name", p);
    v = json_object_get(j, "active");
    if (json_is_boolean(v)) g->active = json_is_true(v);
    v = json_object_get(j, "quantity");
    if (json_is_integer(v)) g->members = (long)json_integer_value(v);
    ext = json_object_get(j, "extension");
    for (i = 0; json_is_array(ext) && i < json_array_size(ext); i++) {
        const json_t *e = json_array_get(ext, i);
        const char *url = str_member(e, "url", p);
        if (!url) continue;
        if (!strcmp(url, EXT_PERIOD)) {
            const json_t *period = json_object_get(e, "valuePeriod");
            g->period_start = str_member(period, "start", p);
            g->period_end = str_member(period, "end", p);
        }
        else if (!strcmp(url, EXT_STATUS)) {
            g->list_status = str_member(e, "valueCode", p);
        }
    }
    *pgroup = g;
    return APR_SUCCESS;
}

/* One search (a single parameter) through atr_search, its ids appended to out. */
static apr_status_t search_one(apr_array_header_t *out, atr_db_t *db, const char *name, const char *value,
                               apr_pool_t *p)
{
    apr_array_header_t *params = apr_array_make(p, 1, sizeof(atr_param_t)), *ids = NULL;
    atr_search_t *search = NULL;
    const char *err = NULL;
    apr_status_t rv;
    int i;

    if (name) {
        atr_param_t *prm = apr_array_push(params);
        prm->name = name;
        prm->value = value;
    }
    rv = atr_search_parse(&search, params, 0, ATR_SEARCH_MAX_COUNT, &err, p);
    if (rv != APR_SUCCESS) {
        /* Text that is not a valid value of this parameter simply matches nothing. */
        return APR_SUCCESS;
    }
    rv = atr_search_run(&ids, db, search, p);
    if (rv != APR_SUCCESS) return rv;
    for (i = 0; i < ids->nelts; i++) APR_ARRAY_PUSH(out, const char *) = APR_ARRAY_IDX(ids, i, const char *);
    return APR_SUCCESS;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

apr_status_t atr_admin_group_find(apr_array_header_t **pids, int *ptruncated, atr_db_t *db,
                                  const char *text, int max, apr_pool_t *p)
{
    apr_array_header_t *all = apr_array_make(p, 16, sizeof(const char *));
    apr_array_header_t *ids = apr_array_make(p, 16, sizeof(const char *));
    apr_status_t rv;
    int i;

    if (ptruncated) *ptruncated = 0;
    if (!text || !*text) {
        rv = search_one(all, db, NULL, NULL, p);
    }
    else {
        /* FHIR search syntax gives ',' (OR) and '\' (escape) a meaning; staff type plain text,
         * so both are escaped: the text is searched as it is. */
        char *esc = apr_palloc(p, strlen(text) * 2 + 1), *o = esc;
        const char *s;
        for (s = text; *s; s++) {
            if (*s == ',' || *s == '\\' || *s == '$') *o++ = '\\';
            *o++ = *s;
        }
        *o = '\0';
        rv = search_one(all, db, "identifier", esc, p);
        if (rv == APR_SUCCESS) rv = search_one(all, db, "name:contains", esc, p);
    }
    if (rv != APR_SUCCESS) return rv;
    qsort(all->elts, (size_t)all->nelts, sizeof(const char *), cmp_str);
    for (i = 0; i < all->nelts; i++) {
        const char *id = APR_ARRAY_IDX(all, i, const char *);
        if (i > 0 && !strcmp(id, APR_ARRAY_IDX(all, i - 1, const char *))) continue;
        if (ids->nelts >= max) {
            if (ptruncated) *ptruncated = 1;
            break;
        }
        APR_ARRAY_PUSH(ids, const char *) = id;
    }
    *pids = ids;
    return APR_SUCCESS;
}
