/* Our access tokens: compact JWS, HS256 under the shared server secret (see atr_token.h).
 * The header is fixed, so verification compares the algorithm exactly and never lets the
 * token choose how it is checked (no "none", no RS256 confusion). */
#include <string.h>
#include <ctype.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <jansson.h>
#include "atr_token.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_scope.h"

#define TOKEN_KEY_MIN 32
#define TOKEN_KEY_FILE_MAX 4096
#define HS256_LEN 32

struct atr_token_key_t {
    unsigned char *secret;
    apr_size_t len;
};

atr_token_key_t *atr_token_key_make(const unsigned char *secret, apr_size_t len, apr_pool_t *p)
{
    atr_token_key_t *key = apr_pcalloc(p, sizeof(*key));
    key->secret = apr_pmemdup(p, secret, len);
    key->len = len;
    return key;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode text keys (hex, then standard or url-safe base64, whitespace ignored); a file that
 * is neither is taken as raw bytes. The decoded form is used only when long enough, so a
 * 40-character random ASCII string stays a 40-byte secret. */
static void decode_key_text(const unsigned char **pdata, apr_size_t *plen, const unsigned char *raw,
                            apr_size_t rawlen, apr_pool_t *p)
{
    char *txt = apr_palloc(p, rawlen + 1);
    apr_size_t n = 0, i;
    int is_hex = 1, is_b64 = 1;

    *pdata = raw;
    *plen = rawlen;
    for (i = 0; i < rawlen; i++) {
        unsigned char c = raw[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (hexval(c) < 0) is_hex = 0;
        if (!isalnum(c) && c != '+' && c != '/' && c != '-' && c != '_' && c != '=') is_b64 = 0;
        txt[n++] = (char)c;
    }
    txt[n] = '\0';
    if (n == 0) return;
    if (is_hex && n % 2 == 0 && n / 2 >= TOKEN_KEY_MIN) {
        unsigned char *out = apr_palloc(p, n / 2);
        for (i = 0; i < n / 2; i++) out[i] = (unsigned char)(hexval(txt[2 * i]) * 16 + hexval(txt[2 * i + 1]));
        *pdata = out;
        *plen = n / 2;
        return;
    }
    if (is_b64) {
        unsigned char *out;
        apr_size_t olen;
        for (i = 0; i < n; i++) {
            if (txt[i] == '+') txt[i] = '-';
            else if (txt[i] == '/') txt[i] = '_';
        }
        while (n > 0 && txt[n - 1] == '=') txt[--n] = '\0';
        if (atr_b64url_decode(&out, &olen, txt, n, p) == APR_SUCCESS && olen >= TOKEN_KEY_MIN) {
            *pdata = out;
            *plen = olen;
        }
    }
}

apr_status_t atr_token_key_load(atr_token_key_t **pkey, const char *path, const char **perr,
                                apr_pool_t *p)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    unsigned char *buf;
    const unsigned char *data;
    apr_size_t len = 0, dlen;
    apr_status_t rv;

    *pkey = NULL;
    if ((rv = apr_stat(&fi, path, APR_FINFO_TYPE | APR_FINFO_PROT | APR_FINFO_SIZE, p)) != APR_SUCCESS
        && rv != APR_INCOMPLETE) {
        *perr = apr_psprintf(p, "cannot read token key file %s", path);
        goto leave;
    }
    rv = APR_EINVAL;
    if (fi.filetype != APR_REG) {
        *perr = apr_psprintf(p, "token key file %s is not a regular file", path);
        goto leave;
    }
    if ((fi.valid & APR_FINFO_PROT)
        && (fi.protection & (APR_GREAD | APR_GWRITE | APR_WREAD | APR_WWRITE))) {
        *perr = apr_psprintf(p, "token key file %s is readable or writable by group/other "
                             "(chmod 0600 or 0400)", path);
        goto leave;
    }
    if (fi.size > TOKEN_KEY_FILE_MAX) {
        *perr = apr_psprintf(p, "token key file %s is too large (at most %d bytes)", path, TOKEN_KEY_FILE_MAX);
        goto leave;
    }
    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p)) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot open token key file %s", path);
        goto leave;
    }
    buf = apr_palloc(p, TOKEN_KEY_FILE_MAX + 1);
    rv = apr_file_read_full(f, buf, TOKEN_KEY_FILE_MAX + 1, &len);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        *perr = apr_psprintf(p, "cannot read token key file %s", path);
        goto leave;
    }
    rv = APR_EINVAL;
    if (len > TOKEN_KEY_FILE_MAX) {
        *perr = apr_psprintf(p, "token key file %s is too large", path);
        goto leave;
    }
    decode_key_text(&data, &dlen, buf, len, p);
    if (dlen < TOKEN_KEY_MIN) {
        *perr = apr_psprintf(p, "token key file %s holds fewer than %d bytes of secret", path, TOKEN_KEY_MIN);
        goto leave;
    }
    *pkey = atr_token_key_make(data, dlen, p);
    memset(buf, 0, len);
    rv = APR_SUCCESS;
leave:
    if (f) apr_file_close(f);
    return rv;
}

static int hs256(unsigned char out[HS256_LEN], const atr_token_key_t *key, const char *data, apr_size_t len)
{
    unsigned int olen = 0;
    if (!HMAC(EVP_sha256(), key->secret, (int)key->len, (const unsigned char *)data, len, out, &olen)
        || olen != HS256_LEN) {
        return 0;
    }
    return 1;
}

/* {"alg":"HS256","typ":"JWT"} */
#define TOKEN_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

apr_status_t atr_token_issue(const char **ptoken, const atr_token_key_t *key, const char *issuer,
                             const char *client_id, const char *scope, apr_interval_time_t lifetime,
                             apr_time_t now, apr_pool_t *p)
{
    unsigned char jti[16], mac[HS256_LEN];
    json_t *claims = NULL;
    const char *payload, *input;
    apr_int64_t iat = apr_time_sec(now);
    apr_status_t rv = APR_EGENERAL;

    *ptoken = NULL;
    if (RAND_bytes(jti, sizeof(jti)) != 1) goto leave;
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", issuer, "sub", client_id,
                       "aud", issuer, "scope", scope ? scope : "", "iat", (json_int_t)iat,
                       "exp", (json_int_t)(iat + apr_time_sec(lifetime)),
                       "jti", atr_b64url_encode(jti, sizeof(jti), p));
    if (!claims) {
        rv = APR_EINVAL;
        goto leave;
    }
    payload = atr_json_dump(claims, p);
    input = apr_pstrcat(p, TOKEN_HEADER_B64, ".", atr_b64url_encode((const unsigned char *)payload,
                                                                    strlen(payload), p), NULL);
    if (!hs256(mac, key, input, strlen(input))) goto leave;
    *ptoken = apr_pstrcat(p, input, ".", atr_b64url_encode(mac, sizeof(mac), p), NULL);
    rv = APR_SUCCESS;
leave:
    if (claims) json_decref(claims);
    return rv;
}

static json_t *decode_json_part(const char *s, apr_size_t len, apr_pool_t *p)
{
    unsigned char *data;
    apr_size_t n;
    json_t *j;
    if (atr_b64url_decode(&data, &n, s, len, p) != APR_SUCCESS) return NULL;
    j = json_loadb((const char *)data, n, JSON_REJECT_DUPLICATES, NULL);
    if (!j) return NULL;
    atr_json_pool_own(j, p);
    return json_is_object(j) ? j : NULL;
}

apr_status_t atr_token_verify(atr_token_claims_t **pclaims, const atr_token_key_t *key,
                              const char *issuer, const char *token, apr_time_t now,
                              const char **perr, apr_pool_t *p)
{
    const char *dot1, *dot2, *alg, *sub, *scope;
    unsigned char mac[HS256_LEN], *sig;
    apr_size_t siglen;
    json_t *header, *payload, *exp, *aud;
    atr_token_claims_t *c;

    *pclaims = NULL;
    *perr = "malformed token";
    if (!token || !key || !(dot1 = strchr(token, '.')) || !(dot2 = strchr(dot1 + 1, '.'))
        || strchr(dot2 + 1, '.')) {
        return APR_EINVAL;
    }
    if (!(header = decode_json_part(token, (apr_size_t)(dot1 - token), p))) return APR_EINVAL;
    alg = atr_json_str(header, "alg");
    if (!alg || strcmp(alg, "HS256")) {
        *perr = "unsupported token algorithm";
        return APR_EINVAL;
    }
    if (atr_b64url_decode(&sig, &siglen, dot2 + 1, strlen(dot2 + 1), p) != APR_SUCCESS
        || siglen != HS256_LEN || !hs256(mac, key, token, (apr_size_t)(dot2 - token))
        || CRYPTO_memcmp(mac, sig, HS256_LEN) != 0) {
        *perr = "bad signature";
        return APR_EINVAL;
    }
    if (!(payload = decode_json_part(dot1 + 1, (apr_size_t)(dot2 - dot1 - 1), p))) return APR_EINVAL;
    aud = json_object_get(payload, "aud");
    if (!atr_json_str(payload, "iss") || strcmp(atr_json_str(payload, "iss"), issuer)
        || !json_is_string(aud) || strcmp(json_string_value(aud), issuer)) {
        *perr = "token issued for another server";
        return APR_EINVAL;
    }
    exp = json_object_get(payload, "exp");
    sub = atr_json_str(payload, "sub");
    scope = atr_json_str(payload, "scope");
    if (!json_is_integer(exp) || !sub || !*sub || !scope) return APR_EINVAL;
    if ((apr_int64_t)json_integer_value(exp) <= apr_time_sec(now)) {
        *perr = "token expired";
        return APR_EINVAL;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->client_id = apr_pstrdup(p, sub);
    c->scope = apr_pstrdup(p, scope);
    c->exp = apr_time_from_sec((apr_time_t)json_integer_value(exp));
    if (atr_scope_parse_list(&c->scopes, NULL, c->scope, p) != APR_SUCCESS || !c->scopes) {
        c->scopes = apr_array_make(p, 1, sizeof(atr_scope_t *));
    }
    *perr = NULL;
    *pclaims = c;
    return APR_SUCCESS;
}
