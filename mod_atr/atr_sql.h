/* Every SQL statement mod_atr runs, by label. They are prepared once: by mod_dbd
 * (ap_dbd_prepare at startup) in httpd, by atr_db_open in atrctl and tests.
 * Placeholders are apr_dbd's %s; all arguments are passed as strings. */
#ifndef ATR_SQL_H
#define ATR_SQL_H

typedef struct atr_sql_stmt_t {
    const char *label;
    const char *sql;
} atr_sql_stmt_t;

/* NULL-label-terminated list for a driver ("sqlite3", "pgsql"). The SQL is the same for
 * both wherever SQL allows; differences are kept in atr_sql.c only. */
const atr_sql_stmt_t *atr_sql_statements(const char *driver);

#endif
