/* The Consumer side of ATR: discovery, tokens, Group search, kick-off and polling. Downloads
 * are in atr_consumer_dl.c. Every request goes through http_do(), which retries what is safe to
 * retry (network failures of a GET) and keeps the answer's headers for Retry-After and
 * Content-Location. Tokens and assertions never reach a log line or an error message. */
#include <string.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_date.h>
#include <apr_general.h>
#include <apr_hash.h>
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include "atr_consumer.h"
#include "atr_consumer_int.h"
#include "atr_json.h"
#include "atr_jwks_fetch.h"
#include "atr_log.h"

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define SYS_V2_0203 "http://terminology.hl7.org/CodeSystem/v2-0203"
#define MAX_BODY (64 * 1024 * 1024)   /* search Bundles and manifests; files go to disk */
#define GET_ATTEMPTS 4                /* a GET that fails on the network is tried this often */

apr_status_t atr_consumer_fail(atr_consumer_t *c, atr_consumer_err_e kind, apr_status_t rv)
{
    c->kind = kind;
    return rv;
}

atr_consumer_err_e atr_consumer_error_kind(const atr_consumer_t *c) { return c->kind; }
int atr_consumer_tokens_issued(const atr_consumer_t *c) { return c->tokens; }
const char *atr_consumer_kid(const atr_consumer_t *c) { return c->kid; }

apr_status_t atr_consumer_thumbprint(const char **pkid, EVP_PKEY *key, apr_pool_t *p)
{
    json_t *jwk = atr_jwk_from_pkey(key, NULL, p), *req;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char *dump;
    int ok;

    if (!jwk) return APR_EINVAL;
    /* RFC 7638 §3.2: only the required members, lexicographic order, no whitespace */
    if (!strcmp(atr_json_str(jwk, "kty"), "EC")) {
        req = json_pack("{s:s, s:s, s:s, s:s}", "crv", atr_json_str(jwk, "crv"), "kty", "EC",
                        "x", atr_json_str(jwk, "x"), "y", atr_json_str(jwk, "y"));
    }
    else {
        req = json_pack("{s:s, s:s, s:s}", "e", atr_json_str(jwk, "e"), "kty", "RSA", "n", atr_json_str(jwk, "n"));
    }
    if (!req) return APR_EINVAL;
    dump = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(req);
    if (!dump) return APR_ENOMEM;
    ok = EVP_Digest(dump, strlen(dump), md, &mdlen, EVP_sha256(), NULL);
    free(dump);
    if (ok != 1 || mdlen != sizeof(md)) return APR_EGENERAL;
    *pkid = atr_b64url_encode(md, mdlen, p);
    return APR_SUCCESS;
}

apr_int64_t atr_consumer_retry_after(const char *value, apr_time_t now, apr_int64_t dflt)
{
    apr_int64_t s = dflt;
    const char *v = value;

    if (v) {
        while (*v == ' ' || *v == '\t') v++;
        if (apr_isdigit(*v)) {
            char *end = NULL;
            s = apr_strtoi64(v, &end, 10);
            while (end && (*end == ' ' || *end == '\t')) end++;
            if (!end || *end) s = dflt;
        }
        else if (*v) {
            apr_time_t t = apr_date_parse_http(v);
            if (t != APR_DATE_BAD) s = t > now ? (apr_int64_t)apr_time_sec(t - now + APR_USEC_PER_SEC - 1) : 0;
        }
    }
    if (s < 0) s = dflt;
    return s > 3600 ? 3600 : s;
}

apr_int64_t atr_consumer_count_lines(const char *buf, apr_size_t len, char *plast)
{
    apr_int64_t n = 0;
    const char *s = buf, *end = buf + len, *nl;

    if (!len) return 0;
    /* a line starts where the previous byte was a newline (or at the very start) */
    if (*plast == '\0' || *plast == '\n') n++;
    while (s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        if (nl + 1 < end) n++;
        s = nl + 1;
    }
    *plast = buf[len - 1];
    return n;
}

static const char *one_line(const char *s, apr_size_t max, apr_pool_t *p)
{
    char *r = apr_pstrndup(p, s ? s : "", max), *q;
    for (q = r; *q; q++) {
        if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
    }
    return r;
}

const char *atr_consumer_error_text(long status, const char *body, apr_size_t len, apr_pool_t *p)
{
    json_t *j = NULL;
    const char *err = NULL, *rt;

    if (body && len && atr_json_parse(&j, body, len, &err, p) == APR_SUCCESS && json_is_object(j)) {
        if ((rt = atr_json_str(j, "resourceType")) && !strcmp(rt, "OperationOutcome")) {
            json_t *issues = json_object_get(j, "issue"), *is;
            size_t i;
            const char *text = NULL;
            json_array_foreach(issues, i, is) {
                const char *d = atr_json_str(is, "diagnostics");
                if (!d) d = atr_json_path_str(is, "details", "text", NULL);
                d = apr_psprintf(p, "%s/%s%s%s", atr_json_str(is, "severity") ? atr_json_str(is, "severity") : "?",
                                 atr_json_str(is, "code") ? atr_json_str(is, "code") : "?", d ? ": " : "",
                                 d ? d : "");
                text = text ? apr_pstrcat(p, text, "; ", d, NULL) : d;
            }
            return apr_psprintf(p, "HTTP %ld, OperationOutcome %s", status,
                                one_line(text ? text : "without issues", 500, p));
        }
        if (atr_json_str(j, "error")) {
            const char *d = atr_json_str(j, "error_description");
            return apr_psprintf(p, "HTTP %ld, %s%s%s", status, one_line(atr_json_str(j, "error"), 100, p),
                                d ? ": " : "", d ? one_line(d, 400, p) : "");
        }
    }
    if (body && len) return apr_psprintf(p, "HTTP %ld: %s", status, one_line(body, len < 200 ? len : 200, p));
    return apr_psprintf(p, "HTTP %ld", status);
}

/* ---- HTTP ---- */

apr_status_t atr_consumer_url_check(const atr_consumer_t *c, const char *url, const char **perr, apr_pool_t *p)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    apr_status_t rv = APR_EINVAL;

    if (!u) return APR_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        *perr = apr_psprintf(p, "'%s' is not an http(s) URL", url);
    }
    else if (!strcasecmp(scheme, "https")
             || (!strcasecmp(scheme, "http") && (c->allow_http || atr_jwks_host_is_loopback(host)))) {
        rv = APR_SUCCESS;
    }
    else if (!strcasecmp(scheme, "http")) {
        /* tokens and member data must not cross the network in clear */
        *perr = apr_psprintf(p, "'%s' is plain http to a host that is not loopback "
                                "(use https, or --allow-http for a test network)", url);
    }
    else {
        *perr = apr_psprintf(p, "'%s' is not an http(s) URL", url);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rv;
}

typedef struct mem_t {
    char *buf;
    apr_size_t len, cap;
    int too_big;
} mem_t;

static size_t on_mem(char *data, size_t size, size_t nmemb, void *baton)
{
    mem_t *m = baton;
    size_t n = size * nmemb;
    if (m->len + n > MAX_BODY) {
        m->too_big = 1;
        return 0;
    }
    if (m->len + n + 1 > m->cap) {
        apr_size_t cap = m->cap ? m->cap : 8192;
        char *nb;
        while (cap < m->len + n + 1) cap *= 2;
        if (!(nb = realloc(m->buf, cap))) return 0;
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
    return n;
}

size_t atr_consumer_on_header(char *data, size_t size, size_t nmemb, void *baton)
{
    apr_table_t *t = baton;
    size_t n = size * nmemb;
    const char *colon;
    char *name, *value, *end;
    apr_pool_t *p = apr_table_elts(t)->pool;

    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
        apr_table_clear(t);     /* a new response (after a redirect or 100): keep only its headers */
        return n;
    }
    colon = memchr(data, ':', n);
    if (!colon) return n;
    name = apr_pstrmemdup(p, data, (apr_size_t)(colon - data));
    value = apr_pstrmemdup(p, colon + 1, n - (apr_size_t)(colon - data) - 1);
    while (*value == ' ' || *value == '\t') value++;
    end = value + strlen(value);
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
    apr_table_add(t, name, value);
    return n;
}

void atr_consumer_curl_common(CURL *curl, const atr_consumer_t *c, const char *url)
{
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, c->timeout);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "atrctl-fetch (mod_atr)");
}

/* One request (GETs are retried on network failures). bearer: the access token or NULL. */
apr_status_t atr_consumer_http(atr_consumer_resp_t *r, atr_consumer_t *c, const char *method, const char *url,
                               const char *const *hdrs, const char *body, const char *bearer, const char **perr,
                               apr_pool_t *p)
{
    int attempt, attempts = strcmp(method, "GET") ? 1 : GET_ATTEMPTS;
    apr_status_t rv;

    memset(r, 0, sizeof(*r));
    if ((rv = atr_consumer_url_check(c, url, perr, p)) != APR_SUCCESS) return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, rv);
    for (attempt = 1;; attempt++) {
        CURL *curl = curl_easy_init();
        struct curl_slist *list = NULL;
        mem_t m;
        CURLcode cc;
        int i;

        if (!curl) {
            *perr = "cannot start an HTTP client";
            return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_ENOMEM);
        }
        memset(&m, 0, sizeof(m));
        r->headers = apr_table_make(p, 16);
        for (i = 0; hdrs && hdrs[i]; i++) list = curl_slist_append(list, hdrs[i]);
        if (bearer) list = curl_slist_append(list, apr_pstrcat(p, "Authorization: Bearer ", bearer, NULL));
        atr_consumer_curl_common(curl, c, url);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_mem);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &m);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, atr_consumer_on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, r->headers);
        if (!strcmp(method, "POST")) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
        }
        else if (strcmp(method, "GET")) {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        }
        cc = curl_easy_perform(curl);
        if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_cleanup(curl);
        curl_slist_free_all(list);
        if (cc == CURLE_OK) {
            r->body = m.buf ? apr_pstrmemdup(p, m.buf, m.len) : "";
            r->len = m.len;
            free(m.buf);
            return APR_SUCCESS;
        }
        free(m.buf);
        if (m.too_big) {
            *perr = apr_psprintf(p, "%s %s: the answer is larger than %d bytes", method, url, MAX_BODY);
            return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EGENERAL);
        }
        if (attempt >= attempts) {
            *perr = apr_psprintf(p, "%s %s: %s", method, url, curl_easy_strerror(cc));
            return atr_consumer_fail(c, ATR_CONSUMER_E_NETWORK, APR_EGENERAL);
        }
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00800: %s %s failed (%s); trying again",
                       method, url, curl_easy_strerror(cc));
        apr_sleep(apr_time_from_sec(1) << (attempt - 1));
    }
}

/* ---- setup, discovery, tokens ---- */

apr_status_t atr_consumer_create(atr_consumer_t **pc, const atr_consumer_opts_t *opts, const char **perr,
                                 apr_pool_t *p)
{
    atr_consumer_t *c = apr_pcalloc(p, sizeof(*c));
    apr_size_t n;

    *pc = NULL;
    if (!opts->base || !opts->client_id || !opts->key) {
        *perr = "base URL, client id and key are required";
        return APR_EINVAL;
    }
    c->pool = p;
    c->base = apr_pstrdup(p, opts->base);
    n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/') ((char *)c->base)[--n] = '\0';
    c->client_id = opts->client_id;
    c->key = opts->key;
    c->scope = opts->scope ? opts->scope : "system/*.read";
    c->allow_http = opts->allow_http;
    c->timeout = opts->timeout > 0 ? opts->timeout : 60;
    c->progress = opts->progress;
    c->progress_baton = opts->progress_baton;
    if (EVP_PKEY_is_a(c->key, "RSA")) c->alg = ATR_JOSE_RS384;
    else c->alg = ATR_JOSE_ES384;
    if (opts->kid) {
        c->kid = opts->kid;
    }
    else if (atr_consumer_thumbprint(&c->kid, c->key, p) != APR_SUCCESS) {
        *perr = "cannot compute the key's thumbprint (kid)";
        return APR_EINVAL;
    }
    if (atr_consumer_url_check(c, c->base, perr, p) != APR_SUCCESS) return APR_EINVAL;
    *pc = c;
    return APR_SUCCESS;
}

void atr_consumer_report(atr_consumer_t *c, const char *phase, const char *detail)
{
    atr_consumer_progress_t pr;
    if (!c->progress) return;
    memset(&pr, 0, sizeof(pr));
    pr.phase = phase;
    pr.detail = detail;
    c->progress(c->progress_baton, &pr);
}

static int json_array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
    }
    return 0;
}

apr_status_t atr_consumer_discover(atr_consumer_t *c, const char **perr, apr_pool_t *p)
{
    static const char *const hdrs[] = { "Accept: application/json", NULL };
    const char *url = apr_pstrcat(c->pool, c->base, "/.well-known/smart-configuration", NULL);
    atr_consumer_resp_t r;
    json_t *j = NULL, *v;
    const char *err = NULL, *te;
    apr_status_t rv;

    atr_consumer_report(c, "discovery", NULL);
    if ((rv = atr_consumer_http(&r, c, "GET", url, hdrs, NULL, NULL, perr, p)) != APR_SUCCESS) {
        return c->kind == ATR_CONSUMER_E_NETWORK ? rv : atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, rv);
    }
    if (r.status != 200) {
        *perr = apr_psprintf(p, "SMART discovery %s: %s", url, atr_consumer_error_text(r.status, r.body, r.len, p));
        return atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, APR_EGENERAL);
    }
    if (atr_json_parse(&j, r.body, r.len, &err, p) != APR_SUCCESS || !json_is_object(j)) {
        *perr = apr_psprintf(p, "SMART discovery %s: not a JSON object (%s)", url, err ? err : "wrong type");
        return atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, APR_EINVAL);
    }
    te = atr_json_str(j, "token_endpoint");
    if (!te || !*te) {
        *perr = apr_psprintf(p, "SMART discovery %s: no token_endpoint", url);
        return atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, APR_EINVAL);
    }
    if (atr_consumer_url_check(c, te, perr, p) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "SMART discovery %s: token_endpoint %s", url, *perr);
        return atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, APR_EINVAL);
    }
    /* Only hints: a server may omit them, but when it lists what it takes and we are not in
     * the list, the token request would fail in a less readable way. */
    v = json_object_get(j, "token_endpoint_auth_methods_supported");
    if (json_is_array(v) && !json_array_has(v, "private_key_jwt")) {
        *perr = apr_psprintf(p, "SMART discovery %s: the server does not take private_key_jwt client "
                                "authentication (SMART Backend Services)", url);
        return atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, APR_EINVAL);
    }
    v = json_object_get(j, "token_endpoint_auth_signing_alg_values_supported");
    if (json_is_array(v) && !json_array_has(v, atr_jose_alg_name(c->alg))) {
        *perr = apr_psprintf(p, "SMART discovery %s: the server does not take %s client assertions",
                             url, atr_jose_alg_name(c->alg));
        return atr_consumer_fail(c, ATR_CONSUMER_E_DISCOVERY, APR_EINVAL);
    }
    c->token_endpoint = apr_pstrdup(c->pool, te);
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, 0, p, "ATR00801: token endpoint of %s is %s", c->base, te);
    return APR_SUCCESS;
}

static const char *form_escape(const char *s, apr_pool_t *p)
{
    char *e = curl_easy_escape(NULL, s, 0);
    const char *r = apr_pstrdup(p, e ? e : "");
    curl_free(e);
    return r;
}

apr_status_t atr_consumer_token(const char **ptoken, atr_consumer_t *c, int force, const char **perr,
                                apr_pool_t *p)
{
    static const char *const hdrs[] = { "Accept: application/json",
                                        "Content-Type: application/x-www-form-urlencoded", NULL };
    apr_time_t now = apr_time_now();
    unsigned char rnd[16];
    json_t *claims, *j = NULL;
    const char *assertion = NULL, *form, *err = NULL, *tok;
    atr_consumer_resp_t r;
    apr_int64_t expires_in = 300;
    apr_status_t rv;

    if (!force && c->token && now + c->token_margin < c->token_expires) {
        *ptoken = c->token;
        return APR_SUCCESS;
    }
    if (!c->token_endpoint && (rv = atr_consumer_discover(c, perr, p)) != APR_SUCCESS) return rv;
    atr_consumer_report(c, "token", NULL);
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        *perr = "no random bytes for the assertion's jti";
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_EGENERAL);
    }
    /* exp 4 minutes ahead: SMART allows at most 5, and servers allow little clock skew */
    claims = atr_json_pool_own(json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", c->client_id,
                                         "sub", c->client_id, "aud", c->token_endpoint,
                                         "exp", (json_int_t)apr_time_sec(now) + 240,
                                         "iat", (json_int_t)apr_time_sec(now),
                                         "jti", atr_b64url_encode(rnd, sizeof(rnd), p)), p);
    if (!claims || atr_jws_sign(&assertion, claims, c->key, c->kid, p) != APR_SUCCESS) {
        *perr = "cannot sign the client assertion with the key";
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_EGENERAL);
    }
    form = apr_pstrcat(p, "grant_type=client_credentials&client_assertion_type=", form_escape(JWT_BEARER, p),
                       "&client_assertion=", assertion, "&scope=", form_escape(c->scope, p), NULL);
    if ((rv = atr_consumer_http(&r, c, "POST", c->token_endpoint, hdrs, form, NULL, perr, p)) != APR_SUCCESS) {
        return rv;
    }
    if (r.status != 200) {
        *perr = apr_psprintf(p, "the token endpoint %s refused client %s (kid %s): %s", c->token_endpoint,
                             c->client_id, c->kid, atr_consumer_error_text(r.status, r.body, r.len, p));
        return atr_consumer_fail(c, r.status >= 500 ? ATR_CONSUMER_E_SERVER : ATR_CONSUMER_E_AUTH, APR_EGENERAL);
    }
    if (atr_json_parse(&j, r.body, r.len, &err, p) != APR_SUCCESS || !(tok = atr_json_str(j, "access_token"))
        || !*tok) {
        *perr = apr_psprintf(p, "the token endpoint %s answered no access_token", c->token_endpoint);
        return atr_consumer_fail(c, ATR_CONSUMER_E_AUTH, APR_EINVAL);
    }
    if (json_is_integer(json_object_get(j, "expires_in"))) {
        expires_in = json_integer_value(json_object_get(j, "expires_in"));
        if (expires_in < 1) expires_in = 1;
    }
    /* renew a little before expiry: a fifth of the lifetime, at most 30 s */
    c->token_margin = apr_time_from_sec(expires_in) / 5;
    if (c->token_margin > apr_time_from_sec(30)) c->token_margin = apr_time_from_sec(30);
    c->token_expires = now + apr_time_from_sec(expires_in);
    c->token = apr_pstrdup(c->pool, tok);   /* replaced tokens stay in the pool: a few hundred bytes each */
    c->tokens++;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00802: access token %d for %s (expires in %" APR_INT64_T_FMT
                   " s, scope %s)", c->tokens, c->client_id, expires_in,
                   atr_json_str(j, "scope") ? atr_json_str(j, "scope") : "?");
    *ptoken = c->token;
    return APR_SUCCESS;
}

/* A request with the access token; a 401 gets one new token and one more try. */
apr_status_t atr_consumer_authed(atr_consumer_resp_t *r, atr_consumer_t *c, const char *method, const char *url,
                                 const char *const *hdrs, const char *body, const char **perr, apr_pool_t *p)
{
    const char *token;
    apr_status_t rv;
    int force;

    for (force = 0; force <= 1; force++) {
        if ((rv = atr_consumer_token(&token, c, force, perr, p)) != APR_SUCCESS) return rv;
        if ((rv = atr_consumer_http(r, c, method, url, hdrs, body, token, perr, p)) != APR_SUCCESS) return rv;
        if (r->status != 401) return APR_SUCCESS;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00803: %s %s answered 401; %s", method, url,
                       force ? "giving up" : "getting a new token");
    }
    *perr = apr_psprintf(p, "%s %s: the server refused our new access token: %s", method, url,
                         atr_consumer_error_text(r->status, r->body, r->len, p));
    return atr_consumer_fail(c, ATR_CONSUMER_E_AUTH, APR_EGENERAL);
}

/* ---- Group discovery ---- */

static apr_status_t search_pages(apr_array_header_t *ids, int *prefused, atr_consumer_t *c, const char *url,
                                 const char **perr, apr_pool_t *p)
{
    static const char *const hdrs[] = { "Accept: application/fhir+json", NULL };
    int pages = 0;

    *prefused = 0;
    while (url) {
        atr_consumer_resp_t r;
        json_t *b = NULL, *e, *links;
        const char *err = NULL, *next = NULL, *rt;
        size_t i;
        apr_status_t rv;

        if (++pages > 10000) {
            *perr = "the Group search has more than 10000 pages";
            return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EGENERAL);
        }
        if ((rv = atr_consumer_authed(&r, c, "GET", url, hdrs, NULL, perr, p)) != APR_SUCCESS) return rv;
        if (r.status == 400 && pages == 1) {
            *prefused = 1;   /* e.g. a server that does not know this search form */
            *perr = apr_psprintf(p, "Group search %s: %s", url, atr_consumer_error_text(r.status, r.body, r.len, p));
            return APR_SUCCESS;
        }
        if (r.status != 200) {
            *perr = apr_psprintf(p, "Group search %s: %s", url, atr_consumer_error_text(r.status, r.body, r.len, p));
            return atr_consumer_fail(c, r.status == 403 ? ATR_CONSUMER_E_AUTH : ATR_CONSUMER_E_SERVER, APR_EGENERAL);
        }
        if (atr_json_parse(&b, r.body, r.len, &err, p) != APR_SUCCESS || !(rt = atr_json_str(b, "resourceType"))
            || strcmp(rt, "Bundle")) {
            *perr = apr_psprintf(p, "Group search %s: the answer is not a FHIR Bundle", url);
            return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EINVAL);
        }
        json_array_foreach(json_object_get(b, "entry"), i, e) {
            json_t *res = json_object_get(e, "resource");
            const char *mode = atr_json_path_str(e, "search", "mode", NULL), *id = atr_json_str(res, "id");
            int k, dup = 0;
            if ((mode && strcmp(mode, "match")) || !id || strcmp(atr_json_str(res, "resourceType") ?
                                                                  atr_json_str(res, "resourceType") : "", "Group")) {
                continue;
            }
            for (k = 0; k < ids->nelts; k++) dup |= !strcmp(APR_ARRAY_IDX(ids, k, const char *), id);
            if (!dup) APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(c->pool, id);
        }
        links = json_object_get(b, "link");
        json_array_foreach(links, i, e) {
            const char *rel = atr_json_str(e, "relation");
            if (rel && !strcmp(rel, "next")) next = atr_json_str(e, "url");
        }
        url = next ? apr_pstrdup(p, next) : NULL;
    }
    return APR_SUCCESS;
}

apr_status_t atr_consumer_find_groups(apr_array_header_t **pids, atr_consumer_t *c, const char *system,
                                      const char *value, const char *type_code, const char **perr,
                                      apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(c->pool, 4, sizeof(const char *));
    const char *err2 = NULL;
    int refused = 0;
    apr_status_t rv;
    const char *url = apr_pstrcat(p, c->base, "/Group?identifier=",
                                  form_escape(apr_pstrcat(p, system ? system : "", "|", value, NULL), p),
                                  "&_summary=true&_count=100", NULL);

    *pids = ids;
    *perr = NULL;
    atr_consumer_report(c, "search", NULL);
    if ((rv = search_pages(ids, &refused, c, url, perr, p)) != APR_SUCCESS) return rv;
    if (ids->nelts || !type_code) {
        if (refused) return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EGENERAL);
        return APR_SUCCESS;
    }
    /* ATR STU1 servers search by identifier type (v2-0203 NPI / TAX) */
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00804: no Group by identifier=%s|%s; trying the STU1 "
                   "identifier:of-type form", system ? system : "", value);
    url = apr_pstrcat(p, c->base, "/Group?identifier:of-type=",
                      form_escape(apr_pstrcat(p, SYS_V2_0203 "|", type_code, "|", value, NULL), p),
                      "&_summary=true&_count=100", NULL);
    err2 = *perr;    /* set when the STU2 form was refused */
    *perr = NULL;
    if ((rv = search_pages(ids, &refused, c, url, perr, p)) != APR_SUCCESS) return rv;
    if (refused && err2) {
        /* neither form is understood: that is the server's problem, not "no Group" */
        *perr = apr_pstrcat(p, err2, "; ", *perr, NULL);
        return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EGENERAL);
    }
    *perr = NULL;    /* one form worked; what it found (maybe nothing) is the answer */
    return APR_SUCCESS;
}

/* ---- kick-off and status ---- */

static void wait_seconds(atr_consumer_t *c, apr_int64_t s, const char *phase, const char *detail)
{
    atr_consumer_report(c, phase, detail);
    if (s > 0) apr_sleep(apr_time_from_sec(s));
}

/* 1 when a kick-off answer says the server has no such operation (so $export is worth a try). */
static int op_unknown(const atr_consumer_resp_t *r, apr_pool_t *p)
{
    json_t *j = NULL, *is;
    const char *err = NULL;
    size_t i;

    if (r->status == 404 || r->status == 405 || r->status == 501) return 1;
    if (r->status != 400 || atr_json_parse(&j, r->body, r->len, &err, p) != APR_SUCCESS) return 0;
    json_array_foreach(json_object_get(j, "issue"), i, is) {
        const char *code = atr_json_str(is, "code");
        if (code && !strcmp(code, "not-supported")) return 1;
    }
    return 0;
}

apr_status_t atr_consumer_kickoff(const char **pstatus_url, const char **pop, atr_consumer_t *c,
                                  const char *group_id, const char *query, const char *body,
                                  const char **perr, apr_pool_t *p)
{
    static const char *const get_hdrs[] = { "Accept: application/fhir+json", "Prefer: respond-async", NULL };
    static const char *const post_hdrs[] = { "Accept: application/fhir+json", "Prefer: respond-async",
                                             "Content-Type: application/fhir+json", NULL };
    static const char *const ops[] = { "$davinci-data-export", "$export" };
    const char *const *hdrs = body ? post_hdrs : get_hdrs;
    const char *first_err = NULL;
    int k, waits = 0;

    if (body) query = NULL;
    for (k = 0; k < 2; k++) {
        const char *url = apr_pstrcat(p, c->base, "/Group/", form_escape(group_id, p), "/", ops[k],
                                      query && *query ? "?" : "", query ? query : "", NULL);
        atr_consumer_resp_t r;
        apr_status_t rv;
        const char *loc;

        atr_consumer_report(c, "kick-off", ops[k]);
        for (;;) {
            if ((rv = atr_consumer_authed(&r, c, body ? "POST" : "GET", url, hdrs, body, perr, p)) != APR_SUCCESS) {
                return rv;
            }
            if ((r.status != 429 && r.status != 503) || ++waits > 1000) break;
            /* 429: an export of this Group by us is already running (BULK-KO-09); wait for it */
            wait_seconds(c, atr_consumer_retry_after(apr_table_get(r.headers, "Retry-After"), apr_time_now(), 5),
                         "kick-off", r.status == 429 ? "the server is busy (429)" : "the server is unavailable (503)");
        }
        if (r.status == 202) {
            loc = apr_table_get(r.headers, "Content-Location");
            if (!loc || !*loc) {
                *perr = apr_psprintf(p, "kick-off %s: 202 without Content-Location", url);
                return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EINVAL);
            }
            if (atr_consumer_url_check(c, loc, perr, p) != APR_SUCCESS) {
                *perr = apr_psprintf(p, "kick-off %s: Content-Location %s", url, *perr);
                return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EINVAL);
            }
            *pstatus_url = apr_pstrdup(c->pool, loc);
            *pop = ops[k];
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00805: %s of Group/%s started; status at %s",
                           ops[k], group_id, loc);
            return APR_SUCCESS;
        }
        *perr = apr_psprintf(p, "kick-off %s: %s", url, atr_consumer_error_text(r.status, r.body, r.len, p));
        if (k == 0 && op_unknown(&r, p)) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00806: %s; trying $export", *perr);
            first_err = *perr;
            continue;
        }
        if (first_err) *perr = apr_pstrcat(p, first_err, "; then ", *perr, NULL);
        return atr_consumer_fail(c, r.status == 401 || r.status == 403 ? ATR_CONSUMER_E_AUTH
                                                                        : ATR_CONSUMER_E_SERVER, APR_EGENERAL);
    }
    return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EGENERAL);
}

apr_status_t atr_consumer_poll(json_t **pmanifest, atr_consumer_t *c, const char *status_url,
                               apr_interval_time_t max_wait, const char **perr, apr_pool_t *p)
{
    static const char *const hdrs[] = { "Accept: application/json", NULL };
    apr_time_t start = apr_time_now();
    apr_int64_t backoff = 1;

    for (;;) {
        atr_consumer_resp_t r;
        apr_pool_t *sub;
        apr_status_t rv;
        apr_int64_t s;
        const char *detail;

        /* a long export polls many times: each poll's garbage goes with its subpool */
        apr_pool_create(&sub, p);
        if ((rv = atr_consumer_authed(&r, c, "GET", status_url, hdrs, NULL, perr, sub)) != APR_SUCCESS) {
            *perr = apr_pstrdup(p, *perr);
            apr_pool_destroy(sub);
            return rv;
        }
        if (r.status == 200) {
            json_t *m = NULL;
            const char *err = NULL;
            if (atr_json_parse(&m, r.body, r.len, &err, p) != APR_SUCCESS || !json_is_object(m)
                || !json_is_array(json_object_get(m, "output"))) {
                *perr = apr_psprintf(p, "status %s: 200 without a Bulk Data manifest (%s)", status_url,
                                     err ? err : "no output array");
                apr_pool_destroy(sub);
                return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_EINVAL);
            }
            *pmanifest = m;
            apr_pool_destroy(sub);
            return APR_SUCCESS;
        }
        if (r.status != 202 && r.status != 429 && r.status != 503) {
            *perr = apr_psprintf(p, "export status %s: %s", status_url,
                                 atr_consumer_error_text(r.status, r.body, r.len, sub));
            apr_pool_destroy(sub);
            if (r.status == 404 || r.status == 410) return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_NOTFOUND);
            return atr_consumer_fail(c, r.status == 403 ? ATR_CONSUMER_E_AUTH : ATR_CONSUMER_E_SERVER, APR_EGENERAL);
        }
        /* no Retry-After: back off 1, 2, 4 ... 60 s */
        s = atr_consumer_retry_after(apr_table_get(r.headers, "Retry-After"), apr_time_now(), backoff);
        if (!apr_table_get(r.headers, "Retry-After") && backoff < 60) backoff *= 2;
        if (s < 1) s = 1;
        if (max_wait > 0 && apr_time_now() + apr_time_from_sec(s) - start > max_wait) {
            *perr = apr_psprintf(p, "export status %s: not done after %" APR_INT64_T_FMT " s (--max-wait)",
                                 status_url, (apr_int64_t)apr_time_sec(max_wait));
            apr_pool_destroy(sub);
            return atr_consumer_fail(c, ATR_CONSUMER_E_SERVER, APR_TIMEUP);
        }
        detail = r.status == 429 ? "polled too soon (429)"
               : r.status == 503 ? "server unavailable (503)"
               : apr_table_get(r.headers, "X-Progress");
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, 0, sub, "ATR00807: status %ld (%s); next poll in %"
                       APR_INT64_T_FMT " s", r.status, detail ? detail : "-", s);
        wait_seconds(c, s, "waiting", detail ? apr_pstrdup(p, detail) : NULL);
        apr_pool_destroy(sub);
    }
}

void atr_consumer_cancel(atr_consumer_t *c, const char *status_url, apr_pool_t *p)
{
    atr_consumer_resp_t r;
    const char *err = NULL;
    if (atr_consumer_authed(&r, c, "DELETE", status_url, NULL, NULL, &err, p) == APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00808: DELETE %s: %ld", status_url, r.status);
    }
}

/* ---- manifest ---- */

static int safe_type(const char *t)
{
    const char *s;
    if (!t || !*t || strlen(t) > 64) return 0;
    for (s = t; *s; s++) {
        if (!apr_isalnum(*s)) return 0;
    }
    return 1;
}

apr_status_t atr_consumer_manifest_files(apr_array_header_t **pfiles, int *prequires_token,
                                         const json_t *manifest, const char **perr, apr_pool_t *p)
{
    static const char *const lists[] = { "output", "error" };
    apr_array_header_t *files = apr_array_make(p, 16, sizeof(atr_consumer_file_t));
    apr_hash_t *seq = apr_hash_make(p);
    json_t *rt = json_object_get(manifest, "requiresAccessToken");
    int k;

    *pfiles = NULL;
    /* absent: send the token anyway; it is what every server that needs one expects */
    *prequires_token = rt ? json_is_true(rt) : 1;
    for (k = 0; k < 2; k++) {
        json_t *arr = json_object_get(manifest, lists[k]), *it;
        size_t i;
        if (!arr) continue;
        if (!json_is_array(arr)) {
            *perr = apr_psprintf(p, "the manifest's %s is not an array", lists[k]);
            return APR_EINVAL;
        }
        json_array_foreach(arr, i, it) {
            atr_consumer_file_t *f = apr_array_push(files);
            const char *type = atr_json_str(it, "type");
            json_t *count = json_object_get(it, "count");
            int *n;

            memset(f, 0, sizeof(*f));
            f->url = atr_json_str(it, "url");
            if (!f->url || !*f->url) {
                *perr = apr_psprintf(p, "the manifest's %s[%u] has no url", lists[k], (unsigned)i);
                return APR_EINVAL;
            }
            if (!type && k == 1) type = "OperationOutcome";
            if (!safe_type(type)) {
                *perr = apr_psprintf(p, "the manifest's %s[%u] has no usable type", lists[k], (unsigned)i);
                return APR_EINVAL;
            }
            f->type = type;
            f->is_error = k == 1;
            f->count = json_is_integer(count) ? json_integer_value(count) : -1;
            /* local names from the type, never from the URL: a URL is the server's business
             * and may not make a safe file name */
            n = apr_hash_get(seq, type, APR_HASH_KEY_STRING);
            if (!n) {
                n = apr_pcalloc(p, sizeof(*n));
                apr_hash_set(seq, type, APR_HASH_KEY_STRING, n);
            }
            f->name = apr_psprintf(p, "%s-%d.ndjson", type, ++*n);
        }
    }
    *pfiles = files;
    return APR_SUCCESS;
}
