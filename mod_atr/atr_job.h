/* Bulk export jobs in the store (table atr_export_job; docs/bulk-export.md "Jobs and
 * workers"). Every change is one conditional statement, so any process of any node can
 * answer for a job and the workers' claims, heartbeats and hand-backs never race each
 * other: a worker whose claim was taken over (or whose job was deleted) learns it from a
 * statement that changed no row, and stops. Portable core (no httpd). */
#ifndef ATR_JOB_H
#define ATR_JOB_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include "atr_db.h"

/* After this many claims that ended without a result (the worker died), a job fails. */
#define ATR_JOB_MAX_ATTEMPTS 3

typedef struct atr_job_t {
    const char *id;           /* 32 hex digits */
    const char *client_id, *group_id;
    const char *request;      /* the kick-off URL (manifest "request") */
    const char *params;       /* atr_bulk_params_to_json */
    const char *state;        /* queued | running | done | failed | deleted */
    const char *tx_time;      /* FHIR instant of the kick-off (manifest transactionTime) */
    const char *node, *claim, *prev_claim;
    const char *outdir;       /* done: the files' directory, relative to the export dir */
    const char *files;        /* done: JSON {"output":[...],"error":[...]} of {type,name,count,bytes} */
    const char *error_code, *error;   /* failed: IssueType and text */
    apr_int64_t created, heartbeat, progress, finished, expires, last_poll;   /* ms */
    int attempts;
} atr_job_t;

/* A new random id (32 hex digits) or claim key (atr_id_hex of ATR_JOB_ID_BYTES). */
#define ATR_JOB_ID_BYTES 16
apr_status_t atr_job_new_id(const char **pid, apr_pool_t *p);

/* Queue a job. *pid gets its id; when the client already has a queued or running export of
 * this Group, nothing is added and *pid is NULL (the caller answers 429). */
apr_status_t atr_job_create(const char **pid, atr_db_t *db, const char *client_id,
                            const char *group_id, const char *request, const char *params,
                            apr_time_t now, apr_pool_t *p);

/* APR_NOTFOUND when there is no such job (in any state). */
apr_status_t atr_job_get(atr_job_t **pjob, atr_db_t *db, const char *id, apr_pool_t *p);

/* A status poll: *pallowed = 0 when the previous allowed poll was less than min_interval ago
 * (the caller answers 429); otherwise the poll is recorded. min_interval 0 allows all. */
apr_status_t atr_job_poll(int *pallowed, atr_db_t *db, const char *id, apr_time_t now,
                          apr_interval_time_t min_interval, apr_pool_t *p);

/* Claim the oldest queued job, or a running one whose heartbeat is older than stale_after,
 * unless this node already runs max_running jobs. *pjob NULL when there is nothing to do.
 * The claimed job's claim is fresh; prev_claim names the attempt it replaces (or NULL). */
apr_status_t atr_job_claim(atr_job_t **pjob, atr_db_t *db, const char *node, int max_running,
                           apr_time_t now, apr_interval_time_t stale_after, apr_pool_t *p);

/* Heartbeat with progress. *pmine = 0: the job was deleted or claimed by someone else. */
apr_status_t atr_job_heartbeat(int *pmine, atr_db_t *db, const atr_job_t *job, apr_int64_t progress,
                               apr_time_t now, apr_pool_t *p);

/* The job is done (files: JSON as atr_job_t.files) or failed. *pmine = 0 as above (the
 * caller then removes what it wrote). */
apr_status_t atr_job_finish(int *pmine, atr_db_t *db, const atr_job_t *job, const char *outdir,
                            const char *files, apr_int64_t progress, apr_time_t now,
                            apr_interval_time_t retention, apr_pool_t *p);
apr_status_t atr_job_fail(int *pmine, atr_db_t *db, const atr_job_t *job, const char *code,
                          const char *text, apr_time_t now, apr_interval_time_t retention,
                          apr_pool_t *p);

/* Hand a running job back to the queue (the worker's httpd is stopping). */
apr_status_t atr_job_release(atr_db_t *db, const atr_job_t *job, apr_pool_t *p);

/* Up to limit running jobs (atr_job_t *: id and claim) whose workers died
 * ATR_JOB_MAX_ATTEMPTS times: no worker claims them again; the caller fails each with
 * atr_job_fail and removes what its last attempt left. */
apr_status_t atr_job_exhausted(apr_array_header_t **pjobs, atr_db_t *db, apr_time_t now,
                               apr_interval_time_t stale_after, int limit, apr_pool_t *p);

/* Mark the client's job deleted (BULK-DEL-01). *pfound = 0: no such job of this client. */
apr_status_t atr_job_delete(int *pfound, atr_db_t *db, const char *id, const char *client_id,
                            apr_time_t now, apr_pool_t *p);

/* Up to limit ids of jobs to remove: finished past their retention, or deleted and no
 * longer heartbeating. */
apr_status_t atr_job_expired(apr_array_header_t **pids, atr_db_t *db, apr_time_t now,
                             apr_interval_time_t stale_after, int limit, apr_pool_t *p);
apr_status_t atr_job_remove(atr_db_t *db, const char *id, apr_pool_t *p);

/* Remove a directory and what is in it, two levels deep at most (<job>/<claim>/<file>);
 * a missing directory is not an error. */
apr_status_t atr_job_rmtree(const char *path, apr_pool_t *p);

#endif
