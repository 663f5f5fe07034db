/* Bulk export jobs in the store: see atr_job.h. The statements are in atr_sql.c
 * (atr_job_*); each state change is one conditional UPDATE whose row count tells the caller
 * whether the change was still its to make. */
#include <stdlib.h>
#include <string.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "atr_id.h"
#include "atr_job.h"
#include "atr_time.h"

#define I64(p, v) apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)(v))

static apr_int64_t ms(apr_time_t t)
{
    return (apr_int64_t)apr_time_as_msec(t);
}

apr_status_t atr_job_new_id(const char **pid, apr_pool_t *p)
{
    return atr_id_hex(pid, ATR_JOB_ID_BYTES, p);
}

apr_status_t atr_job_create(const char **pid, atr_db_t *db, const char *client_id,
                            const char *group_id, const char *request, const char *params,
                            apr_time_t now, apr_pool_t *p)
{
    const char *id, *args[7];
    int n = 0;
    apr_status_t rv;

    *pid = NULL;
    if ((rv = atr_job_new_id(&id, p)) != APR_SUCCESS) return rv;
    args[0] = id;
    args[1] = client_id;
    args[2] = group_id;
    args[3] = request;
    args[4] = params;
    args[5] = I64(p, ms(now));
    args[6] = atr_time_instant(now, p);
    if ((rv = atr_db_exec(db, &n, "atr_job_insert", p, 7, args)) != APR_SUCCESS) return rv;
    /* no row: the partial unique index on (client, Group) of active jobs said no */
    if (n == 1) *pid = id;
    return APR_SUCCESS;
}

static apr_int64_t col_i64(atr_db_rows_t *rows, apr_dbd_row_t *row, int col)
{
    const char *v = atr_db_col(rows, row, col);
    return v && *v ? apr_atoi64(v) : 0;
}

static const char *col_str(atr_db_rows_t *rows, apr_dbd_row_t *row, int col, apr_pool_t *p)
{
    const char *v = atr_db_col(rows, row, col);
    return v ? apr_pstrdup(p, v) : NULL;
}

/* One row of atr_job_get / atr_job_by_claim. */
static apr_status_t read_job(atr_job_t **pjob, atr_db_t *db, const char *label, const char *key,
                             apr_pool_t *p)
{
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    atr_job_t *j;
    apr_status_t rv;

    *pjob = NULL;
    if ((rv = atr_db_select(&rows, db, label, p, 1, &key)) != APR_SUCCESS) return rv;
    if ((rv = atr_db_next(&row, rows)) != APR_SUCCESS) return rv == APR_EOF ? APR_NOTFOUND : rv;
    j = apr_pcalloc(p, sizeof(*j));
    j->id = col_str(rows, row, 0, p);
    j->client_id = col_str(rows, row, 1, p);
    j->group_id = col_str(rows, row, 2, p);
    j->request = col_str(rows, row, 3, p);
    j->params = col_str(rows, row, 4, p);
    j->state = col_str(rows, row, 5, p);
    j->created = col_i64(rows, row, 6);
    j->tx_time = col_str(rows, row, 7, p);
    j->node = col_str(rows, row, 8, p);
    j->claim = col_str(rows, row, 9, p);
    j->prev_claim = col_str(rows, row, 10, p);
    j->heartbeat = col_i64(rows, row, 11);
    j->attempts = (int)col_i64(rows, row, 12);
    j->progress = col_i64(rows, row, 13);
    j->outdir = col_str(rows, row, 14, p);
    j->files = col_str(rows, row, 15, p);
    j->error_code = col_str(rows, row, 16, p);
    j->error = col_str(rows, row, 17, p);
    j->finished = col_i64(rows, row, 18);
    j->expires = col_i64(rows, row, 19);
    j->last_poll = col_i64(rows, row, 20);
    /* drain: some drivers keep the statement busy until the last row is read */
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
    }
    if (!j->id || !j->state) return APR_EGENERAL;
    *pjob = j;
    return APR_SUCCESS;
}

apr_status_t atr_job_get(atr_job_t **pjob, atr_db_t *db, const char *id, apr_pool_t *p)
{
    return read_job(pjob, db, "atr_job_get", id, p);
}

apr_status_t atr_job_poll(int *pallowed, atr_db_t *db, const char *id, apr_time_t now,
                          apr_interval_time_t min_interval, apr_pool_t *p)
{
    const char *args[3];
    int n = 0;
    apr_status_t rv;

    args[0] = I64(p, ms(now));
    args[1] = id;
    args[2] = I64(p, min_interval > 0 ? ms(now - min_interval) : ms(now) + 1);
    rv = atr_db_exec(db, &n, "atr_job_poll", p, 3, args);
    *pallowed = rv == APR_SUCCESS && n > 0;
    return rv;
}

/* PostgreSQL: the claim in a transaction that holds the node's advisory lock (atr_sql.c
 * atr_job_node_lock). One UPDATE alone is not enough there: two processes of one node could
 * both count max - 1 running jobs in their snapshots and both claim. *pn: rows claimed. */
static apr_status_t claim_pgsql(int *pn, atr_db_t *db, const char *node, const char *claim,
                                const char *now, const char *stale, const char *max_attempts,
                                const char *max_running, apr_pool_t *p)
{
    atr_db_tx_t *tx;
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    const char *args[8];
    apr_status_t rv, erv;

    *pn = 0;
    if ((rv = atr_db_tx_begin(&tx, db, p)) != APR_SUCCESS) return rv;
    rv = atr_db_select(&rows, db, "atr_job_node_lock", p, 1, &node);
    if (rv == APR_SUCCESS) {
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
        }
        args[0] = node;
        args[1] = claim;
        args[2] = now;
        args[3] = stale;
        args[4] = max_attempts;
        args[5] = node;
        args[6] = stale;
        args[7] = max_running;
        rv = atr_db_exec(db, pn, "atr_job_claim_locked", p, 8, args);
    }
    if (rv != APR_SUCCESS) {
        *pn = 0;
        atr_db_tx_fail(tx);
    }
    erv = atr_db_tx_end(tx);
    if (rv == APR_SUCCESS && erv != APR_SUCCESS) {
        *pn = 0;
        rv = erv;
    }
    return rv;
}

apr_status_t atr_job_claim(atr_job_t **pjob, atr_db_t *db, const char *node, int max_running,
                           apr_time_t now, apr_interval_time_t stale_after, apr_pool_t *p)
{
    const char *claim, *stale, *max_attempts, *args[10];
    int n = 0;
    apr_status_t rv;

    *pjob = NULL;
    if (max_running <= 0) return APR_SUCCESS;
    stale = I64(p, ms(now - stale_after));
    {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        const char *cargs[2];
        int any = 0;
        cargs[0] = stale;
        cargs[1] = max_attempts = apr_itoa(p, ATR_JOB_MAX_ATTEMPTS);
        if ((rv = atr_db_select(&rows, db, "atr_job_claimable", p, 2, cargs)) != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) any = 1;
        if (!any) return APR_SUCCESS;
    }
    if ((rv = atr_job_new_id(&claim, p)) != APR_SUCCESS) return rv;
    if (db->driver_name && !strcmp(db->driver_name, "pgsql")) {
        rv = claim_pgsql(&n, db, node, claim, I64(p, ms(now)), stale, max_attempts,
                         apr_itoa(p, max_running), p);
        if (rv != APR_SUCCESS || n != 1) return rv;
        return read_job(pjob, db, "atr_job_by_claim", claim, p);
    }
    /* SQLite: one UPDATE is atomic (writers hold the database lock), limit included */
    args[0] = node;
    args[1] = claim;
    args[2] = I64(p, ms(now));
    args[3] = stale;
    args[4] = max_attempts;
    args[5] = stale;
    args[6] = max_attempts;
    args[7] = node;
    args[8] = stale;
    args[9] = apr_itoa(p, max_running);
    if ((rv = atr_db_exec(db, &n, "atr_job_claim", p, 10, args)) != APR_SUCCESS) return rv;
    if (n != 1) return APR_SUCCESS;
    return read_job(pjob, db, "atr_job_by_claim", claim, p);
}

apr_status_t atr_job_heartbeat(int *pmine, atr_db_t *db, const atr_job_t *job, apr_int64_t progress,
                               apr_time_t now, apr_pool_t *p)
{
    const char *args[4];
    int n = 0;
    apr_status_t rv;

    args[0] = I64(p, ms(now));
    args[1] = I64(p, progress);
    args[2] = job->id;
    args[3] = job->claim;
    rv = atr_db_exec(db, &n, "atr_job_heartbeat", p, 4, args);
    *pmine = n > 0;
    return rv;
}

apr_status_t atr_job_finish(int *pmine, atr_db_t *db, const atr_job_t *job, const char *outdir,
                            const char *files, apr_int64_t progress, apr_time_t now,
                            apr_interval_time_t retention, apr_pool_t *p)
{
    const char *args[8];
    int n = 0;
    apr_status_t rv;

    args[0] = outdir;
    args[1] = files;
    args[2] = I64(p, progress);
    args[3] = I64(p, ms(now));
    args[4] = I64(p, ms(now + retention));
    args[5] = args[3];
    args[6] = job->id;
    args[7] = job->claim;
    rv = atr_db_exec(db, &n, "atr_job_done", p, 8, args);
    *pmine = n > 0;
    return rv;
}

apr_status_t atr_job_fail(int *pmine, atr_db_t *db, const atr_job_t *job, const char *code,
                          const char *text, apr_time_t now, apr_interval_time_t retention,
                          apr_pool_t *p)
{
    const char *args[6];
    int n = 0;
    apr_status_t rv;

    args[0] = code;
    args[1] = text;
    args[2] = I64(p, ms(now));
    args[3] = I64(p, ms(now + retention));
    args[4] = job->id;
    args[5] = job->claim;
    rv = atr_db_exec(db, &n, "atr_job_failed", p, 6, args);
    *pmine = n > 0;
    return rv;
}

apr_status_t atr_job_release(atr_db_t *db, const atr_job_t *job, apr_pool_t *p)
{
    const char *args[2];
    args[0] = job->id;
    args[1] = job->claim;
    return atr_db_exec(db, NULL, "atr_job_release", p, 2, args);
}

apr_status_t atr_job_exhausted(apr_array_header_t **pjobs, atr_db_t *db, apr_time_t now,
                               apr_interval_time_t stale_after, int limit, apr_pool_t *p)
{
    const char *args[3];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_array_header_t *jobs = apr_array_make(p, 4, sizeof(atr_job_t *));
    apr_status_t rv;

    *pjobs = jobs;
    args[0] = I64(p, ms(now - stale_after));
    args[1] = apr_itoa(p, ATR_JOB_MAX_ATTEMPTS);
    args[2] = apr_itoa(p, limit);
    if ((rv = atr_db_select(&rows, db, "atr_job_exhausted", p, 3, args)) != APR_SUCCESS) return rv;
    while ((rv = atr_db_next(&row, rows)) == APR_SUCCESS) {
        atr_job_t *j = apr_pcalloc(p, sizeof(*j));
        j->id = col_str(rows, row, 0, p);
        j->claim = col_str(rows, row, 1, p);
        j->prev_claim = col_str(rows, row, 2, p);
        j->state = "running";
        if (j->id && j->claim) APR_ARRAY_PUSH(jobs, atr_job_t *) = j;
    }
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

apr_status_t atr_job_delete(int *pfound, atr_db_t *db, const char *id, const char *client_id,
                            apr_time_t now, apr_pool_t *p)
{
    const char *args[3];
    int n = 0;
    apr_status_t rv;

    args[0] = I64(p, ms(now));
    args[1] = id;
    args[2] = client_id;
    rv = atr_db_exec(db, &n, "atr_job_delete", p, 3, args);
    *pfound = n > 0;
    return rv;
}

apr_status_t atr_job_expired(apr_array_header_t **pids, atr_db_t *db, apr_time_t now,
                             apr_interval_time_t stale_after, int limit, apr_pool_t *p)
{
    const char *args[3];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_array_header_t *ids = apr_array_make(p, 8, sizeof(const char *));
    apr_status_t rv;

    *pids = ids;
    args[0] = I64(p, ms(now));
    args[1] = I64(p, ms(now - stale_after));
    args[2] = apr_itoa(p, limit);
    if ((rv = atr_db_select(&rows, db, "atr_job_expired", p, 3, args)) != APR_SUCCESS) return rv;
    while ((rv = atr_db_next(&row, rows)) == APR_SUCCESS) {
        const char *id = atr_db_col(rows, row, 0);
        if (id) APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(p, id);
    }
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

apr_status_t atr_job_remove(atr_db_t *db, const char *id, apr_pool_t *p)
{
    return atr_db_exec(db, NULL, "atr_job_remove", p, 1, &id);
}

/* Remove path's entries (recursing depth more levels), then path itself. */
static apr_status_t rmtree(const char *path, int depth, apr_pool_t *p)
{
    apr_dir_t *dir;
    apr_finfo_t fi;
    apr_status_t rv, first = APR_SUCCESS;

    rv = apr_dir_open(&dir, path, p);
    if (APR_STATUS_IS_ENOENT(rv)) return APR_SUCCESS;
    if (rv != APR_SUCCESS) return rv;
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, dir) == APR_SUCCESS) {
        const char *child;
        if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) continue;
        child = apr_pstrcat(p, path, "/", fi.name, NULL);
        rv = fi.filetype == APR_DIR && depth > 0 ? rmtree(child, depth - 1, p)
                                                 : apr_file_remove(child, p);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv) && first == APR_SUCCESS) first = rv;
    }
    apr_dir_close(dir);
    rv = apr_dir_remove(path, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv) && first == APR_SUCCESS) first = rv;
    return first;
}

apr_status_t atr_job_rmtree(const char *path, apr_pool_t *p)
{
    apr_pool_t *ptemp;
    apr_status_t rv;
    apr_pool_create(&ptemp, p);
    rv = rmtree(path, 1, ptemp);
    apr_pool_destroy(ptemp);
    return rv;
}
