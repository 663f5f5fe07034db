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
    long largest_members;      /* member entries (= Group.quantity) of that Group */
    long member_entries;       /* member entries over all Groups (a member attributed to two
                                * providers has two entries, DM-13) */
} atr_demo_stats_t;

/* The most members one run accepts (ids and member numbers stay short and unique). */
#define ATR_DEMO_MAX_MEMBERS 100000000L

/* Writes the files streaming (memory does not grow with members). APR error + *perr on
 * failure (e.g. cannot create outdir). */
apr_status_t atr_demo_generate(atr_demo_stats_t *stats, const atr_demo_opts_t *opts,
                               const char **perr, apr_pool_t *p);

/* Contracts used when opts->contracts is 0: max(1, min(20, members / 5000)). */
int atr_demo_default_contracts(long members);

/* NPI check digit for the first 9 digits (Luhn over "80840" + digits): 0..9, or -1 when
 * first9 does not start with 9 digits. */
int atr_demo_npi_check_digit(const char *first9);
/* 1 when npi is exactly 10 digits whose last digit is the NPI check digit. */
int atr_demo_npi_is_valid(const char *npi);

#endif
