/* Export workers: every httpd child runs one on mod_watchdog (a thread that wakes four
 * times a second). A wake-up removes expired jobs now and then, and claims the oldest claimable job
 * from the store; the export then runs in that thread, heartbeating into the job row. The
 * job's state is only ever in the store, so a worker that dies (kill -9, crash) leaves a
 * row whose heartbeat goes stale, and any worker of any process or node claims it again.
 * A worker whose httpd is stopping (graceful restart or stop) hands its job back at once. */
#include <string.h>
#include <apr_atomic.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <unistd.h>
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_core.h"
#include "ap_mpm.h"
#include "mod_watchdog.h"
#include "atr_bulk_params.h"
#include "atr_export.h"
#include "atr_job.h"
#include "atr_json.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_export_worker.h"

#define WATCHDOG_NAME "_atr_export_"
/* A queued job starts within this; an idle wake-up is one indexed read. */
#define WAKE_EVERY apr_time_from_msec(250)
#define SWEEP_EVERY 40             /* wake-ups between two sweeps of expired jobs (10 s) */
#define SWEEP_BATCH 100
#define HEARTBEAT_EVERY apr_time_from_msec(1000)

static APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *wd_get_instance;
static APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *wd_register_callback;

static const char *node_name;   /* ATRNodeName or the host name: the per-node limit counts
                                 * its running jobs */
static int wakeups;

/* A child that exits destroys its pools (mod_dbd's connections among them) while the
 * watchdog thread may still be using one: mod_watchdog joins that thread only when the
 * process ends. So the child's exit first tells the worker to stop and waits until it has
 * handed its job back and returned its connection. */
static volatile apr_uint32_t worker_busy;
static volatile apr_uint32_t child_exiting;
#define EXIT_WAIT_MAX apr_time_from_sec(20)

/* The run of one claimed job. */
typedef struct run_t {
    server_rec *s;
    atr_db_t *db;
    atr_job_t *job;
    apr_pool_t *p;
    apr_time_t last_beat;
    int lost;       /* the job is no longer ours (deleted, or claimed again) */
    int stopping;   /* httpd is stopping */
} run_t;

static int httpd_stopping(void)
{
    int state = 0;
    return apr_atomic_read32(&child_exiting)
           || ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS || state == AP_MPMQ_STOPPING;
}

/* After every page of the export: notice a stopping httpd at once, heartbeat every second. */
static apr_status_t on_progress(void *baton, long written)
{
    run_t *run = baton;
    apr_time_t now = apr_time_now();

    if (httpd_stopping()) {
        run->stopping = 1;
        return APR_EINTR;
    }
    if (now - run->last_beat >= HEARTBEAT_EVERY) {
        apr_pool_t *ptemp;
        int mine = 1;
        apr_status_t rv;

        apr_pool_create(&ptemp, run->p);
        rv = atr_job_heartbeat(&mine, run->db, run->job, written, now, ptemp);
        apr_pool_destroy(ptemp);
        if (rv != APR_SUCCESS) {
            /* a busy store must not kill a long export: the next page tries again, and the
             * stale limit is many heartbeats away */
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, run->s, "ATR00760: export %s: heartbeat "
                         "failed: %s", run->job->id, atr_db_error(run->db, rv));
            return APR_SUCCESS;
        }
        run->last_beat = now;
        if (!mine) {
            run->lost = 1;
            return APR_EINTR;   /* any error stops the export; run->lost says why */
        }
    }
    return APR_SUCCESS;
}

static json_t *files_json(const apr_array_header_t *files)
{
    json_t *a = json_array();
    int i;
    for (i = 0; i < files->nelts; i++) {
        const atr_export_file_t *f = &APR_ARRAY_IDX(files, i, atr_export_file_t);
        json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I}", "type", f->type, "name", f->name,
                                           "count", (json_int_t)f->count, "bytes", (json_int_t)f->bytes));
    }
    return a;
}

/* What a failed export tells the Consumer (the status answer) and the operator (the log). */
static void failure_text(const char **pcode, const char **ptext, apr_status_t rv, const char *err,
                         const atr_job_t *job, apr_pool_t *p)
{
    if (rv == APR_NOTFOUND) {
        *pcode = "not-found";
        *ptext = apr_psprintf(p, "Group/%s no longer exists", job->group_id);
    }
    else if (APR_STATUS_IS_ENOSPC(rv)) {
        *pcode = "exception";
        *ptext = "the export failed: the server's export disk is full; try again later";
    }
    else {
        *pcode = "exception";
        *ptext = apr_psprintf(p, "the export failed on the server (%s); try again later",
                              err ? err : "internal error");
    }
}

static void run_job(server_rec *s, atr_db_t *db, atr_job_t *job, apr_pool_t *p)
{
    const char *dir = atr_conf_export_dir(s);
    const char *rel = apr_pstrcat(p, job->id, "/", job->claim, NULL);
    const char *outdir = apr_pstrcat(p, dir, "/", rel, NULL);
    atr_bulk_params_t *bp = NULL;
    atr_export_opts_t o;
    atr_export_result_t *res = NULL;
    const char *err = NULL;
    apr_time_t start = apr_time_now();
    apr_interval_time_t retention = apr_time_from_sec(atr_conf_export_retention(s));
    run_t run;
    apr_status_t rv;
    int mine = 1;

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ATR00761: export %s claimed by pid %" APR_PID_T_FMT
                 " on node %s (Group/%s, client %s, attempt %d)", job->id, getpid(), node_name,
                 job->group_id, job->client_id, job->attempts);
    if (job->prev_claim) {
        /* what the attempt before this one (its worker died) left behind */
        atr_job_rmtree(apr_pstrcat(p, dir, "/", job->id, "/", job->prev_claim, NULL), p);
        if ((rv = atr_export_forget(db, job->prev_claim, p)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00762: export %s: cannot remove the "
                         "scratch rows of the previous attempt: %s", job->id, atr_db_error(db, rv));
        }
    }

    memset(&run, 0, sizeof(run));
    run.s = s;
    run.db = db;
    run.job = job;
    run.p = p;
    run.last_beat = start;

    rv = atr_bulk_params_from_json(&bp, job->params, p);
    if (rv != APR_SUCCESS) {
        err = "the job's parameters are unreadable";
    }
    else if ((rv = apr_dir_make_recursive(outdir, APR_FPROT_OS_DEFAULT, p)) != APR_SUCCESS) {
        err = apr_psprintf(p, "cannot create %s", outdir);
    }
    else {
        memset(&o, 0, sizeof(o));
        o.group_id = job->group_id;
        o.types = bp->types;
        o.since = bp->since;
        o.until = bp->until;
        o.patients = bp->patients;
        o.issues = bp->issues;
        o.outdir = outdir;
        o.max_file_size = atr_conf_export_max_file_size(s);
        o.export_id = job->claim;
        o.progress = on_progress;
        o.progress_baton = &run;
        rv = atr_export_group(&res, db, &o, &err, p);
    }

    if (rv == APR_SUCCESS) {
        json_t *files = atr_json_pool_own(json_pack("{s:o,s:o}", "output", files_json(res->files),
                                                    "error", files_json(res->errors)), p);
        rv = atr_job_finish(&mine, db, job, rel, atr_json_dump(files, p), res->total, apr_time_now(),
                            retention, p);
        if (rv == APR_SUCCESS && mine) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ATR00763: export %s done: %ld resources in "
                         "%d files, %.1f s", job->id, res->total, res->files->nelts + res->errors->nelts,
                         (double)(apr_time_now() - start) / APR_USEC_PER_SEC);
            return;
        }
        if (rv != APR_SUCCESS) {
            /* the row still says running: the job will be claimed again after the stale limit */
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "ATR00764: export %s: cannot record its "
                         "completion: %s", job->id, atr_db_error(db, rv));
        }
        atr_job_rmtree(apr_pstrcat(p, dir, "/", job->id, NULL), p);
        return;
    }
    /* the export removed its files; the attempt's directory goes too */
    atr_job_rmtree(outdir, p);
    if (run.stopping) {
        rv = atr_job_release(db, job, p);
        ap_log_error(APLOG_MARK, APLOG_INFO, rv, s, "ATR00765: export %s handed back: httpd is "
                     "stopping", job->id);
        return;
    }
    if (run.lost) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ATR00766: export %s stopped: it was deleted "
                     "or claimed by another worker", job->id);
        return;
    }
    {
        const char *code, *text;
        apr_status_t frv;
        failure_text(&code, &text, rv, err, job, p);
        ap_log_error(APLOG_MARK, rv == APR_NOTFOUND ? APLOG_WARNING : APLOG_ERR, rv, s,
                     "ATR00767: export %s of Group/%s failed: %s", job->id, job->group_id,
                     err ? err : "error");
        frv = atr_job_fail(&mine, db, job, code, text, apr_time_now(), retention, p);
        if (frv == APR_SUCCESS && mine) {
            /* a failed job keeps no directory (its attempt's was removed above) */
            atr_job_rmtree(apr_pstrcat(p, dir, "/", job->id, NULL), p);
        }
        if (frv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, frv, s, "ATR00768: export %s: cannot record its "
                         "failure: %s", job->id, atr_db_error(db, frv));
        }
    }
}

/* Remove expired and deleted jobs with their files, and fail jobs that died too often. */
static void sweep(server_rec *s, atr_db_t *db, apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    apr_interval_time_t stale = apr_time_from_sec(atr_conf_export_stale_after(s));
    apr_array_header_t *ids;
    apr_status_t rv;
    int i, n = 0;

    if (atr_job_exhausted(&ids, db, now, stale, SWEEP_BATCH, p) == APR_SUCCESS) {
        for (i = 0; i < ids->nelts; i++) {
            atr_job_t *job = APR_ARRAY_IDX(ids, i, atr_job_t *);
            int mine = 0;
            rv = atr_job_fail(&mine, db, job, "exception", apr_psprintf(p, "the export was interrupted "
                              "%d times (its worker process ended each time); start a new export",
                              ATR_JOB_MAX_ATTEMPTS), now, apr_time_from_sec(atr_conf_export_retention(s)), p);
            if (rv != APR_SUCCESS || !mine) continue;
            n++;
            /* no later attempt will clean up after the last one; a failed job has no files.
             * The last attempt may have died before it removed its predecessor's scratch
             * rows (just after its claim): those go too. */
            atr_job_rmtree(apr_pstrcat(p, atr_conf_export_dir(s), "/", job->id, NULL), p);
            atr_export_forget(db, job->claim, p);
            if (job->prev_claim) atr_export_forget(db, job->prev_claim, p);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ATR00769: export %s failed: interrupted %d times",
                         job->id, ATR_JOB_MAX_ATTEMPTS);
        }
    }
    if ((rv = atr_job_expired(&ids, db, now, stale, SWEEP_BATCH, p)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00770: cannot list expired export jobs: %s",
                     atr_db_error(db, rv));
        return;
    }
    for (i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        /* files first: a row without files is harmless, files without a row are litter */
        rv = atr_job_rmtree(apr_pstrcat(p, atr_conf_export_dir(s), "/", id, NULL), p);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00771: cannot remove the files of "
                         "export %s", id);
            continue;
        }
        if ((rv = atr_job_remove(db, id, p)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00772: cannot remove export job %s: %s",
                         id, atr_db_error(db, rv));
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "ATR00773: export %s removed (expired or "
                         "deleted)", id);
        }
    }
}

static apr_status_t worker_tick(int state, void *data, apr_pool_t *pool)
{
    server_rec *s = data;
    atr_db_t *db;
    ap_dbd_t *dbd;
    atr_job_t *job = NULL;
    apr_status_t rv;

    /* always APR_SUCCESS: mod_watchdog stops calling a callback that returned an error */
    if (state != AP_WATCHDOG_STATE_RUNNING) return APR_SUCCESS;
    apr_atomic_set32(&worker_busy, 1);
    if (httpd_stopping() || atr_mod_db_open(&db, &dbd, s, pool) != APR_SUCCESS) {
        apr_atomic_set32(&worker_busy, 0);
        return APR_SUCCESS;
    }
    if (wakeups++ % SWEEP_EVERY == 0) sweep(s, db, pool);
    rv = atr_job_claim(&job, db, node_name, atr_conf_export_max_jobs(s), apr_time_now(),
                       apr_time_from_sec(atr_conf_export_stale_after(s)), pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00774: cannot claim export jobs: %s",
                     atr_db_error(db, rv));
    }
    else if (job) {
        run_job(s, db, job, pool);
    }
    atr_mod_db_close(dbd, s);
    apr_atomic_set32(&worker_busy, 0);
    return APR_SUCCESS;
}

static apr_status_t on_child_exit(void *data)
{
    server_rec *s = data;
    apr_time_t until = apr_time_now() + EXIT_WAIT_MAX;

    apr_atomic_set32(&child_exiting, 1);
    while (apr_atomic_read32(&worker_busy) && apr_time_now() < until) {
        apr_sleep(apr_time_from_msec(20));
    }
    if (apr_atomic_read32(&worker_busy)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00786: the export worker did not stop "
                     "within %d s; its job will be claimed again", (int)apr_time_sec(EXIT_WAIT_MAX));
    }
    return APR_SUCCESS;
}

void atr_export_worker_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (!node_name) return;   /* no worker registered */
    apr_atomic_set32(&child_exiting, 0);
    /* a pre-cleanup runs before the pool's subpools and other cleanups (mod_dbd's) */
    apr_pool_pre_cleanup_register(pchild, s, on_child_exit);
}

int atr_export_worker_post_config(apr_pool_t *pconf, server_rec *s)
{
    ap_watchdog_t *wd;
    apr_finfo_t fi;
    const char *dir = atr_conf_export_dir(s);
    char host[256];
    apr_status_t rv;

    if (!atr_conf_has_fhir_locations()) return OK;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    if (apr_stat(&fi, dir, APR_FINFO_TYPE, pconf) != APR_SUCCESS || fi.filetype != APR_DIR) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ATR00775: ATRExportDir %s is not a directory: "
                     "create it, writable by httpd's User (bulk export files are written there)", dir);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (atr_conf_node_name(s)) {
        node_name = atr_conf_node_name(s);
    }
    else {
        /* two httpd on one host share this: they need ATRNodeName */
        if (apr_gethostname(host, sizeof(host), pconf) != APR_SUCCESS) apr_cpystrn(host, "localhost", sizeof(host));
        node_name = apr_pstrdup(pconf, host);
    }

    wd_get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    wd_register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!wd_get_instance || !wd_register_callback) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ATR00776: mod_watchdog is not available: bulk "
                     "exports need it (load mod_watchdog)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* per child (parent 0), every child (not a singleton): each child's thread claims jobs */
    if ((rv = wd_get_instance(&wd, WATCHDOG_NAME, 0, 0, pconf)) != APR_SUCCESS
        || (rv = wd_register_callback(wd, WAKE_EVERY, s, worker_tick)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "ATR00777: cannot register the export worker "
                     "with mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}
