/* Inside the Consumer (atr_consumer.c, atr_consumer_dl.c): the struct and shared helpers. */
#ifndef ATR_CONSUMER_INT_H
#define ATR_CONSUMER_INT_H
#include <curl/curl.h>
#include "atr_consumer.h"

struct atr_consumer_t {
    apr_pool_t *pool;
    const char *base;
    const char *client_id;
    EVP_PKEY *key;
    const char *kid;
    atr_jose_alg_e alg;
    const char *scope;
    int allow_http;
    long timeout;
    atr_consumer_progress_fn *progress;
    void *progress_baton;
    const char *token_endpoint;
    const char *token;              /* never logged */
    apr_time_t token_expires;
    apr_interval_time_t token_margin;
    int tokens;
    atr_consumer_err_e kind;
};

apr_status_t atr_consumer_fail(atr_consumer_t *c, atr_consumer_err_e kind, apr_status_t rv);
apr_status_t atr_consumer_url_check(const atr_consumer_t *c, const char *url, const char **perr, apr_pool_t *p);
void atr_consumer_curl_common(CURL *curl, const atr_consumer_t *c, const char *url);
size_t atr_consumer_on_header(char *data, size_t size, size_t nmemb, void *baton);
apr_status_t atr_consumer_http(atr_consumer_resp_t *r, atr_consumer_t *c, const char *method, const char *url,
                               const char *const *hdrs, const char *body, const char *bearer, const char **perr,
                               apr_pool_t *p);
apr_status_t atr_consumer_authed(atr_consumer_resp_t *r, atr_consumer_t *c, const char *method, const char *url,
                                 const char *const *hdrs, const char *body, const char **perr, apr_pool_t *p);
void atr_consumer_report(atr_consumer_t *c, const char *phase, const char *detail);

#endif
