/* JOSE for SMART Backend Services: base64url, JWK/JWKS (RSA, EC P-384), compact JWS
 * verification and signing with RS384 and ES384 only (D27: never none, never HMAC). */
#ifndef ATR_JOSE_H
#define ATR_JOSE_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>
#include <openssl/evp.h>

typedef enum { ATR_JOSE_ALG_NONE = 0, ATR_JOSE_RS384, ATR_JOSE_ES384 } atr_jose_alg_e;

/* "RS384" / "ES384" → alg; anything else (none, HS256, RS256, ...) → ATR_JOSE_ALG_NONE. */
atr_jose_alg_e atr_jose_alg_parse(const char *name);
const char *atr_jose_alg_name(atr_jose_alg_e alg);

/* base64url without padding. decode refuses padding, whitespace and other alphabets. */
const char *atr_b64url_encode(const unsigned char *data, apr_size_t len, apr_pool_t *p);
apr_status_t atr_b64url_decode(unsigned char **pdata, apr_size_t *plen, const char *s, apr_size_t slen,
                               apr_pool_t *p);

typedef struct atr_jwk_t {
    const char *kid;
    const char *kty;      /* "RSA" or "EC" */
    const char *alg;      /* optional "alg" member, or NULL */
    EVP_PKEY *pkey;       /* public key; freed with the pool */
} atr_jwk_t;

/* Parse a JWKS object ({"keys":[...]}). Usable public keys (RSA with n/e of >= 2048 bits, EC
 * P-384 with x/y, each with a kid; "use" absent or "sig") go to *pkeys (atr_jwk_t *); others are
 * skipped and counted in *pskipped (may be NULL). APR_EINVAL + *perr when it is not a JWKS at all. */
apr_status_t atr_jwks_parse(apr_array_header_t **pkeys, int *pskipped, const json_t *jwks,
                            const char **perr, apr_pool_t *p);

/* The single key with this kid whose kty fits alg (RSA for RS384, EC for ES384), or NULL when
 * there is none or more than one (SMART-TOK-05 step 3). */
const atr_jwk_t *atr_jwks_select(const apr_array_header_t *keys, const char *kid, atr_jose_alg_e alg);

typedef struct atr_jws_t {
    json_t *header;          /* pool-owned */
    json_t *payload;         /* pool-owned */
    const char *signing_input;  /* "<b64 header>.<b64 payload>" */
    apr_size_t signing_input_len;
    unsigned char *sig;
    apr_size_t sig_len;
    atr_jose_alg_e alg;      /* from header.alg; ATR_JOSE_ALG_NONE if not RS384/ES384 */
} atr_jws_t;

/* Split and decode a compact JWS (3 parts, JSON object header and payload). Does not verify.
 * APR_EINVAL + *perr (never echoing the token) when malformed. */
apr_status_t atr_jws_parse(atr_jws_t **pjws, const char *compact, const char **perr, apr_pool_t *p);

/* Verify the signature of jws with key: APR_SUCCESS only when alg is RS384/ES384, the key type
 * fits and the signature is valid. */
apr_status_t atr_jws_verify(const atr_jws_t *jws, const atr_jwk_t *key, apr_pool_t *p);

/* Sign payload with a private key (RS384 for RSA keys, ES384 for P-384 keys): compact JWS with
 * header {"alg", "typ":"JWT", "kid"} (kid may be NULL). */
apr_status_t atr_jws_sign(const char **pcompact, const json_t *payload, EVP_PKEY *key, const char *kid,
                          apr_pool_t *p);

/* Load a PEM private key file; the key is freed with the pool. */
apr_status_t atr_jose_load_private_pem(EVP_PKEY **pkey, const char *path, const char **perr, apr_pool_t *p);
/* The public JWK (kty, kid, alg, n/e or crv/x/y) of a key. */
json_t *atr_jwk_from_pkey(EVP_PKEY *key, const char *kid, apr_pool_t *p);

#endif
