/* ATR list-change Subscriptions: checking, storing, the notification and its delivery. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include "atr_subscription.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_jwks_fetch.h"
#include "atr_log.h"
#include "atr_time.h"

#define FAIL(...) do { *perr = apr_psprintf(p, __VA_ARGS__); return APR_EINVAL; } while (0)

apr_status_t atr_sub_parse(atr_sub_t **psub, const char *body, const char *id, int allow_loopback_http,
                           const char **perr, apr_pool_t *p)
{
    atr_sub_t *sub = apr_pcalloc(p, sizeof(*sub));
    json_t *s, *ch, *v, *e;
    const char *jerr, *rt, *crit, *filter, *type, *payload, *content, *uerr;
    size_t i;

    *psub = NULL;
    *perr = NULL;
    if (!body || !*body) FAIL("the request needs a Subscription resource (application/fhir+json)");
    if (atr_json_parse(&s, body, strlen(body), &jerr, p) != APR_SUCCESS) FAIL("the body is not JSON: %s", jerr);
    rt = atr_json_str(s, "resourceType");
    if (!json_is_object(s) || !rt || strcmp(rt, "Subscription")) FAIL("the body is not a Subscription resource");
    /* SUB-01: the topic, and one Group as the filter */
    crit = atr_json_str(s, "criteria");
    if (!crit || strcmp(crit, ATR_SUB_TOPIC)) FAIL("criteria must be the topic " ATR_SUB_TOPIC);
    e = atr_json_ext_find(json_object_get(s, "_criteria"), ATR_SUB_BACKPORT "backport-filter-criteria");
    filter = atr_json_str(e, "valueString");
    if (!filter || strncmp(filter, "Group/", 6) || !atr_fhir_is_id(filter + 6)) {
        FAIL("_criteria needs the extension backport-filter-criteria with valueString Group/<id>");
    }
    sub->group_id = apr_pstrdup(p, filter + 6);
    /* SUB-03: rest-hook, FHIR JSON, id-only */
    ch = json_object_get(s, "channel");
    if (!json_is_object(ch)) FAIL("channel is missing");
    type = atr_json_str(ch, "type");
    if (!type || strcmp(type, "rest-hook")) FAIL("channel.type must be rest-hook");
    payload = atr_json_str(ch, "payload");
    if (payload && strcmp(payload, "application/fhir+json")) FAIL("channel.payload must be application/fhir+json");
    e = atr_json_ext_find(json_object_get(ch, "_payload"), ATR_SUB_BACKPORT "backport-payload-content");
    content = atr_json_str(e, "valueCode");
    if (content && strcmp(content, "id-only")) FAIL("only id-only payload content is supported");
    sub->endpoint = atr_json_str(ch, "endpoint");
    if (!sub->endpoint || atr_jwks_url_check(sub->endpoint, allow_loopback_http, &uerr, p) != APR_SUCCESS) {
        FAIL("channel.endpoint must be an https URL%s", sub->endpoint ? apr_pstrcat(p, ": ", uerr, NULL) : "");
    }
    sub->endpoint = apr_pstrdup(p, sub->endpoint);
    sub->headers = apr_array_make(p, 2, sizeof(const char *));
    v = json_object_get(ch, "header");
    if (v && !json_is_array(v)) FAIL("channel.header must be an array of strings");
    json_array_foreach(v, i, e) {
        const char *h = json_string_value(e), *c;
        if (!h || !strchr(h, ':') || strchr(h, ':') == h) FAIL("channel.header[%lu] is not \"Name: value\"", (unsigned long)i);
        for (c = h; *c; c++) {
            if (*c == '\r' || *c == '\n') FAIL("channel.header[%lu] contains a line break", (unsigned long)i);
        }
        APR_ARRAY_PUSH(sub->headers, const char *) = apr_pstrdup(p, h);
    }
    /* ours: the id, the status (requested -> active); no versioning of Subscriptions */
    json_object_set_new(s, "id", json_string(id));
    json_object_set_new(s, "status", json_string("active"));
    json_object_del(s, "meta");
    json_object_del(s, "error");
    sub->id = apr_pstrdup(p, id);
    sub->status = "active";
    sub->body = atr_json_dump(s, p);
    *psub = sub;
    return APR_SUCCESS;
}

static const char *headers_json(const apr_array_header_t *h, apr_pool_t *p)
{
    json_t *a = json_array();
    const char *s;
    int i;
    for (i = 0; h && i < h->nelts; i++) json_array_append_new(a, json_string(APR_ARRAY_IDX(h, i, const char *)));
    s = atr_json_dump(a, p);
    json_decref(a);
    return s;
}

apr_status_t atr_sub_get(atr_sub_t **psub, atr_db_t *db, const char *id, apr_pool_t *p)
{
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    atr_sub_t *sub = NULL;
    apr_status_t rv = atr_db_select(&rows, db, "atr_sub_get", p, 1, &id);

    *psub = NULL;
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *h;
        json_error_t jerr;
        json_t *ha;
        size_t i;
        json_t *e;
        sub = apr_pcalloc(p, sizeof(*sub));
        sub->id = atr_db_col(rows, row, 0);
        sub->client_id = atr_db_col(rows, row, 1);
        sub->group_id = atr_db_col(rows, row, 2);
        sub->endpoint = atr_db_col(rows, row, 3);
        h = atr_db_col(rows, row, 4);
        sub->base_url = atr_db_col(rows, row, 5);
        sub->status = atr_db_col(rows, row, 6);
        sub->body = atr_db_col(rows, row, 7);
        sub->notified_version = atr_db_col(rows, row, 8) ? atoi(atr_db_col(rows, row, 8)) : 0;
        sub->events = atr_db_col(rows, row, 9) ? atol(atr_db_col(rows, row, 9)) : 0;
        sub->attempts = atr_db_col(rows, row, 10) ? atoi(atr_db_col(rows, row, 10)) : 0;
        sub->error = atr_db_col(rows, row, 11);
        sub->headers = apr_array_make(p, 2, sizeof(const char *));
        ha = h ? json_loads(h, 0, &jerr) : NULL;
        json_array_foreach(ha, i, e) {
            if (json_is_string(e)) APR_ARRAY_PUSH(sub->headers, const char *) = apr_pstrdup(p, json_string_value(e));
        }
        json_decref(ha);
    }
    if (!sub) return APR_NOTFOUND;
    *psub = sub;
    return APR_SUCCESS;
}

apr_status_t atr_sub_put(int *pcreated, atr_db_t *db, atr_sub_t *sub, apr_time_t now, apr_pool_t *p)
{
    atr_sub_t *old = NULL;
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    const char *args[11], *ms = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now));
    const char *cargs[2] = { "Group", sub->group_id };
    int version = 0, n = 0;
    atr_db_tx_t *tx;
    apr_status_t rv;

    *pcreated = 0;
    if ((rv = atr_db_tx_begin(&tx, db, p)) != APR_SUCCESS) return rv;
    rv = atr_sub_get(&old, db, sub->id, p);
    if (rv == APR_SUCCESS && strcmp(old->client_id, sub->client_id)) {
        rv = APR_EEXIST;
        goto leave;
    }
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) goto leave;
    rv = atr_db_select(&rows, db, "atr_res_current", p, 2, cargs);
    if (rv != APR_SUCCESS) goto leave;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        version = atr_db_col(rows, row, 0) ? atoi(atr_db_col(rows, row, 0)) : 0;
    }
    sub->notified_version = version;
    if (!old) {
        args[0] = sub->id;
        args[1] = sub->client_id;
        args[2] = sub->group_id;
        args[3] = sub->endpoint;
        args[4] = headers_json(sub->headers, p);
        args[5] = sub->base_url;
        args[6] = sub->body;
        args[7] = apr_itoa(p, version);
        args[8] = ms;
        args[9] = ms;
        rv = atr_db_exec(db, &n, "atr_sub_insert", p, 10, args);
        *pcreated = 1;
    }
    else {
        args[0] = sub->group_id;
        args[1] = sub->endpoint;
        args[2] = headers_json(sub->headers, p);
        args[3] = sub->base_url;
        args[4] = sub->body;
        args[5] = apr_itoa(p, version);
        args[6] = ms;
        args[7] = sub->id;
        args[8] = sub->client_id;
        rv = atr_db_exec(db, &n, "atr_sub_update", p, 9, args);
    }
leave:
    if (rv != APR_SUCCESS) atr_db_tx_fail(tx);
    {
        apr_status_t erv = atr_db_tx_end(tx);
        if (rv == APR_SUCCESS) rv = erv;
    }
    return rv;
}

json_t *atr_sub_resource(const atr_sub_t *sub, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *s = json_loads(sub->body, 0, &jerr);
    if (!s) s = json_pack("{s:s,s:s}", "resourceType", "Subscription", "id", sub->id);
    json_object_set_new(s, "status", json_string(sub->status));
    if (sub->error && strcmp(sub->status, "active")) json_object_set_new(s, "error", json_string(sub->error));
    return atr_json_pool_own(s, p);
}

apr_status_t atr_sub_due(apr_array_header_t **pids, apr_array_header_t **pversions, atr_db_t *db, apr_time_t now,
                         apr_interval_time_t stale, int max, apr_pool_t *p)
{
    const char *args[3];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    *pids = apr_array_make(p, 4, sizeof(const char *));
    *pversions = apr_array_make(p, 4, sizeof(int));
    args[0] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now));
    args[1] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now - stale));
    args[2] = apr_itoa(p, max);
    rv = atr_db_select(&rows, db, "atr_sub_due", p, 3, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *id = atr_db_col(rows, row, 0), *v = atr_db_col(rows, row, 1);
        if (!id || !v) continue;
        APR_ARRAY_PUSH(*pids, const char *) = apr_pstrdup(p, id);
        APR_ARRAY_PUSH(*pversions, int) = atoi(v);
    }
    return APR_SUCCESS;
}

apr_status_t atr_sub_claim(int *pmine, atr_db_t *db, const char *id, const char *claim, apr_time_t now,
                           apr_interval_time_t stale, apr_pool_t *p)
{
    const char *args[5];
    int n = 0;
    apr_status_t rv;
    args[0] = claim;
    args[1] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now));
    args[2] = id;
    args[3] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now - stale));
    args[4] = args[1];
    rv = atr_db_exec(db, &n, "atr_sub_claim", p, 5, args);
    *pmine = rv == APR_SUCCESS && n == 1;
    return rv;
}

apr_status_t atr_sub_delivered(atr_db_t *db, const atr_sub_t *sub, const char *claim, int version, apr_pool_t *p)
{
    const char *args[3];
    args[0] = apr_itoa(p, version);
    args[1] = sub->id;
    args[2] = claim;
    return atr_db_exec(db, NULL, "atr_sub_delivered", p, 3, args);
}

apr_status_t atr_sub_failed(atr_db_t *db, const atr_sub_t *sub, const char *claim, const char *error,
                            apr_time_t now, apr_pool_t *p)
{
    const char *args[5];
    int attempts = sub->attempts + 1;
    /* 1, 2, 4, ... s, at most 5 minutes */
    apr_interval_time_t delay = apr_time_from_sec(attempts >= 9 ? 300 : (1 << (attempts - 1)));
    if (delay > apr_time_from_sec(300)) delay = apr_time_from_sec(300);
    args[0] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)apr_time_as_msec(now + delay));
    args[1] = error;
    args[2] = attempts >= ATR_SUB_MAX_ATTEMPTS ? "error" : "active";
    args[3] = sub->id;
    args[4] = claim;
    return atr_db_exec(db, NULL, "atr_sub_failed", p, 5, args);
}

const char *atr_sub_notification(const atr_sub_t *sub, int version, long event_number, apr_time_t now,
                                 apr_pool_t *p)
{
    const char *sub_url = apr_pstrcat(p, sub->base_url, "/Subscription/", sub->id, NULL);
    const char *focus = apr_psprintf(p, "%s/Group/%s/_history/%d", sub->base_url, sub->group_id, version);
    const char *ts = atr_time_instant(now, p);
    const char *n = apr_ltoa(p, event_number);
    json_t *status, *bundle;
    const char *out;

    status = json_pack("{s:s,s:[{s:s,s:{s:s}},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},"
                       "{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:{s:s}}]}]}",
                       "resourceType", "Parameters", "parameter",
                       "name", "subscription", "valueReference", "reference", sub_url,
                       "name", "topic", "valueCanonical", ATR_SUB_TOPIC,
                       "name", "status", "valueCode", "active",
                       "name", "type", "valueCode", "event-notification",
                       "name", "events-since-subscription-start", "valueString", n,
                       "name", "notification-event", "part",
                       "name", "event-number", "valueString", n,
                       "name", "timestamp", "valueInstant", ts,
                       "name", "focus", "valueReference", "reference", focus);
    bundle = json_pack("{s:s,s:s,s:s,s:[{s:s,s:o,s:{s:s,s:s},s:{s:s}},{s:s,s:{s:s,s:s},s:{s:s}}]}",
                       "resourceType", "Bundle", "type", "history", "timestamp", ts, "entry",
                       "fullUrl", apr_pstrcat(p, "urn:uuid:", sub->id, "-", n, NULL), "resource", status,
                       "request", "method", "GET", "url", apr_pstrcat(p, sub_url, "/$status", NULL),
                       "response", "status", "200",
                       "fullUrl", focus,
                       "request", "method", "PUT", "url", apr_pstrcat(p, "Group/", sub->group_id, NULL),
                       "response", "status", "200");
    out = atr_json_dump(bundle, p);
    json_decref(bundle);
    return out;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *baton)
{
    (void)data;
    (void)baton;
    return size * nmemb;
}

apr_status_t atr_sub_deliver(const atr_sub_t *sub, const char *payload, int timeout_ms, int allow_loopback_http,
                             const char **perr, apr_pool_t *p)
{
    struct curl_slist *hdrs = NULL;
    CURL *curl;
    CURLcode cc;
    long code = 0;
    int i;

    *perr = NULL;
    if (atr_jwks_url_check(sub->endpoint, allow_loopback_http, perr, p) != APR_SUCCESS) return APR_EINVAL;
    curl = curl_easy_init();
    if (!curl) {
        *perr = "cannot create an HTTP client";
        return APR_ENOMEM;
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/fhir+json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (i = 0; sub->headers && i < sub->headers->nelts; i++) {
        hdrs = curl_slist_append(hdrs, APR_ARRAY_IDX(sub->headers, i, const char *));
    }
    curl_easy_setopt(curl, CURLOPT_URL, sub->endpoint);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mod_atr");
    if (!strncasecmp(sub->endpoint, "http://", 7)) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    cc = curl_easy_perform(curl);
    if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        *perr = apr_psprintf(p, "POST %s: %s", sub->endpoint, curl_easy_strerror(cc));
        return APR_EGENERAL;
    }
    if (code < 200 || code > 299) {
        *perr = apr_psprintf(p, "POST %s answered %ld", sub->endpoint, code);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}
