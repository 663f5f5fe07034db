/* Import FHIR resources from NDJSON or Bundle files into the store. */
#ifndef ATR_LOAD_H
#define ATR_LOAD_H
#include <apr_pools.h>
#include "atr_db.h"

typedef struct atr_load_stats_t {
    long resources;   /* resources read */
    long created;     /* new resources (version 1) */
    long updated;     /* new versions of existing resources */
    long unchanged;   /* identical to the current version: nothing written */
} atr_load_stats_t;

/* Load one file in ONE transaction: every line of an NDJSON file is a resource or a Bundle;
 * a file that is not NDJSON is read as one JSON resource or Bundle (pretty-printed). Bundle
 * entries' resources are loaded; anything but the 8 ATR types is an error.
 * On the first bad line nothing of this file is kept: APR_EINVAL and *perr =
 * "FILE:LINE: what is wrong". */
apr_status_t atr_load_file(atr_load_stats_t *stats, atr_db_t *db, const char *path,
                           const char **perr, apr_pool_t *p);

#endif
