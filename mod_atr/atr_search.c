/* Group search: parsing of R4 search parameters into fixed prepared-statement calls, and
 * their evaluation. Each parameter occurrence is one AND clause; its comma-separated values
 * are OR alternatives; each alternative is one labelled statement with string arguments. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include "atr_fhir.h"
#include "atr_log.h"
#include "atr_search.h"

typedef struct search_alt_t {
    const char *label;
    int nargs;
    const char *args[3];
} search_alt_t;

typedef struct search_clause_t {
    apr_array_header_t *alts;   /* search_alt_t */
} search_clause_t;

/* ---------------------------------------------------------------- query strings */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %-decode s[0..len) ('+' is a space in form encoding). NULL on a bad escape or a NUL. */
static char *form_decode(const char *s, apr_size_t len, apr_pool_t *p)
{
    char *r = apr_palloc(p, len + 1);
    apr_size_t i, o = 0;

    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        }
        else if (c == '%') {
            int h, l;
            if (i + 2 >= len) return NULL;
            h = hexval(s[i + 1]);
            l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return NULL;
            c = (char)(h * 16 + l);
            if (c == '\0') return NULL;
            i += 2;
        }
        r[o++] = c;
    }
    r[o] = '\0';
    return r;
}

apr_status_t atr_query_parse(apr_array_header_t **pparams, const char *query, const char **perr,
                             apr_pool_t *p)
{
    apr_array_header_t *params = apr_array_make(p, 8, sizeof(atr_param_t));
    const char *s = query ? query : "";
    apr_status_t rv = APR_SUCCESS;

    *perr = NULL;
    while (*s) {
        const char *amp = strchr(s, '&');
        apr_size_t seglen = amp ? (apr_size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', seglen);
        apr_size_t nlen = eq ? (apr_size_t)(eq - s) : seglen;
        const char *name, *value;

        if (nlen > 0) {
            name = form_decode(s, nlen, p);
            value = eq ? form_decode(eq + 1, seglen - nlen - 1, p) : "";
            if (!name || !value) {
                *perr = apr_psprintf(p, "malformed %%-encoding in query parameter '%s'",
                                     apr_pstrmemdup(p, s, nlen));
                rv = APR_EINVAL;
                goto out;
            }
            APR_ARRAY_PUSH(params, atr_param_t) = (atr_param_t){ name, value };
        }
        s += seglen;
        if (*s == '&') s++;
    }
out:
    *pparams = params;
    return rv;
}

/* ---------------------------------------------------------------- token helpers */

/* Split s at every unescaped sep (FHIR search escapes ',', '|', '$' and '\' with '\').
 * Parts keep their escapes. */
static apr_array_header_t *split_unescaped(const char *s, char sep, apr_pool_t *p)
{
    apr_array_header_t *parts = apr_array_make(p, 2, sizeof(const char *));
    const char *start = s, *c;

    for (c = s; *c; c++) {
        if (*c == '\\' && c[1]) {
            c++;
            continue;
        }
        if (*c == sep) {
            APR_ARRAY_PUSH(parts, const char *) = apr_pstrmemdup(p, start, (apr_size_t)(c - start));
            start = c + 1;
        }
    }
    APR_ARRAY_PUSH(parts, const char *) = apr_pstrdup(p, start);
    return parts;
}

static const char *unescape(const char *s, apr_pool_t *p)
{
    char *r = apr_palloc(p, strlen(s) + 1), *o = r;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) s++;
        *o++ = *s;
    }
    *o = '\0';
    return r;
}

static const char *part(const apr_array_header_t *a, int i, apr_pool_t *p)
{
    return unescape(APR_ARRAY_IDX(a, i, const char *), p);
}

/* Escape LIKE metacharacters with '\' (the statements say ESCAPE '\'). */
static const char *like_escape(const char *s, apr_pool_t *p)
{
    char *r = apr_palloc(p, strlen(s) * 2 + 1), *o = r;
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return r;
}

static void alt_add(apr_array_header_t *alts, const char *label, int nargs,
                    const char *a0, const char *a1, const char *a2)
{
    search_alt_t *alt = apr_array_push(alts);
    alt->label = label;
    alt->nargs = nargs;
    alt->args[0] = a0;
    alt->args[1] = a1;
    alt->args[2] = a2;
}

/* ---------------------------------------------------------------- one value per parameter */

typedef const char *value_parser_fn(apr_array_header_t *alts, const char *value, apr_pool_t *p);

static const char *parse_identifier(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    apr_array_header_t *t = split_unescaped(v, '|', p);
    const char *sys, *val;

    if (t->nelts == 1) {
        val = part(t, 0, p);
        if (!*val) return "empty identifier value";
        alt_add(alts, "atr_gs_ident_val", 1, val, NULL, NULL);
        return NULL;
    }
    if (t->nelts != 2) return "expected [system]|[value] or value";
    sys = part(t, 0, p);
    val = part(t, 1, p);
    if (!*sys && !*val) return "neither system nor value given";
    if (!*val) {
        alt_add(alts, "atr_gs_ident_sys", 1, sys, NULL, NULL);
    }
    else {
        /* "|value": identifiers without a system are stored with system '' */
        alt_add(alts, "atr_gs_ident_sys_val", 2, sys, val, NULL);
    }
    return NULL;
}

static const char *parse_of_type(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    apr_array_header_t *t = split_unescaped(v, '|', p);
    const char *tsys, *tcode, *val;

    if (t->nelts != 3) return "expected type-system|type-code|value (all three parts)";
    tsys = part(t, 0, p);
    tcode = part(t, 1, p);
    val = part(t, 2, p);
    if (!*tsys || !*tcode || !*val) return "type-system, type-code and value are all required";
    alt_add(alts, "atr_gs_ident_type_val", 3, tsys, tcode, val);
    return NULL;
}

static const char *name_alt(apr_array_header_t *alts, const char *v, int contains, apr_pool_t *p)
{
    const char *s = unescape(v, p);
    const char *norm;
    if (!*s) return "empty name";
    norm = like_escape(atr_fhir_name_norm(s, p), p);
    alt_add(alts, "atr_gs_name_like", 1,
            apr_pstrcat(p, contains ? "%" : "", norm, "%", NULL), NULL, NULL);
    return NULL;
}

static const char *parse_name(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    return name_alt(alts, v, 0, p);
}

static const char *parse_name_contains(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    return name_alt(alts, v, 1, p);
}

static const char *parse_name_exact(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    const char *s = unescape(v, p);
    if (!*s) return "empty name";
    alt_add(alts, "atr_gs_name_exact", 1, s, NULL, NULL);
    return NULL;
}

/* token "system|code", "|code" or "code" into *psys (NULL = any system) and *pcode. */
static const char *split_code(const char **psys, const char **pcode, const char *v, apr_pool_t *p)
{
    apr_array_header_t *t = split_unescaped(v, '|', p);
    if (t->nelts == 1) {
        *psys = NULL;
        *pcode = part(t, 0, p);
    }
    else if (t->nelts == 2) {
        *psys = part(t, 0, p);
        *pcode = part(t, 1, p);
    }
    else {
        return "expected [system|]code";
    }
    if (!**pcode) return "a code is required";
    return NULL;
}

static const char *parse_characteristic(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    const char *sys, *code, *err = split_code(&sys, &code, v, p);
    if (err) return err;
    if (sys) alt_add(alts, "atr_gs_char_sys_code", 2, sys, code, NULL);
    else alt_add(alts, "atr_gs_char_code", 1, code, NULL, NULL);
    return NULL;
}

/* "Type/id": what ATR characteristic values reference (D3). */
static int is_reference(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !apr_isupper(*s)) return 0;
    return atr_fhir_is_id(slash + 1) && !strchr(slash + 1, '/');
}

static const char *parse_characteristic_value(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    apr_array_header_t *t = split_unescaped(v, '$', p);
    const char *sys, *code, *value, *err;

    if (t->nelts != 2) return "expected characteristic$value";
    if ((err = split_code(&sys, &code, APR_ARRAY_IDX(t, 0, const char *), p)) != NULL) return err;
    value = part(t, 1, p);
    if (!*value) return "a value is required after '$'";
    if (is_reference(value)) {
        if (sys) alt_add(alts, "atr_gs_charval_ref_sys", 3, sys, code, value);
        else alt_add(alts, "atr_gs_charval_ref", 2, code, value, NULL);
    }
    else {
        /* token value: matched on its code (the store keeps the first coding's code) */
        const char *vsys, *vcode;
        if ((err = split_code(&vsys, &vcode, APR_ARRAY_IDX(t, 1, const char *), p)) != NULL) return err;
        alt_add(alts, "atr_gs_charval_tok", 2, code, vcode, NULL);
    }
    return NULL;
}

static const char *parse_id(apr_array_header_t *alts, const char *v, apr_pool_t *p)
{
    const char *id = unescape(v, p);
    if (!*id) return "empty id";
    alt_add(alts, "atr_gs_id", 1, id, NULL, NULL);
    return NULL;
}

static const struct {
    const char *name;
    value_parser_fn *parse;
} search_params[] = {
    { "identifier", parse_identifier },
    { "identifier:of-type", parse_of_type },
    { "name", parse_name },
    { "name:contains", parse_name_contains },
    { "name:exact", parse_name_exact },
    { "characteristic", parse_characteristic },
    { "characteristic-value", parse_characteristic_value },
    { "_id", parse_id },
    { NULL, NULL }
};

/* "identifier:below", "name:sounds-like", "_id:x": a parameter we support, with a modifier we
 * do not (the exact name with its modifier is not in search_params). */
static int is_known_with_modifier(const char *name)
{
    const char *colon = strchr(name, ':');
    int j;
    if (!colon) return 0;
    for (j = 0; search_params[j].name; j++) {
        if (strlen(search_params[j].name) == (size_t)(colon - name)
            && !strncmp(search_params[j].name, name, (size_t)(colon - name))) return 1;
    }
    return !strncmp(name, "_summary:", 9) || !strncmp(name, "_count:", 7) || !strncmp(name, "_elements:", 10);
}

/* ---------------------------------------------------------------- result parameters */

static int parse_nonneg(int *pn, const char *s)
{
    long n = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (!apr_isdigit(*s)) return 0;
        n = n * 10 + (*s - '0');
        if (n > 100000000L) return 0;
    }
    *pn = (int)n;
    return 1;
}

static int is_element_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) {
        if (!apr_isalnum(*s) && *s != '_' && *s != '-') return 0;
    }
    return 1;
}

static const char *form_encode(const char *s, apr_pool_t *p)
{
    static const char hex[] = "0123456789ABCDEF";
    char *r = apr_palloc(p, strlen(s) * 3 + 1), *o = r;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (apr_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '|'
            || c == '$' || c == '/' || c == ',') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return r;
}

apr_status_t atr_search_parse(atr_search_t **psearch, const apr_array_header_t *params, int strict,
                              int max_count, const char **perr, apr_pool_t *p)
{
    atr_search_t *s = apr_pcalloc(p, sizeof(*s));
    apr_array_header_t *self = apr_array_make(p, 8, sizeof(const char *));
    apr_status_t rv = APR_SUCCESS;
    int i, j;

    *perr = NULL;
    s->clauses = apr_array_make(p, 4, sizeof(search_clause_t));
    s->ignored = apr_array_make(p, 2, sizeof(const char *));
    s->count = max_count < ATR_SEARCH_DEFAULT_COUNT ? max_count : ATR_SEARCH_DEFAULT_COUNT;
    s->summary = ATR_SUMMARY_FALSE;

    for (i = 0; params && i < params->nelts; i++) {
        const atr_param_t *pa = &APR_ARRAY_IDX(params, i, atr_param_t);
        const char *n = pa->name, *v = pa->value;
        int honoured = 1;

        if (!*v) {
            /* R4: a parameter with an empty value is ignored */
            continue;
        }
        for (j = 0; search_params[j].name; j++) {
            if (!strcmp(search_params[j].name, n)) break;
        }
        if (search_params[j].name) {
            search_clause_t *cl = apr_array_push(s->clauses);
            apr_array_header_t *vals = split_unescaped(v, ',', p);
            int k;
            cl->alts = apr_array_make(p, vals->nelts, sizeof(search_alt_t));
            for (k = 0; k < vals->nelts; k++) {
                const char *err = search_params[j].parse(cl->alts, APR_ARRAY_IDX(vals, k, const char *), p);
                if (err) {
                    *perr = apr_psprintf(p, "invalid value for search parameter '%s': %s", n, err);
                    rv = APR_EINVAL;
                    goto out;
                }
            }
        }
        else if (!strcmp(n, "_summary")) {
            if (!strcmp(v, "true")) s->summary = ATR_SUMMARY_TRUE;
            else if (!strcmp(v, "false")) s->summary = ATR_SUMMARY_FALSE;
            else if (!strcmp(v, "count")) s->summary = ATR_SUMMARY_COUNT;
            else {
                *perr = apr_psprintf(p, "_summary must be true, false or count (not '%s')", v);
                rv = APR_EINVAL;
                goto out;
            }
        }
        else if (!strcmp(n, "_count")) {
            if (!parse_nonneg(&s->count, v)) {
                *perr = apr_psprintf(p, "_count must be a non-negative integer (not '%s')", v);
                rv = APR_EINVAL;
                goto out;
            }
            /* R4: the server may return fewer than asked; we cap at the configured maximum */
            if (s->count > max_count) s->count = max_count;
            s->count_given = 1;
            honoured = 0;   /* the caller writes _count into each link itself */
        }
        else if (!strcmp(n, "_offset")) {
            if (!parse_nonneg(&s->offset, v)) {
                *perr = apr_psprintf(p, "_offset must be a non-negative integer (not '%s')", v);
                rv = APR_EINVAL;
                goto out;
            }
            honoured = 0;
        }
        else if (!strcmp(n, "_elements")) {
            apr_array_header_t *names = split_unescaped(v, ',', p);
            int k;
            if (!s->elements) s->elements = apr_array_make(p, names->nelts, sizeof(const char *));
            for (k = 0; k < names->nelts; k++) {
                const char *e = APR_ARRAY_IDX(names, k, const char *);
                if (!is_element_name(e)) {
                    *perr = apr_psprintf(p, "_elements: '%s' is not an element name", e);
                    rv = APR_EINVAL;
                    goto out;
                }
                APR_ARRAY_PUSH(s->elements, const char *) = e;
            }
        }
        else if (!strcmp(n, "_format")) {
            honoured = 0;   /* content negotiation is the HTTP layer's job */
        }
        else if (is_known_with_modifier(n)) {
            /* Ignoring a modifier would change what the search means (think :not, :missing),
             * so an unsupported modifier of a parameter we know is refused, strict or not. */
            *perr = apr_psprintf(p, "the modifier of search parameter '%s' is not supported", n);
            rv = APR_EINVAL;
            goto out;
        }
        else if (strict) {
            *perr = apr_psprintf(p, "search parameter '%s' is not supported", n);
            rv = APR_EINVAL;
            goto out;
        }
        else {
            APR_ARRAY_PUSH(s->ignored, const char *) = n;
            honoured = 0;
        }
        if (honoured) {
            APR_ARRAY_PUSH(self, const char *) =
                apr_pstrcat(p, form_encode(n, p), "=", form_encode(v, p), NULL);
        }
    }
    s->self_query = apr_array_pstrcat(p, self, '&');
out:
    *psearch = s;
    return rv;
}

/* ---------------------------------------------------------------- evaluation */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add the ids one alternative selects to set (id -> id). */
static apr_status_t alt_select(apr_hash_t *set, atr_db_t *db, const search_alt_t *alt, apr_pool_t *p)
{
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    const char *args[3];
    apr_status_t rv;

    memcpy(args, alt->args, sizeof(args));
    rv = atr_db_select(&rows, db, alt->label, p, alt->nargs, args);
    if (rv != APR_SUCCESS) return rv;
    while ((rv = atr_db_next(&row, rows)) == APR_SUCCESS) {
        const char *id = atr_db_col(rows, row, 0);
        if (id && !apr_hash_get(set, id, APR_HASH_KEY_STRING)) {
            id = apr_pstrdup(p, id);
            apr_hash_set(set, id, APR_HASH_KEY_STRING, id);
        }
    }
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

apr_status_t atr_search_run(apr_array_header_t **pids, atr_db_t *db, const atr_search_t *search,
                            apr_pool_t *p)
{
    apr_hash_t *result = NULL;
    apr_array_header_t *ids;
    apr_hash_index_t *hi;
    apr_status_t rv = APR_SUCCESS;
    int i, j;

    *pids = NULL;
    if (search->clauses->nelts == 0) {
        search_alt_t all = { "atr_gs_all", 0, { NULL, NULL, NULL } };
        result = apr_hash_make(p);
        if ((rv = alt_select(result, db, &all, p)) != APR_SUCCESS) goto out;
    }
    for (i = 0; i < search->clauses->nelts; i++) {
        const search_clause_t *cl = &APR_ARRAY_IDX(search->clauses, i, search_clause_t);
        apr_hash_t *set = apr_hash_make(p);

        for (j = 0; j < cl->alts->nelts; j++) {
            rv = alt_select(set, db, &APR_ARRAY_IDX(cl->alts, j, search_alt_t), p);
            if (rv != APR_SUCCESS) goto out;
        }
        if (!result) {
            result = set;
        }
        else {
            /* AND: keep what both have */
            for (hi = apr_hash_first(p, result); hi; hi = apr_hash_next(hi)) {
                const void *key;
                apr_hash_this(hi, &key, NULL, NULL);
                if (!apr_hash_get(set, key, APR_HASH_KEY_STRING)) {
                    apr_hash_set(result, key, APR_HASH_KEY_STRING, NULL);
                }
            }
        }
        if (apr_hash_count(result) == 0) break;
    }
    ids = apr_array_make(p, (int)apr_hash_count(result) + 1, sizeof(const char *));
    for (hi = apr_hash_first(p, result); hi; hi = apr_hash_next(hi)) {
        APR_ARRAY_PUSH(ids, const char *) = apr_hash_this_key(hi);
    }
    qsort(ids->elts, (size_t)ids->nelts, sizeof(const char *), cmp_str);
    *pids = ids;
out:
    if (rv != APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00300: Group search failed: %s",
                       atr_db_error(db, rv));
    }
    return rv;
}
