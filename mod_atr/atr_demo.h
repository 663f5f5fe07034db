/* A deterministic synthetic payer dataset that conforms to the ATR 2.1.0 profiles. */
#ifndef ATR_DEMO_H
#define ATR_DEMO_H
#include <apr_pools.h>

typedef struct atr_demo_opts_t {
    long members;              /* number of Patients (members); >= 1 */
    unsigned long long seed;   /* same seed + options = byte-identical output */
    int contracts;             /* Groups (one per contract / provider organization); 0 = default */
    const char *outdir;        /* one NDJSON file per type is written here: Group.ndjson, ... */
} atr_demo_opts_t;

typedef struct atr_demo_stats_t {
    long counts[8];            /* per type, in atr_fhir_types order */
    const char *largest_group; /* id of the Group with the most members */
} atr_demo_stats_t;

/* Writes the files streaming (memory does not grow with members). APR error + *perr on
 * failure (e.g. cannot create outdir). */
apr_status_t atr_demo_generate(atr_demo_stats_t *stats, const atr_demo_opts_t *opts,
                               const char **perr, apr_pool_t *p);

#endif
