/* atrctl demo-data: write a deterministic synthetic payer dataset as NDJSON files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <apr_strings.h>
#include "atrctl.h"
#include "atr_demo.h"
#include "atr_fhir.h"

static void demo_usage(FILE *out)
{
    fprintf(out,
            "usage: atrctl demo-data --out DIR [--members N] [--seed S] [--contracts K]\n"
            "  --out DIR        directory for Group.ndjson, Patient.ndjson, ... (created if missing)\n"
            "  --members N      number of members (Patients), 1..%ld (default 1000)\n"
            "  --seed S         PRNG seed, unsigned integer (default 1); same options = same bytes\n"
            "  --contracts K    contracts = provider organizations = Groups, 1..N\n"
            "                   (default max(1, min(20, N / 5000)))\n",
            ATR_DEMO_MAX_MEMBERS);
}

/* Whole-string unsigned decimal; 0 on anything else (sign, blanks, overflow). */
static int parse_u64(unsigned long long *out, const char *s)
{
    char *end;
    if (!s || !*s || *s < '0' || *s > '9') return 0;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *pi past what it used.
 * Returns 1 matched (value in *pval, NULL if missing), 0 not this option. */
static int take_opt(const char **pval, const char *name, int argc, const char *const *argv,
                    int *pi)
{
    const char *a = argv[*pi];
    size_t len = strlen(name);

    if (strncmp(a, name, len)) return 0;
    if (a[len] == '=') {
        *pval = a + len + 1;
        return 1;
    }
    if (a[len] != '\0') return 0;
    *pval = (*pi + 1 < argc) ? argv[++*pi] : NULL;
    return 1;
}

int atrctl_cmd_demo_data(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    atr_demo_opts_t opts;
    atr_demo_stats_t stats;
    unsigned long long members = 1000, seed = 1, contracts = 0;
    const char *err = NULL, *val;
    apr_status_t rv;
    int i;

    memset(&opts, 0, sizeof(opts));
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            demo_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        else if (take_opt(&val, "--members", argc, argv, &i)) {
            if (!parse_u64(&members, val) || members < 1 || members > (unsigned long long)ATR_DEMO_MAX_MEMBERS) {
                err = apr_psprintf(ctx->pool, "--members needs a number from 1 to %ld",
                                   ATR_DEMO_MAX_MEMBERS);
                break;
            }
        }
        else if (take_opt(&val, "--seed", argc, argv, &i)) {
            if (!parse_u64(&seed, val)) {
                err = "--seed needs an unsigned integer";
                break;
            }
        }
        else if (take_opt(&val, "--contracts", argc, argv, &i)) {
            if (!parse_u64(&contracts, val) || contracts < 1) {
                err = "--contracts needs a number of at least 1";
                break;
            }
        }
        else if (take_opt(&val, "--out", argc, argv, &i)) {
            if (!val || !*val) {
                err = "--out needs a directory";
                break;
            }
            opts.outdir = val;
        }
        else {
            err = apr_psprintf(ctx->pool, "unknown argument '%s'", argv[i]);
            break;
        }
    }
    if (!err && !opts.outdir) err = "--out DIR is required";
    if (!err && contracts > members) err = "--contracts must not exceed --members";
    if (err) {
        fprintf(stderr, "atrctl demo-data: %s\n", err);
        demo_usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }

    opts.members = (long)members;
    opts.seed = seed;
    opts.contracts = (int)contracts;
    rv = atr_demo_generate(&stats, &opts, &err, ctx->pool);
    if (rv != APR_SUCCESS) {
        char buf[256];
        fprintf(stderr, "atrctl demo-data: %s (%s)\n", err ? err : "failed",
                apr_strerror(rv, buf, sizeof(buf)));
        return ATRCTL_EXIT_FAIL;
    }
    printf("wrote %s\n", opts.outdir);
    for (i = 0; atr_fhir_types[i]; i++) {
        printf("  %-17s %ld\n", atr_fhir_types[i], stats.counts[i]);
    }
    printf("member entries: %ld\n", stats.member_entries);
    printf("largest group: %s (%ld members)\n", stats.largest_group, stats.largest_members);
    return ATRCTL_EXIT_OK;
}
