/* The reconciliation endpoints (docs/reconciliation.md): POST [base]/Group (CRE-01) and the
 * Group instance operations $member-add, $member-remove, $confirm-attribution-list and
 * $attribution-status (REQUIREMENTS.md §7). */
#ifndef MOD_ATR_RECON_H
#define MOD_ATR_RECON_H
#include "httpd.h"
#include "mod_atr_authz.h"

/* Answer the request when seg (the path segments after the FHIR base) is one of ours (POST
 * Group, a reconciliation operation, or a Subscription endpoint: mod_atr_notify.h) and
 * return OK; DECLINED otherwise (nothing answered). az: the authenticated client. */
int atr_recon_route(request_rec *r, const char *base, atr_authz_t *az, const apr_array_header_t *seg);

#endif
