/* The Consumer registry in LDAP (OpenLDAP libldap). httpd's threaded MPMs call this from many
 * threads at once: each LDAP handle is used by one thread at a time (taken from and returned
 * to a mutex-protected stack), and the client cache is guarded by the same mutex. */
#include <stdlib.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#define LDAP_DEPRECATED 0
#include <ldap.h>
#include "atr_log.h"
#include "atr_registry.h"

#define OC_FILTER "(objectClass=atrConsumer)"

/* Every attribute this module reads; writes touch REG_ATTRS only. */
static const char *const READ_ATTRS[] = {
    "atrClientId", "atrClientStatus", "atrJwksUrl", "atrJwks", "atrScope", "atrNpi", "atrTin",
    "atrContractId", "atrGroupId", "atrChangedBy", "atrChangedAt", "displayName", "mail",
    "description", "modifiersName", "modifyTimestamp", NULL
};

/* An idle connection and the index of the URI it is connected to. */
typedef struct pooled_t {
    LDAP *ld;
    int uri;
} pooled_t;

typedef struct cache_entry_t {
    apr_time_t expires;
    atr_client_t *client;   /* NULL: known not to exist */
} cache_entry_t;

struct atr_registry_t {
    apr_pool_t *pool;
    atr_registry_conf_t conf;
    apr_array_header_t *uris;     /* const char * */
    apr_thread_mutex_t *mutex;    /* idle stack, down_until, cache, last_error */
    pooled_t *idle;               /* pool_max slots */
    int nidle;
    apr_time_t *down_until;       /* per URI: tried after the others until then (0: answered) */
    apr_pool_t *cache_pool;       /* cleared as a whole to keep memory bounded */
    apr_hash_t *cache;
    unsigned cache_count;
    char last_error[512];
};

static int is_connection_error(int rc)
{
    return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR
        || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR;
}

static void set_last_error(atr_registry_t *reg, const char *msg)
{
    apr_thread_mutex_lock(reg->mutex);
    apr_cpystrn(reg->last_error, msg, sizeof(reg->last_error));
    apr_thread_mutex_unlock(reg->mutex);
}

const char *atr_registry_last_error(atr_registry_t *reg, apr_pool_t *p)
{
    const char *s;
    apr_thread_mutex_lock(reg->mutex);
    s = reg->last_error[0] ? apr_pstrdup(p, reg->last_error) : NULL;
    apr_thread_mutex_unlock(reg->mutex);
    return s;
}

static apr_status_t registry_cleanup(void *data)
{
    atr_registry_t *reg = data;
    while (reg->nidle > 0) {
        ldap_unbind_ext_s(reg->idle[--reg->nidle].ld, NULL, NULL);
    }
    return APR_SUCCESS;
}

apr_status_t atr_registry_create(atr_registry_t **preg, const atr_registry_conf_t *conf, apr_pool_t *p)
{
    atr_registry_t *reg = apr_pcalloc(p, sizeof(*reg));
    char *list, *tok, *last;
    apr_status_t rv;

    *preg = NULL;
    reg->pool = p;
    reg->conf = *conf;
    if (reg->conf.timeout_ms <= 0) reg->conf.timeout_ms = 3000;
    if (reg->conf.retries < 0) reg->conf.retries = 0;
    if (reg->conf.pool_max <= 0) reg->conf.pool_max = 8;
    if (reg->conf.cache_ttl < 0) reg->conf.cache_ttl = 0;
    if (reg->conf.hold_down == 0) reg->conf.hold_down = ATR_REGISTRY_HOLD_DOWN_DEFAULT;
    if (reg->conf.hold_down < 0) reg->conf.hold_down = 0;
    reg->uris = apr_array_make(p, 2, sizeof(const char *));
    list = apr_pstrdup(p, conf->uris ? conf->uris : "");
    for (tok = apr_strtok(list, " \t,", &last); tok; tok = apr_strtok(NULL, " \t,", &last)) {
        APR_ARRAY_PUSH(reg->uris, const char *) = tok;
    }
    if (reg->uris->nelts == 0 || !conf->base_dn || !*conf->base_dn) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EINVAL, p,
                       "ATR00400: registry needs at least one LDAP URI and a base DN");
        return APR_EINVAL;
    }
    {
        /* libldap initialises its global options lazily on first use, which is not safe when
         * several threads do it at once: do it here (httpd: child_init, before the workers). */
        int debug = 0;
        ldap_get_option(NULL, LDAP_OPT_DEBUG_LEVEL, &debug);
    }
    rv = apr_thread_mutex_create(&reg->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) return rv;
    reg->idle = apr_pcalloc(p, sizeof(pooled_t) * (apr_size_t)reg->conf.pool_max);
    reg->down_until = apr_pcalloc(p, sizeof(apr_time_t) * (apr_size_t)reg->uris->nelts);
    rv = apr_pool_create(&reg->cache_pool, p);
    if (rv != APR_SUCCESS) return rv;
    reg->cache = apr_hash_make(reg->cache_pool);
    apr_pool_cleanup_register(p, reg, registry_cleanup, apr_pool_cleanup_null);
    *preg = reg;
    return APR_SUCCESS;
}

/* ---- connections ---- */

static int connect_one(LDAP **pld, atr_registry_t *reg, const char *uri, const char **why, apr_pool_t *p)
{
    LDAP *ld = NULL;
    struct timeval tv;
    struct berval cred;
    int rc, version = LDAP_VERSION3;

    *pld = NULL;
    rc = ldap_initialize(&ld, uri);
    if (rc != LDAP_SUCCESS || !ld) {
        *why = apr_psprintf(p, "%s: bad URI (%s)", uri, ldap_err2string(rc));
        return rc != LDAP_SUCCESS ? rc : LDAP_PARAM_ERROR;
    }
    tv.tv_sec = reg->conf.timeout_ms / 1000;
    tv.tv_usec = (reg->conf.timeout_ms % 1000) * 1000;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    /* An anonymous bind too: it opens the connection now, so a dead server shows here and the
     * next URI is tried, not in the middle of an operation. */
    cred.bv_val = (char *)(reg->conf.bind_pw ? reg->conf.bind_pw : "");
    cred.bv_len = strlen(cred.bv_val);
    rc = ldap_sasl_bind_s(ld, reg->conf.bind_dn ? reg->conf.bind_dn : "", LDAP_SASL_SIMPLE, &cred,
                          NULL, NULL, NULL);
    if (rc != LDAP_SUCCESS) {
        *why = apr_psprintf(p, "%s: bind%s%s failed: %s", uri, reg->conf.bind_dn ? " as " : "",
                            reg->conf.bind_dn ? reg->conf.bind_dn : "", ldap_err2string(rc));
        ldap_unbind_ext_s(ld, NULL, NULL);
        return rc;
    }
    *pld = ld;
    return LDAP_SUCCESS;
}

/* Try uri after the others for the next conf.hold_down (ATRRegistryHoldDown): a URI that did not
 * answer is still tried when none of the others answers, but with a hung first server every
 * new connection would otherwise wait the whole timeout on it before reaching a replica.
 * A hold-down of 0 (none) leaves the order alone. */
static void conn_hold_down(atr_registry_t *reg, int uri)
{
    if (uri < 0 || reg->conf.hold_down <= 0) return;
    apr_thread_mutex_lock(reg->mutex);
    reg->down_until[uri] = apr_time_now() + reg->conf.hold_down;
    apr_thread_mutex_unlock(reg->mutex);
}

/* A pooled connection (*preused = 1), or a new one to the first URI that answers: first
 * those that are not held down, in their order, then those that are (a server that came back
 * early is still found when nothing else answers). *puri: the index of its URI. */
static apr_status_t conn_acquire(LDAP **pld, int *puri, int *preused, atr_registry_t *reg, apr_pool_t *p)
{
    const char *why = NULL, *all = NULL;
    int n = reg->uris->nelts, *order = apr_palloc(p, sizeof(int) * (apr_size_t)n);
    int *held = apr_palloc(p, sizeof(int) * (apr_size_t)n);
    int i, k, pass, norder = 0;
    apr_time_t now = apr_time_now();

    *pld = NULL;
    *puri = -1;
    *preused = 0;
    apr_thread_mutex_lock(reg->mutex);
    if (reg->nidle > 0) {
        reg->nidle--;
        *pld = reg->idle[reg->nidle].ld;
        *puri = reg->idle[reg->nidle].uri;
        *preused = 1;
    }
    for (i = 0; i < n; i++) held[i] = reg->down_until[i] > now;
    apr_thread_mutex_unlock(reg->mutex);
    if (*pld) return APR_SUCCESS;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i++) {
            if (held[i] == pass) order[norder++] = i;
        }
    }
    for (k = 0; k < norder; k++) {
        const char *uri;
        i = order[k];
        uri = APR_ARRAY_IDX(reg->uris, i, const char *);
        if (connect_one(pld, reg, uri, &why, p) == LDAP_SUCCESS) {
            apr_thread_mutex_lock(reg->mutex);
            reg->down_until[i] = 0;
            apr_thread_mutex_unlock(reg->mutex);
            if (i > 0) {
                /* Says which server took over, so an operator sees the failover, not only
                 * the URIs that failed (ATR00401). */
                atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_SUCCESS, p,
                               "ATR01000: LDAP failover: connected to %s, URI %d of %d (those before "
                               "it did not answer%s)", uri, i + 1, n,
                               k < i ? apr_psprintf(p, " in the last %" APR_TIME_T_FMT " s",
                                                    apr_time_sec(reg->conf.hold_down)) : "");
            }
            *puri = i;
            return APR_SUCCESS;
        }
        conn_hold_down(reg, i);
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_SUCCESS, p, "ATR00401: LDAP %s", why);
        all = all ? apr_pstrcat(p, all, "; ", why, NULL) : why;
    }
    set_last_error(reg, all ? all : "no LDAP URI");
    return APR_EGENERAL;
}

/* A healthy connection goes back to the pool, except one to a later URI once an earlier URI
 * is no longer held down: dropping it makes the next new connection try the earlier one
 * again, so the registry returns to the first server after a failover instead of staying on
 * a replica for as long as the process lives. */
static void conn_release(atr_registry_t *reg, LDAP *ld, int uri, int broken, apr_pool_t *p)
{
    int failback = 0;

    if (!broken) {
        apr_time_t now = apr_time_now();
        int j;
        apr_thread_mutex_lock(reg->mutex);
        for (j = 0; j < uri && !failback; j++) failback = reg->down_until[j] <= now;
        if (!failback && reg->nidle < reg->conf.pool_max) {
            reg->idle[reg->nidle].ld = ld;
            reg->idle[reg->nidle].uri = uri;
            reg->nidle++;
            ld = NULL;
        }
        apr_thread_mutex_unlock(reg->mutex);
    }
    if (failback) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p,
                       "ATR01001: LDAP connection to %s closed: an earlier URI is tried again first",
                       APR_ARRAY_IDX(reg->uris, uri, const char *));
    }
    if (ld) ldap_unbind_ext_s(ld, NULL, NULL);
}

/* After a server went away every idle connection to it is dead too. */
static void conn_flush_idle(atr_registry_t *reg)
{
    LDAP *dead[64];
    int n = 0;

    apr_thread_mutex_lock(reg->mutex);
    while (reg->nidle > 0 && n < 64) dead[n++] = reg->idle[--reg->nidle].ld;
    apr_thread_mutex_unlock(reg->mutex);
    while (n > 0) ldap_unbind_ext_s(dead[--n], NULL, NULL);
}

typedef int ldap_op_fn(LDAP *ld, void *baton, apr_pool_t *p);

/* Run op on a live connection, with up to conf.retries further attempts after a connection
 * failure. APR_SUCCESS: op ran, its LDAP result is in *prc. APR_EGENERAL: unreachable. */
static apr_status_t registry_run(int *prc, atr_registry_t *reg, const char *what, ldap_op_fn *op,
                                 void *baton, apr_pool_t *p)
{
    int attempt = 0, stale_retry_done = 0;

    *prc = LDAP_OTHER;
    while (attempt <= reg->conf.retries) {
        LDAP *ld = NULL;
        int reused = 0, uri = -1, rc;

        if (conn_acquire(&ld, &uri, &reused, reg, p) != APR_SUCCESS) {
            attempt++;
            continue;
        }
        rc = op(ld, baton, p);
        if (!is_connection_error(rc)) {
            conn_release(reg, ld, uri, 0, p);
            *prc = rc;
            return APR_SUCCESS;
        }
        conn_release(reg, ld, uri, 1, p);
        if (!reused || rc != LDAP_SERVER_DOWN) {
            /* The server took the bind but not the operation (timeout, busy, unavailable):
             * the retry must go to another URI, not to the same one again. A pooled connection
             * that is merely closed (SERVER_DOWN: the server dropped it while idle) says
             * nothing about the server; the new connection finds out. */
            conn_hold_down(reg, uri);
        }
        set_last_error(reg, apr_psprintf(p, "%s: %s", what, ldap_err2string(rc)));
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_SUCCESS, p,
                       "ATR00402: LDAP %s failed on a %s connection: %s", what,
                       reused ? "pooled" : "new", ldap_err2string(rc));
        if (reused) {
            conn_flush_idle(reg);
            /* A pooled connection the server closed while idle is not an outage: one free retry. */
            if (!stale_retry_done) {
                stale_retry_done = 1;
                continue;
            }
        }
        attempt++;
    }
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_SUCCESS, p,
                   "ATR00403: LDAP directory unreachable for %s after %d attempt(s) (%s)",
                   what, reg->conf.retries + 1, reg->conf.uris);
    return APR_EGENERAL;
}

/* ---- entries ---- */

static const char *dn_value_escape(const char *v, apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t n = strlen(v), i;
    char *out = apr_palloc(p, n * 3 + 1), *o = out;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (strchr(",+\"\\<>;=", c) || (i == 0 && (c == '#' || c == ' '))
            || (i == n - 1 && c == ' ') || c < 0x20) {
            *o++ = '\\';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0f];
        }
        else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

static const char *client_dn(atr_registry_t *reg, const char *client_id, apr_pool_t *p)
{
    return apr_pstrcat(p, "atrClientId=", dn_value_escape(client_id, p), ",", reg->conf.base_dn, NULL);
}

static apr_array_header_t *entry_values(LDAP *ld, LDAPMessage *e, const char *attr, apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 2, sizeof(const char *));
    struct berval **vals = ldap_get_values_len(ld, e, attr);
    int i;

    for (i = 0; vals && vals[i]; i++) {
        APR_ARRAY_PUSH(a, const char *) = apr_pstrmemdup(p, vals[i]->bv_val, vals[i]->bv_len);
    }
    if (vals) ldap_value_free_len(vals);
    return a;
}

static const char *entry_value(LDAP *ld, LDAPMessage *e, const char *attr, apr_pool_t *p)
{
    apr_array_header_t *a = entry_values(ld, e, attr, p);
    return a->nelts ? APR_ARRAY_IDX(a, 0, const char *) : NULL;
}

static atr_client_t *entry_to_client(LDAP *ld, LDAPMessage *e, apr_pool_t *p)
{
    atr_client_t *c = apr_pcalloc(p, sizeof(*c));
    char *dn = ldap_get_dn(ld, e);
    const char *status;

    if (dn) {
        c->dn = apr_pstrdup(p, dn);
        ldap_memfree(dn);
    }
    c->client_id = entry_value(ld, e, "atrClientId", p);
    status = entry_value(ld, e, "atrClientStatus", p);
    /* The schema says a missing status means disabled: fail closed. */
    c->disabled = !status || strcasecmp(status, "active") != 0;
    c->jwks_url = entry_value(ld, e, "atrJwksUrl", p);
    c->jwks = entry_value(ld, e, "atrJwks", p);
    c->scopes = entry_values(ld, e, "atrScope", p);
    c->npis = entry_values(ld, e, "atrNpi", p);
    c->tins = entry_values(ld, e, "atrTin", p);
    c->contracts = entry_values(ld, e, "atrContractId", p);
    c->groups = entry_values(ld, e, "atrGroupId", p);
    c->name = entry_value(ld, e, "displayName", p);
    c->contact = entry_value(ld, e, "mail", p);
    c->description = entry_value(ld, e, "description", p);
    c->modified_by = entry_value(ld, e, "modifiersName", p);
    c->modified_at = entry_value(ld, e, "modifyTimestamp", p);
    /* Absent on entries written by other tools or before the schema had them: stay NULL. */
    c->changed_by = entry_value(ld, e, "atrChangedBy", p);
    c->changed_at = entry_value(ld, e, "atrChangedAt", p);
    return c;
}

typedef struct search_baton_t {
    atr_registry_t *reg;
    const char *filter;
    apr_array_header_t *clients;   /* atr_client_t * */
} search_baton_t;

static int search_op(LDAP *ld, void *baton, apr_pool_t *p)
{
    search_baton_t *b = baton;
    LDAPMessage *res = NULL, *e;
    struct timeval tv;
    int rc;

    tv.tv_sec = b->reg->conf.timeout_ms / 1000;
    tv.tv_usec = (b->reg->conf.timeout_ms % 1000) * 1000;
    rc = ldap_search_ext_s(ld, b->reg->conf.base_dn, LDAP_SCOPE_ONELEVEL, b->filter,
                           (char **)READ_ATTRS, 0, NULL, NULL, &tv, 0, &res);
    b->clients = apr_array_make(p, 4, sizeof(atr_client_t *));
    if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
        for (e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
            atr_client_t *c = entry_to_client(ld, e, p);
            if (c->client_id) APR_ARRAY_PUSH(b->clients, atr_client_t *) = c;
        }
    }
    if (res) ldap_msgfree(res);
    return rc;
}

/* ---- cache ---- */

void atr_registry_cache_put(atr_registry_t *reg, const char *client_id, const atr_client_t *client,
                            apr_time_t now)
{
    cache_entry_t *ce;

    if (reg->conf.cache_ttl <= 0 || !client_id) return;
    apr_thread_mutex_lock(reg->mutex);
    if (reg->cache_count >= ATR_REGISTRY_CACHE_MAX) {
        /* Simplest bound: start over. Entries are cheap to fetch again. */
        apr_pool_clear(reg->cache_pool);
        reg->cache = apr_hash_make(reg->cache_pool);
        reg->cache_count = 0;
    }
    ce = apr_hash_get(reg->cache, client_id, APR_HASH_KEY_STRING);
    if (!ce) {
        /* A replaced entry's old copy stays in the pool until the next clear; bounded by the
         * same count since every put counts. */
        ce = apr_pcalloc(reg->cache_pool, sizeof(*ce));
        apr_hash_set(reg->cache, apr_pstrdup(reg->cache_pool, client_id), APR_HASH_KEY_STRING, ce);
    }
    reg->cache_count++;
    ce->expires = now + reg->conf.cache_ttl;
    ce->client = client ? atr_client_copy(client, reg->cache_pool) : NULL;
    apr_thread_mutex_unlock(reg->mutex);
}

int atr_registry_cache_get(atr_client_t **pclient, atr_registry_t *reg, const char *client_id,
                           apr_time_t now, apr_pool_t *p)
{
    cache_entry_t *ce;
    int hit = 0;

    *pclient = NULL;
    if (reg->conf.cache_ttl <= 0 || !client_id) return 0;
    apr_thread_mutex_lock(reg->mutex);
    ce = apr_hash_get(reg->cache, client_id, APR_HASH_KEY_STRING);
    if (ce && now < ce->expires) {
        hit = 1;
        /* Copied while locked: another thread may clear the cache pool right after. */
        if (ce->client) *pclient = atr_client_copy(ce->client, p);
    }
    else if (ce) {
        apr_hash_set(reg->cache, client_id, APR_HASH_KEY_STRING, NULL);
    }
    apr_thread_mutex_unlock(reg->mutex);
    return hit;
}

unsigned atr_registry_cache_count(atr_registry_t *reg)
{
    unsigned n;
    apr_thread_mutex_lock(reg->mutex);
    n = reg->cache_count;
    apr_thread_mutex_unlock(reg->mutex);
    return n;
}

void atr_registry_cache_forget(atr_registry_t *reg, const char *client_id)
{
    if (!client_id) return;
    apr_thread_mutex_lock(reg->mutex);
    apr_hash_set(reg->cache, client_id, APR_HASH_KEY_STRING, NULL);
    apr_thread_mutex_unlock(reg->mutex);
}

/* ---- reads ---- */

apr_status_t atr_registry_client_get(atr_client_t **pclient, atr_registry_t *reg, const char *client_id,
                                     apr_pool_t *p)
{
    search_baton_t b;
    apr_status_t rv;
    int rc = LDAP_OTHER;

    *pclient = NULL;
    if (!atr_client_id_is_valid(client_id)) return APR_NOTFOUND;
    if (atr_registry_cache_get(pclient, reg, client_id, apr_time_now(), p)) {
        return *pclient ? APR_SUCCESS : APR_NOTFOUND;
    }
    memset(&b, 0, sizeof(b));
    b.reg = reg;
    b.filter = apr_pstrcat(p, "(&" OC_FILTER "(atrClientId=", atr_registry_filter_escape(client_id, p),
                           "))", NULL);
    rv = registry_run(&rc, reg, "search", search_op, &b, p);
    if (rv != APR_SUCCESS) return rv;
    if (rc == LDAP_NO_SUCH_OBJECT || (rc == LDAP_SUCCESS && b.clients->nelts == 0)) {
        /* LDAP_NO_SUCH_OBJECT: the base DN itself is missing; no client exists then either. */
        atr_registry_cache_put(reg, client_id, NULL, apr_time_now());
        return APR_NOTFOUND;
    }
    if (rc != LDAP_SUCCESS) {
        set_last_error(reg, apr_psprintf(p, "search under %s: %s", reg->conf.base_dn, ldap_err2string(rc)));
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, p,
                       "ATR00404: LDAP search for client %s under %s failed: %s", client_id,
                       reg->conf.base_dn, ldap_err2string(rc));
        return APR_EGENERAL;
    }
    *pclient = APR_ARRAY_IDX(b.clients, 0, atr_client_t *);
    atr_registry_cache_put(reg, client_id, *pclient, apr_time_now());
    return APR_SUCCESS;
}

static int client_cmp(const void *a, const void *b)
{
    const atr_client_t *x = *(atr_client_t *const *)a, *y = *(atr_client_t *const *)b;
    return strcmp(x->client_id, y->client_id);
}

apr_status_t atr_registry_client_list(apr_array_header_t **pclients, atr_registry_t *reg, const char *search,
                                      apr_pool_t *p)
{
    search_baton_t b;
    apr_status_t rv;
    int rc = LDAP_OTHER;

    *pclients = apr_array_make(p, 0, sizeof(atr_client_t *));
    memset(&b, 0, sizeof(b));
    b.reg = reg;
    if (!search || !*search) {
        b.filter = OC_FILTER;
    }
    else {
        const char *s = atr_registry_filter_escape(search, p);
        /* NPI and TIN have no substring rule in the schema: they match exactly. */
        b.filter = apr_pstrcat(p, "(&" OC_FILTER "(|(atrClientId=*", s, "*)(displayName=*", s,
                               "*)(atrContractId=*", s, "*)(atrNpi=", s, ")(atrTin=", s, ")))", NULL);
    }
    rv = registry_run(&rc, reg, "search", search_op, &b, p);
    if (rv != APR_SUCCESS) return rv;
    if (rc == LDAP_SIZELIMIT_EXCEEDED) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_SUCCESS, p,
                       "ATR00405: LDAP size limit reached: the client list is incomplete");
    }
    else if (rc != LDAP_SUCCESS) {
        set_last_error(reg, apr_psprintf(p, "search under %s: %s", reg->conf.base_dn, ldap_err2string(rc)));
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, APR_EGENERAL, p,
                       "ATR00406: LDAP client search under %s failed: %s", reg->conf.base_dn,
                       ldap_err2string(rc));
        return APR_EGENERAL;
    }
    qsort(b.clients->elts, (size_t)b.clients->nelts, sizeof(atr_client_t *), client_cmp);
    *pclients = b.clients;
    return APR_SUCCESS;
}

/* ---- writes ---- */

/* One LDAPMod per registry attribute. With add_only, empty attributes are left out (an add
 * cannot carry empty ones); otherwise they become a REPLACE with no values (= delete). */
static LDAPMod **client_mods(const atr_client_t *c, int add_only, apr_pool_t *p)
{
    struct { const char *attr; apr_array_header_t *vals; } a[16];
    LDAPMod **mods = apr_pcalloc(p, sizeof(LDAPMod *) * 18);
    int i, n = 0, m = 0;

#define ONE(name, v) do { \
        a[n].attr = name; \
        a[n].vals = apr_array_make(p, 1, sizeof(const char *)); \
        if ((v) && *(v)) APR_ARRAY_PUSH(a[n].vals, const char *) = (v); \
        n++; } while (0)
#define MANY(name, arr) do { \
        a[n].attr = name; \
        a[n].vals = (arr) ? (arr) : apr_array_make(p, 1, sizeof(const char *)); \
        n++; } while (0)

    if (add_only) {
        ONE("objectClass", "atrConsumer");
        ONE("atrClientId", c->client_id);
    }
    ONE("atrClientStatus", c->disabled ? "disabled" : "active");
    ONE("atrJwksUrl", c->jwks_url);
    ONE("atrJwks", c->jwks);
    MANY("atrScope", c->scopes);
    MANY("atrNpi", c->npis);
    MANY("atrTin", c->tins);
    MANY("atrContractId", c->contracts);
    MANY("atrGroupId", c->groups);
    ONE("displayName", c->name);
    ONE("mail", c->contact);
    ONE("description", c->description);
    /* In the same add/modify as the change itself, so the record cannot be missing or
     * name someone else when the change went through. */
    ONE("atrChangedBy", c->changed_by);
    ONE("atrChangedAt", c->changed_at);
#undef ONE
#undef MANY

    for (i = 0; i < n; i++) {
        LDAPMod *mod;
        char **vals;
        int j;

        if (add_only && a[i].vals->nelts == 0) continue;
        mod = apr_pcalloc(p, sizeof(*mod));
        vals = apr_pcalloc(p, sizeof(char *) * (apr_size_t)(a[i].vals->nelts + 1));
        for (j = 0; j < a[i].vals->nelts; j++) vals[j] = (char *)APR_ARRAY_IDX(a[i].vals, j, const char *);
        mod->mod_op = add_only ? LDAP_MOD_ADD : LDAP_MOD_REPLACE;
        mod->mod_type = (char *)a[i].attr;
        mod->mod_values = vals;
        mods[m++] = mod;
    }
    mods[m] = NULL;
    return mods;
}

typedef struct write_baton_t {
    const char *dn;
    LDAPMod **mods;
    int kind;   /* 0 add, 1 modify, 2 delete */
} write_baton_t;

static int write_op(LDAP *ld, void *baton, apr_pool_t *p)
{
    write_baton_t *b = baton;
    (void)p;
    switch (b->kind) {
    case 0: return ldap_add_ext_s(ld, b->dn, b->mods, NULL, NULL);
    case 1: return ldap_modify_ext_s(ld, b->dn, b->mods, NULL, NULL);
    default: return ldap_delete_ext_s(ld, b->dn, NULL, NULL);
    }
}

/* A write answered with a referral reached a read-only replica: on a connection pooled during
 * a failover (the provider may be back by now), or because the provider does not answer. Try
 * it once more on a new connection to each URI in the configured order (the provider first),
 * passing over those that refer too. APR_SUCCESS: a server took it, its result in *prc. */
static apr_status_t write_on_provider(int *prc, atr_registry_t *reg, write_baton_t *b, apr_pool_t *p)
{
    int i;

    for (i = 0; i < reg->uris->nelts; i++) {
        const char *uri = APR_ARRAY_IDX(reg->uris, i, const char *), *why = NULL;
        LDAP *ld = NULL;
        int rc;

        if (connect_one(&ld, reg, uri, &why, p) != LDAP_SUCCESS) {
            conn_hold_down(reg, i);
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_SUCCESS, p, "ATR01004: LDAP write: %s", why);
            continue;
        }
        apr_thread_mutex_lock(reg->mutex);
        reg->down_until[i] = 0;
        apr_thread_mutex_unlock(reg->mutex);
        rc = write_op(ld, b, p);
        if (rc == LDAP_REFERRAL || is_connection_error(rc)) {
            conn_release(reg, ld, i, 1, p);
            continue;
        }
        conn_release(reg, ld, i, 0, p);
        *prc = rc;
        return APR_SUCCESS;
    }
    return APR_EGENERAL;
}

static apr_status_t registry_write(atr_registry_t *reg, int kind, const char *client_id, LDAPMod **mods,
                                   const char **perr, apr_pool_t *p)
{
    static const char *const what[] = { "add", "modify", "delete" };
    write_baton_t b;
    apr_status_t rv;
    int rc = LDAP_OTHER;
    const char *err = NULL;

    b.dn = client_dn(reg, client_id, p);
    b.mods = mods;
    b.kind = kind;
    rv = registry_run(&rc, reg, what[kind], write_op, &b, p);
    if (rv == APR_SUCCESS && rc == LDAP_REFERRAL) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                       "ATR01003: LDAP %s of %s referred by a read-only replica: trying the URIs in "
                       "order for the provider", what[kind], b.dn);
        write_on_provider(&rc, reg, &b, p);
    }
    atr_registry_cache_forget(reg, client_id);
    if (rv != APR_SUCCESS) {
        err = apr_psprintf(p, "LDAP directory unreachable (%s): %s", reg->conf.uris,
                           atr_registry_last_error(reg, p));
        goto done;
    }
    switch (rc) {
    case LDAP_SUCCESS:
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p, "ATR00407: LDAP %s of %s done",
                       what[kind], b.dn);
        break;
    case LDAP_TYPE_OR_VALUE_EXISTS:
        /* only an added value can meet this (a link already there): nothing to do */
        break;
    case LDAP_ALREADY_EXISTS:
        rv = APR_EEXIST;
        err = apr_psprintf(p, "client %s already exists", client_id);
        break;
    case LDAP_NO_SUCH_OBJECT:
        rv = APR_NOTFOUND;
        err = apr_psprintf(p, "client %s does not exist (or the base DN %s is missing)", client_id,
                           reg->conf.base_dn);
        break;
    case LDAP_REFERRAL:
        /* Referrals are not chased (connect_one): a syncrepl replica answers every write so. */
        rv = APR_EGENERAL;
        err = apr_psprintf(p, "LDAP %s of %s refused: the server that answered is a read-only "
                           "replica (referral); writes need the provider up and listed first (%s)",
                           what[kind], b.dn, reg->conf.uris);
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR01002: %s", err);
        break;
    default:
        rv = APR_EGENERAL;
        err = apr_psprintf(p, "LDAP %s of %s refused: %s", what[kind], b.dn, ldap_err2string(rc));
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00408: %s", err);
        break;
    }
done:
    if (perr) *perr = err;
    return rv;
}

apr_status_t atr_registry_client_add(atr_registry_t *reg, const atr_client_t *client, const char **perr,
                                     apr_pool_t *p)
{
    if (!atr_client_id_is_valid(client->client_id)) {
        if (perr) *perr = "client_id: invalid";
        return APR_EINVAL;
    }
    return registry_write(reg, 0, client->client_id, client_mods(client, 1, p), perr, p);
}

apr_status_t atr_registry_client_modify(atr_registry_t *reg, const atr_client_t *client, const char **perr,
                                        apr_pool_t *p)
{
    if (!atr_client_id_is_valid(client->client_id)) {
        if (perr) *perr = "client_id: invalid";
        return APR_EINVAL;
    }
    return registry_write(reg, 1, client->client_id, client_mods(client, 0, p), perr, p);
}

apr_status_t atr_registry_client_link_group(atr_registry_t *reg, const char *client_id, const char *group_id,
                                            const char *who, const char **perr, apr_pool_t *p)
{
    atr_client_t stamp;
    LDAPMod *mods[4], add, by, at;
    char *gvals[2], *byvals[2], *atvals[2];
    apr_status_t rv;

    if (!atr_client_id_is_valid(client_id)) {
        if (perr) *perr = apr_psprintf(p, "client %s does not exist", client_id ? client_id : "");
        return APR_NOTFOUND;
    }
    memset(&stamp, 0, sizeof(stamp));
    atr_client_stamp(&stamp, who, apr_time_now(), p);
    /* one value added, not the entry rewritten: concurrent links cannot lose each other, and
     * the writer needs write access to these three attributes only */
    gvals[0] = apr_pstrdup(p, group_id);
    gvals[1] = NULL;
    add.mod_op = LDAP_MOD_ADD;
    add.mod_type = apr_pstrdup(p, "atrGroupId");
    add.mod_values = gvals;
    byvals[0] = apr_pstrdup(p, stamp.changed_by ? stamp.changed_by : "");
    byvals[1] = NULL;
    by.mod_op = LDAP_MOD_REPLACE;
    by.mod_type = apr_pstrdup(p, "atrChangedBy");
    by.mod_values = byvals;
    atvals[0] = apr_pstrdup(p, stamp.changed_at);
    atvals[1] = NULL;
    at.mod_op = LDAP_MOD_REPLACE;
    at.mod_type = apr_pstrdup(p, "atrChangedAt");
    at.mod_values = atvals;
    mods[0] = &add;
    mods[1] = &by;
    mods[2] = &at;
    mods[3] = NULL;
    rv = registry_write(reg, 1, client_id, mods, perr, p);
    return rv;
}

apr_status_t atr_registry_client_delete(atr_registry_t *reg, const char *client_id, const char **perr,
                                        apr_pool_t *p)
{
    if (!atr_client_id_is_valid(client_id)) {
        if (perr) *perr = apr_psprintf(p, "client %s does not exist", client_id ? client_id : "");
        return APR_NOTFOUND;
    }
    return registry_write(reg, 2, client_id, NULL, perr, p);
}
