/* atrctl: the operators' command line. Each command is a function in its own file. */
#ifndef ATRCTL_H
#define ATRCTL_H
#include <apr_pools.h>
#include "atr_db.h"

typedef struct atrctl_ctx_t {
    apr_pool_t *pool;
    const char *db_spec;   /* --db DRIVER:PARAMS, else $ATR_DB, else ATR_DEFAULT_DB */
    int verbose;
} atrctl_ctx_t;

/* Exit codes (documented in docs/atrctl.md). */
#define ATRCTL_EXIT_OK 0
#define ATRCTL_EXIT_FAIL 1      /* the operation failed (bad input, store error) */
#define ATRCTL_EXIT_USAGE 2     /* bad command line */

/* Opens ctx->db_spec and checks the schema; prints a clear message and returns NULL on failure. */
atr_db_t *atrctl_open_db(atrctl_ctx_t *ctx, int check_schema);

/* Commands: argv[0] is the command name; return an exit code. */
int atrctl_cmd_db(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_load(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_delete(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_demo_data(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_client(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_roster(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_export(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_fetch(atrctl_ctx_t *ctx, int argc, const char *const *argv);
int atrctl_cmd_keygen(atrctl_ctx_t *ctx, int argc, const char *const *argv);

#endif
