/* atrctl delete Type/id...: all in one transaction, so a typo deletes nothing. */
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_time.h>
#include "atr_fhir.h"
#include "atr_store.h"
#include "atrctl.h"

static void delete_usage(FILE *f)
{
    fprintf(f, "usage: atrctl [--db DRIVER:PARAMS] delete TYPE/ID...\n\n"
               "Deletes resources: each gets a new version marked deleted, so reads answer\n"
               "410 Gone, _history shows the DELETE and a deleted Group leaves search results.\n"
               "Loading the resource again brings it back as a new version. All references are\n"
               "deleted in one transaction: if one does not exist, nothing is deleted.\n");
}

int atrctl_cmd_delete(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    atr_db_tx_t *tx;
    atr_db_t *db;
    apr_time_t now = apr_time_now();
    int i, deleted = 0;

    for (i = 1; i < argc; i++) {
        const char *slash = strchr(argv[i], '/');
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            delete_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        if (!slash || !atr_fhir_is_type(apr_pstrndup(ctx->pool, argv[i], (apr_size_t)(slash - argv[i])))
            || !atr_fhir_is_id(slash + 1)) {
            fprintf(stderr, "atrctl delete: '%s' is not TYPE/ID of one of the 8 ATR types\n", argv[i]);
            delete_usage(stderr);
            return ATRCTL_EXIT_USAGE;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "atrctl delete: no TYPE/ID given\n");
        delete_usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }
    db = atrctl_open_db(ctx, 1);
    if (!db) return ATRCTL_EXIT_FAIL;
    if (atr_db_tx_begin(&tx, db, ctx->pool) != APR_SUCCESS) {
        fprintf(stderr, "atrctl: cannot start a transaction: %s\n", atr_db_error(db, 0));
        return ATRCTL_EXIT_FAIL;
    }
    for (i = 1; i < argc; i++) {
        const char *slash = strchr(argv[i], '/'), *err = NULL;
        const char *type = apr_pstrndup(ctx->pool, argv[i], (apr_size_t)(slash - argv[i]));
        int version = 0, changed = 0;
        if (atr_store_delete(&version, &changed, db, type, slash + 1, now, &err, ctx->pool) != APR_SUCCESS) {
            fprintf(stderr, "atrctl: %s; nothing was deleted\n", err ? err : argv[i]);
            atr_db_tx_fail(tx);
            atr_db_tx_end(tx);
            return ATRCTL_EXIT_FAIL;
        }
        if (changed) deleted++;
        printf("%s: %s (version %d)\n", argv[i], changed ? "deleted" : "already deleted", version);
    }
    if (atr_db_tx_end(tx) != APR_SUCCESS) {
        fprintf(stderr, "atrctl: commit failed: %s; nothing was deleted\n", atr_db_error(db, 0));
        return ATRCTL_EXIT_FAIL;
    }
    printf("%d deleted\n", deleted);
    return ATRCTL_EXIT_OK;
}
