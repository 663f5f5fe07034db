/* atrctl roster apply: a monthly roster (CSV, docs/roster.md) becomes the next Group version. */
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_time.h>
#include "atr_roster.h"
#include "atrctl.h"

static void roster_usage(FILE *f)
{
    fprintf(f, "usage: atrctl [--db DRIVER:PARAMS] roster apply (--group ID | --contract SYSTEM|VALUE)\n"
               "                                     [--dry-run] FILE.csv\n\n"
               "Applies a roster (CSV with the header member_id,payer_id,contract_id,plan_id,provider,\n"
               "period_start,period_end,coverage; see docs/roster.md) to a Group as its next version:\n"
               "one member entry per member and provider, changeType new/changed/nochange, and members\n"
               "no longer on the roster kept as inactive + dropped. Bad rows are all reported with\n"
               "their line numbers and nothing is written. --dry-run shows the counts per changeType\n"
               "and the first changes without writing.\n");
}

int atrctl_cmd_roster(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    const char *group = NULL, *contract = NULL, *file = NULL, *err = NULL;
    atr_roster_result_t *res = NULL;
    atr_db_t *db;
    apr_status_t rv;
    int i, dry_run = 0;

    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        roster_usage(stdout);
        return ATRCTL_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "apply")) {
        fprintf(stderr, "atrctl roster: %s\n", argc < 2 ? "no subcommand given" : "unknown subcommand");
        roster_usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            roster_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        else if (!strcmp(a, "--dry-run")) dry_run = 1;
        else if ((!strcmp(a, "--group") || !strcmp(a, "--contract")) && i + 1 < argc) {
            if (a[2] == 'g') group = argv[++i];
            else contract = argv[++i];
        }
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "atrctl roster apply: unknown or incomplete option %s\n", a);
            roster_usage(stderr);
            return ATRCTL_EXIT_USAGE;
        }
        else if (file) {
            fprintf(stderr, "atrctl roster apply: one roster file at a time\n");
            return ATRCTL_EXIT_USAGE;
        }
        else file = a;
    }
    if (!file || (!group == !contract)) {
        fprintf(stderr, "atrctl roster apply: %s\n", !file ? "no roster file given"
                                                       : "give exactly one of --group and --contract");
        roster_usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }
    db = atrctl_open_db(ctx, 1);
    if (!db) return ATRCTL_EXIT_FAIL;
    if (contract) {
        const char *bar = strchr(contract, '|');
        const char *sys = bar ? apr_pstrndup(ctx->pool, contract, (apr_size_t)(bar - contract)) : "";
        if (atr_roster_find_group(&group, db, sys, bar ? bar + 1 : contract, &err, ctx->pool) != APR_SUCCESS) {
            fprintf(stderr, "atrctl: %s\n", err);
            return ATRCTL_EXIT_FAIL;
        }
    }
    rv = atr_roster_apply(&res, db, group, file, dry_run, apr_time_now(), &err, ctx->pool);
    if (res && res->nerrors) {
        for (i = 0; i < res->errors->nelts; i++)
            fprintf(stderr, "%s: %s\n", file, APR_ARRAY_IDX(res->errors, i, const char *));
        if (res->nerrors > res->errors->nelts)
            fprintf(stderr, "%s: ... and %ld more bad rows\n", file, res->nerrors - res->errors->nelts);
    }
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "atrctl: %s: %s\n", file, err ? err : "roster apply failed; nothing was written");
        return ATRCTL_EXIT_FAIL;
    }
    printf("Group/%s: %ld rows: %ld new, %ld changed, %ld nochange, %ld dropped\n", group, res->rows,
           res->counts[ATR_ROSTER_NEW], res->counts[ATR_ROSTER_CHANGED], res->counts[ATR_ROSTER_NOCHANGE],
           res->counts[ATR_ROSTER_DROPPED]);
    if (dry_run) {
        for (i = 0; i < res->sample->nelts; i++) printf("  %s\n", APR_ARRAY_IDX(res->sample, i, const char *));
        printf("dry run: nothing written (Group/%s stays at version %d)\n", group, res->version);
    }
    else if (res->written) printf("Group/%s: version %d written\n", group, res->version);
    else printf("Group/%s: unchanged, stays at version %d\n", group, res->version);
    return ATRCTL_EXIT_OK;
}
