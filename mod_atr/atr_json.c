#include <stdarg.h>
#include <string.h>
#include <apr_strings.h>
#include "atr_json.h"

static apr_status_t json_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *atr_json_pool_own(json_t *j, apr_pool_t *p)
{
    if (j) apr_pool_cleanup_register(p, j, json_cleanup, apr_pool_cleanup_null);
    return j;
}

apr_status_t atr_json_parse(json_t **pjson, const char *buf, apr_size_t len,
                            const char **perr, apr_pool_t *p)
{
    json_error_t err;
    json_t *j;

    *pjson = NULL;
    if (perr) *perr = NULL;
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        if (perr) *perr = apr_psprintf(p, "line %d column %d: %s", err.line, err.column, err.text);
        return APR_EINVAL;
    }
    *pjson = atr_json_pool_own(j, p);
    return APR_SUCCESS;
}

const char *atr_json_dump(const json_t *j, apr_pool_t *p)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    const char *r;
    if (!s) return NULL;
    r = apr_pstrdup(p, s);
    free(s);
    return r;
}

const char *atr_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *atr_json_path_str(const json_t *obj, ...)
{
    va_list ap;
    const char *key;
    const json_t *cur = obj;

    va_start(ap, obj);
    while (cur && (key = va_arg(ap, const char *)) != NULL) {
        cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
    }
    va_end(ap);
    return json_is_string(cur) ? json_string_value(cur) : NULL;
}

json_t *atr_json_ext_find(const json_t *obj, const char *url)
{
    json_t *e;
    size_t i;

    if (!json_is_object(obj) || !url) return NULL;
    json_array_foreach(json_object_get(obj, "extension"), i, e) {
        const char *u = atr_json_str(e, "url");
        if (u && !strcmp(u, url)) return e;
    }
    return NULL;
}

void atr_oo_add(json_t *oo, const char *severity, const char *code, const char *diagnostics)
{
    json_t *issue = json_pack("{s:s, s:s}", "severity", severity, "code", code);
    if (diagnostics) json_object_set_new(issue, "diagnostics", json_string(diagnostics));
    json_array_append_new(json_object_get(oo, "issue"), issue);
}

json_t *atr_oo_make(const char *severity, const char *code, const char *diagnostics)
{
    json_t *oo = json_pack("{s:s, s:[]}", "resourceType", "OperationOutcome", "issue");
    atr_oo_add(oo, severity, code, diagnostics);
    return oo;
}
