#include <string.h>
#include <apr_strings.h>
#include "atr_scope.h"

static int is_type_name(const char *s, apr_size_t n)
{
    apr_size_t i;
    if (n == 1 && s[0] == '*') return 1;
    if (n == 0 || n > 64 || !(s[0] >= 'A' && s[0] <= 'Z')) return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 0;
    }
    return 1;
}

/* v2 suffix: a non-empty subsequence of "cruds" in that order. */
static int parse_v2(const char *s, apr_size_t n, unsigned *perms)
{
    static const char order[] = "cruds";
    apr_size_t i, pos = 0;
    unsigned bits = 0;
    if (n == 0 || n > 5) return 0;
    for (i = 0; i < n; i++) {
        const char *at = strchr(order + pos, s[i]);
        if (!at || !s[i]) return 0;
        bits |= 1u << (at - order);
        pos = (apr_size_t)(at - order) + 1;
    }
    *perms = bits;
    return 1;
}

apr_status_t atr_scope_parse(atr_scope_t **pscope, const char *text, apr_pool_t *p)
{
    const char *rest, *dot, *q, *perm;
    apr_size_t perm_len;
    atr_scope_t *sc;

    if (!text || strncmp(text, "system/", 7)) return APR_EINVAL;
    rest = text + 7;
    dot = strchr(rest, '.');
    if (!dot || !is_type_name(rest, (apr_size_t)(dot - rest))) return APR_EINVAL;
    sc = apr_pcalloc(p, sizeof(*sc));
    sc->text = apr_pstrdup(p, text);
    sc->type = apr_pstrndup(p, rest, (apr_size_t)(dot - rest));
    perm = dot + 1;
    q = strchr(perm, '?');
    perm_len = q ? (apr_size_t)(q - perm) : strlen(perm);
    if (perm_len == 4 && !strncmp(perm, "read", 4)) sc->perms = ATR_PERM_READ;
    else if (perm_len == 5 && !strncmp(perm, "write", 5)) sc->perms = ATR_PERM_WRITE;
    else if (perm_len == 1 && perm[0] == '*') sc->perms = ATR_PERM_ALL;
    else if (parse_v2(perm, perm_len, &sc->perms)) sc->v2 = 1;
    else return APR_EINVAL;
    if (q) {
        if (!sc->v2 || !q[1]) return APR_EINVAL;  /* granular scopes exist in v2 only */
        sc->granular = 1;
        sc->perms = 0;  /* D32: accepted, but grant nothing */
    }
    *pscope = sc;
    return APR_SUCCESS;
}

apr_status_t atr_scope_parse_list(apr_array_header_t **pscopes, apr_array_header_t **pbad,
                                  const char *list, apr_pool_t *p)
{
    apr_array_header_t *out = apr_array_make(p, 8, sizeof(atr_scope_t *));
    apr_array_header_t *bad = apr_array_make(p, 2, sizeof(const char *));
    char *copy = apr_pstrdup(p, list ? list : ""), *tok, *last;
    int i;

    for (tok = apr_strtok(copy, " ", &last); tok; tok = apr_strtok(NULL, " ", &last)) {
        atr_scope_t *sc;
        int dup = 0;
        for (i = 0; i < out->nelts; i++) {
            if (!strcmp(APR_ARRAY_IDX(out, i, atr_scope_t *)->text, tok)) dup = 1;
        }
        if (dup) continue;
        if (atr_scope_parse(&sc, tok, p) == APR_SUCCESS) APR_ARRAY_PUSH(out, atr_scope_t *) = sc;
        else APR_ARRAY_PUSH(bad, const char *) = tok;
    }
    *pscopes = out;
    if (pbad) *pbad = bad;
    return APR_SUCCESS;
}

static int type_covers(const char *outer, const char *inner)
{
    return !strcmp(outer, "*") || !strcmp(outer, inner);
}

static const char *perms_text(unsigned perms, int v2, apr_pool_t *p)
{
    static const char order[] = "cruds";
    char buf[6];
    int i, n = 0;
    if (!v2) {
        if (perms == ATR_PERM_READ) return "read";
        if (perms == ATR_PERM_WRITE) return "write";
        if (perms == ATR_PERM_ALL) return "*";
    }
    for (i = 0; i < 5; i++) {
        if (perms & (1u << i)) buf[n++] = order[i];
    }
    return apr_pstrndup(p, buf, (apr_size_t)n);
}

static void add_unique(apr_array_header_t *out, const char *s)
{
    int i;
    for (i = 0; i < out->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(out, i, const char *), s)) return;
    }
    APR_ARRAY_PUSH(out, const char *) = s;
}

const char *atr_scope_mediate(const apr_array_header_t *requested, const apr_array_header_t *allowed,
                              apr_pool_t *p)
{
    apr_array_header_t *granted = apr_array_make(p, 8, sizeof(const char *));
    int i, j;

    for (i = 0; i < requested->nelts; i++) {
        const atr_scope_t *r = APR_ARRAY_IDX(requested, i, const atr_scope_t *);
        int covered = 0;
        if (!r->perms) continue;
        for (j = 0; j < allowed->nelts && !covered; j++) {
            const atr_scope_t *a = APR_ARRAY_IDX(allowed, j, const atr_scope_t *);
            covered = type_covers(a->type, r->type) && (a->perms & r->perms) == r->perms;
        }
        if (covered) {
            add_unique(granted, r->text);
            continue;
        }
        for (j = 0; j < allowed->nelts; j++) {  /* grant what is allowed inside the request */
            const atr_scope_t *a = APR_ARRAY_IDX(allowed, j, const atr_scope_t *);
            const char *type = type_covers(r->type, a->type) ? a->type
                               : type_covers(a->type, r->type) ? r->type : NULL;
            unsigned perms = a->perms & r->perms;
            if (!type || !perms) continue;
            add_unique(granted, apr_psprintf(p, "system/%s.%s", type,
                                             perms_text(perms, r->v2 || (perms != ATR_PERM_READ
                                                        && perms != ATR_PERM_WRITE && perms != ATR_PERM_ALL), p)));
        }
    }
    return apr_array_pstrcat(p, granted, ' ');
}

int atr_scope_allows(const apr_array_header_t *granted, const char *type, unsigned perms)
{
    unsigned have = 0;
    int i;
    for (i = 0; granted && i < granted->nelts; i++) {
        const atr_scope_t *s = APR_ARRAY_IDX(granted, i, const atr_scope_t *);
        if (type_covers(s->type, type)) have |= s->perms;
    }
    return perms && (have & perms) == perms;
}
