/* Monthly rosters (CSV, docs/roster.md) applied to a Group as its next version.
 * Rows are staged in the store (atr_roster_row) and diffed there against the previous
 * version, so memory stays flat at any roster size; everything happens in one transaction. */
#ifndef ATR_ROSTER_H
#define ATR_ROSTER_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include "atr_db.h"

#define ATR_ROSTER_MAX_ERRORS 20   /* bad rows reported one by one; the rest are counted */
#define ATR_ROSTER_SAMPLE 10       /* changes listed by a dry run */

enum { ATR_ROSTER_NEW, ATR_ROSTER_CHANGED, ATR_ROSTER_NOCHANGE, ATR_ROSTER_DROPPED, ATR_ROSTER_NCT };
extern const char *const atr_roster_change_codes[ATR_ROSTER_NCT];

typedef struct atr_roster_result_t {
    long rows;                        /* data rows read */
    long counts[ATR_ROSTER_NCT];      /* entries of the new version per changeType */
    long nerrors;                     /* bad rows (all of them) */
    apr_array_header_t *errors;       /* const char *: "line N: ...", the first ATR_ROSTER_MAX_ERRORS */
    apr_array_header_t *sample;       /* const char *: the first ATR_ROSTER_SAMPLE changes */
    int version;                      /* the Group's current version afterwards (dry run: before) */
    int written;                      /* 1 when a new version was written */
} atr_roster_result_t;

/* The Group whose identifier is system|value (system "" = any). APR_NOTFOUND or APR_EINVAL
 * (several: DM-01 says one Group per contract) with *perr. */
apr_status_t atr_roster_find_group(const char **pgroup_id, atr_db_t *db, const char *system,
                                   const char *value, const char **perr, apr_pool_t *p);

/* Apply the roster in file path to Group group_id (which must exist) as its next version, in
 * one transaction of its own. Bad rows: APR_EINVAL, (*pres)->errors/nerrors filled and nothing
 * written. dry_run: everything is computed, nothing written. Other failures: an error with
 * *perr. A roster that changes nothing writes no version (written = 0). */
apr_status_t atr_roster_apply(atr_roster_result_t **pres, atr_db_t *db, const char *group_id,
                              const char *path, int dry_run, apr_time_t now, const char **perr,
                              apr_pool_t *p);

#endif
