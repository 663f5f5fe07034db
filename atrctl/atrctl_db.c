/* atrctl db init | check | migrate: create, verify or upgrade the store schema. */
#include <stdio.h>
#include <string.h>
#include <apr_file_info.h>
#include <apr_strings.h>
#include "atrctl.h"

static void db_usage(FILE *f)
{
    fprintf(f, "usage: atrctl [--db DRIVER:PARAMS] db init\n"
               "       atrctl [--db DRIVER:PARAMS] db check\n"
               "       atrctl [--db DRIVER:PARAMS] db migrate [--dry-run]\n\n"
               "  init     create the mod_atr schema in an empty store (SQLite: the file is created,\n"
               "           its directory must exist)\n"
               "  check    print \"schema version N OK\", or the problem and exit 1\n"
               "  migrate  bring a store made by an earlier mod_atr to this build's schema version,\n"
               "           one transaction per version (a failed step changes nothing);\n"
               "           --dry-run only says what it would do\n");
}

/* SQLite creates the file but not its directory: say so before apr_dbd gives a vague error. */
static int sqlite_dir_ok(atrctl_ctx_t *ctx)
{
    const char *path, *slash;
    apr_finfo_t fi;
    char *dir;

    if (strncmp(ctx->db_spec, "sqlite3:", 8)) return 1;
    path = ctx->db_spec + 8;
    slash = strrchr(path, '/');
    if (!slash || slash == path) return 1;
    dir = apr_pstrmemdup(ctx->pool, path, (apr_size_t)(slash - path));
    if (apr_stat(&fi, dir, APR_FINFO_TYPE, ctx->pool) != APR_SUCCESS || fi.filetype != APR_DIR) {
        fprintf(stderr, "atrctl: directory %s does not exist: create it first\n", dir);
        return 0;
    }
    return 1;
}

static int db_init(atrctl_ctx_t *ctx)
{
    const char *err = NULL;
    atr_db_t *db;
    apr_status_t rv;

    if (!sqlite_dir_ok(ctx)) return ATRCTL_EXIT_FAIL;
    db = atrctl_open_db(ctx, 0);
    if (!db) return ATRCTL_EXIT_FAIL;
    rv = atr_db_init_schema(db, &err, ctx->pool);
    if (rv == APR_EEXIST) {
        fprintf(stderr, "atrctl: %s is already initialised: %s\n", ctx->db_spec, err ? err : "");
        return ATRCTL_EXIT_FAIL;
    }
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "atrctl: db init failed: %s\n", err ? err : "store error");
        return ATRCTL_EXIT_FAIL;
    }
    printf("%s: schema version %d created\n", ctx->db_spec, ATR_SCHEMA_VERSION);
    return ATRCTL_EXIT_OK;
}

static int db_check(atrctl_ctx_t *ctx)
{
    const char *err = NULL;
    atr_db_t *db;
    int version = 0;

    db = atrctl_open_db(ctx, 0);
    if (!db) return ATRCTL_EXIT_FAIL;
    if (atr_db_check_schema(db, &version, &err, ctx->pool) != APR_SUCCESS) {
        fprintf(stderr, "atrctl: %s\n", err ? err : "store schema problem");
        return ATRCTL_EXIT_FAIL;
    }
    printf("schema version %d OK\n", version);
    return ATRCTL_EXIT_OK;
}

static int db_migrate(atrctl_ctx_t *ctx, int dry_run)
{
    const char *err = NULL;
    atr_db_t *db;
    int from = 0, to = 0;

    db = atrctl_open_db(ctx, 0);
    if (!db) return ATRCTL_EXIT_FAIL;
    if (atr_db_migrate(db, &from, &to, dry_run, &err, ctx->pool) != APR_SUCCESS) {
        fprintf(stderr, "atrctl: db migrate: %s\n", err ? err : "store error");
        return ATRCTL_EXIT_FAIL;
    }
    if (from == ATR_SCHEMA_VERSION) {
        printf("schema version %d is current: nothing to do\n", from);
    }
    else if (dry_run) {
        printf("would migrate schema version %d to %d (%d step%s); nothing done\n", from, to,
               to - from, to - from == 1 ? "" : "s");
    }
    else {
        printf("schema version %d migrated to %d\n", from, to);
    }
    return ATRCTL_EXIT_OK;
}

int atrctl_cmd_db(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        db_usage(stdout);
        return ATRCTL_EXIT_OK;
    }
    if (argc == 2 && !strcmp(argv[1], "init")) return db_init(ctx);
    if (argc == 2 && !strcmp(argv[1], "check")) return db_check(ctx);
    if (argc == 2 && !strcmp(argv[1], "migrate")) return db_migrate(ctx, 0);
    if (argc == 3 && !strcmp(argv[1], "migrate") && !strcmp(argv[2], "--dry-run")) return db_migrate(ctx, 1);
    if (argc >= 2) fprintf(stderr, "atrctl db: unknown arguments starting at %s\n", argv[1]);
    else fprintf(stderr, "atrctl db: init, check or migrate?\n");
    db_usage(stderr);
    return ATRCTL_EXIT_USAGE;
}
