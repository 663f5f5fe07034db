/* FHIR date/time values and HTTP dates. */
#ifndef ATR_TIME_H
#define ATR_TIME_H
#include <apr_time.h>
#include <apr_pools.h>

/* "2024-01-31T12:00:00.000Z": the fixed-width UTC instant the store keeps. */
const char *atr_time_instant(apr_time_t t, apr_pool_t *p);
/* Parse a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm)); APR_EINVAL if not one. */
apr_status_t atr_time_parse_instant(apr_time_t *pt, const char *s);
/* Parse a FHIR date or dateTime of any precision (YYYY, YYYY-MM, YYYY-MM-DD, full dateTime
 * with zone). *pt is the start of the range it denotes, *pend the end (exclusive). */
apr_status_t atr_time_parse_datetime(apr_time_t *pt, apr_time_t *pend, const char *s);
/* FHIR date YYYY-MM-DD check (used by loaders and rosters). */
int atr_time_is_date(const char *s);

#endif
