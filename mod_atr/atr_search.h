/* Group search: parameters parsed from a query string or form body, evaluated with the
 * fixed prepared statements of atr_sql.c (one per parameter form), combined in C:
 * repeated parameters AND, comma-separated values OR (R4 search). */
#ifndef ATR_SEARCH_H
#define ATR_SEARCH_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "atr_db.h"
#include "atr_render.h"

/* One decoded name=value pair of a query string or x-www-form-urlencoded body. */
typedef struct atr_param_t {
    const char *name;   /* including any :modifier */
    const char *value;
} atr_param_t;

/* Split and %-decode "a=1&b=2" (also '+' as space) into atr_param_t entries.
 * APR_EINVAL with *perr on a bad %-escape or a NUL byte. */
apr_status_t atr_query_parse(apr_array_header_t **pparams, const char *query, const char **perr,
                             apr_pool_t *p);

typedef struct atr_search_t {
    apr_array_header_t *clauses;     /* internal: AND of OR-lists */
    int count;                       /* _count (page size), already bounded */
    int count_given;                 /* 1 if _count was in the request (else count = default) */
    int offset;                      /* _offset: paging cursor (our next links use it) */
    atr_summary_e summary;           /* _summary */
    apr_array_header_t *elements;    /* _elements (const char *), or NULL */
    apr_array_header_t *ignored;     /* names of parameters ignored (not strict) */
    const char *self_query;          /* the parameters we honoured, re-encoded, for link.self;
                                      * without _count/_offset/_format: the caller adds paging */
} atr_search_t;

#define ATR_SEARCH_DEFAULT_COUNT 50
#define ATR_SEARCH_MAX_COUNT 1000

/* Parse Group search parameters. Unknown parameters are ignored (listed in ->ignored), or,
 * with strict (Prefer: handling=strict), refused. Malformed values (e.g. identifier:of-type
 * without three parts, _count not a number, unknown _summary) are refused: APR_EINVAL and
 * *perr says which parameter and why (for an OperationOutcome, status 400). */
apr_status_t atr_search_parse(atr_search_t **psearch, const apr_array_header_t *params, int strict,
                              int max_count, const char **perr, apr_pool_t *p);

/* Evaluate: *pids = matching Group ids (const char *), sorted, without duplicates.
 * Paging (count/offset) is the caller's job: it needs the total anyway. */
apr_status_t atr_search_run(apr_array_header_t **pids, atr_db_t *db, const atr_search_t *search,
                            apr_pool_t *p);

#endif
