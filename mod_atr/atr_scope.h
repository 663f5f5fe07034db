/* SMART system scopes, v1 (system/Type.read|write|*) and v2 (system/Type.cruds subsets):
 * parsing, mediation against a client's allowed scopes (SMART-TOK-09), enforcement (SCOPE-04). */
#ifndef ATR_SCOPE_H
#define ATR_SCOPE_H
#include <apr_pools.h>
#include <apr_tables.h>

/* Permission bits in v2 order. v1 read = r|s, write = c|u|d, * = all (SCOPE-03). */
#define ATR_PERM_C 1
#define ATR_PERM_R 2
#define ATR_PERM_U 4
#define ATR_PERM_D 8
#define ATR_PERM_S 16
#define ATR_PERM_READ (ATR_PERM_R | ATR_PERM_S)
#define ATR_PERM_WRITE (ATR_PERM_C | ATR_PERM_U | ATR_PERM_D)
#define ATR_PERM_ALL (ATR_PERM_READ | ATR_PERM_WRITE)

typedef struct atr_scope_t {
    const char *text;      /* as written */
    const char *type;      /* resource type or "*" */
    unsigned perms;        /* ATR_PERM_* bits; 0 for granular scopes (D32: grant nothing) */
    int v2;                /* written in v2 syntax */
    int granular;          /* had a ?query part */
} atr_scope_t;

/* Parse one scope. APR_EINVAL if it is not a system/ scope of either syntax (e.g. patient/,
 * user/, openid, a v2 suffix out of order such as .dus, an unknown type name format). */
apr_status_t atr_scope_parse(atr_scope_t **pscope, const char *text, apr_pool_t *p);

/* Parse a space-separated list (duplicates removed). Unparseable scopes go to *pbad
 * (const char *), which may be NULL. */
apr_status_t atr_scope_parse_list(apr_array_header_t **pscopes, apr_array_header_t **pbad,
                                  const char *list, apr_pool_t *p);

/* Mediate requested against allowed: a requested scope covered by an allowed one is granted as
 * written; otherwise the parts of allowed scopes inside it are granted (in the requested
 * syntax). Returns the granted scopes as a space-separated string ("" when none). */
const char *atr_scope_mediate(const apr_array_header_t *requested, const apr_array_header_t *allowed,
                              apr_pool_t *p);

/* 1 if the scopes grant every bit of perms on type. */
int atr_scope_allows(const apr_array_header_t *granted, const char *type, unsigned perms);

#endif
