/* The list-change notifier: every httpd child runs one on mod_watchdog (its own instance,
 * a thread that wakes every second). A wake-up lists the Subscriptions whose Group has a
 * version above the one last notified, claims each in the store (so one process of one node
 * delivers it) and POSTs the id-only notification to the rest-hook endpoint. A failed POST
 * is retried after 1, 2, 4, ... s (at most 5 min); after ATR_SUB_MAX_ATTEMPTS failures in a
 * row the Subscription's status becomes error. Several versions written between two
 * deliveries make one notification naming the newest. */
#include <string.h>
#include <apr_atomic.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_core.h"
#include "ap_mpm.h"
#include "mod_watchdog.h"
#include "atr_recon.h"
#include "atr_subscription.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_notify.h"

#define WATCHDOG_NAME "_atr_notify_"
#define DUE_BATCH 10
#define CLAIM_STALE apr_time_from_sec(60)
#define DELIVER_TIMEOUT_MS 10000
#define EXIT_WAIT_MAX apr_time_from_sec(15)

static APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *wd_get_instance;
static APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *wd_register_callback;
static int registered;

/* The child's exit waits until the notifier has put its connection back (see the export
 * worker: mod_watchdog joins its threads only when the process ends). */
static volatile apr_uint32_t notifier_busy;
static volatile apr_uint32_t child_exiting;

static int stopping(void)
{
    int state = 0;
    return apr_atomic_read32(&child_exiting)
           || ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS || state == AP_MPMQ_STOPPING;
}

static void notify_one(server_rec *s, atr_db_t *db, const char *id, int version, apr_pool_t *p)
{
    const char *claim = atr_recon_new_id(p), *err = NULL, *payload;
    apr_time_t now = apr_time_now();
    atr_sub_t *sub;
    apr_status_t rv;
    int mine = 0;

    rv = atr_sub_claim(&mine, db, id, claim, now, CLAIM_STALE, p);
    if (rv != APR_SUCCESS || !mine) return;
    if ((rv = atr_sub_get(&sub, db, id, p)) != APR_SUCCESS) return;
    payload = atr_sub_notification(sub, version, sub->events + 1, now, p);
    rv = atr_sub_deliver(sub, payload, DELIVER_TIMEOUT_MS, atr_conf_sub_allow_loopback_http(s), &err, p);
    if (rv == APR_SUCCESS) {
        rv = atr_sub_delivered(db, sub, claim, version, p);
        ap_log_error(APLOG_MARK, rv == APR_SUCCESS ? APLOG_INFO : APLOG_WARNING, rv, s,
                     "ATR00880: Subscription/%s: Group/%s version %d notified%s", id, sub->group_id, version,
                     rv == APR_SUCCESS ? "" : " (but not recorded: it will be notified again)");
        return;
    }
    /* the endpoint's failure is the subscriber's problem, not the server's: a warning */
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00881: Subscription/%s: notification %d of Group/%s "
                 "failed (attempt %d): %s", id, version, sub->group_id, sub->attempts + 1, err ? err : "error");
    rv = atr_sub_failed(db, sub, claim, err ? err : "delivery failed", now, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00882: Subscription/%s: cannot record the failed "
                     "delivery: %s", id, atr_db_error(db, rv));
    }
}

static apr_status_t notify_tick(int state, void *data, apr_pool_t *pool)
{
    server_rec *s = data;
    apr_array_header_t *ids, *versions;
    atr_db_t *db;
    ap_dbd_t *dbd;
    apr_status_t rv;
    int i;

    /* always APR_SUCCESS: mod_watchdog stops calling a callback that returned an error */
    if (state != AP_WATCHDOG_STATE_RUNNING) return APR_SUCCESS;
    apr_atomic_set32(&notifier_busy, 1);
    if (stopping() || atr_mod_db_open(&db, &dbd, s, pool) != APR_SUCCESS) {
        apr_atomic_set32(&notifier_busy, 0);
        return APR_SUCCESS;
    }
    rv = atr_sub_due(&ids, &versions, db, apr_time_now(), CLAIM_STALE, DUE_BATCH, pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ATR00883: cannot list due notifications: %s",
                     atr_db_error(db, rv));
    }
    for (i = 0; rv == APR_SUCCESS && i < ids->nelts && !stopping(); i++) {
        apr_pool_t *ptemp;
        apr_pool_create(&ptemp, pool);
        notify_one(s, db, APR_ARRAY_IDX(ids, i, const char *), APR_ARRAY_IDX(versions, i, int), ptemp);
        apr_pool_destroy(ptemp);
    }
    atr_mod_db_close(dbd, s);
    apr_atomic_set32(&notifier_busy, 0);
    return APR_SUCCESS;
}

static apr_status_t on_child_exit(void *data)
{
    server_rec *s = data;
    apr_time_t until = apr_time_now() + EXIT_WAIT_MAX;
    apr_atomic_set32(&child_exiting, 1);
    while (apr_atomic_read32(&notifier_busy) && apr_time_now() < until) apr_sleep(apr_time_from_msec(20));
    if (apr_atomic_read32(&notifier_busy)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00884: the notifier did not stop in time; its "
                     "notification will be sent again");
    }
    return APR_SUCCESS;
}

void atr_notify_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (!registered) return;
    apr_atomic_set32(&child_exiting, 0);
    apr_pool_pre_cleanup_register(pchild, s, on_child_exit);
}

int atr_notify_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    ap_watchdog_t *wd;
    apr_status_t rv;
    (void)plog;
    (void)ptemp;

    registered = 0;
    if (!atr_conf_has_fhir_locations()) return OK;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    wd_get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    wd_register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!wd_get_instance || !wd_register_callback) {
        /* subscriptions are a SHOULD: serve everything else */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ATR00885: mod_watchdog is not loaded: Subscription "
                     "notifications will not be delivered");
        return OK;
    }
    if ((rv = wd_get_instance(&wd, WATCHDOG_NAME, 0, 0, pconf)) != APR_SUCCESS
        || (rv = wd_register_callback(wd, AP_WD_TM_INTERVAL, s, notify_tick)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "ATR00886: cannot register the notifier with mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    registered = 1;
    return OK;
}
