/* Rows sent to the store in batches where the driver has a batched statement (PostgreSQL),
 * one statement per row elsewhere. */
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include "atr_store_batch.h"
#include "atr_sql.h"
#include "atr_log.h"

struct atr_store_batch_t {
    atr_db_t *db;
    const char *row_label, *batch_label;
    int nargs;
    atr_store_batch_row_cb *cb;
    void *baton;
    apr_size_t rows;               /* rows per batched statement; 0: one statement per row */
    const char **args;             /* rows * nargs arguments of the batched statement */
    apr_pool_t *vals;              /* the pending rows' values, cleared once they are sent */
    apr_size_t added;              /* rows added since create */
    apr_size_t pending;            /* of which not sent yet */
    apr_size_t failed_first, failed_count;
};

int atr_store_batch_available(atr_db_t *db, const char *batch_label)
{
    /* atr_sql.c prepares a batched statement only for the drivers that have it */
    return db && db->prepared && batch_label && apr_hash_get(db->prepared, batch_label, APR_HASH_KEY_STRING) != NULL;
}

apr_size_t atr_store_batch_rows(atr_db_t *db, const char *batch_label, int nargs)
{
    const atr_sql_stmt_t *s;
    const char *c;
    apr_size_t n = 0;

    if (nargs <= 0 || !atr_store_batch_available(db, batch_label)) return 0;
    for (s = atr_sql_statements(db->driver_name); s->label; s++) {
        if (strcmp(s->label, batch_label)) continue;
        for (c = s->sql; (c = strchr(c, '%')) != NULL; c++) {
            if (c[1] == 's' || c[1] == 'd') n++;
        }
        if (n % (apr_size_t)nargs) {
            /* a statement whose rows are not nargs wide would shift every column after the
             * first row: refuse it (callers write one row at a time instead) */
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, apr_hash_pool_get(db->prepared),
                           "ATR01014: %s has %lu parameters, not rows of %d", batch_label, (unsigned long)n, nargs);
            return 0;
        }
        return n / (apr_size_t)nargs;
    }
    return 0;
}

apr_status_t atr_store_batch_create(atr_store_batch_t **pbatch, atr_db_t *db, const char *row_label,
                                    const char *batch_label, int nargs, atr_store_batch_row_cb *cb,
                                    void *baton, apr_pool_t *p)
{
    atr_store_batch_t *b = apr_pcalloc(p, sizeof(*b));

    b->db = db;
    b->row_label = row_label;
    b->batch_label = batch_label;
    b->nargs = nargs;
    b->cb = cb;
    b->baton = baton;
    b->rows = atr_store_batch_rows(db, batch_label, nargs);
    if (b->rows) {
        b->args = apr_pcalloc(p, b->rows * (apr_size_t)nargs * sizeof(*b->args));
        apr_pool_create(&b->vals, p);
    }
    *pbatch = b;
    return APR_SUCCESS;
}

apr_size_t atr_store_batch_pending(const atr_store_batch_t *batch)
{
    return batch->pending;
}

void atr_store_batch_failed(const atr_store_batch_t *batch, apr_size_t *pfirst, apr_size_t *pcount)
{
    *pfirst = batch->failed_first;
    *pcount = batch->failed_count;
}

apr_status_t atr_store_batch_flush(atr_store_batch_t *b, apr_pool_t *ptemp)
{
    apr_size_t first = b->added - b->pending, got = 0, n = b->rows * (apr_size_t)b->nargs;
    apr_pool_t *sub;
    apr_status_t rv;

    if (!b->pending) return APR_SUCCESS;
    b->failed_first = first;
    b->failed_count = b->pending;
    /* the rest of the statement's rows: NULL, skipped by it */
    memset(b->args + b->pending * (apr_size_t)b->nargs, 0, (n - b->pending * (apr_size_t)b->nargs) * sizeof(*b->args));
    apr_pool_create(&sub, ptemp);
    if (b->cb) {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        rv = atr_db_select(&rows, b->db, b->batch_label, sub, (int)n, b->args);
        while (rv == APR_SUCCESS && got < b->pending && atr_db_next(&row, rows) == APR_SUCCESS) {
            rv = b->cb(b->baton, first + got, rows, row, sub);
            got++;
        }
        if (rv == APR_SUCCESS && got != b->pending) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, sub, "ATR01010: %s answered %lu rows for %lu",
                           b->batch_label, (unsigned long)got, (unsigned long)b->pending);
            rv = APR_EGENERAL;
        }
    }
    else {
        rv = atr_db_exec(b->db, NULL, b->batch_label, sub, (int)n, b->args);
    }
    apr_pool_destroy(sub);
    if (rv != APR_SUCCESS) return rv;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_TRACE1, APR_SUCCESS, ptemp, "ATR01011: %s: %lu rows",
                   b->batch_label, (unsigned long)b->pending);
    b->pending = 0;
    apr_pool_clear(b->vals);
    return APR_SUCCESS;
}

apr_status_t atr_store_batch_add(atr_store_batch_t *b, const char *const *args, apr_pool_t *ptemp)
{
    const char **to;
    int i;

    if (!b->rows) {
        b->failed_first = b->added++;
        b->failed_count = 1;
        if (!b->row_label) return APR_ENOTIMPL;
        return atr_db_exec(b->db, NULL, b->row_label, ptemp, b->nargs, (const char **)args);
    }
    to = b->args + b->pending * (apr_size_t)b->nargs;
    for (i = 0; i < b->nargs; i++) {
        to[i] = args[i] ? apr_pstrdup(b->vals, args[i]) : NULL;
    }
    b->added++;
    b->pending++;
    if (b->pending >= b->rows) return atr_store_batch_flush(b, ptemp);
    return APR_SUCCESS;
}
