/* A Consumer's keys as the pages show them: a JWKS URL fetched now (libatr's fetcher with the
 * form's limits), a pasted JWKS parsed, each key by kid, kty and alg. */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_jwks_fetch.h"

void admin_keys_table(admin_req_t *a, const char *caption, const apr_array_header_t *keys)
{
    int i;
    admin_out_fmt(a->out, "<table class=\"keys\"><caption>%s</caption><thead><tr><th scope=\"col\">kid</th>"
                  "<th scope=\"col\">kty</th><th scope=\"col\">alg</th></tr></thead><tbody>", H(caption));
    for (i = 0; keys && i < keys->nelts; i++) {
        const atr_jwk_t *k = APR_ARRAY_IDX(keys, i, const atr_jwk_t *);
        admin_out_fmt(a->out, "<tr><td class=\"kid\">%s</td><td>%s</td><td>%s</td></tr>",
                      H(k->kid), H(k->kty), H(k->alg ? k->alg : "(any)"));
    }
    admin_out_raw(a->out, "</tbody></table>\n");
}

/* Fetch a JWKS URL once (a fresh cache: nothing is remembered between requests). */
apr_status_t admin_keys_fetch(apr_array_header_t **pkeys, admin_req_t *a, const char *url, const char **perr)
{
    atr_jwks_fetch_conf_t fc;
    atr_jwks_cache_t *cache = NULL;
    apr_status_t rv;

    memset(&fc, 0, sizeof(fc));
    fc.timeout = apr_time_from_sec(5);
    fc.max_bytes = 65536;
    fc.allow_loopback_http = a->conf->allow_http_loopback;
    rv = atr_jwks_cache_create(&cache, &fc, a->p);
    if (rv != APR_SUCCESS) {
        *perr = "cannot create the JWKS fetcher";
        return rv;
    }
    rv = atr_jwks_cache_get(pkeys, NULL, cache, url, 0, perr, a->p);
    if (rv == APR_SUCCESS && (!*pkeys || (*pkeys)->nelts == 0)) {
        *perr = "the JWK Set holds no usable key (RSA >= 2048 bits or EC P-384, each with a kid)";
        rv = APR_EINVAL;
    }
    return rv;
}

apr_status_t admin_keys_parse(apr_array_header_t **pkeys, const char *text, const char **perr, apr_pool_t *p)
{
    json_t *j = NULL;
    int skipped = 0;
    apr_status_t rv = atr_json_parse(&j, text, strlen(text), perr, p);
    if (rv != APR_SUCCESS) return rv;
    return atr_jwks_parse(pkeys, &skipped, j, perr, p);
}

/* The keys under caption, or what is wrong with the source named label. */
static void keys_or_error(admin_req_t *a, apr_status_t rv, const apr_array_header_t *keys, const char *caption,
                          const char *label, const char *err)
{
    if (rv == APR_SUCCESS) admin_keys_table(a, caption, keys);
    else admin_out_fmt(a->out, "<p class=\"error\">%s: %s</p>\n", label, H(err));
}

void admin_keys_show(admin_req_t *a, const atr_client_t *c)
{
    apr_array_header_t *keys = NULL;
    const char *err = NULL;
    apr_status_t rv;

    if (c->jwks_url) {
        rv = admin_keys_fetch(&keys, a, c->jwks_url, &err);
        keys_or_error(a, rv, keys, "Keys at the JWKS URL now", "JWKS URL", err);
    }
    if (c->jwks) {
        keys = NULL;
        err = NULL;
        rv = admin_keys_parse(&keys, c->jwks, &err, a->p);
        keys_or_error(a, rv, keys, "Keys in the stored JWKS", "Stored JWKS", err);
    }
}
