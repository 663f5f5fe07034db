/* Random identifiers: see atr_id.h. One place, so every id has the same alphabet and source. */
#include <apr_general.h>
#include <apr_strings.h>
#include "atr_id.h"

#define ATR_ID_MAX_BYTES 64

apr_status_t atr_id_hex(const char **phex, apr_size_t nbytes, apr_pool_t *p)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char raw[ATR_ID_MAX_BYTES];
    char *hex;
    apr_size_t i;
    apr_status_t rv;

    *phex = NULL;
    if (nbytes < 1 || nbytes > ATR_ID_MAX_BYTES) return APR_EINVAL;
    if ((rv = apr_generate_random_bytes(raw, nbytes)) != APR_SUCCESS) return rv;
    hex = apr_palloc(p, 2 * nbytes + 1);
    for (i = 0; i < nbytes; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 0x0f];
    }
    hex[2 * nbytes] = '\0';
    *phex = hex;
    return APR_SUCCESS;
}
