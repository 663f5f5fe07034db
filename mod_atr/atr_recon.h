/* ATR 2.x reconciliation (docs/reconciliation.md): Group creation by a Consumer (CRE-01) and
 * the Group instance operations $member-add, $member-remove, $confirm-attribution-list and
 * $attribution-status (REQUIREMENTS.md §7, D19..D25). Portable core: the httpd glue is
 * mod_atr_recon.c. Every change is one transaction that writes the Group's next version,
 * members streamed from the previous version's rows page by page (never one JSON tree). */
#ifndef ATR_RECON_H
#define ATR_RECON_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>
#include "atr_db.h"
#include "atr_out.h"
#include "atr_registry.h"

typedef enum {
    ATR_RECON_ADD,        /* $member-add */
    ATR_RECON_REMOVE,     /* $member-remove */
    ATR_RECON_CONFIRM,    /* $confirm-attribution-list */
    ATR_RECON_STATUS      /* $attribution-status */
} atr_recon_op_e;

/* The operation's name without '$', for messages. */
const char *atr_recon_op_name(atr_recon_op_e op);

/* Parameters given (bits of atr_recon_params_t.given). */
#define ATR_RP_MEMBER_ID   0x01
#define ATR_RP_NPI         0x02
#define ATR_RP_PATIENT     0x04
#define ATR_RP_PROVIDER    0x08
#define ATR_RP_PERIOD      0x10
#define ATR_RP_COVERAGE    0x20

typedef struct atr_recon_params_t {
    unsigned given;                  /* ATR_RP_* */
    const char *member_system;       /* memberId.system (NULL: any) */
    const char *member_value;        /* memberId.value */
    const char *npi;                 /* providerNpi.value (10 digits) */
    const char *patient_ref;         /* "Patient/<id>" */
    const char *provider_ref;        /* "Practitioner|PractitionerRole|Organization/<id>" */
    const char *coverage_ref;        /* "Coverage/<id>" */
    const char *period_start;        /* attributionPeriod.start (NULL when not given) */
    const char *period_end;          /* attributionPeriod.end (NULL: open) */
} atr_recon_params_t;

/* Parse an operation's Parameters body (NULL or "" = no parameters) and check the parameter
 * combination (OP-ADD-01, OP-REM-01, OP-STAT-01; confirm takes none). On APR_EINVAL, *pcode is
 * the OperationOutcome issue code (invalid, required, not-supported) and *perr says what. */
apr_status_t atr_recon_params_parse(atr_recon_params_t **pparams, atr_recon_op_e op, const char *body,
                                    const char **pcode, const char **perr, apr_pool_t *p);

/* How an operation ended when it did not succeed (the glue maps these to HTTP). */
typedef enum {
    ATR_RECON_OK = 0,
    ATR_RECON_E_GROUP,        /* no such Group: 404 */
    ATR_RECON_E_GONE,         /* the Group was deleted: 410 */
    ATR_RECON_E_FINAL,        /* the list is final (OP-ADD-02, OP-REM-02, D20): 422 business-rule */
    ATR_RECON_E_UNKNOWN,      /* member, provider or coverage not known to the Producer (D21): 422 */
    ATR_RECON_E_DUPLICATE,    /* the attribution is already on the list: 422 duplicate */
    ATR_RECON_E_NO_MEMBER,    /* the member (attribution) is not on the list: 422 (remove), 404 (status) */
    ATR_RECON_E_STORE         /* store failure: 503 */
} atr_recon_err_e;

typedef struct atr_recon_result_t {
    atr_recon_err_e err;
    const char *text;         /* why, for the OperationOutcome (err != OK) */
    int version;              /* the Group's current version afterwards */
    int written;              /* a new version was written */
    long matched;             /* entries added, removed or dropped */
    const char *status;       /* the list status afterwards */
} atr_recon_result_t;

/* The attributionListStatus code of a Group body (NULL when absent). */
const char *atr_recon_list_status(const json_t *group);

/* The Group to create from a client's body (CRE-01): a Group without members (else
 * APR_EINVAL), id replaced by id, attributionListStatus draft when absent (D25) and one of
 * draft|open|final otherwise, type person and actual true when absent, meta dropped.
 * APR_EINVAL: *pcode (invalid, business-rule) and *perr. */
apr_status_t atr_recon_new_group(json_t **pgroup, const char *body, const char *id, const char **pcode,
                                 const char **perr, apr_pool_t *p);

/* A new random Group id (32 hex digits). */
const char *atr_recon_new_id(apr_pool_t *p);

/* Store the new Group (version 1) and note client_id as its creator (atr_rec_owner), in one
 * transaction. *pversion = 1. */
apr_status_t atr_recon_create(int *pversion, atr_db_t *db, json_t *group, const char *client_id,
                              apr_time_t now, const char **perr, apr_pool_t *p);

/* 1 in *powner when client_id created Group group_id (atr_rec_owner). Lets the creator reach
 * its Group before every process's registry cache sees the new LDAP link. */
apr_status_t atr_recon_is_owner(int *powner, atr_db_t *db, const char *group_id, const char *client_id,
                                apr_pool_t *p);

/* Link group_id to the client's registry entry (atrGroupId), unless already linked. */
apr_status_t atr_recon_link(atr_registry_t *reg, const char *client_id, const char *group_id,
                            const char **perr, apr_pool_t *p);

/* $member-add, $member-remove, $confirm-attribution-list on Group group_id, each in one
 * transaction of its own. Returns APR_SUCCESS whenever res says what happened (also for a
 * refusal); another status only with res->err = ATR_RECON_E_STORE. */
apr_status_t atr_recon_member_add(atr_recon_result_t *res, atr_db_t *db, const char *group_id,
                                  const atr_recon_params_t *params, apr_time_t now, apr_pool_t *p);
apr_status_t atr_recon_member_remove(atr_recon_result_t *res, atr_db_t *db, const char *group_id,
                                     const atr_recon_params_t *params, apr_time_t now, apr_pool_t *p);
apr_status_t atr_recon_confirm(atr_recon_result_t *res, atr_db_t *db, const char *group_id,
                               apr_time_t now, apr_pool_t *p);

/* $attribution-status: check first (res), then write the Bundle (D24) onto out. The member is
 * resolved and its entries found before anything is written; *pbundle_ready = 1 then, and
 * write_bundle writes the answer. can_read(type) tells which resource types the caller may
 * read (resources of other types are left out). */
typedef struct atr_recon_status_t atr_recon_status_t;
apr_status_t atr_recon_status_prepare(atr_recon_status_t **pst, atr_recon_result_t *res, atr_db_t *db,
                                      const char *group_id, const atr_recon_params_t *params,
                                      apr_pool_t *p);
apr_status_t atr_recon_status_write(atr_out_t *out, atr_recon_status_t *st, const char *base,
                                    int (*can_read)(void *baton, const char *type), void *baton,
                                    apr_pool_t *p);

/* Member entry helpers (exposed for unit tests). The changeType code of a member JSON object
 * (NULL when absent); set it (adding the extension first when missing). */
const char *atr_recon_change_type(const json_t *member);
void atr_recon_set_change_type(json_t *member, const char *code);
/* The member JSON text of a new attribution (changeType new, inactive false). */
const char *atr_recon_entry_json(const char *entity, const char *provider, const char *coverage,
                                 const char *start, const char *end, apr_pool_t *p);

#endif
