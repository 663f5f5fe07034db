/* Versioned FHIR resources in the store. Group members are rows (atr_group_member), never
 * one blob: writing takes them from the Group JSON, reading streams them page by page. */
#ifndef ATR_STORE_H
#define ATR_STORE_H
#include <apr_pools.h>
#include <apr_time.h>
#include <jansson.h>
#include "atr_db.h"

typedef struct atr_resource_t {
    const char *type;
    const char *id;
    int version;               /* meta.versionId */
    const char *last_updated;  /* meta.lastUpdated, FHIR instant (store format) */
    int deleted;
    const char *body;          /* stored JSON: no meta.versionId/lastUpdated; Group: no member */
} atr_resource_t;

/* Read a version (version 0 = current). APR_NOTFOUND when there is no such resource or
 * version. A deleted current version comes back with deleted = 1 (callers answer 410). */
apr_status_t atr_store_get(atr_resource_t **pres, atr_db_t *db, const char *type, const char *id,
                           int version, apr_pool_t *p);

/* Inside a transaction, before reading the version a write will be based on: writers of
 * type/id then take turns until commit, so each reads the version the previous one wrote and
 * none is lost (PostgreSQL: FOR UPDATE on its atr_current row; several nodes share the store).
 * SQLite: nothing to do, its transactions (BEGIN IMMEDIATE) already hold the write lock.
 * A resource not stored yet has no row to lock: two concurrent creators then meet at the
 * primary key, and the second gets a store error. */
apr_status_t atr_store_lock(atr_db_t *db, const char *type, const char *id, apr_pool_t *p);

/* History newest first: versions with last_updated > since (since NULL = all), at most max.
 * cb is called per version with a per-call subpool; a non-success return stops and is returned.
 * APR_NOTFOUND when the resource has no version at all (callers answer 404). */
typedef apr_status_t atr_store_res_cb(void *baton, const atr_resource_t *res, apr_pool_t *ptemp);
apr_status_t atr_store_history(atr_db_t *db, const char *type, const char *id, const char *since,
                               int max, atr_store_res_cb *cb, void *baton, apr_pool_t *p);

/* Write resource (a FHIR JSON object with resourceType and id) as its next version, in the
 * caller's transaction. When its content (ignoring meta.versionId/lastUpdated) equals the
 * current version, nothing is written and *pchanged = 0. *pversion = resulting current version.
 * For Group: members go to atr_group_member rows of the new version and the search index
 * (atr_group_index/identifier/characteristic) is replaced. now = meta.lastUpdated to store.
 * APR_EINVAL with *perr for a resource we cannot store (unknown type, bad id, ...). */
apr_status_t atr_store_put(int *pversion, int *pchanged, atr_db_t *db, json_t *resource,
                           apr_time_t now, const char **perr, apr_pool_t *p);

/* Group members as text, for writers that never hold them as one JSON tree (the loader cuts
 * them out of a Group line). get returns member i (0-based) as compact JSON, in the form
 * atr_json_dump writes; it is called in order 0..count-1, possibly in several passes. */
typedef struct atr_store_members_t {
    apr_size_t count;
    apr_status_t (*get)(void *baton, apr_size_t i, const char **pjson, apr_pool_t *ptemp);
    void *baton;
} atr_store_members_t;

/* atr_store_put for a resource already in its stored form: body = compact JSON (as
 * atr_json_dump writes it) without meta.versionId/lastUpdated and without Group.member.
 * Group: parsed = body parsed (for the search index), members = its members (NULL: none).
 * Members are checked while written: on APR_EINVAL the caller must roll back. */
apr_status_t atr_store_put_text(int *pversion, int *pchanged, atr_db_t *db, const char *type,
                                const char *id, const char *body, const json_t *parsed,
                                const atr_store_members_t *members, apr_time_t now,
                                const char **perr, apr_pool_t *p);

/* Many writes in one transaction (a loaded file), sent in batches where the driver has
 * batched statements (PostgreSQL: one round trip per batch of 251 resources instead
 * of three per resource; a Group is still written at once, its members batched). Results are
 * those of atr_store_put / atr_store_put_text one by one, in order: the same versions, a
 * resource given twice becomes two versions (the batch is sent before a repeat), and done
 * gets each resource's version and changed flag once written (possibly after later calls).
 * Resources that cannot be stored are refused by the put call itself (APR_EINVAL, *perr);
 * a store error may surface from a later put or from flush: the caller then rolls back.
 * Create it inside the transaction (it may set how that transaction plans its statements);
 * before the transaction commits, atr_store_bulk_flush must succeed. */
typedef struct atr_store_bulk_t atr_store_bulk_t;
typedef void atr_store_bulk_cb(void *baton, const char *type, const char *id, int version, int changed);
apr_status_t atr_store_bulk_create(atr_store_bulk_t **pbulk, atr_db_t *db, atr_store_bulk_cb *done, void *baton,
                                   apr_pool_t *p);
/* As atr_store_put; p may be cleared after the call. */
apr_status_t atr_store_bulk_put(atr_store_bulk_t *bulk, json_t *resource, apr_time_t now, const char **perr,
                                apr_pool_t *p);
/* As atr_store_put_text; p may be cleared after the call (members are read during it). */
apr_status_t atr_store_bulk_put_text(atr_store_bulk_t *bulk, const char *type, const char *id, const char *body,
                                     const json_t *parsed, const atr_store_members_t *members, apr_time_t now,
                                     const char **perr, apr_pool_t *p);
apr_status_t atr_store_bulk_flush(atr_store_bulk_t *bulk, const char **perr, apr_pool_t *p);

/* Delete type/id: its next version is a deletion (deleted = 1, the last body kept), so reads
 * answer 410 and history shows a DELETE; a deleted Group leaves the search index. In the
 * caller's transaction. APR_NOTFOUND when there is no such resource; deleting a deleted
 * resource changes nothing (*pchanged = 0). *pversion = the resulting current version. */
apr_status_t atr_store_delete(int *pversion, int *pchanged, atr_db_t *db, const char *type, const char *id,
                              apr_time_t now, const char **perr, apr_pool_t *p);

/* Stream the member rows (member JSON text) of Group id at version, in order, in pages of
 * page_size rows (each page in a cleared subpool). cb gets one member JSON per call. */
typedef apr_status_t atr_store_member_cb(void *baton, const char *member_json, apr_pool_t *ptemp);
apr_status_t atr_store_group_members(atr_db_t *db, const char *group_id, int version, int page_size,
                                     atr_store_member_cb *cb, void *baton, apr_pool_t *p);

#endif
