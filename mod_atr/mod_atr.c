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
#include <curl/curl.h>
#include <apr_file_io.h>
#include "atr_log.h"
#include "atr_jwks_fetch.h"
#include "atr_registry.h"
#include "atr_token.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_fhir.h"
#include "mod_atr_export_worker.h"
#include "mod_atr_notify.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close;

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

/* Run a PRAGMA (it may answer a row) and drain what it answers. */
static apr_status_t sqlite_pragma(atr_db_t *db, const char *sql, apr_pool_t *p)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    if (apr_dbd_select(db->driver, p, db->handle, &res, sql, 0) != 0) return APR_EGENERAL;
    while (res && apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        /* drain */
    }
    return APR_SUCCESS;
}

/* The atr_db_t of a mod_dbd connection, set up on its first use (see atr_mod_db). */
static apr_status_t wrap_connection(atr_db_t **pdb, ap_dbd_t *dbd, server_rec *s, apr_pool_t *ptemp)
{
    atr_db_t *db = NULL;
    void *data = NULL;
    const char *err = NULL;
    int version = 0;
    apr_status_t rv;

    /* The wrapper lives with the pooled connection: on its first use the connection is set
     * up once, in this order. SQLite first gets a busy timeout (and synchronous=NORMAL:
     * token requests of every process insert into atr_jti, which must neither fail on the
     * write lock nor fsync per token). Then our statements are prepared on it, here rather
     * than through ap_dbd_prepare: mod_dbd prepares before anyone can set a busy timeout, so
     * a moment of WAL recovery or checkpointing by another process failed the prepare
     * ("database is locked"); preparing here also reports a store without our schema in our
     * own words, and leaves other mod_dbd users of a virtual host alone. */
    *pdb = NULL;
    apr_pool_userdata_get(&data, SCHEMA_OK_KEY, dbd->pool);
    if (data) {
        *pdb = data;
        return APR_SUCCESS;
    }
    db = apr_pcalloc(dbd->pool, sizeof(*db));
    db->driver = dbd->driver;
    db->handle = dbd->handle;
    db->prepared = apr_hash_make(dbd->pool);
    db->driver_name = apr_dbd_name(dbd->driver);
    if (!strcmp(db->driver_name, "sqlite3")
        && (sqlite_pragma(db, "PRAGMA busy_timeout=5000", ptemp) != APR_SUCCESS
            || sqlite_pragma(db, "PRAGMA synchronous=NORMAL", ptemp) != APR_SUCCESS)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00501: cannot set SQLite pragmas on a "
                     "store connection: %s", atr_db_error(db, 1));
    }
    /* prepared statements must live as long as the connection: its pool */
    rv = atr_db_check_schema(db, &version, &err, dbd->pool);
    if (rv != APR_SUCCESS) {
        if (!schema_error_logged) {
            schema_error_logged = 1;
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "ATR00302: store not usable: %s; "
                         "answering 503 (logged once per process until it is usable)",
                         err ? err : "schema check failed");
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, s, "ATR01071: store still not usable: %s",
                         err ? err : "schema check failed");
        }
        return APR_EGENERAL;
    }
    if (schema_error_logged) {
        /* e.g. `atrctl db migrate` ran: say so once, and log the next outage again */
        schema_error_logged = 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "ATR01072: store usable again (schema version %d)",
                     version);
    }
    /* Then a short busy timeout for everything else. apr_dbd's sqlite3 driver holds one
     * process-wide mutex around every call: SQLite's own busy wait would stall every thread of
     * this child for as long as another process writes (a roster, a long operation). On
     * SQLITE_BUSY after 200 ms the driver's retry loop takes over, and it sleeps with the
     * mutex released. */
    if (!strcmp(db->driver_name, "sqlite3") && sqlite_pragma(db, "PRAGMA busy_timeout=200", ptemp) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00787: cannot set the SQLite busy timeout: %s",
                     atr_db_error(db, 1));
    }
    apr_pool_userdata_setn(db, SCHEMA_OK_KEY, NULL, dbd->pool);
    *pdb = db;
    return APR_SUCCESS;
}

static void log_no_connection(server_rec *s)
{
    if (!dbd_error_logged) {
        dbd_error_logged = 1;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ATR00301: no store connection from mod_dbd "
                     "(is mod_dbd loaded, DBDriver/DBDParams set, the store created with "
                     "`atrctl db init`?); answering 503 (logged once per process)");
    }
}

apr_status_t atr_mod_db(atr_db_t **pdb, request_rec *r)
{
    ap_dbd_t *dbd;
    apr_pool_t *ptemp;
    apr_status_t rv;

    *pdb = NULL;
    if (!dbd_acquire || !(dbd = dbd_acquire(r))) {
        log_no_connection(r->server);
        return APR_EGENERAL;
    }
    apr_pool_create(&ptemp, r->pool);
    rv = wrap_connection(pdb, dbd, r->server, ptemp);
    apr_pool_destroy(ptemp);
    return rv;
}

apr_status_t atr_mod_db_open(atr_db_t **pdb, ap_dbd_t **pdbd, server_rec *s, apr_pool_t *p)
{
    ap_dbd_t *dbd;
    apr_status_t rv;

    *pdb = NULL;
    *pdbd = NULL;
    if (!dbd_open || !dbd_close || !(dbd = dbd_open(p, s))) {
        log_no_connection(s);
        return APR_EGENERAL;
    }
    if ((rv = wrap_connection(pdb, dbd, s, p)) != APR_SUCCESS) {
        dbd_close(s, dbd);
        return rv;
    }
    *pdbd = dbd;
    return APR_SUCCESS;
}

void atr_mod_db_close(ap_dbd_t *dbd, server_rec *s)
{
    if (dbd && dbd_close) dbd_close(s, dbd);
}

/* ---------------------------------------------------------------- authorization setup */

static const char *registry_bind_pw;   /* read at startup (as root), never logged */

/* Read the bind password file: its content without trailing line breaks. */
static apr_status_t read_secret_file(const char **psecret, const char *path, apr_pool_t *p)
{
    apr_file_t *f;
    char buf[1024];
    apr_size_t n = 0;
    apr_status_t rv;

    *psecret = NULL;
    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p)) != APR_SUCCESS) return rv;
    rv = apr_file_read_full(f, buf, sizeof(buf) - 1, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) return rv;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    *psecret = apr_pstrmemdup(p, buf, n);
    memset(buf, 0, sizeof(buf));
    return APR_SUCCESS;
}

/* Startup checks and secrets (as root, before the children exist). Returns OK or an error
 * that stops httpd with the directive's name in the log. */
static int auth_post_config(apr_pool_t *pconf, server_rec *s)
{
    const char *key_file = atr_conf_token_key_file(s), *pw_file = atr_conf_registry_bind_pw_file(s);
    atr_token_key_t *key = NULL;
    static int curl_ready;

    if (!curl_ready) {
        /* once, before any thread exists (libcurl's rule) */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ATR00502: libcurl initialisation failed");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        curl_ready = 1;
    }
    if (atr_conf_has_fhir_locations()) {
        const char *missing = !atr_conf_registry_url(s) ? "ATRRegistryURL"
                              : !atr_conf_registry_base_dn(s) ? "ATRRegistryBaseDN"
                              : !key_file ? "ATRTokenKeyFile" : NULL;
        if (missing) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ATR00503: %s is required when a Location "
                         "has SetHandler atr-fhir", missing);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (key_file) {
        const char *err = NULL;
        if (atr_token_key_load(&key, key_file, &err, pconf) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ATR00504: ATRTokenKeyFile: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    registry_bind_pw = NULL;
    if (pw_file) {
        apr_status_t rv = read_secret_file(&registry_bind_pw, pw_file, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "ATR00505: ATRRegistryBindPasswordFile: "
                         "cannot read %s", pw_file);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    atr_conf_set_runtime(NULL, key, NULL);
    return OK;
}

/* Per child: the registry handle (its connection pool and cache are per process) and the
 * JWKS cache. A failure leaves them NULL: token and FHIR requests then answer 503. */
static void atr_child_init(apr_pool_t *pchild, server_rec *s)
{
    atr_registry_t *reg = NULL;
    atr_jwks_cache_t *jwks = NULL;
    atr_jwks_fetch_conf_t jconf;
    apr_status_t rv;

    if (atr_conf_registry_url(s) && atr_conf_registry_base_dn(s)) {
        atr_registry_conf_t rconf;
        memset(&rconf, 0, sizeof(rconf));
        rconf.uris = atr_conf_registry_url(s);
        rconf.base_dn = atr_conf_registry_base_dn(s);
        rconf.bind_dn = atr_conf_registry_bind_dn(s);
        rconf.bind_pw = registry_bind_pw;
        rconf.timeout_ms = atr_conf_registry_timeout(s) * 1000;
        rconf.retries = atr_conf_registry_retries(s);
        rconf.cache_ttl = apr_time_from_sec(atr_conf_registry_cache_ttl(s));
        rconf.hold_down = atr_conf_ldap_hold_down(s) > 0 ? apr_time_from_sec(atr_conf_ldap_hold_down(s))
                                                         : ATR_REGISTRY_NO_HOLD_DOWN;
        rconf.pool_max = 8;
        if ((rv = atr_registry_create(&reg, &rconf, pchild)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "ATR00506: cannot set up the Consumer registry "
                         "client; token and FHIR requests will answer 503");
            reg = NULL;
        }
    }
    memset(&jconf, 0, sizeof(jconf));
    jconf.timeout = atr_conf_jwks_timeout(s);
    jconf.max_bytes = atr_conf_jwks_max_bytes(s);
    jconf.allow_loopback_http = atr_conf_jwks_allow_loopback_http(s);
    if ((rv = atr_jwks_cache_create(&jwks, &jconf, pchild)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "ATR00507: cannot create the JWKS cache");
        jwks = NULL;
    }
    atr_conf_set_runtime(reg, atr_conf_token_key(s), jwks);
    atr_export_worker_child_init(pchild, s);
}

/* ---------------------------------------------------------------- hooks */

static int atr_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;

    atr_conf_find_locations(pconf);
    atr_log_set_sink(log_sink, s, (atr_log_level_e)ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX));
    {
        int rc = auth_post_config(pconf, s);
        if (rc != OK) return rc;
    }

    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (!dbd_acquire) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00303: mod_dbd is not loaded: "
                     "FHIR endpoints other than /metadata will answer 503");
        return OK;
    }
    /* Statements are prepared per connection on first use (atr_mod_db), not registered with
     * mod_dbd: see there why. */
    return atr_export_worker_post_config(pconf, s);
}

static void atr_register_hooks(apr_pool_t *p)
{
    static const char *const before_dbd[] = { "mod_dbd.c", NULL };
    (void)p;
    ap_hook_post_config(atr_post_config, NULL, before_dbd, APR_HOOK_MIDDLE);
    ap_hook_child_init(atr_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(atr_fhir_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(atr_notify_post_config, NULL, NULL, APR_HOOK_MIDDLE + 1);
    ap_hook_child_init(atr_notify_child_init, NULL, NULL, APR_HOOK_MIDDLE + 1);
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
