/* ATR list-change Subscriptions (REQUIREMENTS.md §8, docs/subscriptions.md): R4 Subscriptions
 * of the Subscriptions R5 Backport profile atr-list-change-subscription, topic atr-list-change,
 * one Group each (filter "Group/<id>"), rest-hook, id-only. Rows in atr_sub_subscription; a
 * notification is due when the Group's current version is above the version last notified,
 * whoever wrote it (roster apply, reconciliation operation, load), so the notifier needs no
 * hook in the writers: it compares versions. */
#ifndef ATR_SUBSCRIPTION_H
#define ATR_SUBSCRIPTION_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>
#include "atr_db.h"

#define ATR_SUB_TOPIC "http://hl7.org/fhir/us/davinci-atr/SubscriptionTopic/atr-list-change"
#define ATR_SUB_BACKPORT "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
#define ATR_SUB_MAX_ATTEMPTS 8          /* failed deliveries in a row before status error */

typedef struct atr_sub_t {
    const char *id;
    const char *client_id;
    const char *group_id;
    const char *endpoint;             /* channel.endpoint */
    apr_array_header_t *headers;      /* channel.header (const char *, "Name: value") */
    const char *base_url;             /* the FHIR base the client used (for notification URLs) */
    const char *status;               /* active | error | off */
    const char *body;                 /* the Subscription as stored (no meta versioning) */
    int notified_version;             /* the Group version last notified */
    long events;                      /* notifications delivered */
    int attempts;                     /* failed deliveries since the last success */
    const char *error;                /* the last delivery error */
} atr_sub_t;

/* Check a client's Subscription (SUB-01, SUB-03) and extract what we keep. The stored body is
 * the client's with id and status (active) set by us. allow_loopback_http: an http endpoint
 * on a loopback host is accepted (tests). APR_EINVAL: *perr (for a 400 OperationOutcome). */
apr_status_t atr_sub_parse(atr_sub_t **psub, const char *body, const char *id, int allow_loopback_http,
                           const char **perr, apr_pool_t *p);

/* The stored Subscription (APR_NOTFOUND when none). */
apr_status_t atr_sub_get(atr_sub_t **psub, atr_db_t *db, const char *id, apr_pool_t *p);

/* Create or replace sub (its id, client and Group set); notified_version = the Group's
 * current version, so only later versions are notified. *pcreated = 1 for a new row.
 * APR_EEXIST when the id belongs to another client. */
apr_status_t atr_sub_put(int *pcreated, atr_db_t *db, atr_sub_t *sub, apr_time_t now, apr_pool_t *p);

/* The Subscription resource to answer with (stored body, status from the row). */
json_t *atr_sub_resource(const atr_sub_t *sub, apr_pool_t *p);

/* Subscriptions that have a notification due (ids and the Group version to notify), at most
 * max; claims older than stale count as abandoned. */
apr_status_t atr_sub_due(apr_array_header_t **pids, apr_array_header_t **pversions, atr_db_t *db, apr_time_t now,
                         apr_interval_time_t stale, int max, apr_pool_t *p);
/* Claim sub id for one delivery attempt (claims older than stale are taken over): *pmine. */
apr_status_t atr_sub_claim(int *pmine, atr_db_t *db, const char *id, const char *claim, apr_time_t now,
                           apr_interval_time_t stale, apr_pool_t *p);
/* Record a claimed attempt: delivered (version notified), or failed (error; the next try after a
 * growing delay, status error after ATR_SUB_MAX_ATTEMPTS). */
apr_status_t atr_sub_delivered(atr_db_t *db, const atr_sub_t *sub, const char *claim, int version, apr_pool_t *p);
apr_status_t atr_sub_failed(atr_db_t *db, const atr_sub_t *sub, const char *claim, const char *error,
                            apr_time_t now, apr_pool_t *p);

/* The id-only notification Bundle (Backport 1.1.0: history Bundle, first entry the
 * SubscriptionStatus Parameters, then the focus Group version by its URL). */
const char *atr_sub_notification(const atr_sub_t *sub, int version, long event_number, apr_time_t now,
                                 apr_pool_t *p);

/* POST the notification to the endpoint (timeout ms): APR_SUCCESS on a 2xx answer, else an
 * error with *perr. */
apr_status_t atr_sub_deliver(const atr_sub_t *sub, const char *payload, int timeout_ms, int allow_loopback_http,
                             const char **perr, apr_pool_t *p);

#endif
