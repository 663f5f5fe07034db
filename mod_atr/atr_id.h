/* Random identifiers: job ids, claim keys, export run keys, Subscription ids. */
#ifndef ATR_ID_H
#define ATR_ID_H
#include <apr_pools.h>

/* *phex gets nbytes random bytes (1..64) as 2 * nbytes lower-case hex digits, from p.
 * APR_EINVAL for another nbytes; apr_generate_random_bytes' status when it fails
 * (*phex is then NULL). */
apr_status_t atr_id_hex(const char **phex, apr_size_t nbytes, apr_pool_t *p);

#endif
