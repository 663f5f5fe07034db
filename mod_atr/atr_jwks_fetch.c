/* Fetching and caching clients' JWKS URLs (SMART-REG-03, SMART-TOK-05). The cache keeps the
 * response text, not parsed keys, so a request's keys live in the request's pool and a
 * refresh by another thread never frees keys in use. The fetch runs outside the lock, so a
 * slow client URL does not hold up token requests of other clients. */
#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>
#include <curl/curl.h>
#include <jansson.h>
#include "atr_jwks_fetch.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_log.h"

typedef struct jwks_entry_t {
    char *body;                 /* malloc'd response text, NULL when none kept */
    apr_size_t len;
    apr_time_t expires;         /* body usable until then */
    apr_time_t last_forced;     /* last forced refresh (0: never) */
} jwks_entry_t;

struct atr_jwks_cache_t {
    atr_jwks_fetch_conf_t conf;
    apr_pool_t *pool;           /* entries and keys of the hash; only under the mutex */
    apr_hash_t *entries;        /* url -> jwks_entry_t */
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
};

static void cache_lock(atr_jwks_cache_t *c)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(c->mutex);
#else
    (void)c;
#endif
}

static void cache_unlock(atr_jwks_cache_t *c)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(c->mutex);
#else
    (void)c;
#endif
}

static apr_status_t entries_free(void *data)
{
    atr_jwks_cache_t *c = data;
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(NULL, c->entries); hi; hi = apr_hash_next(hi)) {
        jwks_entry_t *e = apr_hash_this_val(hi);
        free(e->body);
        e->body = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t atr_jwks_cache_create(atr_jwks_cache_t **pcache, const atr_jwks_fetch_conf_t *conf,
                                   apr_pool_t *p)
{
    atr_jwks_cache_t *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv;

    *pcache = NULL;
    c->conf = *conf;
    if (c->conf.timeout <= 0) c->conf.timeout = apr_time_from_sec(5);
    if (c->conf.max_bytes == 0) c->conf.max_bytes = 65536;
    if ((rv = apr_pool_create(&c->pool, p)) != APR_SUCCESS) return rv;
    c->entries = apr_hash_make(c->pool);
#if APR_HAS_THREADS
    if ((rv = apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) return rv;
#endif
    apr_pool_cleanup_register(c->pool, c, entries_free, apr_pool_cleanup_null);
    *pcache = c;
    return APR_SUCCESS;
}

apr_int64_t atr_jwks_cache_lifetime(const char *cc)
{
    apr_int64_t ttl = ATR_JWKS_DEFAULT_TTL;
    const char *s = cc;

    if (!cc) return ttl;
    while (s && *s) {
        apr_size_t n;
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        n = strcspn(s, ",");
        if ((n >= 8 && !strncasecmp(s, "no-store", 8) && (n == 8 || s[8] == ' '))
            || (n >= 8 && !strncasecmp(s, "no-cache", 8) && (n == 8 || s[8] == ' ' || s[8] == '='))) {
            return 0;
        }
        if (n > 8 && !strncasecmp(s, "max-age=", 8)) {
            const char *v = s + 8;
            apr_int64_t age = 0;
            int digits = 0;
            if (*v == '"') v++;
            while (*v >= '0' && *v <= '9') {
                if (age < ATR_JWKS_MAX_TTL) age = age * 10 + (*v - '0');
                v++;
                digits++;
            }
            /* a malformed max-age is treated as stale (RFC 9111 §4.2.1) */
            ttl = digits ? age : 0;
        }
        s += n;
    }
    return ttl > ATR_JWKS_MAX_TTL ? ATR_JWKS_MAX_TTL : ttl;
}

int atr_jwks_host_is_loopback(const char *host)
{
    char buf[64];
    apr_size_t n;
    unsigned char addr[16];

    if (!host || !*host) return 0;
    if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost.")) return 1;
    n = strlen(host);
    if (host[0] == '[') {
        if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof(buf)) return 0;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
    }
    else {
        if (n >= sizeof(buf)) return 0;
        memcpy(buf, host, n + 1);
    }
    if (inet_pton(AF_INET, buf, addr) == 1) return addr[0] == 127;
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        static const unsigned char lo6[16] = { 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1 };
        return memcmp(addr, lo6, 16) == 0;
    }
    return 0;
}

/* Scheme and host of url, through curl's own parser so we judge the URL curl will fetch. */
static apr_status_t url_parts(const char **pscheme, const char **phost, const char *url, apr_pool_t *p)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    apr_status_t rv = APR_EINVAL;

    if (!u) return APR_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        *pscheme = apr_pstrdup(p, scheme);
        *phost = apr_pstrdup(p, host);
        rv = APR_SUCCESS;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rv;
}

apr_status_t atr_jwks_url_check(const char *url, int allow_loopback_http, const char **perr, apr_pool_t *p)
{
    const char *scheme, *host;
    if (!url || url_parts(&scheme, &host, url, p) != APR_SUCCESS) {
        *perr = "the JWKS URL is not a valid URL";
        return APR_EINVAL;
    }
    if (!strcasecmp(scheme, "https")) return APR_SUCCESS;
    if (!strcasecmp(scheme, "http") && allow_loopback_http && atr_jwks_host_is_loopback(host)) {
        return APR_SUCCESS;
    }
    *perr = "the JWKS URL is not an https URL";
    return APR_EINVAL;
}

typedef struct body_t {
    char *buf;
    apr_size_t len, max;
    int too_big;
} body_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *baton)
{
    body_t *b = baton;
    size_t n = size * nmemb;
    if (b->len + n > b->max) {
        b->too_big = 1;
        return 0;   /* aborts the transfer */
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return n;
}

/* One GET. On success *pbody (in p, NUL-terminated) and *pttl (s) from Cache-Control. */
static apr_status_t fetch(const char **pbody, apr_size_t *plen, apr_int64_t *pttl, const atr_jwks_fetch_conf_t *conf,
                          const char *url, const char **perr, apr_pool_t *p)
{
    CURL *curl = NULL;
    struct curl_slist *hdrs = NULL;
    struct curl_header *h = NULL;
    const char *scheme, *host;
    body_t b;
    long status = 0, ms = (long)apr_time_as_msec(conf->timeout);
    CURLcode cc;
    apr_status_t rv = APR_EINVAL;

    if (atr_jwks_url_check(url, conf->allow_loopback_http, perr, p) != APR_SUCCESS
        || url_parts(&scheme, &host, url, p) != APR_SUCCESS) {
        goto leave;
    }
    rv = APR_EGENERAL;
    memset(&b, 0, sizeof(b));
    b.max = conf->max_bytes;
    b.buf = apr_palloc(p, b.max + 1);
    if (!(curl = curl_easy_init())) {
        *perr = "cannot start an HTTP client";
        goto leave;
    }
    hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, strcasecmp(scheme, "http") ? "https" : "http");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)conf->max_bytes);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mod_atr");
    if (atr_jwks_host_is_loopback(host)) {
        /* a proxy from the environment must never see a loopback fetch */
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    }
    cc = curl_easy_perform(curl);
    if (b.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        *perr = apr_psprintf(p, "the JWKS at the client's URL is larger than %" APR_SIZE_T_FMT " bytes",
                             conf->max_bytes);
        goto leave;
    }
    if (cc != CURLE_OK) {
        *perr = apr_psprintf(p, "the client's JWKS URL could not be fetched (%s)", curl_easy_strerror(cc));
        goto leave;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        *perr = apr_psprintf(p, "the client's JWKS URL answered HTTP %ld", status);
        goto leave;
    }
    *pttl = atr_jwks_cache_lifetime(
        curl_easy_header(curl, "Cache-Control", 0, CURLH_HEADER, -1, &h) == CURLHE_OK ? h->value : NULL);
    b.buf[b.len] = '\0';
    *pbody = b.buf;
    *plen = b.len;
    rv = APR_SUCCESS;
leave:
    if (curl) curl_easy_cleanup(curl);
    if (hdrs) curl_slist_free_all(hdrs);
    return rv;
}

static apr_status_t parse_keys(apr_array_header_t **pkeys, const char *body, apr_size_t len,
                               const char **perr, apr_pool_t *p)
{
    json_t *j;
    const char *err = NULL;
    if (atr_json_parse(&j, body, len, &err, p) != APR_SUCCESS
        || atr_jwks_parse(pkeys, NULL, j, &err, p) != APR_SUCCESS) {
        *perr = "the client's JWKS URL did not answer a JWKS";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t atr_jwks_cache_get(apr_array_header_t **pkeys, int *pfetched, atr_jwks_cache_t *c,
                                const char *url, int force, const char **perr, apr_pool_t *p)
{
    jwks_entry_t *e;
    const char *body = NULL, *cached = NULL;
    apr_size_t len = 0, cached_len = 0;
    apr_int64_t ttl = 0;
    apr_time_t now = apr_time_now();
    apr_status_t rv;

    *pkeys = NULL;
    if (pfetched) *pfetched = 0;
    cache_lock(c);
    e = apr_hash_get(c->entries, url, APR_HASH_KEY_STRING);
    if (!e) {
        e = apr_pcalloc(c->pool, sizeof(*e));
        apr_hash_set(c->entries, apr_pstrdup(c->pool, url), APR_HASH_KEY_STRING, e);
    }
    if (force && e->last_forced && now - e->last_forced < apr_time_from_sec(ATR_JWKS_FORCE_INTERVAL)) {
        force = 0;   /* rate-limited: a client cannot make us hammer its (or anyone's) URL */
    }
    if (force) e->last_forced = now;
    if (e->body && now < e->expires) {
        cached = apr_pstrmemdup(p, e->body, e->len);
        cached_len = e->len;
    }
    cache_unlock(c);

    if (cached && !force) {
        return parse_keys(pkeys, cached, cached_len, perr, p);
    }
    rv = fetch(&body, &len, &ttl, &c->conf, url, perr, p);
    if (rv == APR_SUCCESS) rv = parse_keys(pkeys, body, len, perr, p);
    if (rv != APR_SUCCESS) {
        if (cached) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, rv, p, "ATR00510: JWKS refresh of %s failed "
                           "(%s); using the cached keys", url, *perr);
            return parse_keys(pkeys, cached, cached_len, perr, p);
        }
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, rv, p, "ATR00511: JWKS fetch of %s failed: %s", url, *perr);
        return rv;
    }
    if (pfetched) *pfetched = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, 0, p, "ATR00512: fetched JWKS %s (%d usable keys, "
                   "cached %" APR_INT64_T_FMT " s)", url, (*pkeys)->nelts, ttl);
    cache_lock(c);
    free(e->body);
    e->body = NULL;
    e->len = 0;
    e->expires = 0;
    if (ttl > 0 && (e->body = malloc(len + 1)) != NULL) {
        memcpy(e->body, body, len + 1);
        e->len = len;
        e->expires = now + apr_time_from_sec(ttl);
    }
    cache_unlock(c);
    return APR_SUCCESS;
}
