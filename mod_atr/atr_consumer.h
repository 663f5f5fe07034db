/* The Consumer side of ATR (atrctl fetch): SMART Backend Services discovery and tokens, Group
 * discovery by identifier, the Bulk Data async pattern (kick-off, poll, manifest) and parallel,
 * resumable downloads, against any conforming Producer. Only standard behaviour is relied on:
 * the token endpoint comes from .well-known/smart-configuration, the status URL from
 * Content-Location, file URLs from the manifest. libcurl, jansson and OpenSSL; no httpd. */
#ifndef ATR_CONSUMER_H
#define ATR_CONSUMER_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include "atr_jose.h"

/* What kind of failure the last call met: atrctl fetch turns it into its exit code. */
typedef enum {
    ATR_CONSUMER_OK = 0,
    ATR_CONSUMER_E_LOCAL,       /* local files, keys, memory */
    ATR_CONSUMER_E_DISCOVERY,   /* .well-known/smart-configuration missing or unusable */
    ATR_CONSUMER_E_AUTH,        /* the token endpoint refused us, or every token was refused */
    ATR_CONSUMER_E_NOGROUP,     /* no Group matched the identifiers */
    ATR_CONSUMER_E_SERVER,      /* the server refused or failed a request (OperationOutcome) */
    ATR_CONSUMER_E_DOWNLOAD,    /* a file could not be downloaded or failed verification */
    ATR_CONSUMER_E_NETWORK      /* connection, TLS or timeout, after retries */
} atr_consumer_err_e;

typedef struct atr_consumer_t atr_consumer_t;

/* One HTTP answer; body NUL-terminated (in the pool), headers of the final response. */
typedef struct atr_consumer_resp_t {
    long status;
    const char *body;
    apr_size_t len;
    apr_table_t *headers;
} atr_consumer_resp_t;

/* Progress for people: phase text and, while downloading, counters. */
typedef struct atr_consumer_progress_t {
    const char *phase;          /* "discovery", "token", "search", "kick-off", "waiting", "download" */
    const char *detail;         /* e.g. X-Progress of the server, or NULL */
    int files_done, files_total;
    apr_off_t bytes;            /* bytes on disk so far (downloads) */
    apr_off_t bytes_expected;   /* sum of the Content-Lengths known so far, 0 when unknown */
} atr_consumer_progress_t;
typedef void atr_consumer_progress_fn(void *baton, const atr_consumer_progress_t *progress);

typedef struct atr_consumer_opts_t {
    const char *base;           /* FHIR base URL (a trailing slash is dropped) */
    const char *client_id;
    EVP_PKEY *key;              /* private key: RSA (RS384) or EC P-384 (ES384) */
    const char *kid;            /* NULL: the RFC 7638 thumbprint of the key */
    const char *scope;          /* NULL: v1 read scope on every type, system/[*].read */
    int allow_http;             /* http:// allowed to hosts other than loopback (never by default) */
    long timeout;               /* s, connect and non-download requests (default 60) */
    atr_consumer_progress_fn *progress;
    void *progress_baton;
} atr_consumer_opts_t;

/* One file of a manifest, and how its download went. */
typedef struct atr_consumer_file_t {
    const char *type;           /* resource type of the manifest item */
    const char *url;            /* as the manifest says */
    apr_int64_t count;          /* the manifest's count, -1 when it gives none */
    int is_error;               /* from the manifest's "error" array */
    const char *name;           /* local file name, e.g. Patient-1.ndjson */
    apr_off_t bytes;            /* on disk */
    apr_int64_t lines;          /* on disk */
    int resumed;                /* downloads continued with a Range request */
    int attempts;
    int done;
} atr_consumer_file_t;

apr_status_t atr_consumer_create(atr_consumer_t **pc, const atr_consumer_opts_t *opts, const char **perr,
                                 apr_pool_t *p);
/* The kind of the last failure, and counters for the summary. */
atr_consumer_err_e atr_consumer_error_kind(const atr_consumer_t *c);
int atr_consumer_tokens_issued(const atr_consumer_t *c);
const char *atr_consumer_kid(const atr_consumer_t *c);

/* Reads [base]/.well-known/smart-configuration: the token endpoint (SMART-DISC). */
apr_status_t atr_consumer_discover(atr_consumer_t *c, const char **perr, apr_pool_t *p);

/* A valid access token: the one held unless it expires within a margin (or force), else a
 * new one from a freshly signed client assertion. */
apr_status_t atr_consumer_token(const char **ptoken, atr_consumer_t *c, int force, const char **perr,
                                apr_pool_t *p);

/* The ids of the Groups with identifier system|value the server shows us (STU2
 * identifier=system|value, then, when that finds nothing or is refused and type_code is given,
 * STU1 identifier:of-type=v2-0203|type_code|value). Pages are followed. */
apr_status_t atr_consumer_find_groups(apr_array_header_t **pids, atr_consumer_t *c, const char *system,
                                      const char *value, const char *type_code, const char **perr,
                                      apr_pool_t *p);

/* Kick-off of a Group export: $davinci-data-export, or $export when the server has no such
 * operation. query: the kick-off parameters already encoded ("_type=...&_since=..."), or NULL.
 * body: a Parameters resource (JSON) to POST instead (Bulk Data's POST kick-off, the only
 * way to send `patient`); the query is then not sent. Waits out 429 answers.
 * *pstatus_url from Content-Location, *pop the operation used. */
apr_status_t atr_consumer_kickoff(const char **pstatus_url, const char **pop, atr_consumer_t *c,
                                  const char *group_id, const char *query, const char *body,
                                  const char **perr, apr_pool_t *p);

/* Polls the status URL honouring Retry-After (202, 429, 503) until the manifest. max_wait
 * (0: none) bounds the total wait. APR_NOTFOUND when the job is gone (404/410). */
apr_status_t atr_consumer_poll(json_t **pmanifest, atr_consumer_t *c, const char *status_url,
                               apr_interval_time_t max_wait, const char **perr, apr_pool_t *p);

/* The files of a manifest (output, then error) with local names <Type>-<n>.ndjson. */
apr_status_t atr_consumer_manifest_files(apr_array_header_t **pfiles, int *prequires_token,
                                         const json_t *manifest, const char **perr, apr_pool_t *p);

/* Downloads files (atr_consumer_file_t) into outdir, `parallel` at once (libcurl multi).
 * A file is written as <name>.part and renamed when complete and its line count equals the
 * manifest's; an existing <name> is kept, an existing <name>.part is continued with a Range
 * request. Network errors, 429/503 and an expired token (401) are retried. */
apr_status_t atr_consumer_download(atr_consumer_t *c, apr_array_header_t *files, int requires_token,
                                   const char *outdir, int parallel, const char **perr, apr_pool_t *p);

/* DELETE of a status URL (best effort, for an export we give up on). */
void atr_consumer_cancel(atr_consumer_t *c, const char *status_url, apr_pool_t *p);

/* ---- helpers, public for the unit tests ---- */

/* RFC 7638 JWK thumbprint (SHA-256, base64url) of a public or private RSA / EC P-384 key. */
apr_status_t atr_consumer_thumbprint(const char **pkid, EVP_PKEY *key, apr_pool_t *p);

/* Seconds to wait from a Retry-After value (delta-seconds or HTTP-date; now for the date form);
 * dflt when absent or unreadable; capped at 3600. */
apr_int64_t atr_consumer_retry_after(const char *value, apr_time_t now, apr_int64_t dflt);

/* A one-line account of an error answer for people: OAuth error JSON ("invalid_client: ..."),
 * OperationOutcome issues ("error/not-found: ..."), or the start of the text. */
const char *atr_consumer_error_text(long status, const char *body, apr_size_t len, apr_pool_t *p);

/* Number of lines in buf (a last line without '\n' counts), continuing from *plast
 * (the last byte seen, 0 at the start). */
apr_int64_t atr_consumer_count_lines(const char *buf, apr_size_t len, char *plast);

#endif
