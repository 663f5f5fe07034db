/* Parallel, resumable downloads of a manifest's files with the libcurl multi interface.
 * Each file goes to <name>.part and becomes <name> only once complete and its line count
 * matches the manifest, so a file under its final name is always whole; a .part left by an
 * interrupted run is continued with a Range request (identity encoding: Range offsets count
 * the bytes we wrote, which are the decoded bytes). A server that ignores the Range (200)
 * gets the file again from the start. */
#include <string.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include <curl/curl.h>
#include "atr_consumer.h"
#include "atr_consumer_int.h"
#include "atr_log.h"

#define MAX_ATTEMPTS 6          /* per file: network failures, 401, 429/503 */
#define ERR_BODY_MAX 8192

typedef struct xfer_t {
    atr_consumer_t *c;
    atr_consumer_file_t *f;
    CURL *curl;
    struct curl_slist *hdrs;
    apr_file_t *fd;
    const char *part;
    apr_off_t offset;           /* bytes on disk when the request was sent */
    apr_off_t expected;         /* bytes the file will have, 0 when unknown */
    apr_table_t *headers;
    int decided;                /* the first body byte has been seen */
    long status;
    char last;                  /* last byte on disk (line counting) */
    char *errbuf;
    apr_size_t errlen;
    int range_bad;              /* a 206 that does not continue where we are */
    apr_status_t werr;          /* a local write error */
    apr_pool_t *pool;
} xfer_t;

typedef struct file_state_t {
    apr_time_t not_before;
    int restarted;              /* downloaded again from 0 after a bad line count */
    char last;
} file_state_t;

static apr_status_t open_part(xfer_t *x, file_state_t *st, const char *outdir, apr_pool_t *p)
{
    apr_finfo_t fi;
    apr_status_t rv;

    x->part = apr_pstrcat(p, outdir, "/", x->f->name, ".part", NULL);
    rv = apr_file_open(&x->fd, x->part, APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv != APR_SUCCESS) return rv;
    if ((rv = apr_file_info_get(&fi, APR_FINFO_SIZE, x->fd)) != APR_SUCCESS) return rv;
    if (fi.size != x->f->bytes) {
        /* a part left by an earlier run: count what it holds */
        char buf[65536];
        apr_size_t n;
        apr_off_t zero = 0;
        x->f->lines = 0;
        st->last = 0;
        apr_file_seek(x->fd, APR_SET, &zero);
        for (;;) {
            n = sizeof(buf);
            rv = apr_file_read(x->fd, buf, &n);
            if (n) x->f->lines += atr_consumer_count_lines(buf, n, &st->last);
            if (rv == APR_EOF) break;
            if (rv != APR_SUCCESS) return rv;
        }
        x->f->bytes = fi.size;
    }
    x->offset = fi.size;
    x->last = st->last;
    return APR_SUCCESS;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *baton)
{
    xfer_t *x = baton;
    size_t n = size * nmemb;
    apr_size_t w = n;

    if (!x->decided) {
        x->decided = 1;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
        if (x->status == 200 && x->offset > 0) {
            /* the server sent the whole file: start the part over */
            apr_off_t zero = 0;
            if (apr_file_trunc(x->fd, 0) != APR_SUCCESS || apr_file_seek(x->fd, APR_SET, &zero) != APR_SUCCESS) {
                x->werr = APR_EGENERAL;
                return 0;
            }
            x->offset = 0;
            x->f->bytes = 0;
            x->f->lines = 0;
            x->last = 0;
        }
        else if (x->status == 206) {
            const char *cr = apr_table_get(x->headers, "Content-Range");
            char *end = NULL;
            apr_off_t start = -1;
            if (cr && !strncasecmp(cr, "bytes ", 6)) start = apr_strtoi64(cr + 6, &end, 10);
            if (start != x->offset) {
                x->range_bad = 1;
                return 0;
            }
            x->f->resumed++;
        }
        if (x->status == 200 || x->status == 206) {
            curl_off_t cl = -1;
            const char *enc = apr_table_get(x->headers, "Content-Encoding");
            curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            x->expected = (cl >= 0 && (!enc || !strcasecmp(enc, "identity"))) ? x->offset + cl : 0;
        }
    }
    if (x->status != 200 && x->status != 206) {
        /* an error answer: keep its start for the message */
        apr_size_t k = n;
        if (!x->errbuf) x->errbuf = apr_palloc(x->pool, ERR_BODY_MAX + 1);
        if (x->errlen + k > ERR_BODY_MAX) k = ERR_BODY_MAX - x->errlen;
        memcpy(x->errbuf + x->errlen, data, k);
        x->errlen += k;
        return n;
    }
    if (apr_file_write_full(x->fd, data, n, &w) != APR_SUCCESS) {
        x->werr = APR_EGENERAL;
        return 0;
    }
    x->f->lines += atr_consumer_count_lines(data, n, &x->last);
    x->f->bytes += (apr_off_t)n;
    return n;
}

static apr_status_t start(xfer_t **px, atr_consumer_t *c, CURLM *multi, atr_consumer_file_t *f, file_state_t *st,
                          int requires_token, const char *outdir, const char **perr, apr_pool_t *p)
{
    xfer_t *x;
    apr_pool_t *xp;
    const char *token = NULL;
    apr_status_t rv;

    if (requires_token && (rv = atr_consumer_token(&token, c, 0, perr, p)) != APR_SUCCESS) return rv;
    apr_pool_create(&xp, p);
    x = apr_pcalloc(xp, sizeof(*x));
    x->pool = xp;
    x->c = c;
    x->f = f;
    x->headers = apr_table_make(xp, 16);
    if ((rv = open_part(x, st, outdir, xp)) != APR_SUCCESS) {
        char buf[128];
        *perr = apr_psprintf(p, "cannot open %s/%s.part: %s", outdir, f->name, apr_strerror(rv, buf, sizeof(buf)));
        apr_pool_destroy(xp);
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, rv);
    }
    if (!(x->curl = curl_easy_init())) {
        *perr = "cannot start an HTTP client";
        apr_pool_destroy(xp);
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_ENOMEM);
    }
    x->hdrs = curl_slist_append(NULL, "Accept: application/fhir+ndjson");
    if (token) x->hdrs = curl_slist_append(x->hdrs, apr_pstrcat(xp, "Authorization: Bearer ", token, NULL));
    atr_consumer_curl_common(x->curl, c, f->url);
    if (x->offset > 0) {
        curl_easy_setopt(x->curl, CURLOPT_RANGE, apr_psprintf(xp, "%" APR_OFF_T_FMT "-", x->offset));
    }
    else {
        curl_easy_setopt(x->curl, CURLOPT_ACCEPT_ENCODING, "");   /* gzip when the server offers it */
    }
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(x->curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_TIME, c->timeout);
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->curl, CURLOPT_HEADERFUNCTION, atr_consumer_on_header);
    curl_easy_setopt(x->curl, CURLOPT_HEADERDATA, x->headers);
    curl_easy_setopt(x->curl, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(multi, x->curl) != CURLM_OK) {
        *perr = "cannot add a download to the HTTP client";
        curl_easy_cleanup(x->curl);
        curl_slist_free_all(x->hdrs);
        apr_pool_destroy(xp);
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_EGENERAL);
    }
    f->attempts++;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, 0, p, "ATR00810: GET %s -> %s (from byte %" APR_OFF_T_FMT ")",
                   f->url, f->name, x->offset);
    *px = x;
    return APR_SUCCESS;
}

static void finish(xfer_t *x, CURLM *multi)
{
    curl_multi_remove_handle(multi, x->curl);
    curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->hdrs);
    if (x->fd) apr_file_close(x->fd);
    apr_pool_destroy(x->pool);
}

/* The part is complete as far as the server is concerned: check it, then give it its name. */
static apr_status_t complete(atr_consumer_t *c, atr_consumer_file_t *f, file_state_t *st, const char *outdir,
                             int *pagain, const char **perr, apr_pool_t *p)
{
    const char *part = apr_pstrcat(p, outdir, "/", f->name, ".part", NULL);
    const char *final = apr_pstrcat(p, outdir, "/", f->name, NULL);
    apr_status_t rv;

    *pagain = 0;
    if (f->count >= 0 && f->lines != f->count) {
        if (!st->restarted) {
            /* perhaps a part from another export: one more try from the start */
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, 0, p, "ATR00811: %s has %" APR_INT64_T_FMT " lines, the "
                           "manifest says %" APR_INT64_T_FMT "; downloading it again", f->name, f->lines, f->count);
            st->restarted = 1;
            apr_file_remove(part, p);
            f->bytes = 0;
            f->lines = 0;
            st->last = 0;
            *pagain = 1;
            return APR_SUCCESS;
        }
        *perr = apr_psprintf(p, "%s (%s): %" APR_INT64_T_FMT " lines, but the manifest says %" APR_INT64_T_FMT,
                             f->name, f->url, f->lines, f->count);
        return atr_consumer_fail(c, ATR_CONSUMER_E_DOWNLOAD, APR_EGENERAL);
    }
    if ((rv = apr_file_rename(part, final, p)) != APR_SUCCESS) {
        char buf[128];
        *perr = apr_psprintf(p, "cannot rename %s: %s", part, apr_strerror(rv, buf, sizeof(buf)));
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, rv);
    }
    f->done = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00812: %s: %" APR_INT64_T_FMT " lines, %" APR_OFF_T_FMT
                   " bytes%s", f->name, f->lines, f->bytes, f->resumed ? " (resumed)" : "");
    return APR_SUCCESS;
}

/* What to do with a finished transfer: done, again (when), or fail. */
static apr_status_t judge(xfer_t *x, CURLcode cc, file_state_t *st, const char *outdir, int *pagain,
                          const char **perr, apr_pool_t *p)
{
    atr_consumer_t *c = x->c;
    atr_consumer_file_t *f = x->f;
    long status = 0;
    apr_int64_t wait = 0;

    *pagain = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    apr_file_close(x->fd);
    x->fd = NULL;
    if (x->werr) {
        *perr = apr_psprintf(p, "cannot write %s", x->part);
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, x->werr);
    }
    if (x->range_bad) {
        *perr = apr_psprintf(p, "%s: the server answered a Range request for byte %" APR_OFF_T_FMT " with "
                                "another range (%s)", f->url, x->offset,
                             apr_table_get(x->headers, "Content-Range") ? apr_table_get(x->headers, "Content-Range")
                                                                        : "no Content-Range");
        return atr_consumer_fail(c, ATR_CONSUMER_E_DOWNLOAD, APR_EGENERAL);
    }
    if (cc == CURLE_OK && (status == 200 || status == 206)) return complete(c, f, st, outdir, pagain, perr, p);
    if (cc == CURLE_OK && status == 416 && x->offset > 0) {
        /* nothing after our last byte: the part may be whole already */
        return complete(c, f, st, outdir, pagain, perr, p);
    }
    if (cc != CURLE_OK) {
        *perr = apr_psprintf(p, "GET %s: %s", f->url, curl_easy_strerror(cc));
        if (f->attempts >= MAX_ATTEMPTS) return atr_consumer_fail(c, ATR_CONSUMER_E_NETWORK, APR_EGENERAL);
        wait = (apr_int64_t)1 << (f->attempts < 5 ? f->attempts : 5);
    }
    else if (status == 401) {
        const char *tok;
        *perr = apr_psprintf(p, "GET %s: %s", f->url, atr_consumer_error_text(status, x->errbuf, x->errlen, p));
        if (f->attempts >= MAX_ATTEMPTS) return atr_consumer_fail(c, ATR_CONSUMER_E_AUTH, APR_EGENERAL);
        if (atr_consumer_token(&tok, c, 1, perr, p) != APR_SUCCESS) return APR_EGENERAL;
    }
    else if (status == 429 || status == 503) {
        *perr = apr_psprintf(p, "GET %s: %s", f->url, atr_consumer_error_text(status, x->errbuf, x->errlen, p));
        if (f->attempts >= MAX_ATTEMPTS) return atr_consumer_fail(c, ATR_CONSUMER_E_DOWNLOAD, APR_EGENERAL);
        wait = atr_consumer_retry_after(apr_table_get(x->headers, "Retry-After"), apr_time_now(), 2);
    }
    else {
        *perr = apr_psprintf(p, "GET %s: %s", f->url, atr_consumer_error_text(status, x->errbuf, x->errlen, p));
        return atr_consumer_fail(c, status == 403 ? ATR_CONSUMER_E_AUTH : ATR_CONSUMER_E_DOWNLOAD, APR_EGENERAL);
    }
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00813: %s; trying again in %" APR_INT64_T_FMT " s "
                   "(attempt %d)", *perr, wait, f->attempts + 1);
    st->last = x->last;
    st->not_before = apr_time_now() + apr_time_from_sec(wait);
    *pagain = 1;
    return APR_SUCCESS;
}

static void report(atr_consumer_t *c, apr_array_header_t *files, xfer_t **running, int nrun)
{
    atr_consumer_progress_t pr;
    int i;

    if (!c->progress) return;
    memset(&pr, 0, sizeof(pr));
    pr.phase = "download";
    pr.files_total = files->nelts;
    for (i = 0; i < files->nelts; i++) {
        atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
        pr.bytes += f->bytes;
        if (f->done) {
            pr.files_done++;
            pr.bytes_expected += f->bytes;
        }
    }
    for (i = 0; i < nrun; i++) {
        if (running[i]) pr.bytes_expected += running[i]->expected;
    }
    c->progress(c->progress_baton, &pr);
}

apr_status_t atr_consumer_download(atr_consumer_t *c, apr_array_header_t *files, int requires_token,
                                   const char *outdir, int parallel, const char **perr, apr_pool_t *p)
{
    CURLM *multi = curl_multi_init();
    xfer_t **running;
    file_state_t *st;
    int *queued, i, nrun = 0, left = 0;
    apr_time_t last_report = 0;
    apr_status_t rv = APR_SUCCESS;

    if (!multi) {
        *perr = "cannot start an HTTP client";
        return atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_ENOMEM);
    }
    if (parallel < 1) parallel = 1;
    running = apr_pcalloc(p, sizeof(*running) * (apr_size_t)parallel);
    st = apr_pcalloc(p, sizeof(*st) * (apr_size_t)(files->nelts + 1));
    queued = apr_pcalloc(p, sizeof(*queued) * (apr_size_t)(files->nelts + 1));
    for (i = 0; i < files->nelts; i++) {
        atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
        apr_finfo_t fi;
        /* a file under its final name was verified by an earlier run */
        if (!f->done && apr_stat(&fi, apr_pstrcat(p, outdir, "/", f->name, NULL), APR_FINFO_SIZE, p) == APR_SUCCESS) {
            f->done = 1;
            f->bytes = fi.size;
            f->lines = f->count;
        }
        queued[i] = !f->done;
        left += queued[i];
        if (!f->done) f->bytes = -1;   /* makes open_part count what an existing part holds */
    }
    atr_consumer_report(c, "download", NULL);
    while (left > 0 || nrun > 0) {
        CURLMsg *msg;
        int still = 0, left_msgs = 0;
        apr_time_t now = apr_time_now();

        /* start what may start */
        for (i = 0; i < files->nelts && nrun < parallel && left > 0; i++) {
            atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
            int slot;
            if (!queued[i] || st[i].not_before > now) continue;
            for (slot = 0; running[slot]; slot++) ;
            if ((rv = start(&running[slot], c, multi, f, &st[i], requires_token, outdir, perr, p)) != APR_SUCCESS) {
                goto out;
            }
            queued[i] = 0;
            left--;
            nrun++;
        }
        if (curl_multi_perform(multi, &still) != CURLM_OK) {
            *perr = "the HTTP client failed";
            rv = atr_consumer_fail(c, ATR_CONSUMER_E_LOCAL, APR_EGENERAL);
            goto out;
        }
        while ((msg = curl_multi_info_read(multi, &left_msgs)) != NULL) {
            xfer_t *x = NULL;
            int slot, idx, again = 0;
            if (msg->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            idx = (int)(x->f - (atr_consumer_file_t *)files->elts);
            rv = judge(x, msg->data.result, &st[idx], outdir, &again, perr, p);
            for (slot = 0; slot < parallel; slot++) {
                if (running[slot] == x) running[slot] = NULL;
            }
            finish(x, multi);
            nrun--;
            if (rv != APR_SUCCESS) goto out;
            if (again) {
                queued[idx] = 1;
                left++;
            }
        }
        now = apr_time_now();
        if (now - last_report >= apr_time_from_msec(200)) {
            report(c, files, running, parallel);
            last_report = now;
        }
        if (nrun > 0) curl_multi_poll(multi, NULL, 0, 200, NULL);
        else if (left > 0) apr_sleep(apr_time_from_msec(100));
    }
    report(c, files, running, parallel);
out:
    for (i = 0; i < parallel; i++) {
        if (running[i]) finish(running[i], multi);
    }
    curl_multi_cleanup(multi);
    return rv;
}
