/* Resource-server authorization for the FHIR handler (SEC-01..03, SCOPE-04, CS-GRP-08):
 * authenticate the Bearer token, look its client up in the registry, check scopes per
 * type and interaction, and the client's entitlement to Groups and member data.
 *
 * Protocol for the handler:
 *   atr_authz_t *az;
 *   if ((rc = atr_authz_request(r, &az)) != OK) return OK;          (401 / 503 answered)
 *   if ((rc = atr_authz_need(r, az, "Group", ATR_PERM_R)) != OK) return OK;   (403 answered)
 *   atr_authz_groups(&ids, az, db, r) / atr_authz_visible(...) for entitlement (store errors:
 *   the caller answers 503 as for any store error).
 * Functions returning an int answer the request themselves when they refuse it (body,
 * status in r->status, WWW-Authenticate) and return that status; the handler then returns OK. */
#ifndef MOD_ATR_AUTHZ_H
#define MOD_ATR_AUTHZ_H
#include "httpd.h"
#include "atr_db.h"
#include "atr_registry.h"
#include "atr_token.h"

typedef struct atr_authz_t {
    const char *client_id;          /* the token's sub */
    atr_token_claims_t *claims;     /* verified token claims (scopes parsed) */
    atr_client_t *client;           /* the registry entry (active) */
    apr_array_header_t *groups;     /* entitled Group ids (sorted), NULL until first needed */
} atr_authz_t;

/* Authenticate: OK and *pauthz, or the status answered: 401 (no token: Bearer realm only;
 * bad/expired token or unknown/disabled client: error="invalid_token"), 503 (registry
 * unreachable: OperationOutcome transient; never access). Also notes the client id in
 * r->notes "atr-client-id" (never the token). */
int atr_authz_request(request_rec *r, atr_authz_t **pauthz);

/* OK when the token's scopes grant every bit of perms (ATR_PERM_*) on type; else answers
 * 403 insufficient_scope (OperationOutcome forbidden) and returns 403. */
int atr_authz_need(request_rec *r, atr_authz_t *az, const char *type, unsigned perms);

/* The entitled Group ids, computed once per request (az->groups). Store error: returned
 * (nothing answered). */
apr_status_t atr_authz_groups(const apr_array_header_t **pids, atr_authz_t *az, atr_db_t *db,
                              request_rec *r);

/* *pvisible = 1 when the client may see type/id (stored body: needed for Coverage and
 * RelatedPerson). Groups are computed only for member-data types. Store error: returned. */
apr_status_t atr_authz_visible(int *pvisible, atr_authz_t *az, atr_db_t *db, const char *type,
                               const char *id, const char *body, request_rec *r);

#endif
