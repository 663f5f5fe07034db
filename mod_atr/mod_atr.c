/* mod_atr: Da Vinci ATR Producer endpoints in httpd. This file wires the module: hooks, the
 * core's log sink, and the store through mod_dbd's connection pool. */
#include <string.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include "atr_log.h"
#include "atr_sql.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_fhir.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

/* Set once per process when the schema check failed, so the error log gets one line
 * about it instead of one per request. A benign race at worst logs it twice. */
static volatile int schema_error_logged;
static volatile int dbd_error_logged;

#define SCHEMA_OK_KEY "mod_atr.db"

/* ---------------------------------------------------------------- log sink */

static void log_sink(void *baton, const char *file, int line, atr_log_level_e level,
                     apr_status_t rv, const char *message)
{
    server_rec *s = baton;
    ap_log_error_(file, line, APLOG_MODULE_INDEX, (int)level, rv, s, "%s", message);
}

/* ---------------------------------------------------------------- store */

apr_status_t atr_mod_db(atr_db_t **pdb, request_rec *r)
{
    ap_dbd_t *dbd;
    atr_db_t *db = NULL;
    void *data = NULL;

    *pdb = NULL;
    if (!dbd_acquire || !(dbd = dbd_acquire(r))) {
        if (!dbd_error_logged) {
            dbd_error_logged = 1;
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ATR00301: no store connection from mod_dbd "
                          "(is mod_dbd loaded, DBDriver/DBDParams set, the store created with "
                          "`atrctl db init`?); answering 503 (logged once per process)");
        }
        return APR_EGENERAL;
    }
    /* The wrapper lives with the pooled connection, so the schema is checked once per
     * connection, not per request. */
    apr_pool_userdata_get(&data, SCHEMA_OK_KEY, dbd->pool);
    if (data) {
        *pdb = data;
        return APR_SUCCESS;
    }
    db = apr_pcalloc(dbd->pool, sizeof(*db));
    db->driver = dbd->driver;
    db->handle = dbd->handle;
    db->prepared = dbd->prepared;
    db->driver_name = apr_dbd_name(dbd->driver);
    {
        const char *err = NULL;
        int version = 0;
        apr_pool_t *ptemp;
        apr_status_t rv;

        apr_pool_create(&ptemp, r->pool);
        rv = atr_db_check_schema(db, &version, &err, ptemp);
        if (rv != APR_SUCCESS) {
            if (!schema_error_logged) {
                schema_error_logged = 1;
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00302: store not usable: %s; "
                              "answering 503 (logged once per process)", err ? err : "schema check failed");
            }
            apr_pool_destroy(ptemp);
            return APR_EGENERAL;
        }
        apr_pool_destroy(ptemp);
    }
    apr_pool_userdata_setn(db, SCHEMA_OK_KEY, NULL, dbd->pool);
    *pdb = db;
    return APR_SUCCESS;
}

/* ---------------------------------------------------------------- hooks */

static int atr_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;
    server_rec *sp;
    (void)plog;
    (void)ptemp;

    atr_conf_find_locations(pconf);
    atr_log_set_sink(log_sink, s, (atr_log_level_e)ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX));

    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (!dbd_prepare || !dbd_acquire) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00303: mod_dbd is not loaded: "
                     "FHIR endpoints other than /metadata will answer 503");
        return OK;
    }
    /* mod_dbd merges virtual hosts' statement lists from the main server's before
     * post_config, and groups connection pools by them in its own post_config. So the
     * statements are registered here, on every server_rec, in a post_config hook ordered
     * before mod_dbd's. mod_dbd does not tell which DBDriver a server uses at this point;
     * atr_sql.c keeps one SQL text for sqlite3 and pgsql, so the list is driver-neutral.
     * Every server gets the statements: a server whose mod_dbd store is not an ATR store
     * would fail to prepare them, so mod_atr wants its own store per server. */
    for (sp = s; sp; sp = sp->next) {
        const atr_sql_stmt_t *st;
        for (st = atr_sql_statements("sqlite3"); st->label; st++) {
            dbd_prepare(sp, st->sql, st->label);
        }
    }
    (void)pconf;
    return OK;
}

static void atr_register_hooks(apr_pool_t *p)
{
    static const char *const before_dbd[] = { "mod_dbd.c", NULL };
    (void)p;
    ap_hook_post_config(atr_post_config, NULL, before_dbd, APR_HOOK_MIDDLE);
    ap_hook_handler(atr_fhir_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

/* not AP_DECLARE_MODULE: mod_atr.h already says APLOG_USE_MODULE(atr) */
module AP_MODULE_DECLARE_DATA atr_module = {
    STANDARD20_MODULE_STUFF,
    atr_dir_conf_create,
    atr_dir_conf_merge,
    atr_srv_conf_create,
    atr_srv_conf_merge,
    atr_cmds,
    atr_register_hooks,
    AP_MODULE_FLAG_NONE
};
