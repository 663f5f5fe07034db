/* Consumer entries without LDAP: validation before any write, deep copies (cache), RFC 4515
 * filter escaping. Kept apart from atr_registry.c so the rules are unit-testable offline. */
#include <string.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include "atr_demo.h"
#include "atr_fhir.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_registry.h"
#include "atr_scope.h"

#define CLIENT_ID_MAX 128
#define URL_MAX 2048
#define TEXT_MAX 1024
#define JWKS_MAX 65536

const char *atr_registry_filter_escape(const char *value, apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)(value ? value : "");
    apr_size_t n = 0;
    char *out, *o;

    for (; s[n]; n++) {}
    /* Worst case every byte becomes \XX. */
    out = o = apr_palloc(p, n * 3 + 1);
    for (; *s; s++) {
        if (*s == '*' || *s == '(' || *s == ')' || *s == '\\' || *s >= 0x80 || *s < 0x20
            || *s == 0x7f) {
            *o++ = '\\';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 0x0f];
        }
        else {
            *o++ = (char)*s;
        }
    }
    *o = '\0';
    return out;
}

/* Filter escaping of a value that may hold NUL bytes (a C string cannot): for tests and
 * callers holding binary values. */
const char *atr_registry_filter_escape_len(const char *value, apr_size_t len, apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    char *out = apr_palloc(p, len * 3 + 1), *o = out;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c >= 0x80 || c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0f];
        }
        else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

static apr_array_header_t *strings_copy(const apr_array_header_t *a, apr_pool_t *p)
{
    apr_array_header_t *c = apr_array_make(p, a ? a->nelts : 0, sizeof(const char *));
    int i;
    for (i = 0; a && i < a->nelts; i++) {
        APR_ARRAY_PUSH(c, const char *) = apr_pstrdup(p, APR_ARRAY_IDX(a, i, const char *));
    }
    return c;
}

atr_client_t *atr_client_copy(const atr_client_t *c, apr_pool_t *p)
{
    atr_client_t *n = apr_pcalloc(p, sizeof(*n));
    n->dn = apr_pstrdup(p, c->dn);
    n->client_id = apr_pstrdup(p, c->client_id);
    n->disabled = c->disabled;
    n->jwks_url = apr_pstrdup(p, c->jwks_url);
    n->jwks = apr_pstrdup(p, c->jwks);
    n->scopes = strings_copy(c->scopes, p);
    n->npis = strings_copy(c->npis, p);
    n->tins = strings_copy(c->tins, p);
    n->contracts = strings_copy(c->contracts, p);
    n->groups = strings_copy(c->groups, p);
    n->name = apr_pstrdup(p, c->name);
    n->contact = apr_pstrdup(p, c->contact);
    n->description = apr_pstrdup(p, c->description);
    n->modified_by = apr_pstrdup(p, c->modified_by);
    n->modified_at = apr_pstrdup(p, c->modified_at);
    n->changed_by = apr_pstrdup(p, c->changed_by);
    n->changed_at = apr_pstrdup(p, c->changed_at);
    return n;
}

#define CHANGED_BY_MAX 256

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when it is not well-formed. */
static apr_size_t utf8_len(const unsigned char *s, apr_size_t n)
{
    apr_size_t len, i;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) len = 4;
    else return 0;
    if (len > n) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)
        || (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)) return 0;
    return len;
}

void atr_client_stamp(atr_client_t *c, const char *who, apr_time_t now, apr_pool_t *p)
{
    apr_time_exp_t t;
    char *out = NULL;

    /* The directory refuses a value that is not UTF-8 (DirectoryString) and the name is
     * only a record: control characters and broken bytes become '?', and a very long
     * name is cut at a character boundary, so a strange login never blocks a change. */
    if (who && *who) {
        const unsigned char *s = (const unsigned char *)who;
        apr_size_t n = strlen(who), i = 0, o = 0;
        out = apr_palloc(p, CHANGED_BY_MAX + 1);
        while (i < n) {
            apr_size_t len = utf8_len(s + i, n - i);
            if (len == 0 || (len == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
                if (o + 1 > CHANGED_BY_MAX) break;
                out[o++] = '?';
                i++;
                continue;
            }
            if (o + len > CHANGED_BY_MAX) break;
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        }
        out[o] = '\0';
    }
    c->changed_by = out;
    apr_time_exp_gmt(&t, now);
    c->changed_at = apr_psprintf(p, "%04d%02d%02d%02d%02d%02dZ", t.tm_year + 1900, t.tm_mon + 1,
                                 t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
}

int atr_client_id_is_valid(const char *id)
{
    apr_size_t n = 0;
    if (!id) return 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '~' || c == '-')) return 0;
    }
    return n >= 1 && n <= CLIENT_ID_MAX;
}

static int is_digits(const char *s, apr_size_t n)
{
    apr_size_t i;
    if (strlen(s) != n) return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
    }
    return 1;
}

/* Control characters would end up in LDAP values and in `atrctl client show` output. */
static int has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    }
    return 0;
}

static int is_loopback_host(const char *host)
{
    if (!host) return 0;
    if (!strcmp(host, "::1") || !strcmp(host, "[::1]")) return 1;
    if (!strncmp(host, "127.", 4)) {
        /* 127.a.b.c with digits and dots only (not 127.evil.example). */
        const char *s = host + 4;
        int dots = 0;
        for (; *s; s++) {
            if (*s == '.') dots++;
            else if (*s < '0' || *s > '9') return 0;
        }
        return dots == 2;
    }
    return 0;
}

static const char *check_jwks_url(const char *url, int allow_http_loopback, apr_pool_t *p)
{
    apr_uri_t uri;
    const char *s;

    if (strlen(url) > URL_MAX) return "JWKS URL: longer than 2048 characters";
    for (s = url; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return "JWKS URL: contains spaces, control or non-ASCII characters";
        }
    }
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname || !*uri.hostname) {
        return apr_psprintf(p, "JWKS URL: '%s' is not an absolute URL", url);
    }
    if (uri.fragment) return "JWKS URL: must not have a #fragment";
    if (uri.user || uri.password) return "JWKS URL: must not carry user or password";
    if (!strcasecmp(uri.scheme, "https")) return NULL;
    if (!strcasecmp(uri.scheme, "http")) {
        if (allow_http_loopback && is_loopback_host(uri.hostname)) return NULL;
        return apr_psprintf(p, "JWKS URL: '%s' is not https (http is allowed only for loopback "
                            "hosts in tests)", url);
    }
    return apr_psprintf(p, "JWKS URL: scheme '%s' is not https", uri.scheme);
}

static const char *check_jwks(const char *text, apr_pool_t *p)
{
    json_t *j = NULL;
    apr_array_header_t *keys = NULL;
    const char *err = NULL;
    int skipped = 0;

    if (strlen(text) > JWKS_MAX) return "inline JWKS: larger than 64 KiB";
    if (atr_json_parse(&j, text, strlen(text), &err, p) != APR_SUCCESS) {
        return apr_psprintf(p, "inline JWKS: not JSON (%s)", err ? err : "parse error");
    }
    if (atr_jwks_parse(&keys, &skipped, j, &err, p) != APR_SUCCESS) {
        return apr_psprintf(p, "inline JWKS: %s", err ? err : "not a JWK Set");
    }
    if (!keys || keys->nelts == 0) {
        return apr_psprintf(p, "inline JWKS: no usable key (%d skipped; need RSA >= 2048 bits or "
                            "EC P-384, each with a kid)", skipped);
    }
    return NULL;
}

static const char *check_text(const char *field, const char *v, int ascii, apr_pool_t *p)
{
    if (!v) return NULL;
    if (strlen(v) > TEXT_MAX) return apr_psprintf(p, "%s: longer than %d bytes", field, TEXT_MAX);
    if (has_control(v)) return apr_psprintf(p, "%s: contains control characters", field);
    if (ascii) {
        const char *s;
        for (s = v; *s; s++) {
            if ((unsigned char)*s >= 0x80) return apr_psprintf(p, "%s: must be ASCII", field);
        }
    }
    return NULL;
}

static const char *check_list(const char *field, const apr_array_header_t *a,
                              const char *(*check)(const char *v, apr_pool_t *p), apr_pool_t *p)
{
    int i;
    for (i = 0; a && i < a->nelts; i++) {
        const char *v = APR_ARRAY_IDX(a, i, const char *), *why;
        int j;
        if (!v || !*v) return apr_psprintf(p, "%s: empty value", field);
        why = check(v, p);
        for (j = 0; !why && j < i; j++) {
            if (!strcmp(v, APR_ARRAY_IDX(a, j, const char *))) why = "is given twice";
        }
        if (why) return apr_psprintf(p, "%s: '%s' %s", field, v, why);
    }
    return NULL;
}

static const char *check_scope(const char *v, apr_pool_t *p)
{
    atr_scope_t *scope = NULL;
    if (atr_scope_parse(&scope, v, p) != APR_SUCCESS) {
        return "is not a SMART system scope (e.g. system/Group.read, system/*.rs)";
    }
    return NULL;
}

static const char *check_npi(const char *v, apr_pool_t *p)
{
    (void)p;
    if (!is_digits(v, 10)) return "is not 10 digits";
    return atr_demo_npi_is_valid(v) ? NULL : "fails the NPI check digit (Luhn with prefix 80840)";
}

static const char *check_tin(const char *v, apr_pool_t *p)
{
    (void)p;
    return is_digits(v, 9) ? NULL : "is not 9 digits";
}

static const char *check_contract(const char *v, apr_pool_t *p)
{
    const char *bar = strchr(v, '|');
    (void)p;
    if (has_control(v) || strlen(v) > TEXT_MAX) return "has control characters or is too long";
    if (!bar || bar == v || !bar[1]) return "is not system|value (both parts needed)";
    if (strchr(v, ' ')) return "contains spaces";
    return NULL;
}

static const char *check_group(const char *v, apr_pool_t *p)
{
    (void)p;
    return atr_fhir_is_id(v) ? NULL : "is not a FHIR id ([A-Za-z0-9.-]{1,64})";
}

apr_status_t atr_client_validate(const atr_client_t *client, int allow_http_loopback,
                                 const char **perr, apr_pool_t *p)
{
    const char *err = NULL;

    if (!client) {
        err = "no client";
        goto done;
    }
    if (!atr_client_id_is_valid(client->client_id)) {
        err = apr_psprintf(p, "client_id: '%s' must be 1 to 128 of A-Z a-z 0-9 . _ ~ -",
                           client->client_id ? client->client_id : "");
        goto done;
    }
    if ((!client->jwks_url || !*client->jwks_url) && (!client->jwks || !*client->jwks)) {
        err = "keys: a JWKS URL or an inline JWKS is required";
        goto done;
    }
    if (client->jwks_url && *client->jwks_url
        && (err = check_jwks_url(client->jwks_url, allow_http_loopback, p)) != NULL) goto done;
    if (client->jwks && *client->jwks && (err = check_jwks(client->jwks, p)) != NULL) goto done;
    if ((err = check_list("scope", client->scopes, check_scope, p)) != NULL) goto done;
    if ((err = check_list("NPI", client->npis, check_npi, p)) != NULL) goto done;
    if ((err = check_list("TIN", client->tins, check_tin, p)) != NULL) goto done;
    if ((err = check_list("contract", client->contracts, check_contract, p)) != NULL) goto done;
    if ((err = check_list("group", client->groups, check_group, p)) != NULL) goto done;
    if ((err = check_text("name", client->name, 0, p)) != NULL) goto done;
    if ((err = check_text("description", client->description, 0, p)) != NULL) goto done;
    if ((err = check_text("contact", client->contact, 1, p)) != NULL) goto done;
    if (client->contact && *client->contact
        && (!strchr(client->contact, '@') || strchr(client->contact, ' '))) {
        err = apr_psprintf(p, "contact: '%s' is not an e-mail address", client->contact);
        goto done;
    }
done:
    if (perr) *perr = err;
    return err ? APR_EINVAL : APR_SUCCESS;
}
