/* JOSE with OpenSSL 3 EVP only (no deprecated RSA_/EC_KEY_ calls). Tokens, assertions and keys
 * never reach a log or an error message: errors say what is wrong, not what was sent. */
#include <string.h>
#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include "atr_jose.h"
#include "atr_json.h"

#define ES384_PART 48  /* bytes of r and of s in a JWS ES384 signature (RFC 7518 3.4) */

atr_jose_alg_e atr_jose_alg_parse(const char *name)
{
    if (name && !strcmp(name, "RS384")) return ATR_JOSE_RS384;
    if (name && !strcmp(name, "ES384")) return ATR_JOSE_ES384;
    return ATR_JOSE_ALG_NONE;
}

const char *atr_jose_alg_name(atr_jose_alg_e alg)
{
    return alg == ATR_JOSE_RS384 ? "RS384" : alg == ATR_JOSE_ES384 ? "ES384" : "none";
}

static const char b64url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *atr_b64url_encode(const unsigned char *data, apr_size_t len, apr_pool_t *p)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1), *o = out;
    apr_size_t i;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        *o++ = b64url_chars[v >> 18 & 63]; *o++ = b64url_chars[v >> 12 & 63];
        *o++ = b64url_chars[v >> 6 & 63];  *o++ = b64url_chars[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)data[i] << 16;
        *o++ = b64url_chars[v >> 18 & 63]; *o++ = b64url_chars[v >> 12 & 63];
    }
    else if (len - i == 2) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8;
        *o++ = b64url_chars[v >> 18 & 63]; *o++ = b64url_chars[v >> 12 & 63];
        *o++ = b64url_chars[v >> 6 & 63];
    }
    *o = '\0';
    return out;
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

apr_status_t atr_b64url_decode(unsigned char **pdata, apr_size_t *plen, const char *s, apr_size_t slen,
                               apr_pool_t *p)
{
    unsigned char *out;
    apr_size_t i, o = 0;
    unsigned acc = 0;
    int bits = 0;

    if (slen % 4 == 1) return APR_EINVAL;
    out = apr_palloc(p, slen * 3 / 4 + 1);
    for (i = 0; i < slen; i++) {
        int v = b64url_val(s[i]);
        if (v < 0) return APR_EINVAL;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return APR_EINVAL;  /* non-canonical trailing bits */
    out[o] = 0;
    *pdata = out;
    *plen = o;
    return APR_SUCCESS;
}

static apr_status_t pkey_cleanup(void *k)
{
    EVP_PKEY_free(k);
    return APR_SUCCESS;
}

static EVP_PKEY *pool_pkey(EVP_PKEY *k, apr_pool_t *p)
{
    if (k) apr_pool_cleanup_register(p, k, pkey_cleanup, apr_pool_cleanup_null);
    return k;
}

static BIGNUM *b64_bn(const char *s, apr_pool_t *p)
{
    unsigned char *d;
    apr_size_t n;
    if (!s || atr_b64url_decode(&d, &n, s, strlen(s), p) != APR_SUCCESS || n == 0) return NULL;
    return BN_bin2bn(d, (int)n, NULL);
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_from_jwk(const json_t *jwk, apr_pool_t *p)
{
    BIGNUM *n = b64_bn(atr_json_str(jwk, "n"), p), *e = b64_bn(atr_json_str(jwk, "e"), p);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
        pkey = pkey_fromdata("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    if (pkey && EVP_PKEY_get_bits(pkey) < 2048) {  /* too weak to trust */
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pool_pkey(pkey, p);
}

static EVP_PKEY *ec_from_jwk(const json_t *jwk, apr_pool_t *p)
{
    const char *crv = atr_json_str(jwk, "crv"), *xs = atr_json_str(jwk, "x"), *ys = atr_json_str(jwk, "y");
    unsigned char *x, *y, point[1 + 2 * ES384_PART];
    apr_size_t xl, yl;
    OSSL_PARAM_BLD *bld;
    EVP_PKEY *pkey = NULL;

    if (!crv || strcmp(crv, "P-384") || !xs || !ys
        || atr_b64url_decode(&x, &xl, xs, strlen(xs), p) != APR_SUCCESS
        || atr_b64url_decode(&y, &yl, ys, strlen(ys), p) != APR_SUCCESS
        || xl == 0 || yl == 0 || xl > ES384_PART || yl > ES384_PART) {
        return NULL;
    }
    /* RFC 7518 wants x and y at full width, but common client libraries (PyJWT 2.6, for one)
     * drop leading zero bytes: about 1 key in 128. Left-padding is unambiguous, and refusing a
     * real client's valid key would be the worse failure. */
    memset(point, 0, sizeof(point));
    point[0] = 0x04;  /* uncompressed point */
    memcpy(point + 1 + (ES384_PART - xl), x, xl);
    memcpy(point + 1 + ES384_PART + (ES384_PART - yl), y, yl);
    bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0)
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point))) {
        pkey = pkey_fromdata("EC", bld);  /* fromdata checks the point is on the curve */
    }
    OSSL_PARAM_BLD_free(bld);
    return pool_pkey(pkey, p);
}

apr_status_t atr_jwks_parse(apr_array_header_t **pkeys, int *pskipped, const json_t *jwks,
                            const char **perr, apr_pool_t *p)
{
    const json_t *keys = json_is_object(jwks) ? json_object_get(jwks, "keys") : NULL;
    apr_array_header_t *out;
    size_t i;
    int skipped = 0;

    if (!json_is_array(keys)) {
        if (perr) *perr = "not a JWKS: expected an object with a \"keys\" array";
        return APR_EINVAL;
    }
    out = apr_array_make(p, (int)json_array_size(keys) + 1, sizeof(atr_jwk_t *));
    for (i = 0; i < json_array_size(keys); i++) {
        const json_t *k = json_array_get(keys, i);
        const char *kty = atr_json_str(k, "kty"), *kid = atr_json_str(k, "kid"), *use = atr_json_str(k, "use");
        EVP_PKEY *pkey = NULL;
        atr_jwk_t *jwk;

        if (kty && kid && (!use || !strcmp(use, "sig"))) {
            if (!strcmp(kty, "RSA")) pkey = rsa_from_jwk(k, p);
            else if (!strcmp(kty, "EC")) pkey = ec_from_jwk(k, p);
        }
        if (!pkey) { skipped++; continue; }
        jwk = apr_pcalloc(p, sizeof(*jwk));
        jwk->kid = apr_pstrdup(p, kid);
        jwk->kty = apr_pstrdup(p, kty);
        jwk->alg = atr_json_str(k, "alg") ? apr_pstrdup(p, atr_json_str(k, "alg")) : NULL;
        jwk->pkey = pkey;
        APR_ARRAY_PUSH(out, atr_jwk_t *) = jwk;
    }
    *pkeys = out;
    if (pskipped) *pskipped = skipped;
    return APR_SUCCESS;
}

const atr_jwk_t *atr_jwks_select(const apr_array_header_t *keys, const char *kid, atr_jose_alg_e alg)
{
    const atr_jwk_t *found = NULL;
    const char *kty = alg == ATR_JOSE_RS384 ? "RSA" : alg == ATR_JOSE_ES384 ? "EC" : NULL;
    int i;

    if (!kty || !kid || !keys) return NULL;
    for (i = 0; i < keys->nelts; i++) {
        const atr_jwk_t *k = APR_ARRAY_IDX(keys, i, const atr_jwk_t *);
        if (strcmp(k->kid, kid) || strcmp(k->kty, kty)) continue;
        if (k->alg && strcmp(k->alg, atr_jose_alg_name(alg))) continue;
        if (found) return NULL;  /* ambiguous: SMART says fail */
        found = k;
    }
    return found;
}

static apr_status_t decode_json_part(json_t **pj, const char *s, apr_size_t len, apr_pool_t *p)
{
    unsigned char *d;
    apr_size_t n;
    json_t *j;
    if (atr_b64url_decode(&d, &n, s, len, p) != APR_SUCCESS) return APR_EINVAL;
    if (atr_json_parse(&j, (const char *)d, n, NULL, p) != APR_SUCCESS || !json_is_object(j)) return APR_EINVAL;
    *pj = j;
    return APR_SUCCESS;
}

apr_status_t atr_jws_parse(atr_jws_t **pjws, const char *compact, const char **perr, apr_pool_t *p)
{
    const char *d1, *d2;
    atr_jws_t *jws;

    *pjws = NULL;
    if (!compact || !(d1 = strchr(compact, '.')) || !(d2 = strchr(d1 + 1, '.')) || strchr(d2 + 1, '.')) {
        *perr = "not a compact JWS (expected three dot-separated parts)";
        return APR_EINVAL;
    }
    jws = apr_pcalloc(p, sizeof(*jws));
    if (decode_json_part(&jws->header, compact, (apr_size_t)(d1 - compact), p) != APR_SUCCESS) {
        *perr = "the JWT header is not base64url-encoded JSON object";
        return APR_EINVAL;
    }
    if (decode_json_part(&jws->payload, d1 + 1, (apr_size_t)(d2 - d1 - 1), p) != APR_SUCCESS) {
        *perr = "the JWT payload is not a base64url-encoded JSON object";
        return APR_EINVAL;
    }
    if (atr_b64url_decode(&jws->sig, &jws->sig_len, d2 + 1, strlen(d2 + 1), p) != APR_SUCCESS) {
        *perr = "the JWT signature is not base64url";
        return APR_EINVAL;
    }
    jws->signing_input = compact;
    jws->signing_input_len = (apr_size_t)(d2 - compact);
    jws->alg = atr_jose_alg_parse(atr_json_str(jws->header, "alg"));
    *pjws = jws;
    return APR_SUCCESS;
}

/* JWS ES384 signatures are r||s; OpenSSL wants DER. */
static apr_status_t es_raw_to_der(unsigned char **pder, int *plen, const unsigned char *raw, apr_size_t len)
{
    ECDSA_SIG *sig;
    BIGNUM *r, *s;
    if (len != 2 * ES384_PART) return APR_EINVAL;
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(raw, ES384_PART, NULL);
    s = BN_bin2bn(raw + ES384_PART, ES384_PART, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r); BN_free(s); ECDSA_SIG_free(sig);
        return APR_EGENERAL;
    }
    *pder = NULL;
    *plen = i2d_ECDSA_SIG(sig, pder);
    ECDSA_SIG_free(sig);
    return *plen > 0 ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t atr_jws_verify(const atr_jws_t *jws, const atr_jwk_t *key, apr_pool_t *p)
{
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    const unsigned char *sig = jws->sig;
    size_t sig_len = jws->sig_len;
    int der_len = 0;
    apr_status_t rv = APR_EGENERAL;

    (void)p;
    if (!key || !key->pkey) return APR_EINVAL;
    if (jws->alg == ATR_JOSE_RS384) {
        if (strcmp(key->kty, "RSA")) return APR_EINVAL;
    }
    else if (jws->alg == ATR_JOSE_ES384) {
        if (strcmp(key->kty, "EC")) return APR_EINVAL;
        if (es_raw_to_der(&der, &der_len, jws->sig, jws->sig_len) != APR_SUCCESS) return APR_EINVAL;
        sig = der;
        sig_len = (size_t)der_len;
    }
    else {
        return APR_EINVAL;
    }
    md = EVP_MD_CTX_new();
    if (md && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key->pkey) == 1
        && EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jws->signing_input,
                            jws->signing_input_len) == 1) {
        rv = APR_SUCCESS;
    }
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return rv;
}

static int pkey_is_p384(EVP_PKEY *key)
{
    char name[64];
    size_t n = 0;
    return EVP_PKEY_is_a(key, "EC")
           && EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &n) == 1
           && !strcmp(name, "secp384r1");
}

apr_status_t atr_jws_sign(const char **pcompact, const json_t *payload, EVP_PKEY *key, const char *kid,
                          apr_pool_t *p)
{
    int is_ec = pkey_is_p384(key);
    json_t *header;
    const char *hdr, *pay, *input;
    unsigned char *sig = NULL, raw[2 * ES384_PART];
    const unsigned char *sigout;
    size_t sig_len = 0;
    EVP_MD_CTX *md = NULL;
    apr_status_t rv = APR_EGENERAL;

    if (!is_ec && !EVP_PKEY_is_a(key, "RSA")) return APR_EINVAL;
    header = atr_json_pool_own(json_pack("{s:s, s:s}", "alg", is_ec ? "ES384" : "RS384", "typ", "JWT"), p);
    if (kid) json_object_set_new(header, "kid", json_string(kid));
    hdr = atr_json_dump(header, p);
    pay = atr_json_dump(payload, p);
    input = apr_pstrcat(p, atr_b64url_encode((const unsigned char *)hdr, strlen(hdr), p), ".",
                        atr_b64url_encode((const unsigned char *)pay, strlen(pay), p), NULL);
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1
        || EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, strlen(input)) != 1) goto out;
    sig = OPENSSL_malloc(sig_len);
    if (!sig || EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) != 1) goto out;
    sigout = sig;
    if (is_ec) {  /* DER → r||s, each left-padded to 48 bytes */
        const unsigned char *d = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)sig_len);
        if (!es) goto out;
        memset(raw, 0, sizeof(raw));
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, ES384_PART);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + ES384_PART, ES384_PART);
        ECDSA_SIG_free(es);
        sigout = raw;
        sig_len = sizeof(raw);
    }
    *pcompact = apr_pstrcat(p, input, ".", atr_b64url_encode(sigout, sig_len, p), NULL);
    rv = APR_SUCCESS;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(sig);
    return rv;
}

apr_status_t atr_jose_load_private_pem(EVP_PKEY **pkey, const char *path, const char **perr, apr_pool_t *p)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;
    if (!f) {
        *perr = apr_psprintf(p, "cannot open key file %s", path);
        return APR_ENOENT;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k || !(EVP_PKEY_is_a(k, "RSA") || pkey_is_p384(k))) {
        EVP_PKEY_free(k);
        *perr = apr_psprintf(p, "%s is not a PEM RSA or EC P-384 private key", path);
        return APR_EINVAL;
    }
    *pkey = pool_pkey(k, p);
    return APR_SUCCESS;
}

static const char *bn_param_b64(EVP_PKEY *key, const char *name, int pad, apr_pool_t *p)
{
    BIGNUM *bn = NULL;
    unsigned char *buf;
    int len;
    const char *r = NULL;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return NULL;
    len = pad ? pad : BN_num_bytes(bn);
    buf = apr_palloc(p, (apr_size_t)len + 1);
    if (BN_bn2binpad(bn, buf, len) == len) r = atr_b64url_encode(buf, (apr_size_t)len, p);
    BN_free(bn);
    return r;
}

json_t *atr_jwk_from_pkey(EVP_PKEY *key, const char *kid, apr_pool_t *p)
{
    json_t *jwk;
    if (pkey_is_p384(key)) {
        jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-384",
                        "x", bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, ES384_PART, p),
                        "y", bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, ES384_PART, p), "alg", "ES384");
    }
    else if (EVP_PKEY_is_a(key, "RSA")) {
        jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "n", bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0, p),
                        "e", bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0, p), "alg", "RS384");
    }
    else {
        return NULL;
    }
    if (!jwk) return NULL;
    if (kid) json_object_set_new(jwk, "kid", json_string(kid));
    json_object_set_new(jwk, "use", json_string("sig"));
    return atr_json_pool_own(jwk, p);
}
