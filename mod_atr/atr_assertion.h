/* Client assertions at the token endpoint (SMART-TOK-02..06, RFC 7523, D28/D29): a JWT the
 * client signed with its private key (RS384/ES384) to authenticate itself. The registry,
 * the JWKS URL fetch and the jti store are function pointers, so unit tests substitute them
 * (DESIGN.md house style 3). */
#ifndef ATR_ASSERTION_H
#define ATR_ASSERTION_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include "atr_registry.h"
#include "atr_db.h"

#define ATR_ASSERTION_SKEW 60          /* s of clock skew allowed (D29) */
#define ATR_ASSERTION_MAX_LIFETIME 300 /* s an assertion may live (SMART-TOK-03) */

/* The client entry: APR_SUCCESS, APR_NOTFOUND, or another error when the registry is down. */
typedef apr_status_t atr_assertion_client_fn(atr_client_t **pclient, void *baton, const char *client_id,
                                             apr_pool_t *p);
/* The keys at a JWKS URL (atr_jwks_cache_get's contract). */
typedef apr_status_t atr_assertion_jwks_fn(apr_array_header_t **pkeys, int *pfetched, void *baton,
                                           const char *url, int force, const char **perr, apr_pool_t *p);
/* Remember (client_id, jti) until expires: *preplay = 1 when it was already there.
 * Another error when the store is unusable. */
typedef apr_status_t atr_assertion_jti_fn(int *preplay, void *baton, const char *client_id, const char *jti,
                                          apr_time_t expires, apr_pool_t *p);

typedef struct atr_assertion_ctx_t {
    const char *token_url;            /* the exact aud expected */
    apr_time_t now;
    atr_assertion_client_fn *client_get;
    void *client_baton;
    atr_assertion_jwks_fn *jwks_get;   /* may be NULL: URL keys unavailable */
    void *jwks_baton;
    atr_assertion_jti_fn *jti_remember;
    void *jti_baton;
} atr_assertion_ctx_t;

/* Validate assertion. APR_SUCCESS: *pclient is the authenticated, active client.
 * APR_EINVAL: authentication failed (invalid_client), *perr says why for the
 * error_description (never echoing the assertion). APR_EGENERAL: the registry or the store
 * could not be asked (503, never grant); *perr for the log. */
apr_status_t atr_assertion_validate(atr_client_t **pclient, const atr_assertion_ctx_t *ctx,
                                    const char *assertion, const char **perr, apr_pool_t *p);

/* The jti store on an atr_db_t (baton): INSERT .. ON CONFLICT DO NOTHING into atr_jti, 0 rows
 * = replay; expired rows are purged now and then. */
apr_status_t atr_assertion_jti_db(int *preplay, void *baton, const char *client_id, const char *jti,
                                  apr_time_t expires, apr_pool_t *p);

#endif
