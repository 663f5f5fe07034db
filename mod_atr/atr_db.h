/* The store connection: apr_dbd driver + handle + prepared statements by label.
 * In httpd it wraps mod_dbd's ap_dbd_t (same three fields); atrctl opens its own. */
#ifndef ATR_DB_H
#define ATR_DB_H
#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_dbd.h>

/* The schema this build reads and writes. Raising it takes a migration per driver
 * (conf/sql/migrate/<driver>-N.sql) and the same change in conf/sql/schema-<driver>.sql. */
#define ATR_SCHEMA_VERSION 2

typedef struct atr_db_t {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_hash_t *prepared;      /* label -> apr_dbd_prepared_t * */
    const char *driver_name;   /* "sqlite3" or "pgsql" */
} atr_db_t;

/* Open "DRIVER:PARAMS" (the DBDriver/DBDParams pair mod_dbd takes, e.g.
 * "sqlite3:/var/lib/atr/atr.db", "pgsql:host=... dbname=..."), prepare every statement of
 * atr_sql.h, and (sqlite3) set busy timeout / pragmas. The handle closes with pool p.
 * *perr gets a message for people on failure. Does not check the schema version. */
apr_status_t atr_db_open(atr_db_t **pdb, const char *spec, const char **perr, apr_pool_t *p);

/* Create the schema (conf/sql/schema-<driver>.sql) in an empty store.
 * APR_EEXIST with *perr set when a schema is already there. */
apr_status_t atr_db_init_schema(atr_db_t *db, const char **perr, apr_pool_t *p);

/* APR_SUCCESS when the store holds schema ATR_SCHEMA_VERSION; otherwise an error with a clear
 * *perr ("store has no mod_atr schema: run atrctl db init", "store schema version 1 is older
 * than this build's 2: run atrctl db migrate", "... is newer than this build's 2 ...").
 * *pversion gets the version found (0 if none). */
apr_status_t atr_db_check_schema(atr_db_t *db, int *pversion, const char **perr, apr_pool_t *p);

/* Bring a store of an earlier schema version to ATR_SCHEMA_VERSION, one step (one
 * transaction) per version, so a failed step leaves the store at the version before it.
 * *pfrom, *pto: the version found and the version reached (equal when nothing was to do).
 * dry_run: only check that every step exists and say where it would go (*pto).
 * Errors: APR_ENOENT (no schema), a newer store than this build, a step that fails (*perr
 * names its statement). Safe to run twice at once: the second waits and does nothing. */
apr_status_t atr_db_migrate(atr_db_t *db, int *pfrom, int *pto, int dry_run, const char **perr,
                            apr_pool_t *p);

/* The prepared statement for label (NULL if unknown: a programming error, logged). */
apr_dbd_prepared_t *atr_db_stmt(atr_db_t *db, const char *label);

/* Run a prepared statement that changes rows; args are strings (NULL = SQL NULL).
 * *nrows may be NULL. */
apr_status_t atr_db_exec(atr_db_t *db, int *nrows, const char *label, apr_pool_t *p, int nargs, const char **args);
/* Run a prepared SELECT; rows are fetched one by one with atr_db_next. */
typedef struct atr_db_rows_t atr_db_rows_t;
apr_status_t atr_db_select(atr_db_rows_t **prows, atr_db_t *db, const char *label, apr_pool_t *p,
                           int nargs, const char **args);
/* Next row: APR_SUCCESS and *prow set, or APR_EOF at the end. Column values via
 * atr_db_col (NULL for SQL NULL), valid until pool p of atr_db_select is cleared. */
apr_status_t atr_db_next(apr_dbd_row_t **prow, atr_db_rows_t *rows);
const char *atr_db_col(atr_db_rows_t *rows, apr_dbd_row_t *row, int col);

/* Transactions (one per loaded file, per Group version written). end commits unless
 * atr_db_tx_fail was called, in which case it rolls back. */
typedef struct atr_db_tx_t atr_db_tx_t;
apr_status_t atr_db_tx_begin(atr_db_tx_t **ptx, atr_db_t *db, apr_pool_t *p);
void atr_db_tx_fail(atr_db_tx_t *tx);
apr_status_t atr_db_tx_end(atr_db_tx_t *tx);

/* Last driver error text, for logs and CLI messages. */
const char *atr_db_error(atr_db_t *db, int rv);

#endif
