/* Groups as the admin CGI shows them to payer staff: a one-line summary (name, contract
 * period, attribution-list status, member count) read from the store, and a search by one
 * free text (identifier value such as an NPI, TIN or contract id, or part of the name) built
 * on the Group search of atr_search.h, so no SQL of its own. */
#ifndef ATR_ADMIN_GROUP_H
#define ATR_ADMIN_GROUP_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "atr_db.h"

typedef struct atr_admin_group_t {
    const char *id;
    const char *name;           /* Group.name or NULL */
    const char *list_status;    /* ext-attributionListStatus valueCode (draft/open/final) or NULL */
    int active;                 /* Group.active (absent: 1) */
    const char *period_start;   /* ext-contractValidityPeriod start, or NULL */
    const char *period_end;     /* ... end, or NULL */
    long members;               /* Group.quantity, -1 when absent */
    int deleted;                /* the current version is a deletion */
} atr_admin_group_t;

/* The summary of Group id (current version). APR_NOTFOUND when the store has no such Group. */
apr_status_t atr_admin_group_get(atr_admin_group_t **pgroup, atr_db_t *db, const char *id, apr_pool_t *p);

/* Ids of the Groups whose identifier value (any system; "system|value" also works) equals
 * text or whose name contains text (case-insensitive); text NULL or empty: every Group.
 * Sorted, without duplicates, at most max. *ptruncated (may be NULL) is 1 when more matched. */
apr_status_t atr_admin_group_find(apr_array_header_t **pids, int *ptruncated, atr_db_t *db,
                                  const char *text, int max, apr_pool_t *p);

#endif
