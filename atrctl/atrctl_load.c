/* atrctl load FILE...: one transaction per file; the first bad file stops the run. */
#include <stdio.h>
#include <string.h>
#include <apr_time.h>
#include "atr_load.h"
#include "atrctl.h"

static void load_usage(FILE *f)
{
    fprintf(f, "usage: atrctl [--db DRIVER:PARAMS] load FILE...\n\n"
               "Loads FHIR R4 resources (Group, Patient, Coverage, RelatedPerson, Practitioner,\n"
               "PractitionerRole, Organization, Location) from NDJSON files (one resource or Bundle\n"
               "per line) or from a JSON file holding one resource or Bundle. Each file is one\n"
               "transaction: a bad line rejects the whole file (files before it stay loaded).\n"
               "Resources identical to their current version are left unchanged.\n");
}

int atrctl_cmd_load(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    atr_load_stats_t total;
    apr_time_t start;
    atr_db_t *db;
    int i;

    memset(&total, 0, sizeof(total));
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            load_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        if (!strcmp(argv[i], "--")) break;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "atrctl load: unknown option %s\n", argv[i]);
            load_usage(stderr);
            return ATRCTL_EXIT_USAGE;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "atrctl load: no FILE given\n");
        load_usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }
    db = atrctl_open_db(ctx, 1);
    if (!db) return ATRCTL_EXIT_FAIL;

    start = apr_time_now();
    for (i = 1; i < argc; i++) {
        atr_load_stats_t st;
        const char *err = NULL;
        apr_pool_t *ptemp;
        apr_status_t rv;

        if (!strcmp(argv[i], "--")) continue;
        apr_pool_create(&ptemp, ctx->pool);
        rv = atr_load_file(&st, db, argv[i], &err, ptemp);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "atrctl: %s\n", err ? err : argv[i]);
            fprintf(stderr, "atrctl: %s not loaded (nothing of it was kept)\n", argv[i]);
            return ATRCTL_EXIT_FAIL;
        }
        printf("%s: %ld resources (%ld created, %ld updated, %ld unchanged)\n", argv[i], st.resources,
               st.created, st.updated, st.unchanged);
        total.resources += st.resources;
        total.created += st.created;
        total.updated += st.updated;
        total.unchanged += st.unchanged;
        apr_pool_destroy(ptemp);
    }
    {
        double secs = (double)(apr_time_now() - start) / APR_USEC_PER_SEC;
        printf("total: %ld resources (%ld created, %ld updated, %ld unchanged) in %.2fs, %.0f resources/s\n",
               total.resources, total.created, total.updated, total.unchanged, secs,
               secs > 0 ? (double)total.resources / secs : 0.0);
    }
    return ATRCTL_EXIT_OK;
}
