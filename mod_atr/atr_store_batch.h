/* Rows written to the store in batches. Where a driver has the batched form of a statement
 * (atr_sql.c: PostgreSQL), rows are collected and sent as one statement per batch: a VALUES
 * list with room for a fixed number of rows (rows left over are sent as NULL and skipped).
 * A round trip per row is what made loads slow there. Without it (SQLite, in process:
 * nothing to save), each row runs the per-row statement at once. Which one a driver gets is
 * decided by atr_sql.c alone (whether the batched label is prepared); callers make the same
 * calls either way. */
#ifndef ATR_STORE_BATCH_H
#define ATR_STORE_BATCH_H
#include <apr_pools.h>
#include "atr_db.h"

typedef struct atr_store_batch_t atr_store_batch_t;

/* A batched statement that returns rows gives back one row per batched row, in the order
 * the rows were added; index = that row's number since the batch was created (0-based). */
typedef apr_status_t atr_store_batch_row_cb(void *baton, apr_size_t index, atr_db_rows_t *rows,
                                            apr_dbd_row_t *row, apr_pool_t *ptemp);

/* row_label: the per-row statement, taking nargs arguments (NULL: there is none; callers
 * then use the batch only where atr_store_batch_available says so). batch_label: the
 * batched form (atr_sql.c), rows of the same nargs arguments; the first one of a row must
 * not be NULL. cb NULL: the batched statement changes rows; else it is a SELECT whose rows
 * go to cb. */
apr_status_t atr_store_batch_create(atr_store_batch_t **pbatch, atr_db_t *db, const char *row_label,
                                    const char *batch_label, int nargs, atr_store_batch_row_cb *cb,
                                    void *baton, apr_pool_t *p);

/* 1 when this driver has batch_label's statement (rows are collected), 0 otherwise. */
int atr_store_batch_available(atr_db_t *db, const char *batch_label);

/* Add one row (nargs strings, NULL = SQL NULL; copied). Without batching it runs at once;
 * with it, the batch is sent when full. */
apr_status_t atr_store_batch_add(atr_store_batch_t *batch, const char *const *args, apr_pool_t *ptemp);

/* Send the rows collected so far (nothing to do when there are none). */
apr_status_t atr_store_batch_flush(atr_store_batch_t *batch, apr_pool_t *ptemp);

/* Rows added but not sent yet. */
apr_size_t atr_store_batch_pending(const atr_store_batch_t *batch);

/* After a failed add or flush: the rows of the statement that failed (first, 0-based since
 * create, and count; count 1 without batching). */
void atr_store_batch_failed(const atr_store_batch_t *batch, apr_size_t *pfirst, apr_size_t *pcount);

/* Rows one batched statement holds (its placeholders / nargs); 0 when db lacks it (or its
 * placeholders are not whole rows of nargs: an error, logged). */
apr_size_t atr_store_batch_rows(atr_db_t *db, const char *batch_label, int nargs);

#endif
