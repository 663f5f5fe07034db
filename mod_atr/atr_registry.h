/* The Consumer registry in LDAP (OpenLDAP libldap): who may ask, with which keys and scopes,
 * for which Groups. A connection pool per process, bounded retries over several URIs
 * (failover), RFC 4515-escaped filters, and a short TTL cache of client entries so a token or
 * FHIR request does not always query LDAP. Thread-safe. Schema: conf/ldap/atr.schema. */
#ifndef ATR_REGISTRY_H
#define ATR_REGISTRY_H
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef struct atr_client_t {
    const char *dn;               /* set by the directory on reads */
    const char *client_id;        /* atrClientId */
    int disabled;                 /* atrClientStatus: "disabled" (else active) */
    const char *jwks_url;         /* atrJwksUrl or NULL */
    const char *jwks;             /* atrJwks: inline JWKS JSON text, or NULL */
    apr_array_header_t *scopes;   /* atrScope (const char *): the scopes it may be granted */
    apr_array_header_t *npis;     /* atrNpi */
    apr_array_header_t *tins;     /* atrTin */
    apr_array_header_t *contracts;/* atrContractId, "system|value" */
    apr_array_header_t *groups;   /* atrGroupId: linked Group ids */
    const char *name;             /* displayName */
    const char *contact;          /* mail */
    const char *description;      /* description */
    const char *modified_by;      /* modifiersName (read only) */
    const char *modified_at;      /* modifyTimestamp (read only) */
    /* Who made the last change through a writer and when: atrChangedBy (the staff member's
     * REMOTE_USER, or "atrctl:<unix user>") and atrChangedAt (GeneralizedTime, UTC). Written
     * as given by add and modify, in the same operation as the change; NULL when an entry
     * has none (written by other tools or before these attributes existed). A writer calls
     * atr_client_stamp before each write: a copy of a read entry still names the last one. */
    const char *changed_by;
    const char *changed_at;
} atr_client_t;

typedef struct atr_registry_conf_t {
    const char *uris;             /* space-separated LDAP URIs, tried in order */
    const char *base_dn;          /* consumer entries live right below: atrClientId=<id>,<base_dn> */
    const char *bind_dn;          /* NULL: anonymous */
    const char *bind_pw;          /* read from a file by the caller; never logged */
    int timeout_ms;               /* connect + operation timeout (default 3000) */
    int retries;                  /* further attempts after a failed one (default 2) */
    apr_interval_time_t cache_ttl;/* client entry cache (default 60 s; 0 = none) */
    int pool_max;                 /* pooled connections per process (default 8) */
    /* How long a URI that did not answer is tried only after the others: 0 means the
     * default (ATR_REGISTRY_HOLD_DOWN_DEFAULT), ATR_REGISTRY_NO_HOLD_DOWN none at all (every
     * new connection tries the URIs in their order). */
    apr_interval_time_t hold_down;
} atr_registry_conf_t;

#define ATR_REGISTRY_HOLD_DOWN_DEFAULT apr_time_from_sec(30)
#define ATR_REGISTRY_NO_HOLD_DOWN ((apr_interval_time_t)-1)

typedef struct atr_registry_t atr_registry_t;

/* Create the directory handle (no connection yet). p must live as long as the handle. */
apr_status_t atr_registry_create(atr_registry_t **preg, const atr_registry_conf_t *conf, apr_pool_t *p);

/* The client entry, from the cache when fresh. APR_NOTFOUND when there is no entry;
 * APR_EGENERAL (or another error) when the directory cannot be reached after the retries:
 * callers fail closed (503), never grant. *pclient is allocated from p. */
apr_status_t atr_registry_client_get(atr_client_t **pclient, atr_registry_t *reg, const char *client_id,
                                apr_pool_t *p);
/* All clients (search NULL) or those whose client_id, name, NPI, TIN or contract contains
 * search (escaped substring filter), sorted by client_id. */
apr_status_t atr_registry_client_list(apr_array_header_t **pclients, atr_registry_t *reg, const char *search,
                                 apr_pool_t *p);
/* Add a new entry (APR_EEXIST if the client_id exists). *perr for people. */
apr_status_t atr_registry_client_add(atr_registry_t *reg, const atr_client_t *client, const char **perr,
                                apr_pool_t *p);
/* Replace every registry attribute of the existing entry with client's, in ONE modify (no
 * half-written entries). APR_NOTFOUND if it does not exist. */
apr_status_t atr_registry_client_modify(atr_registry_t *reg, const atr_client_t *client, const char **perr,
                                   apr_pool_t *p);
/* Add group_id to the client's linked Groups (one LDAP modify: the value added, atrChangedBy/
 * atrChangedAt replaced; an existing link is success). */
apr_status_t atr_registry_client_link_group(atr_registry_t *reg, const char *client_id, const char *group_id,
                                            const char *who, const char **perr, apr_pool_t *p);
apr_status_t atr_registry_client_delete(atr_registry_t *reg, const char *client_id, const char **perr,
                                   apr_pool_t *p);
/* Drop a cached entry (after a change made through this handle). */
void atr_registry_cache_forget(atr_registry_t *reg, const char *client_id);

/* RFC 4515 filter value escaping (* ( ) \ NUL and non-ASCII bytes as \XX). */
const char *atr_registry_filter_escape(const char *value, apr_pool_t *p);

/* Check a client before it is written: client_id syntax ([A-Za-z0-9._~-]{1,128}), JWKS URL
 * (https; http only for loopback hosts when allow_http_loopback), inline JWKS parses with at
 * least one usable key, scopes parse (atr_scope.h), NPI check digit, TIN = 9 digits,
 * contract "system|value" with both parts, Group ids valid FHIR ids, at least one of JWKS URL
 * or inline JWKS. APR_EINVAL + *perr naming the field. */
apr_status_t atr_client_validate(const atr_client_t *client, int allow_http_loopback,
                                 const char **perr, apr_pool_t *p);

/* ---- additions (helper HA) ---- */

/* Record that who changes c now: changed_by = who (NULL/empty: removed on write),
 * changed_at = now as GeneralizedTime ("20261125011500Z"). */
void atr_client_stamp(atr_client_t *c, const char *who, apr_time_t now, apr_pool_t *p);

/* A deep copy of c in p. */
atr_client_t *atr_client_copy(const atr_client_t *c, apr_pool_t *p);
/* 1 when id matches [A-Za-z0-9._~-]{1,128}. */
int atr_client_id_is_valid(const char *id);
/* As atr_registry_filter_escape, for a value of len bytes that may contain NUL. */
const char *atr_registry_filter_escape_len(const char *value, apr_size_t len, apr_pool_t *p);
/* What went wrong in the last failed directory access of this handle (which URIs were tried
 * and the LDAP error), copied into p; NULL when nothing failed yet. Never holds secrets. */
const char *atr_registry_last_error(atr_registry_t *reg, apr_pool_t *p);

/* The cache alone (exposed for unit tests; atr_registry_client_get uses them). put stores a
 * copy of client, or a negative entry when client is NULL, fresh until now + cache_ttl.
 * get returns 1 on a fresh hit (*pclient = a copy in p, or NULL for a negative entry), else 0. */
void atr_registry_cache_put(atr_registry_t *reg, const char *client_id, const atr_client_t *client,
                            apr_time_t now);
int atr_registry_cache_get(atr_client_t **pclient, atr_registry_t *reg, const char *client_id,
                           apr_time_t now, apr_pool_t *p);
/* Entries held right now (expired ones included until the next purge). */
unsigned atr_registry_cache_count(atr_registry_t *reg);
/* The cache is emptied when a put would exceed this many entries (memory stays bounded). */
#define ATR_REGISTRY_CACHE_MAX 4096

#endif
