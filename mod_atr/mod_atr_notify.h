/* List-change Subscriptions in httpd (docs/subscriptions.md): the Subscription endpoints and
 * the notifier, a mod_watchdog thread in every child that delivers due notifications. */
#ifndef MOD_ATR_NOTIFY_H
#define MOD_ATR_NOTIFY_H
#include "httpd.h"
#include "mod_atr_authz.h"

/* POST [base]/Subscription, PUT and GET [base]/Subscription/<id>: answers and returns OK
 * when seg is one of ours, else DECLINED. */
int atr_notify_route(request_rec *r, const char *base, atr_authz_t *az, const apr_array_header_t *seg);

/* post_config: register the notifier with mod_watchdog (before mod_watchdog's post_config). */
int atr_notify_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
/* child_init: the child's exit waits for its notifier (as the export worker's does). */
void atr_notify_child_init(apr_pool_t *pchild, server_rec *s);

#endif
