/* Clients' JWKS URLs, fetched with libcurl (SMART-REG-03): GET, Accept: application/json,
 * TLS verified, no redirects, bounded time and size, https only (http only for loopback
 * hosts when allowed, for tests). A per-process cache keyed by URL honours Cache-Control;
 * an unknown kid may force one refresh per URL per 30 s; when the URL is down, keys still
 * within their cache lifetime are used. Thread-safe. */
#ifndef ATR_JWKS_FETCH_H
#define ATR_JWKS_FETCH_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define ATR_JWKS_DEFAULT_TTL 300          /* s, when the response says nothing */
#define ATR_JWKS_MAX_TTL 86400            /* s, whatever it says */
#define ATR_JWKS_FORCE_INTERVAL 30        /* s between forced refreshes of one URL */

typedef struct atr_jwks_fetch_conf_t {
    apr_interval_time_t timeout;   /* connect and total (default 5 s) */
    apr_size_t max_bytes;          /* body limit (default 65536) */
    int allow_loopback_http;       /* http:// allowed for 127.0.0.0/8, ::1, localhost */
} atr_jwks_fetch_conf_t;

typedef struct atr_jwks_cache_t atr_jwks_cache_t;

/* The cache lives (and its mutex) as long as p; call curl_global_init before threads. */
apr_status_t atr_jwks_cache_create(atr_jwks_cache_t **pcache, const atr_jwks_fetch_conf_t *conf,
                                   apr_pool_t *p);

/* The usable keys (atr_jwk_t *, allocated from p) at url. From the cache while fresh, else
 * fetched. force: the caller did not find its kid, so refetch unless this URL was force-
 * refreshed less than ATR_JWKS_FORCE_INTERVAL ago. *pfetched (may be NULL) is 1 when the
 * keys come from a fetch made by this call. On failure (URL refused, down, not a JWKS) and no
 * cached keys still valid: APR_EGENERAL or APR_EINVAL and *perr for people (no secrets). */
apr_status_t atr_jwks_cache_get(apr_array_header_t **pkeys, int *pfetched, atr_jwks_cache_t *cache,
                                const char *url, int force, const char **perr, apr_pool_t *p);

/* How long a response may be cached, in seconds, from its Cache-Control header (NULL when
 * absent): no-store / no-cache → 0, max-age=N → min(N, ATR_JWKS_MAX_TTL), else the default. */
apr_int64_t atr_jwks_cache_lifetime(const char *cache_control);

/* 1 when host (as in a URL, IPv6 possibly in brackets) is 127.0.0.0/8, ::1 or localhost. */
int atr_jwks_host_is_loopback(const char *host);

/* APR_SUCCESS when url may be fetched: https, or http to a loopback host when
 * allow_loopback_http. *perr says why not. */
apr_status_t atr_jwks_url_check(const char *url, int allow_loopback_http, const char **perr, apr_pool_t *p);

#endif
