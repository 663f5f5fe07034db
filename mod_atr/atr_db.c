/* The store connection for atrctl and tests (httpd fills atr_db_t from mod_dbd instead). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include "atr_db.h"
#include "atr_log.h"
#include "atr_sql.h"

/* generated from conf/sql (atr_schema_sql.c by build-aux/sql2c.sh) */
const char *atr_schema_sql(const char *driver);
const char *atr_schema_migration(const char *driver, int version);

struct atr_db_rows_t {
    atr_db_t *db;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;        /* handed back to apr_dbd_get_row: pgsql advances it */
    apr_pool_t *pool;
    int eof;
    int ntuples;               /* pgsql: rows in the result; -1 for sqlite3 */
    int fetched;               /* rows handed out so far */
};

struct atr_db_tx_t {
    atr_db_t *db;
    apr_dbd_transaction_t *trans;
    apr_pool_t *pool;
    int failed;
};

const char *atr_db_error(atr_db_t *db, int rv)
{
    const char *e = (db && db->driver && db->handle) ? apr_dbd_error(db->driver, db->handle, rv) : NULL;
    return e ? e : "unknown store error";
}

/* apr_dbd_open does not tie the connection to the pool: do it, so "closes with pool p" holds.
 * Registered right after open, it runs after the cleanups of statements prepared later. */
static apr_status_t db_close(void *data)
{
    atr_db_t *db = data;
    if (db->handle) apr_dbd_close(db->driver, db->handle);
    db->handle = NULL;
    return APR_SUCCESS;
}

static apr_status_t dbd_rv(int rv)
{
    return rv == 0 ? APR_SUCCESS : APR_EGENERAL;
}

/* Prepare every statement of atr_sql.c. Fails when a table is missing, so only called on a
 * store that has the schema. */
static apr_status_t prepare_all(atr_db_t *db, const char **perr, apr_pool_t *p)
{
    const atr_sql_stmt_t *s;

    for (s = atr_sql_statements(db->driver_name); s->label; s++) {
        apr_dbd_prepared_t *stmt = NULL;
        int rv;
        if (apr_hash_get(db->prepared, s->label, APR_HASH_KEY_STRING)) continue;
        rv = apr_dbd_prepare(db->driver, p, db->handle, s->sql, s->label, &stmt);
        if (rv != 0) {
            if (perr) *perr = apr_psprintf(p, "cannot prepare statement %s: %s", s->label,
                                           atr_db_error(db, rv));
            return APR_EGENERAL;
        }
        apr_hash_set(db->prepared, s->label, APR_HASH_KEY_STRING, stmt);
    }
    return APR_SUCCESS;
}

/* Run one statement that may return rows (PRAGMA, SELECT) and discard them; *pfirst gets
 * the first column of the first row when asked. Used only for setup, never for data. */
static apr_status_t run_rows(const char **pfirst, atr_db_t *db, const char *sql, apr_pool_t *p)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv;

    if (pfirst) *pfirst = NULL;
    rv = apr_dbd_select(db->driver, p, db->handle, &res, sql, 1);
    if (rv != 0) return APR_EGENERAL;
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        if (pfirst && !*pfirst) {
            const char *v = apr_dbd_get_entry(db->driver, row, 0);
            *pfirst = v ? apr_pstrdup(p, v) : "";
        }
    }
    return APR_SUCCESS;
}

/* The version the store holds: APR_ENOENT when it has no mod_atr schema. */
static apr_status_t read_version(int *pversion, atr_db_t *db, const char **perr, apr_pool_t *p)
{
    const char *version = NULL;

    *pversion = 0;
    /* Asked twice: apr_dbd's sqlite3 driver prepares with the legacy sqlite3_prepare, so the
     * first statement a connection runs after another one changed the schema (a migration)
     * fails with SQLITE_SCHEMA; by then SQLite has reloaded the schema and the second works. */
    if ((run_rows(&version, db, "SELECT version FROM atr_schema_version", p) != APR_SUCCESS || !version)
        && (run_rows(&version, db, "SELECT version FROM atr_schema_version", p) != APR_SUCCESS || !version)) {
        if (perr) *perr = "store has no mod_atr schema: run atrctl db init";
        return APR_ENOENT;
    }
    *pversion = atoi(version);
    return APR_SUCCESS;
}

apr_status_t atr_db_open(atr_db_t **pdb, const char *spec, const char **perr, apr_pool_t *p)
{
    atr_db_t *db = NULL;
    const char *colon, *params;
    apr_status_t rv;

    *pdb = NULL;
    if (perr) *perr = NULL;
    colon = spec ? strchr(spec, ':') : NULL;
    if (!colon || colon == spec) {
        if (perr) *perr = apr_psprintf(p, "store \"%s\" is not DRIVER:PARAMS (e.g. sqlite3:/var/lib/atr/atr.db)",
                                       spec ? spec : "");
        rv = APR_EINVAL;
        goto leave;
    }
    db = apr_pcalloc(p, sizeof(*db));
    db->driver_name = apr_pstrmemdup(p, spec, (apr_size_t)(colon - spec));
    params = colon + 1;
    db->prepared = apr_hash_make(p);

    rv = apr_dbd_init(p);
    if (rv != APR_SUCCESS) {
        if (perr) *perr = "cannot initialise apr_dbd";
        goto leave;
    }
    rv = apr_dbd_get_driver(p, db->driver_name, &db->driver);
    if (rv != APR_SUCCESS) {
        if (perr) {
            *perr = apr_psprintf(p, "apr_dbd driver \"%s\" is not available%s", db->driver_name,
                                 !strcmp(db->driver_name, "sqlite3") ? " (install libaprutil1-dbd-sqlite3)" :
                                 !strcmp(db->driver_name, "pgsql") ? " (install libaprutil1-dbd-pgsql)" :
                                 " (mod_atr supports sqlite3 and pgsql)");
        }
        goto leave;
    }
    if (strcmp(db->driver_name, "sqlite3") && strcmp(db->driver_name, "pgsql")) {
        if (perr) *perr = apr_psprintf(p, "store driver \"%s\" is not supported (use sqlite3 or pgsql)",
                                       db->driver_name);
        rv = APR_ENOTIMPL;
        goto leave;
    }
    {
        const char *dbd_err = NULL;
        rv = apr_dbd_open_ex(db->driver, p, params, &db->handle, &dbd_err);
        if (rv != APR_SUCCESS || !db->handle) {
            if (perr) *perr = apr_psprintf(p, "cannot open store %s: %s", spec,
                                           dbd_err ? dbd_err : "open failed (does the directory exist?)");
            if (rv == APR_SUCCESS) rv = APR_EGENERAL;
            db->handle = NULL;
            goto leave;
        }
        apr_pool_cleanup_register(p, db, db_close, apr_pool_cleanup_null);
    }
    if (!strcmp(db->driver_name, "sqlite3")) {
        /* Several httpd children and atrctl share the file: wait for locks, don't fail. */
        if (run_rows(NULL, db, "PRAGMA busy_timeout=10000", p) != APR_SUCCESS
            || run_rows(NULL, db, "PRAGMA synchronous=NORMAL", p) != APR_SUCCESS
            /* a load is one transaction: a small page cache would spill it to the WAL
             * page by page and read it back (atrctl and tests only; httpd uses mod_dbd's) */
            || run_rows(NULL, db, "PRAGMA cache_size=-65536", p) != APR_SUCCESS) {
            if (perr) *perr = apr_psprintf(p, "cannot set up store %s: %s", spec, atr_db_error(db, 1));
            rv = APR_EGENERAL;
            goto leave;
        }
    }
    {
        /* A store without schema yet (before `db init`) cannot prepare its statements:
         * atr_db_init_schema prepares them once the tables exist. Another schema version is
         * left for atr_db_check_schema to report. */
        int version = 0;
        if (read_version(&version, db, NULL, p) == APR_SUCCESS && version == ATR_SCHEMA_VERSION) {
            rv = prepare_all(db, perr, p);
            if (rv != APR_SUCCESS) goto leave;
        }
    }
    *pdb = db;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p, "ATR00100: store %s opened", db->driver_name);
leave:
    if (rv != APR_SUCCESS && db && db->handle) {
        apr_pool_cleanup_run(p, db, db_close);
    }
    return rv;
}

apr_dbd_prepared_t *atr_db_stmt(atr_db_t *db, const char *label)
{
    apr_dbd_prepared_t *stmt = apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);
    if (!stmt) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, apr_hash_pool_get(db->prepared),
                       "ATR00101: no prepared statement %s (schema missing or unknown label)", label);
    }
    return stmt;
}

/* The next statement of a schema script (statements end with ";\n", see sql2c.sh): *psql
 * gets it without the ';' (in p), *pcur moves past it. APR_EOF when only blanks are left. */
static apr_status_t next_statement(const char **psql, const char **pcur, apr_pool_t *p)
{
    const char *cur = *pcur, *stop, *end;

    for (;;) {
        if (!*cur) {
            *pcur = cur;
            return APR_EOF;
        }
        stop = strstr(cur, ";\n");
        end = stop ? stop + 2 : cur + strlen(cur);
        while (cur < end && (*cur == ' ' || *cur == '\n' || *cur == '\t' || *cur == '\r')) cur++;
        if (cur < (stop ? stop : end)) break;
        cur = end;
    }
    *psql = apr_pstrmemdup(p, cur, (apr_size_t)((stop ? stop : end) - cur));
    *pcur = end;
    return APR_SUCCESS;
}

/* Run every statement of script but its PRAGMAs inside the open transaction trans; on a
 * failure mark it for rollback and say which statement failed. */
static apr_status_t run_script(atr_db_t *db, apr_dbd_transaction_t *trans, const char *script,
                               const char **perr, apr_pool_t *p)
{
    const char *cur = script, *sql;
    int n;

    while (next_statement(&sql, &cur, p) == APR_SUCCESS) {
        int drv;
        if (!strncasecmp(sql, "PRAGMA", 6)) continue;   /* they cannot run in a transaction */
        drv = apr_dbd_query(db->driver, db->handle, &n, sql);
        if (drv != 0) {
            if (perr) *perr = apr_psprintf(p, "schema statement failed: %s: %s", sql, atr_db_error(db, drv));
            apr_dbd_transaction_mode_set(db->driver, trans, APR_DBD_TRANSACTION_ROLLBACK);
            return APR_EGENERAL;
        }
    }
    return APR_SUCCESS;
}

apr_status_t atr_db_init_schema(atr_db_t *db, const char **perr, apr_pool_t *p)
{
    const char *script, *cur, *sql;
    apr_dbd_transaction_t *trans = NULL;
    apr_status_t rv;
    int version = 0;

    if (perr) *perr = NULL;
    if (read_version(&version, db, NULL, p) == APR_SUCCESS) {
        if (perr) *perr = apr_psprintf(p, "store already has a mod_atr schema (version %d); nothing done",
                                       version);
        return APR_EEXIST;
    }
    script = atr_schema_sql(db->driver_name);
    if (!script) {
        if (perr) *perr = apr_psprintf(p, "no schema for driver %s", db->driver_name);
        return APR_ENOTIMPL;
    }
    if (!strcmp(db->driver_name, "sqlite3")) {
        /* Before the first table: 8 KiB pages keep a typical resource (1-2 KB of JSON) inside
         * its b-tree cell; with 4 KiB pages a WITHOUT ROWID row over ~1000 bytes spills to
         * overflow pages, which halves load speed. */
        if (run_rows(NULL, db, "PRAGMA page_size=8192", p) != APR_SUCCESS) {
            if (perr) *perr = apr_psprintf(p, "cannot set the page size: %s", atr_db_error(db, 1));
            return APR_EGENERAL;
        }
    }
    /* PRAGMAs cannot run in a transaction: the tables in one transaction, the PRAGMAs after. */
    if (apr_dbd_transaction_start(db->driver, p, db->handle, &trans) != 0) {
        if (perr) *perr = apr_psprintf(p, "cannot start transaction: %s", atr_db_error(db, 1));
        return APR_EGENERAL;
    }
    rv = run_script(db, trans, script, perr, p);
    if (apr_dbd_transaction_end(db->driver, p, trans) != 0 && rv == APR_SUCCESS) {
        if (perr) *perr = apr_psprintf(p, "cannot commit schema: %s", atr_db_error(db, 1));
        rv = APR_EGENERAL;
    }
    if (rv != APR_SUCCESS) return rv;
    for (cur = script; next_statement(&sql, &cur, p) == APR_SUCCESS;) {
        if (strncasecmp(sql, "PRAGMA", 6)) continue;
        /* journal_mode=WAL: harmless to repeat */
        if (run_rows(NULL, db, sql, p) != APR_SUCCESS) {
            if (perr) *perr = apr_psprintf(p, "schema statement failed: %s: %s", sql, atr_db_error(db, 1));
            return APR_EGENERAL;
        }
    }
    rv = prepare_all(db, perr, p);
    if (rv == APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                       "ATR00102: store schema version %d created", ATR_SCHEMA_VERSION);
    }
    return rv;
}

/* One migration step, version to - 1 -> to, in one transaction. The guarded UPDATE comes first:
 * it takes the store's write lock (SQLite) or the version row's lock (PostgreSQL), so two
 * migrations at once take turns, and the second finds the version moved (*pdone_elsewhere)
 * and changes nothing. DDL is transactional on both stores: a failed step leaves version
 * to - 1 exactly as it was. */
static apr_status_t migrate_step(atr_db_t *db, int to, int *pdone_elsewhere, const char **perr, apr_pool_t *p)
{
    const char *script = atr_schema_migration(db->driver_name, to);
    apr_dbd_transaction_t *trans = NULL;
    apr_status_t rv = APR_SUCCESS;
    int n = 0, drv;

    *pdone_elsewhere = 0;
    if (apr_dbd_transaction_start(db->driver, p, db->handle, &trans) != 0) {
        if (perr) *perr = apr_psprintf(p, "cannot start transaction: %s", atr_db_error(db, 1));
        return APR_EGENERAL;
    }
    drv = apr_dbd_query(db->driver, db->handle, &n,
                        apr_psprintf(p, "UPDATE atr_schema_version SET version = %d WHERE version = %d",
                                     to, to - 1));
    if (drv != 0) {
        if (perr) *perr = apr_psprintf(p, "cannot update the schema version: %s", atr_db_error(db, drv));
        rv = APR_EGENERAL;
    }
    else if (n != 1) {
        *pdone_elsewhere = 1;
        rv = APR_EGENERAL;
    }
    else {
        rv = run_script(db, trans, script, perr, p);
        if (rv != APR_SUCCESS && perr) {
            *perr = apr_psprintf(p, "migration to schema version %d failed, the store stays at version "
                                 "%d: %s", to, to - 1, *perr);
        }
    }
    if (rv != APR_SUCCESS) apr_dbd_transaction_mode_set(db->driver, trans, APR_DBD_TRANSACTION_ROLLBACK);
    if (apr_dbd_transaction_end(db->driver, p, trans) != 0 && rv == APR_SUCCESS) {
        if (perr) *perr = apr_psprintf(p, "cannot commit the migration to schema version %d: %s", to,
                                       atr_db_error(db, 1));
        rv = APR_EGENERAL;
    }
    if (*pdone_elsewhere) return APR_SUCCESS;
    return rv;
}

apr_status_t atr_db_migrate(atr_db_t *db, int *pfrom, int *pto, int dry_run, const char **perr,
                            apr_pool_t *p)
{
    apr_status_t rv;
    int version, v, retried = 0;

    *pfrom = *pto = 0;
    if (perr) *perr = NULL;
    rv = read_version(&version, db, perr, p);
    if (rv != APR_SUCCESS) return rv;
    *pfrom = *pto = version;
    if (version > ATR_SCHEMA_VERSION) {
        if (perr) *perr = apr_psprintf(p, "store schema version %d is newer than this build's %d: "
                                       "install the mod_atr that made it; nothing done",
                                       version, ATR_SCHEMA_VERSION);
        return APR_EGENERAL;
    }
    if (version < 1) {
        if (perr) *perr = apr_psprintf(p, "store schema version %d is not a mod_atr version", version);
        return APR_EGENERAL;
    }
    for (v = version + 1; v <= ATR_SCHEMA_VERSION; v++) {
        if (!atr_schema_migration(db->driver_name, v)) {
            if (perr) *perr = apr_psprintf(p, "this build has no %s migration to schema version %d",
                                           db->driver_name, v);
            return APR_ENOTIMPL;
        }
    }
    if (dry_run) {
        *pto = ATR_SCHEMA_VERSION;
        return APR_SUCCESS;
    }
    while (version < ATR_SCHEMA_VERSION) {
        int elsewhere = 0;
        rv = migrate_step(db, version + 1, &elsewhere, perr, p);
        if (rv != APR_SUCCESS && !retried && !strcmp(db->driver_name, "sqlite3")) {
            /* A migration that waited for another one's lock meets the schema that one
             * changed: the legacy sqlite3_prepare of apr_dbd's driver fails the first
             * statement with SQLITE_SCHEMA (and apr_dbd then refuses the rest of the
             * transaction). The step was rolled back and SQLite has reloaded the schema:
             * once more, from the version the store now holds. */
            int now;
            retried = 1;
            if (read_version(&now, db, perr, p) != APR_SUCCESS) return rv;
            if (now != version) *pto = now;
            version = now;
            continue;
        }
        if (rv != APR_SUCCESS) return rv;
        if (elsewhere) {
            /* another migration moved the version meanwhile: carry on from where it is */
            int now;
            rv = read_version(&now, db, perr, p);
            if (rv != APR_SUCCESS) return rv;
            if (now <= version || now > ATR_SCHEMA_VERSION) {
                if (perr) *perr = apr_psprintf(p, "the schema version changed to %d during the migration", now);
                return APR_EGENERAL;
            }
            version = now;
            *pto = now;
            continue;
        }
        version++;
        *pto = version;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                       "ATR01070: store schema migrated from version %d to %d", version - 1, version);
    }
    return apr_hash_count(db->prepared) ? APR_SUCCESS : prepare_all(db, perr, p);
}

apr_status_t atr_db_check_schema(atr_db_t *db, int *pversion, const char **perr, apr_pool_t *p)
{
    apr_status_t rv;

    if (perr) *perr = NULL;
    rv = read_version(pversion, db, perr, p);
    if (rv != APR_SUCCESS) return rv;
    if (*pversion < ATR_SCHEMA_VERSION) {
        if (perr) *perr = apr_psprintf(p, "store schema version %d is older than this build's %d: "
                                       "run atrctl db migrate", *pversion, ATR_SCHEMA_VERSION);
        return APR_EGENERAL;
    }
    if (*pversion > ATR_SCHEMA_VERSION) {
        if (perr) *perr = apr_psprintf(p, "store schema version %d is newer than this build's %d: "
                                       "this mod_atr is older than the store", *pversion,
                                       ATR_SCHEMA_VERSION);
        return APR_EGENERAL;
    }
    if (apr_hash_count(db->prepared) == 0) {
        return prepare_all(db, perr, p);
    }
    return APR_SUCCESS;
}

apr_status_t atr_db_exec(atr_db_t *db, int *nrows, const char *label, apr_pool_t *p, int nargs, const char **args)
{
    apr_dbd_prepared_t *stmt = atr_db_stmt(db, label);
    int n = 0, rv;

    if (nrows) *nrows = 0;
    if (!stmt) return APR_EGENERAL;
    rv = apr_dbd_pquery(db->driver, p, db->handle, &n, stmt, nargs, args);
    if (rv != 0) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_EGENERAL, p, "ATR00103: %s failed: %s", label,
                       atr_db_error(db, rv));
        return dbd_rv(rv);
    }
    if (nrows) *nrows = n;
    return APR_SUCCESS;
}

apr_status_t atr_db_select(atr_db_rows_t **prows, atr_db_t *db, const char *label, apr_pool_t *p,
                           int nargs, const char **args)
{
    apr_dbd_prepared_t *stmt = atr_db_stmt(db, label);
    atr_db_rows_t *rows;
    int rv;

    *prows = NULL;
    if (!stmt) return APR_EGENERAL;
    rows = apr_pcalloc(p, sizeof(*rows));
    rows->db = db;
    rows->pool = p;
    /* random access = whole result fetched: the next query may start before this one is read
     * to its end (pgsql); large reads are paged by the callers anyway. */
    rv = apr_dbd_pselect(db->driver, p, db->handle, &rows->res, stmt, 1, nargs, args);
    if (rv != 0) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_EGENERAL, p, "ATR00104: %s failed: %s", label,
                       atr_db_error(db, rv));
        return dbd_rv(rv);
    }
    /* apr_dbd_pgsql frees the whole result (PQclear) when asked for the row after the last
     * one, and with it every value atr_db_col handed out: callers keep those values after
     * their loop ends (they are documented as valid until pool p is cleared), so the end is
     * found by counting instead, and the result lives until p's cleanup. */
    rows->ntuples = !strcmp(db->driver_name, "pgsql") ? apr_dbd_num_tuples(db->driver, rows->res) : -1;
    *prows = rows;
    return APR_SUCCESS;
}

apr_status_t atr_db_next(apr_dbd_row_t **prow, atr_db_rows_t *rows)
{
    *prow = NULL;
    /* pgsql counts rows in the row object (NULL restarts at the first row) and frees the
     * result at the end: keep the object, never ask again after the end. */
    if (rows->eof || (rows->ntuples >= 0 && rows->fetched >= rows->ntuples)
        || apr_dbd_get_row(rows->db->driver, rows->pool, rows->res, &rows->row, -1) != 0) {
        rows->eof = 1;
        rows->row = NULL;
        return APR_EOF;
    }
    rows->fetched++;
    *prow = rows->row;
    return APR_SUCCESS;
}

const char *atr_db_col(atr_db_rows_t *rows, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(rows->db->driver, row, col);
    /* pgsql hands back "" for SQL NULL (PQgetvalue); only its datum_get tells NULL apart
     * (sqlite3 already gives NULL, and its datum_get must not be asked for TYPE_NULL) */
    if (v && !*v && !strcmp(rows->db->driver_name, "pgsql")
        && apr_dbd_datum_get(rows->db->driver, row, col, APR_DBD_TYPE_NULL, NULL) == APR_ENOENT) {
        return NULL;
    }
    return v;
}

apr_status_t atr_db_tx_begin(atr_db_tx_t **ptx, atr_db_t *db, apr_pool_t *p)
{
    atr_db_tx_t *tx = apr_pcalloc(p, sizeof(*tx));
    int rv;

    *ptx = NULL;
    tx->db = db;
    tx->pool = p;
    rv = apr_dbd_transaction_start(db->driver, p, db->handle, &tx->trans);
    if (rv != 0) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, p, "ATR00105: cannot start transaction: %s",
                       atr_db_error(db, rv));
        return APR_EGENERAL;
    }
    *ptx = tx;
    return APR_SUCCESS;
}

void atr_db_tx_fail(atr_db_tx_t *tx)
{
    if (tx && !tx->failed) {
        tx->failed = 1;
        apr_dbd_transaction_mode_set(tx->db->driver, tx->trans, APR_DBD_TRANSACTION_ROLLBACK);
    }
}

apr_status_t atr_db_tx_end(atr_db_tx_t *tx)
{
    int rv;

    if (!tx) return APR_EINVAL;
    rv = apr_dbd_transaction_end(tx->db->driver, tx->pool, tx->trans);
    if (rv != 0) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, tx->pool, "ATR00106: transaction %s failed: %s",
                       tx->failed ? "rollback" : "commit", atr_db_error(tx->db, rv));
        return APR_EGENERAL;
    }
    /* A statement that failed inside the transaction makes apr_dbd roll back on its own;
     * callers see that failure from the statement itself. */
    return APR_SUCCESS;
}
