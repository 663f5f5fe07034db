/* Access tokens we issue: compact JWS with HS256 under a server secret shared by every node
 * (ATRTokenKeyFile), so any process or node verifies them without a lookup. HMAC rather than
 * RSA/ECDSA because only we verify them and signing must keep up with >= 5,000 tokens/s.
 * Claims: iss (the FHIR base), sub (client_id), aud (the FHIR base), scope (granted), iat,
 * exp, jti. Client assertions are a different thing: RS384/ES384 only (atr_jose.h). */
#ifndef ATR_TOKEN_H
#define ATR_TOKEN_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef struct atr_token_key_t atr_token_key_t;

/* Load the secret: a file of at least 32 bytes (raw, or base64/hex text: whitespace ignored).
 * Refuses a shorter secret and (when it can tell) a file readable by group/other: *perr. */
apr_status_t atr_token_key_load(atr_token_key_t **pkey, const char *path, const char **perr,
                                apr_pool_t *p);
/* A key from bytes (tests, bench). */
atr_token_key_t *atr_token_key_make(const unsigned char *secret, apr_size_t len, apr_pool_t *p);

typedef struct atr_token_claims_t {
    const char *client_id;
    const char *scope;              /* space-separated granted scopes */
    apr_array_header_t *scopes;     /* parsed (atr_scope_t *) */
    apr_time_t exp;
} atr_token_claims_t;

apr_status_t atr_token_issue(const char **ptoken, const atr_token_key_t *key, const char *issuer,
                             const char *client_id, const char *scope, apr_interval_time_t lifetime,
                             apr_time_t now, apr_pool_t *p);

/* APR_SUCCESS with claims when the token is ours (HS256 under key, iss = aud = issuer),
 * unexpired at now; otherwise APR_EINVAL and *perr (never containing the token) for the
 * WWW-Authenticate error_description ("token expired", "bad signature", ...). */
apr_status_t atr_token_verify(atr_token_claims_t **pclaims, const atr_token_key_t *key,
                              const char *issuer, const char *token, apr_time_t now,
                              const char **perr, apr_pool_t *p);

#endif
