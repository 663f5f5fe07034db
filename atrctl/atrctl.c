/* atrctl: global options, the log sink on stderr, and dispatch to one command per file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "atr_config.h"
#include "atr_log.h"
#include "atrctl.h"

typedef struct atrctl_cmd_t {
    const char *name;
    int (*run)(atrctl_ctx_t *ctx, int argc, const char *const *argv);
    const char *summary;
} atrctl_cmd_t;

static const atrctl_cmd_t commands[] = {
    { "db", atrctl_cmd_db, "create (db init) or check (db check) the store schema" },
    { "load", atrctl_cmd_load, "load FHIR resources from NDJSON or Bundle files" },
    { "delete", atrctl_cmd_delete, "delete resources (Type/id); reads then answer 410 Gone" },
    { "demo-data", atrctl_cmd_demo_data, "write a synthetic ATR dataset as NDJSON files" },
    { "client", atrctl_cmd_client, "register Consumers in the LDAP registry (add, show, list, set, ...)" },
    { "roster", atrctl_cmd_roster, "apply a monthly roster (CSV) to a Group as its next version" },
    { "export", atrctl_cmd_export, "write a Group's attribution list as NDJSON files (like a bulk export)" },
    { "fetch", atrctl_cmd_fetch, "as a Consumer: get attribution lists from a Producer (SMART + bulk export)" },
    { "keygen", atrctl_cmd_keygen, "a Consumer key pair: private key PEM and public JWKS with its kid" },
    { NULL, NULL, NULL }
};

static void usage(FILE *f)
{
    const atrctl_cmd_t *c;
    fprintf(f, "usage: atrctl [--db DRIVER:PARAMS] [-v] COMMAND [ARGS...]\n"
               "       atrctl -h | --help | --version\n\n"
               "options:\n"
               "  --db DRIVER:PARAMS  the store (default: $ATR_DB, else %s)\n"
               "  -v                  more log output on stderr (repeat for debug)\n\n"
               "commands:\n", ATR_DEFAULT_DB);
    for (c = commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n`atrctl COMMAND -h` shows the usage of a command.\n");
}

static void stderr_sink(void *baton, const char *file, int line, atr_log_level_e level,
                        apr_status_t rv, const char *message)
{
    static const char *const names[] = { "emerg", "alert", "crit", "error", "warning", "notice",
                                         "info", "debug", "trace1" };
    const char *name = (level >= 0 && level <= ATR_LOG_TRACE1) ? names[level] : "log";
    atrctl_ctx_t *ctx = baton;
    char err[256];

    if (ctx->verbose >= 2) fprintf(stderr, "atrctl: %s: %s (%s:%d)", name, message, file, line);
    else fprintf(stderr, "atrctl: %s: %s", name, message);
    if (rv != APR_SUCCESS) fprintf(stderr, " (%s)", apr_strerror(rv, err, sizeof(err)));
    fputc('\n', stderr);
}

atr_db_t *atrctl_open_db(atrctl_ctx_t *ctx, int check_schema)
{
    atr_db_t *db = NULL;
    const char *err = NULL;
    int version = 0;

    if (atr_db_open(&db, ctx->db_spec, &err, ctx->pool) != APR_SUCCESS) {
        fprintf(stderr, "atrctl: %s\n", err ? err : "cannot open the store");
        return NULL;
    }
    if (check_schema && atr_db_check_schema(db, &version, &err, ctx->pool) != APR_SUCCESS) {
        fprintf(stderr, "atrctl: %s: %s\n", ctx->db_spec, err ? err : "bad store schema");
        return NULL;
    }
    return db;
}

int main(int argc, const char *const *argv)
{
    atrctl_ctx_t ctx;
    const atrctl_cmd_t *c;
    const char *env;
    int i, rc = ATRCTL_EXIT_USAGE;

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    memset(&ctx, 0, sizeof(ctx));
    apr_pool_create(&ctx.pool, NULL);
    env = getenv("ATR_DB");
    ctx.db_spec = (env && *env) ? env : ATR_DEFAULT_DB;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--db")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "atrctl: --db needs DRIVER:PARAMS\n");
                usage(stderr);
                return ATRCTL_EXIT_USAGE;
            }
            ctx.db_spec = argv[++i];
        }
        else if (!strncmp(a, "--db=", 5)) {
            ctx.db_spec = a + 5;
        }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            ctx.verbose++;
        }
        else if (!strcmp(a, "-vv")) {
            ctx.verbose += 2;
        }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        else if (!strcmp(a, "--version")) {
            printf("atrctl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
            return ATRCTL_EXIT_OK;
        }
        else {
            fprintf(stderr, "atrctl: unknown option %s\n", a);
            usage(stderr);
            return ATRCTL_EXIT_USAGE;
        }
    }
    atr_log_set_sink(stderr_sink, &ctx, ctx.verbose >= 2 ? ATR_LOG_DEBUG
                                        : ctx.verbose == 1 ? ATR_LOG_INFO : ATR_LOG_WARNING);
    if (i >= argc) {
        fprintf(stderr, "atrctl: no command given\n");
        usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }
    for (c = commands; c->name; c++) {
        if (!strcmp(c->name, argv[i])) break;
    }
    if (!c->name) {
        fprintf(stderr, "atrctl: unknown command %s\n", argv[i]);
        usage(stderr);
        return ATRCTL_EXIT_USAGE;
    }
    rc = c->run(&ctx, argc - i, argv + i);
    apr_pool_destroy(ctx.pool);
    return rc;
}
