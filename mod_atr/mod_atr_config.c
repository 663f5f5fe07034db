/* mod_atr directives. Values are checked where they appear, so a typo fails the config test
 * with the directive's name, not a request at 3 a.m. */
#include <string.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include "http_core.h"
#include "http_request.h"
#include "mod_atr.h"
#include "mod_atr_config.h"

static const atr_dir_conf_t dir_defaults = {
    "",      /* base_path: SetHandler outside a <Location> serves from the root */
    NULL,    /* base_url: derived from the request */
    50,      /* search_default_count */
    1000,    /* search_max_count */
};
static const atr_srv_conf_t srv_defaults = {
    1000,    /* member_page_size */
    NULL,    /* registry_url: required when an atr-fhir Location exists */
    NULL,    /* registry_base_dn: required likewise */
    NULL,    /* registry_bind_dn: anonymous bind */
    NULL,    /* registry_bind_pw_file */
    3,       /* registry_timeout */
    2,       /* registry_retries */
    60,      /* registry_cache_ttl */
    30,      /* ldap_hold_down */
    NULL,    /* token_key_file: required likewise */
    300,     /* token_lifetime */
    5,       /* jwks_timeout */
    65536,   /* jwks_max_bytes */
    0,       /* jwks_allow_loopback_http */
    "/var/lib/atr/export",  /* export_dir */
    2,       /* export_max_jobs */
    NULL,    /* node_name: the host name (mod_atr_export_worker.c) */
    APR_INT64_C(1073741824), /* export_max_file_size: 1 GiB */
    86400,   /* export_retention */
    30,      /* export_stale_after */
    2,       /* export_poll_interval */
    0,       /* sub_allow_loopback_http */
};

#define MERGE_PTR(f) n->f = add->f ? add->f : base->f
#define MERGE_INT(f) n->f = add->f != -1 ? add->f : base->f

void *atr_dir_conf_create(apr_pool_t *p, char *path)
{
    atr_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    if (path) {
        /* "/fhir/" and "/fhir" are the same base */
        apr_size_t n = strlen(path);
        while (n > 0 && path[n - 1] == '/') n--;
        c->base_path = apr_pstrmemdup(p, path, n);
    }
    c->search_default_count = -1;
    c->search_max_count = -1;
    return c;
}

void *atr_dir_conf_merge(apr_pool_t *p, void *basev, void *addv)
{
    atr_dir_conf_t *base = basev, *add = addv, *n = apr_pcalloc(p, sizeof(*n));
    MERGE_PTR(base_path);
    MERGE_PTR(base_url);
    MERGE_INT(search_default_count);
    MERGE_INT(search_max_count);
    return n;
}

void *atr_srv_conf_create(apr_pool_t *p, server_rec *s)
{
    atr_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->member_page_size = -1;
    c->registry_timeout = -1;
    c->registry_retries = -1;
    c->registry_cache_ttl = -1;
    c->ldap_hold_down = -1;
    c->token_lifetime = -1;
    c->jwks_timeout = -1;
    c->jwks_max_bytes = -1;
    c->jwks_allow_loopback_http = -1;
    c->export_max_jobs = -1;
    c->export_max_file_size = -1;
    c->export_retention = -1;
    c->export_stale_after = -1;
    c->export_poll_interval = -1;
    c->sub_allow_loopback_http = -1;
    return c;
}

void *atr_srv_conf_merge(apr_pool_t *p, void *basev, void *addv)
{
    atr_srv_conf_t *base = basev, *add = addv, *n = apr_pcalloc(p, sizeof(*n));
    MERGE_INT(member_page_size);
    MERGE_PTR(registry_url);
    MERGE_PTR(registry_base_dn);
    MERGE_PTR(registry_bind_dn);
    MERGE_PTR(registry_bind_pw_file);
    MERGE_INT(registry_timeout);
    MERGE_INT(registry_retries);
    MERGE_INT(registry_cache_ttl);
    MERGE_INT(ldap_hold_down);
    MERGE_PTR(token_key_file);
    MERGE_INT(token_lifetime);
    MERGE_INT(jwks_timeout);
    MERGE_INT(jwks_max_bytes);
    MERGE_INT(jwks_allow_loopback_http);
    MERGE_PTR(export_dir);
    MERGE_INT(export_max_jobs);
    MERGE_PTR(node_name);
    MERGE_INT(export_max_file_size);
    MERGE_INT(export_retention);
    MERGE_INT(export_stale_after);
    MERGE_INT(export_poll_interval);
    MERGE_INT(sub_allow_loopback_http);
    return n;
}

static const char *parse_count(int *pn, cmd_parms *cmd, const char *arg, int min, int max)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || v < min || v > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an integer from %d to %d",
                            cmd->cmd->name, arg, min, max);
    }
    *pn = (int)v;
    return NULL;
}

static const char *set_base_url(cmd_parms *cmd, void *dconf, const char *arg)
{
    atr_dir_conf_t *c = dconf;
    apr_uri_t uri;
    apr_size_t n;

    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http"))
        || uri.query || uri.fragment) {
        return apr_psprintf(cmd->pool, "ATRBaseURL: '%s' is not an absolute http(s) URL "
                            "without query or fragment", arg);
    }
    n = strlen(arg);
    while (n > 0 && arg[n - 1] == '/') n--;
    c->base_url = apr_pstrmemdup(cmd->pool, arg, n);
    return NULL;
}

static const char *set_default_count(cmd_parms *cmd, void *dconf, const char *arg)
{
    return parse_count(&((atr_dir_conf_t *)dconf)->search_default_count, cmd, arg, 1, 100000);
}

static const char *set_max_count(cmd_parms *cmd, void *dconf, const char *arg)
{
    return parse_count(&((atr_dir_conf_t *)dconf)->search_max_count, cmd, arg, 1, 100000);
}

static const char *set_member_page_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    atr_srv_conf_t *c = ap_get_module_config(cmd->server->module_config, &atr_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)dconf;
    if (err) return err;
    return parse_count(&c->member_page_size, cmd, arg, 1, 100000);
}

static atr_srv_conf_t *global_conf(cmd_parms *cmd, const char **perr)
{
    *perr = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return ap_get_module_config(cmd->server->module_config, &atr_module);
}

/* Directives whose value is a string kept as given: the offset of the field is cmd->info. */
static const char *set_srv_str(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err;
    atr_srv_conf_t *c = global_conf(cmd, &err);
    (void)dconf;
    if (err) return err;
    if (!*arg) return apr_psprintf(cmd->pool, "%s: empty value", cmd->cmd->name);
    *(const char **)((char *)c + (apr_size_t)cmd->info) = arg;
    return NULL;
}

static const char *set_srv_path(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (!path) return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    return set_srv_str(cmd, dconf, path);
}

static const char *set_registry_url(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *s = arg;
    while (*s) {
        apr_size_t n;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        n = strcspn(s, " \t");
        if (!(n > 7 && !strncasecmp(s, "ldap://", 7)) && !(n > 8 && !strncasecmp(s, "ldaps://", 8))
            && !(n > 8 && !strncasecmp(s, "ldapi://", 8))) {
            return apr_psprintf(cmd->pool, "ATRRegistryURL: '%s' is not a list of ldap://, ldaps:// "
                                "or ldapi:// URLs", arg);
        }
        s += n;
    }
    return set_srv_str(cmd, dconf, arg);
}

/* Integer directives: the offset of the field is cmd->info; ranges per directive. */
static const char *set_srv_int(cmd_parms *cmd, void *dconf, const char *arg)
{
    static const struct { const char *name; int min, max; } ranges[] = {
        { "ATRRegistryTimeout", 1, 300 }, { "ATRRegistryRetries", 0, 10 },
        { "ATRRegistryCacheTTL", 0, 86400 }, { "ATRRegistryHoldDown", 0, 3600 },
        { "ATRTokenLifetime", 1, 3600 },
        { "ATRJWKSTimeout", 1, 300 }, { "ATRJWKSMaxBytes", 1024, 16 * 1024 * 1024 },
        { "ATRExportMaxJobs", 0, 64 }, { "ATRExportRetention", 1, 30 * 86400 },
        { "ATRExportStaleAfter", 2, 3600 }, { "ATRExportPollInterval", 0, 3600 },
    };
    const char *err;
    atr_srv_conf_t *c = global_conf(cmd, &err);
    apr_size_t i;
    (void)dconf;
    if (err) return err;
    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (!strcasecmp(cmd->cmd->name, ranges[i].name)) {
            return parse_count((int *)((char *)c + (apr_size_t)cmd->info), cmd, arg, ranges[i].min,
                               ranges[i].max);
        }
    }
    return apr_psprintf(cmd->pool, "%s: no range known", cmd->cmd->name);
}

/* The node's name in the store (export job claims, the per-node ATRExportMaxJobs count):
 * it is written into rows and log lines, so only visible ASCII, and short. */
#define ATR_NODE_NAME_MAX 64
static const char *set_node_name(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *p;

    for (p = arg; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) break;
    }
    if (!*arg || *p || p - arg > ATR_NODE_NAME_MAX) {
        return apr_psprintf(cmd->pool, "ATRNodeName: '%s' is not a node name (1 to %d visible "
                            "ASCII characters, no spaces)", arg, ATR_NODE_NAME_MAX);
    }
    return set_srv_str(cmd, dconf, arg);
}

static const char *set_export_max_file_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err;
    atr_srv_conf_t *c = global_conf(cmd, &err);
    char *end;
    apr_int64_t v;
    (void)dconf;
    if (err) return err;
    v = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || v < 4096 || v > APR_INT64_C(1) << 40) {
        return apr_psprintf(cmd->pool, "ATRExportMaxFileSize: '%s' is not a number of bytes from "
                            "4096 to 1 TiB", arg);
    }
    c->export_max_file_size = v;
    return NULL;
}

static const char *set_jwks_loopback(cmd_parms *cmd, void *dconf, int on)
{
    const char *err;
    atr_srv_conf_t *c = global_conf(cmd, &err);
    (void)dconf;
    if (err) return err;
    c->jwks_allow_loopback_http = on ? 1 : 0;
    return NULL;
}

static const char *set_sub_loopback(cmd_parms *cmd, void *dconf, int on)
{
    const char *err;
    atr_srv_conf_t *c = global_conf(cmd, &err);
    (void)dconf;
    if (err) return err;
    c->sub_allow_loopback_http = on ? 1 : 0;
    return NULL;
}

#define SRV_OFF(f) (void *)APR_OFFSETOF(atr_srv_conf_t, f)

const command_rec atr_cmds[] = {
    AP_INIT_TAKE1("ATRRegistryURL", set_registry_url, SRV_OFF(registry_url), RSRC_CONF,
                  "space-separated LDAP URIs of the Consumer registry, tried in order"),
    AP_INIT_TAKE1("ATRRegistryBaseDN", set_srv_str, SRV_OFF(registry_base_dn), RSRC_CONF,
                  "DN under which Consumer entries (atrClientId=<id>,<dn>) live"),
    AP_INIT_TAKE1("ATRRegistryBindDN", set_srv_str, SRV_OFF(registry_bind_dn), RSRC_CONF,
                  "DN to bind to the registry as (default: anonymous)"),
    AP_INIT_TAKE1("ATRRegistryBindPasswordFile", set_srv_path, SRV_OFF(registry_bind_pw_file), RSRC_CONF,
                  "file holding the registry bind password (read at startup)"),
    AP_INIT_TAKE1("ATRRegistryTimeout", set_srv_int, SRV_OFF(registry_timeout), RSRC_CONF,
                  "registry connect and operation timeout in seconds (default 3)"),
    AP_INIT_TAKE1("ATRRegistryRetries", set_srv_int, SRV_OFF(registry_retries), RSRC_CONF,
                  "further registry attempts after a failed one (default 2)"),
    AP_INIT_TAKE1("ATRRegistryCacheTTL", set_srv_int, SRV_OFF(registry_cache_ttl), RSRC_CONF,
                  "seconds a client entry is cached (default 60; 0 = no cache)"),
    AP_INIT_TAKE1("ATRRegistryHoldDown", set_srv_int, SRV_OFF(ldap_hold_down), RSRC_CONF,
                  "seconds an LDAP URI that did not answer is tried after the others (default 30; "
                  "0 = none)"),
    AP_INIT_TAKE1("ATRTokenKeyFile", set_srv_path, SRV_OFF(token_key_file), RSRC_CONF,
                  "secret (>= 32 bytes, mode 0600) signing the access tokens; same on every node"),
    AP_INIT_TAKE1("ATRTokenLifetime", set_srv_int, SRV_OFF(token_lifetime), RSRC_CONF,
                  "access token lifetime in seconds (default 300, 1..3600)"),
    AP_INIT_TAKE1("ATRJWKSTimeout", set_srv_int, SRV_OFF(jwks_timeout), RSRC_CONF,
                  "timeout in seconds fetching a client's JWKS URL (default 5)"),
    AP_INIT_TAKE1("ATRJWKSMaxBytes", set_srv_int, SRV_OFF(jwks_max_bytes), RSRC_CONF,
                  "largest JWKS accepted from a client's URL (default 65536)"),
    AP_INIT_FLAG("ATRJWKSAllowLoopbackHTTP", set_jwks_loopback, NULL, RSRC_CONF,
                 "allow http:// JWKS URLs on loopback hosts (tests only; default Off)"),
    AP_INIT_TAKE1("ATRExportDir", set_srv_path, SRV_OFF(export_dir), RSRC_CONF,
                  "directory export files are written to (default /var/lib/atr/export)"),
    AP_INIT_TAKE1("ATRExportMaxJobs", set_srv_int, SRV_OFF(export_max_jobs), RSRC_CONF,
                  "exports running at once on this node (default 2; 0 = none start)"),
    AP_INIT_TAKE1("ATRNodeName", set_node_name, SRV_OFF(node_name), RSRC_CONF,
                  "this node's name for export job claims and ATRExportMaxJobs (default: the host name)"),
    AP_INIT_TAKE1("ATRExportMaxFileSize", set_export_max_file_size, NULL, RSRC_CONF,
                  "bytes after which an export file is split (default 1 GiB)"),
    AP_INIT_TAKE1("ATRExportRetention", set_srv_int, SRV_OFF(export_retention), RSRC_CONF,
                  "seconds a finished export and its files are kept (default 86400)"),
    AP_INIT_TAKE1("ATRExportStaleAfter", set_srv_int, SRV_OFF(export_stale_after), RSRC_CONF,
                  "seconds without heartbeat after which a running export is claimed again (default 30)"),
    AP_INIT_TAKE1("ATRExportPollInterval", set_srv_int, SRV_OFF(export_poll_interval), RSRC_CONF,
                  "Retry-After of export status answers; faster polls get 429 (default 2; 0 = no 429)"),
    AP_INIT_TAKE1("ATRBaseURL", set_base_url, NULL, OR_NONE | ACCESS_CONF | RSRC_CONF,
                  "public absolute FHIR base URL used in fullUrl and links"),
    AP_INIT_TAKE1("ATRSearchDefaultCount", set_default_count, NULL, ACCESS_CONF | RSRC_CONF,
                  "entries per search page when _count is not given (default 50)"),
    AP_INIT_TAKE1("ATRSearchMaxCount", set_max_count, NULL, ACCESS_CONF | RSRC_CONF,
                  "largest _count honoured (default 1000)"),
    AP_INIT_TAKE1("ATRMemberPageSize", set_member_page_size, NULL, RSRC_CONF,
                  "store rows per page when streaming Group members (default 1000)"),
    AP_INIT_FLAG("ATRSubscriptionAllowLoopbackHTTP", set_sub_loopback, NULL, RSRC_CONF,
                 "On: Subscription rest-hook endpoints may be plain http on a loopback host (tests)"),
    { NULL }
};

static const atr_dir_conf_t *dconf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &atr_module);
}

static apr_array_header_t *handler_locations;   /* const char *, from the config tree */

static void find_locations(const ap_directive_t *d, apr_array_header_t *found, apr_pool_t *p)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "<Location") && d->args) {
            const ap_directive_t *c;
            for (c = d->first_child; c; c = c->next) {
                if (!strcasecmp(c->directive, "SetHandler") && c->args
                    && ap_strstr_c(c->args, "atr-fhir")) {
                    const char *a = d->args;
                    apr_size_t n;
                    if (*a == '"') a++;
                    n = strcspn(a, "\">");
                    while (n > 0 && a[n - 1] == '/') n--;
                    APR_ARRAY_PUSH(found, const char *) = apr_pstrmemdup(p, a, n);
                    break;
                }
            }
        }
        if (d->first_child) find_locations(d->first_child, found, p);
    }
}

void atr_conf_find_locations(apr_pool_t *pconf)
{
    handler_locations = apr_array_make(pconf, 2, sizeof(const char *));
    find_locations(ap_conftree, handler_locations, pconf);
}

const char *atr_conf_base_path(request_rec *r)
{
    const atr_dir_conf_t *c = dconf(r);
    const char *best = NULL;
    apr_size_t best_len = 0;
    int i;

    if (c->base_path) return c->base_path;
    for (i = 0; handler_locations && i < handler_locations->nelts; i++) {
        const char *loc = APR_ARRAY_IDX(handler_locations, i, const char *);
        apr_size_t n = strlen(loc);
        if (!strncmp(r->uri, loc, n) && (r->uri[n] == '/' || r->uri[n] == '\0')
            && (!best || n > best_len)) {
            best = loc;
            best_len = n;
        }
    }
    return best ? best : dir_defaults.base_path;
}

const char *atr_conf_base_url(request_rec *r)
{
    const atr_dir_conf_t *c = dconf(r);
    if (c->base_url) return c->base_url;
    return apr_pstrcat(r->pool, ap_construct_url(r->pool, "", r), atr_conf_base_path(r), NULL);
}

int atr_conf_search_max_count(request_rec *r)
{
    const atr_dir_conf_t *c = dconf(r);
    return c->search_max_count != -1 ? c->search_max_count : dir_defaults.search_max_count;
}

int atr_conf_search_default_count(request_rec *r)
{
    const atr_dir_conf_t *c = dconf(r);
    int n = c->search_default_count != -1 ? c->search_default_count : dir_defaults.search_default_count;
    int max = atr_conf_search_max_count(r);
    return n > max ? max : n;
}

int atr_conf_member_page_size(server_rec *s)
{
    const atr_srv_conf_t *c = ap_get_module_config(s->module_config, &atr_module);
    return c->member_page_size != -1 ? c->member_page_size : srv_defaults.member_page_size;
}

int atr_conf_has_fhir_locations(void)
{
    return handler_locations && handler_locations->nelts > 0;
}

static const atr_srv_conf_t *sconf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &atr_module);
}

#define SRV_PTR(f) (sconf(s)->f ? sconf(s)->f : srv_defaults.f)
#define SRV_INT(f) (sconf(s)->f != -1 ? sconf(s)->f : srv_defaults.f)

const char *atr_conf_registry_url(server_rec *s) { return SRV_PTR(registry_url); }
const char *atr_conf_registry_base_dn(server_rec *s) { return SRV_PTR(registry_base_dn); }
const char *atr_conf_registry_bind_dn(server_rec *s) { return SRV_PTR(registry_bind_dn); }
const char *atr_conf_registry_bind_pw_file(server_rec *s) { return SRV_PTR(registry_bind_pw_file); }
int atr_conf_registry_timeout(server_rec *s) { return SRV_INT(registry_timeout); }
int atr_conf_registry_retries(server_rec *s) { return SRV_INT(registry_retries); }
int atr_conf_registry_cache_ttl(server_rec *s) { return SRV_INT(registry_cache_ttl); }
int atr_conf_ldap_hold_down(server_rec *s) { return SRV_INT(ldap_hold_down); }
const char *atr_conf_token_key_file(server_rec *s) { return SRV_PTR(token_key_file); }

apr_interval_time_t atr_conf_token_lifetime(server_rec *s)
{
    return apr_time_from_sec(SRV_INT(token_lifetime));
}

apr_interval_time_t atr_conf_jwks_timeout(server_rec *s)
{
    return apr_time_from_sec(SRV_INT(jwks_timeout));
}

apr_size_t atr_conf_jwks_max_bytes(server_rec *s) { return (apr_size_t)SRV_INT(jwks_max_bytes); }
int atr_conf_jwks_allow_loopback_http(server_rec *s) { return SRV_INT(jwks_allow_loopback_http); }

const char *atr_conf_export_dir(server_rec *s) { return SRV_PTR(export_dir); }
int atr_conf_export_max_jobs(server_rec *s) { return SRV_INT(export_max_jobs); }
const char *atr_conf_node_name(server_rec *s) { return SRV_PTR(node_name); }
apr_off_t atr_conf_export_max_file_size(server_rec *s) { return (apr_off_t)SRV_INT(export_max_file_size); }
int atr_conf_export_retention(server_rec *s) { return SRV_INT(export_retention); }
int atr_conf_export_stale_after(server_rec *s) { return SRV_INT(export_stale_after); }
int atr_conf_export_poll_interval(server_rec *s) { return SRV_INT(export_poll_interval); }
int atr_conf_sub_allow_loopback_http(server_rec *s) { return SRV_INT(sub_allow_loopback_http); }

/* One of each per process: the directives are server-wide, so every server_rec shares them. */
static atr_registry_t *rt_registry;
static const atr_token_key_t *rt_token_key;
static atr_jwks_cache_t *rt_jwks_cache;

void atr_conf_set_runtime(atr_registry_t *reg, const atr_token_key_t *key, atr_jwks_cache_t *jwks)
{
    rt_registry = reg;
    rt_token_key = key;
    rt_jwks_cache = jwks;
}

atr_registry_t *atr_conf_registry(server_rec *s) { (void)s; return rt_registry; }
const atr_token_key_t *atr_conf_token_key(server_rec *s) { (void)s; return rt_token_key; }
atr_jwks_cache_t *atr_conf_jwks_cache(server_rec *s) { (void)s; return rt_jwks_cache; }
