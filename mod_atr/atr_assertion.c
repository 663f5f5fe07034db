/* Client assertion validation (SMART-TOK-02..06). Cheap checks come first, the directory and
 * the key fetch next, the signature after, and the jti is remembered only once everything
 * else passed, so a forged or broken assertion cannot burn a legitimate client's jti. */
#include <string.h>
#include <apr_strings.h>
#include <apr_atomic.h>
#include <jansson.h>
#include <openssl/evp.h>
#include "atr_assertion.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_log.h"

#define JTI_MAX 255
#define PURGE_EVERY 256

static int int_claim(apr_int64_t *pv, const json_t *payload, const char *name, int *ppresent)
{
    const json_t *v = json_object_get(payload, name);
    *ppresent = v != NULL;
    if (!v) return 1;
    if (!json_is_integer(v)) return 0;
    *pv = (apr_int64_t)json_integer_value(v);
    return 1;
}

static int aud_matches(const json_t *aud, const char *token_url)
{
    size_t i;
    if (json_is_string(aud)) return !strcmp(json_string_value(aud), token_url);
    if (!json_is_array(aud)) return 0;
    for (i = 0; i < json_array_size(aud); i++) {
        const json_t *a = json_array_get(aud, i);
        if (json_is_string(a) && !strcmp(json_string_value(a), token_url)) return 1;
    }
    return 0;
}

/* Claims that need neither the directory nor keys. */
static apr_status_t check_claims(const atr_jws_t *jws, const atr_assertion_ctx_t *ctx, const char **perr)
{
    const char *typ = atr_json_str(jws->header, "typ");
    const char *iss = atr_json_str(jws->payload, "iss"), *sub = atr_json_str(jws->payload, "sub");
    const char *jti = atr_json_str(jws->payload, "jti");
    apr_int64_t now = apr_time_sec(ctx->now), exp = 0, nbf = 0, iat = 0;
    int has_exp, has_nbf, has_iat;

    if (json_object_get(jws->header, "typ") && (!typ || strcasecmp(typ, "JWT"))) {
        *perr = "client assertion header typ is not JWT";
    }
    else if (jws->alg != ATR_JOSE_RS384 && jws->alg != ATR_JOSE_ES384) {
        *perr = "client assertion algorithm must be RS384 or ES384";
    }
    else if (!atr_json_str(jws->header, "kid") || !*atr_json_str(jws->header, "kid")) {
        *perr = "client assertion header has no kid";
    }
    else if (!iss || !*iss || !sub || !*sub) {
        *perr = "client assertion lacks iss or sub";
    }
    else if (strcmp(iss, sub)) {
        *perr = "client assertion iss and sub differ";
    }
    else if (!aud_matches(json_object_get(jws->payload, "aud"), ctx->token_url)) {
        *perr = "client assertion aud is not this token endpoint";
    }
    else if (!int_claim(&exp, jws->payload, "exp", &has_exp) || !has_exp) {
        *perr = "client assertion exp is missing or not an integer";
    }
    else if (exp + ATR_ASSERTION_SKEW <= now) {
        *perr = "client assertion expired";
    }
    else if (exp > now + ATR_ASSERTION_MAX_LIFETIME + ATR_ASSERTION_SKEW) {
        *perr = "client assertion exp is more than 5 minutes in the future";
    }
    else if (!int_claim(&nbf, jws->payload, "nbf", &has_nbf) || (has_nbf && nbf > now + ATR_ASSERTION_SKEW)) {
        *perr = "client assertion nbf is invalid or in the future";
    }
    else if (!int_claim(&iat, jws->payload, "iat", &has_iat)
             || (has_iat && (iat > now + ATR_ASSERTION_SKEW || iat > exp))) {
        *perr = "client assertion iat is invalid or in the future";
    }
    else if (!jti || !*jti || strlen(jti) > JTI_MAX) {
        *perr = "client assertion jti is missing or too long";
    }
    else {
        return APR_SUCCESS;
    }
    return APR_EINVAL;
}

/* Append keys of add to keys, skipping exact duplicates (same kid and key), so a client
 * whose key is both inline and at its URL still has a single candidate. */
static void keys_union(apr_array_header_t *keys, const apr_array_header_t *add)
{
    int i, j;
    for (i = 0; add && i < add->nelts; i++) {
        const atr_jwk_t *k = APR_ARRAY_IDX(add, i, const atr_jwk_t *);
        int dup = 0;
        for (j = 0; j < keys->nelts && !dup; j++) {
            const atr_jwk_t *o = APR_ARRAY_IDX(keys, j, const atr_jwk_t *);
            dup = !strcmp(o->kid, k->kid) && EVP_PKEY_eq(o->pkey, k->pkey) == 1;
        }
        if (!dup) APR_ARRAY_PUSH(keys, const atr_jwk_t *) = k;
    }
}

/* SMART-TOK-05: the single key for the assertion, or APR_EINVAL + *perr. */
static apr_status_t resolve_key(const atr_jwk_t **pkey, const atr_assertion_ctx_t *ctx, const atr_jws_t *jws,
                                const atr_client_t *client, const char **perr, apr_pool_t *p)
{
    const char *kid = atr_json_str(jws->header, "kid");
    const json_t *jku = json_object_get(jws->header, "jku");
    apr_array_header_t *keys = apr_array_make(p, 4, sizeof(const atr_jwk_t *)), *url_keys = NULL;
    const char *fetch_err = NULL;
    int fetched = 0, use_inline = 1;
    apr_status_t rv;

    *pkey = NULL;
    if (jku) {
        if (!json_is_string(jku) || !client->jwks_url || strcmp(json_string_value(jku), client->jwks_url)) {
            *perr = "client assertion jku is not the JWKS URL registered for this client";
            return APR_EINVAL;
        }
        use_inline = 0;   /* keys = the dereferenced jku only */
    }
    if (use_inline && client->jwks) {
        json_t *j;
        apr_array_header_t *inl;
        const char *err = NULL;
        if (atr_json_parse(&j, client->jwks, strlen(client->jwks), &err, p) == APR_SUCCESS
            && atr_jwks_parse(&inl, NULL, j, &err, p) == APR_SUCCESS) {
            keys_union(keys, inl);
        }
        else {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, 0, p, "ATR00520: client %s: registered inline "
                           "JWKS is unusable: %s", client->client_id, err ? err : "?");
        }
    }
    if (client->jwks_url) {
        if (!ctx->jwks_get) {
            fetch_err = "the client's keys could not be fetched";
        }
        else if ((rv = ctx->jwks_get(&url_keys, &fetched, ctx->jwks_baton, client->jwks_url, 0, &fetch_err, p))
                 == APR_SUCCESS) {
            keys_union(keys, url_keys);
        }
    }
    *pkey = atr_jwks_select(keys, kid, jws->alg);
    if (!*pkey && client->jwks_url && ctx->jwks_get && !fetched && !fetch_err) {
        /* a kid we have not seen in cached keys: the client may have rotated its keys since
         * we cached them (a failed fetch is not retried at once) */
        fetch_err = NULL;
        if (ctx->jwks_get(&url_keys, &fetched, ctx->jwks_baton, client->jwks_url, 1, &fetch_err, p)
            == APR_SUCCESS) {
            keys_union(keys, url_keys);
            *pkey = atr_jwks_select(keys, kid, jws->alg);
        }
    }
    if (*pkey) return APR_SUCCESS;
    if (fetch_err) {
        *perr = apr_psprintf(p, "the client's keys could not be fetched: %s", fetch_err);
    }
    else {
        *perr = "no single registered key of this client matches the assertion kid and alg";
    }
    return APR_EINVAL;
}

apr_status_t atr_assertion_validate(atr_client_t **pclient, const atr_assertion_ctx_t *ctx,
                                    const char *assertion, const char **perr, apr_pool_t *p)
{
    atr_jws_t *jws = NULL;
    atr_client_t *client = NULL;
    const atr_jwk_t *key;
    const char *err = NULL, *client_id;
    int replay = 0;
    apr_int64_t exp;
    apr_status_t rv;

    *pclient = NULL;
    if (!assertion || atr_jws_parse(&jws, assertion, &err, p) != APR_SUCCESS) {
        *perr = "client assertion is not a well-formed JWT";
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = check_claims(jws, ctx, perr)) != APR_SUCCESS) goto leave;
    client_id = atr_json_str(jws->payload, "iss");
    rv = ctx->client_get(&client, ctx->client_baton, client_id, p);
    if (rv == APR_NOTFOUND || (rv == APR_SUCCESS && !client)) {
        *perr = "unknown client";
        rv = APR_EINVAL;
        goto leave;
    }
    if (rv != APR_SUCCESS) {
        *perr = "the client registry is unavailable";
        rv = APR_EGENERAL;
        goto leave;
    }
    if (client->disabled) {
        *perr = "client is disabled";
        rv = APR_EINVAL;
        goto leave;
    }
    if ((rv = resolve_key(&key, ctx, jws, client, perr, p)) != APR_SUCCESS) goto leave;
    if (atr_jws_verify(jws, key, p) != APR_SUCCESS) {
        *perr = "client assertion signature is invalid";
        rv = APR_EINVAL;
        goto leave;
    }
    exp = (apr_int64_t)json_integer_value(json_object_get(jws->payload, "exp"));
    rv = ctx->jti_remember(&replay, ctx->jti_baton, client_id, atr_json_str(jws->payload, "jti"),
                           apr_time_from_sec(exp + ATR_ASSERTION_SKEW), p);
    if (rv != APR_SUCCESS) {
        *perr = "the jti store is unavailable";
        rv = APR_EGENERAL;
        goto leave;
    }
    if (replay) {
        *perr = "client assertion jti was already used (replay)";
        rv = APR_EINVAL;
        goto leave;
    }
    *pclient = client;
    rv = APR_SUCCESS;
leave:
    return rv;
}

static apr_uint32_t jti_inserts;

apr_status_t atr_assertion_jti_db(int *preplay, void *baton, const char *client_id, const char *jti,
                                  apr_time_t expires, apr_pool_t *p)
{
    atr_db_t *db = baton;
    const char *args[3];
    int nrows = 0;
    apr_status_t rv;

    *preplay = 0;
    if (apr_atomic_inc32(&jti_inserts) % PURGE_EVERY == 0) {
        const char *now = apr_psprintf(p, "%" APR_INT64_T_FMT, apr_time_sec(apr_time_now()));
        if (atr_db_exec(db, NULL, "atr_jti_purge", p, 1, &now) != APR_SUCCESS) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, 0, p, "ATR00521: purging expired jti rows "
                           "failed: %s", atr_db_error(db, 1));
        }
    }
    args[0] = client_id;
    args[1] = jti;
    args[2] = apr_psprintf(p, "%" APR_INT64_T_FMT, apr_time_sec(expires));
    if ((rv = atr_db_exec(db, &nrows, "atr_jti_insert", p, 3, args)) != APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00522: remembering a client assertion jti "
                       "failed: %s", atr_db_error(db, 1));
        return rv;
    }
    *preplay = nrows == 0;
    return APR_SUCCESS;
}
