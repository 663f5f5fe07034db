/* Web plumbing of the admin CGI (see admin_web.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "admin_web.h"
#include "atr_search.h"

static const char *default_scopes[] = {
    "system/*.read", "system/Group.read", "system/Patient.read", "system/Coverage.read",
    "system/RelatedPerson.read", "system/Practitioner.read", "system/PractitionerRole.read",
    "system/Organization.read", "system/Location.read", "system/Group.write",
    "system/*.rs", "system/Group.rs", NULL
};

apr_status_t admin_read_secret(const char **pdata, apr_size_t *plen, const char *path, apr_size_t max,
                               apr_pool_t *p)
{
    apr_file_t *f;
    char *buf = apr_palloc(p, max + 1);
    apr_size_t n = max + 1;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) return rv;
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) return rv;
    if (n > max) return APR_EINVAL;
    buf[n] = '\0';
    *pdata = buf;
    if (plen) *plen = n;
    return APR_SUCCESS;
}

apr_status_t admin_conf_read(admin_conf_t **pconf, const char *path, const char **perr, apr_pool_t *p)
{
    admin_conf_t *c = apr_pcalloc(p, sizeof(*c));
    const char *text = NULL;
    char *line, *last = NULL;
    int lineno = 0;
    apr_status_t rv;

    c->path = path;
    c->max_body = ADMIN_BODY_MAX_DEFAULT;
    rv = admin_read_secret(&text, NULL, path, 65536, p);
    if (rv != APR_SUCCESS) {
        char buf[128];
        *perr = apr_psprintf(p, "cannot read %s: %s", path, apr_strerror(rv, buf, sizeof(buf)));
        return rv;
    }
    for (line = apr_strtok(apr_pstrdup(p, text), "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        char *key, *val;
        lineno++;
        while (*line == ' ' || *line == '\t') line++;
        if (!*line || *line == '#') continue;
        key = line;
        val = key + strcspn(key, " \t");
        if (*val) *val++ = '\0';
        while (*val == ' ' || *val == '\t') val++;
        {
            apr_size_t n = strlen(val);
            while (n && (val[n - 1] == ' ' || val[n - 1] == '\t' || val[n - 1] == '\r')) val[--n] = '\0';
        }
        if (!strcmp(key, "ldap_uri")) c->ldap_uri = val;
        else if (!strcmp(key, "ldap_base")) c->ldap_base = val;
        else if (!strcmp(key, "ldap_bind_dn")) c->ldap_bind_dn = val;
        else if (!strcmp(key, "ldap_password_file")) c->ldap_password_file = val;
        else if (!strcmp(key, "store")) c->store = val;
        else if (!strcmp(key, "csrf_key_file")) c->csrf_key_file = val;
        else if (!strcmp(key, "audit_log")) c->audit_log = val;
        else if (!strcmp(key, "allow_http_loopback")) c->allow_http_loopback = !strcasecmp(val, "on");
        else if (!strcmp(key, "max_body")) c->max_body = (apr_size_t)apr_atoi64(val);
        else if (!strcmp(key, "scopes")) c->scopes = admin_split_list(val, p);
        else {
            *perr = apr_psprintf(p, "%s line %d: unknown key '%s'", path, lineno, key);
            return APR_EINVAL;
        }
    }
    if (!c->scopes || c->scopes->nelts == 0) {
        int i;
        c->scopes = apr_array_make(p, 12, sizeof(const char *));
        for (i = 0; default_scopes[i]; i++) APR_ARRAY_PUSH(c->scopes, const char *) = default_scopes[i];
    }
    if (!c->ldap_uri || !c->ldap_base || !c->store || !c->csrf_key_file) {
        *perr = apr_psprintf(p, "%s: ldap_uri, ldap_base, store and csrf_key_file are required", path);
        return APR_EINVAL;
    }
    if (c->max_body < 1024) c->max_body = 1024;
    *pconf = c;
    return APR_SUCCESS;
}

admin_out_t *admin_out_make(apr_pool_t *p)
{
    admin_out_t *o = apr_pcalloc(p, sizeof(*o));
    o->status = 200;
    o->content_type = "text/html; charset=utf-8";
    o->body = apr_array_make(p, 16384, 1);
    o->p = p;
    return o;
}

void admin_out_raw(admin_out_t *o, const char *s)
{
    apr_array_header_t src;
    memset(&src, 0, sizeof(src));
    src.pool = o->p;
    src.elt_size = 1;
    src.nelts = src.nalloc = (int)strlen(s);
    src.elts = (char *)s;
    if (src.nelts) apr_array_cat(o->body, &src);
}

void admin_out_fmt(admin_out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    admin_out_raw(o, apr_pvsprintf(o->p, fmt, ap));
    va_end(ap);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

void admin_out_send(admin_out_t *o, int head_only)
{
    /* No inline script or style anywhere: the CSP forbids both, so an injected tag that
     * escaped escaping still could not run. */
    printf("Status: %d %s\r\n", o->status, reason(o->status));
    printf("Content-Type: %s\r\n", o->content_type);
    printf("Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self'; "
           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n");
    printf("X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
           "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n");
    if (o->location) printf("Location: %s\r\n", o->location);
    printf("Content-Length: %d\r\n\r\n", o->body->nelts);
    if (!head_only && o->body->nelts) fwrite(o->body->elts, 1, (size_t)o->body->nelts, stdout);
    fflush(stdout);
}

const char *admin_h(const char *s, apr_pool_t *p)
{
    apr_size_t n = 0;
    const char *c;
    char *out, *w;
    if (!s) return "";
    for (c = s; *c; c++) n += (*c == '&' || *c == '<' || *c == '>' || *c == '"' || *c == '\'') ? 6 : 1;
    out = w = apr_palloc(p, n + 1);
    for (c = s; *c; c++) {
        switch (*c) {
        case '&': memcpy(w, "&amp;", 5); w += 5; break;
        case '<': memcpy(w, "&lt;", 4); w += 4; break;
        case '>': memcpy(w, "&gt;", 4); w += 4; break;
        case '"': memcpy(w, "&quot;", 6); w += 6; break;
        case '\'': memcpy(w, "&#39;", 5); w += 5; break;
        default: *w++ = *c;
        }
    }
    *w = '\0';
    return out;
}

const char *admin_url_enc(const char *s, apr_pool_t *p)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out, *w;
    const unsigned char *c;
    if (!s) return "";
    out = w = apr_palloc(p, strlen(s) * 3 + 1);
    for (c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
            || *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            *w++ = (char)*c;
        }
        else {
            *w++ = '%';
            *w++ = hex[*c >> 4];
            *w++ = hex[*c & 15];
        }
    }
    *w = '\0';
    return out;
}

const char *admin_param(const apr_array_header_t *params, const char *name)
{
    int i;
    for (i = 0; params && i < params->nelts; i++) {
        const atr_param_t *prm = &APR_ARRAY_IDX(params, i, atr_param_t);
        if (!strcmp(prm->name, name)) return prm->value;
    }
    return NULL;
}

apr_array_header_t *admin_param_all(const apr_array_header_t *params, const char *name, apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    int i;
    for (i = 0; params && i < params->nelts; i++) {
        const atr_param_t *prm = &APR_ARRAY_IDX(params, i, atr_param_t);
        if (!strcmp(prm->name, name) && *prm->value) APR_ARRAY_PUSH(a, const char *) = prm->value;
    }
    return a;
}

apr_array_header_t *admin_split_list(const char *text, apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    char *last = NULL, *tok;
    if (!text) return a;
    for (tok = apr_strtok(apr_pstrdup(p, text), " \t\r\n,", &last); tok; tok = apr_strtok(NULL, " \t\r\n,", &last)) {
        APR_ARRAY_PUSH(a, const char *) = tok;
    }
    return a;
}

const char *admin_join(const apr_array_header_t *arr, const char *sep, apr_pool_t *p)
{
    const char *s = "";
    int i;
    for (i = 0; arr && i < arr->nelts; i++) {
        s = apr_pstrcat(p, s, i ? sep : "", APR_ARRAY_IDX(arr, i, const char *), NULL);
    }
    return s;
}

int admin_has_str(const apr_array_header_t *arr, const char *s)
{
    int i;
    for (i = 0; arr && i < arr->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(arr, i, const char *), s)) return 1;
    }
    return 0;
}

const char *admin_ldap_time(const char *gt, apr_pool_t *p)
{
    if (!gt || strlen(gt) < 15) return gt ? gt : "";
    return apr_psprintf(p, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC", gt, gt + 4, gt + 6, gt + 8, gt + 10, gt + 12);
}

const char *admin_changed_text(const char *changed_at, const char *changed_by, apr_pool_t *p)
{
    if (!changed_at && !changed_by) return "not recorded";
    return apr_pstrcat(p, changed_at ? admin_ldap_time(changed_at, p) : "(time not recorded)", " by ",
                       changed_by ? changed_by : "(not recorded)", NULL);
}

static const char *csrf_mac(const unsigned char *key, apr_size_t klen, const char *user, const char *ts,
                            apr_pool_t *p)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    const char *msg = apr_pstrcat(p, "atr-admin-csrf|", user, "|", ts, NULL);
    char *hex, *w;
    unsigned int i;

    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), mac, &mlen)) return NULL;
    hex = w = apr_palloc(p, mlen * 2 + 1);
    for (i = 0; i < mlen; i++, w += 2) apr_snprintf(w, 3, "%02x", mac[i]);
    *w = '\0';
    return hex;
}

const char *admin_csrf_make_at(const unsigned char *key, apr_size_t klen, const char *user, apr_int64_t now,
                               apr_pool_t *p)
{
    const char *ts = apr_psprintf(p, "%" APR_INT64_T_FMT, now);
    const char *mac = csrf_mac(key, klen, user ? user : "", ts, p);
    return mac ? apr_pstrcat(p, ts, ".", mac, NULL) : "";
}

const char *admin_csrf_make(const unsigned char *key, apr_size_t klen, const char *user, apr_pool_t *p)
{
    return admin_csrf_make_at(key, klen, user, (apr_int64_t)time(NULL), p);
}

int admin_csrf_check(const unsigned char *key, apr_size_t klen, const char *user, const char *token,
                     apr_pool_t *p)
{
    return admin_csrf_check_at(key, klen, user, token, (apr_int64_t)time(NULL), p);
}

int admin_csrf_check_at(const unsigned char *key, apr_size_t klen, const char *user, const char *token,
                        apr_int64_t now, apr_pool_t *p)
{
    const char *dot, *want;
    char *ts;
    apr_int64_t issued;

    /* 18 digits at most: apr_atoi64 of more could overflow. */
    if (!user || !token || !(dot = strchr(token, '.')) || dot == token || dot - token > 18) return 0;
    ts = apr_pstrndup(p, token, (apr_size_t)(dot - token));
    if (ts[strspn(ts, "0123456789")] != '\0') return 0;
    issued = apr_atoi64(ts);
    if (issued > now + 60 || now - issued > ADMIN_CSRF_TTL) return 0;
    want = csrf_mac(key, klen, user, ts, p);
    if (!want || strlen(dot + 1) != strlen(want)) return 0;
    return CRYPTO_memcmp(want, dot + 1, strlen(want)) == 0;
}

int admin_body_check(apr_size_t *plen, const char *content_length, const char *content_type, apr_size_t max)
{
    static const char form_type[] = "application/x-www-form-urlencoded";
    apr_size_t n = 0, tl = sizeof(form_type) - 1;
    const char *c;

    *plen = 0;
    if (content_length && *content_length) {
        if (content_length[strspn(content_length, "0123456789")] != '\0') return 400;
        /* Digit by digit, so a length beyond 64 bits is "too large", not a wrapped number. */
        for (c = content_length; *c; c++) {
            apr_size_t d = (apr_size_t)(*c - '0');
            if (n > max / 10 || d > max - n * 10) return 413;
            n = n * 10 + d;
        }
    }
    if (!content_type || strncasecmp(content_type, form_type, tl)
        || (content_type[tl] && content_type[tl] != ';' && content_type[tl] != ' ')) return 415;
    *plen = n;
    return 0;
}

apr_status_t admin_form_decode(apr_array_header_t **pform, const char *body, apr_size_t len, apr_pool_t *p)
{
    const char *err = NULL;
    *pform = apr_array_make(p, 1, sizeof(atr_param_t));
    /* A raw NUL would silently cut the form short: the browser never sends one. */
    if (memchr(body, '\0', len)) return APR_EINVAL;
    return atr_query_parse(pform, apr_pstrmemdup(p, body, len), &err, p);
}

int admin_query_decode(apr_array_header_t **pquery, const char *qs, apr_pool_t *p)
{
    const char *err = NULL;
    *pquery = apr_array_make(p, 1, sizeof(atr_param_t));
    if (qs && strlen(qs) > ADMIN_QUERY_MAX) return 413;
    return atr_query_parse(pquery, qs ? qs : "", &err, p) == APR_SUCCESS ? 0 : 400;
}

const char *admin_text_cut(const char *s, apr_size_t max, apr_pool_t *p)
{
    apr_size_t n;
    if (!s || strlen(s) <= max) return s;
    n = max;
    /* Back off over continuation bytes to the start of the character that does not fit. */
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    return apr_pstrndup(p, s, n);
}

apr_status_t admin_new_client_id(const char **pid, apr_pool_t *p)
{
    unsigned char rnd[10];
    char *id = apr_palloc(p, 4 + 20 + 1), *w;
    int i;
    apr_status_t rv = apr_generate_random_bytes(rnd, sizeof(rnd));
    if (rv != APR_SUCCESS) return rv;
    memcpy(id, "atr-", 4);
    for (i = 0, w = id + 4; i < (int)sizeof(rnd); i++, w += 2) apr_snprintf(w, 3, "%02x", rnd[i]);
    *pid = id;
    return APR_SUCCESS;
}
