/* mod_atr directives: per-location FHIR endpoint settings and server-wide ones.
 * House style: unset sentinels, one defaults struct, one merge line per field, typed getters. */
#ifndef MOD_ATR_CONFIG_H
#define MOD_ATR_CONFIG_H
#include "httpd.h"
#include "http_config.h"
#include "atr_registry.h"
#include "atr_token.h"
#include "atr_jwks_fetch.h"

typedef struct atr_dir_conf_t {
    const char *base_path;      /* the <Location> path: the FHIR base path (NULL: unset) */
    const char *base_url;       /* ATRBaseURL, without trailing '/' (NULL: unset) */
    int search_default_count;   /* ATRSearchDefaultCount (-1: unset) */
    int search_max_count;       /* ATRSearchMaxCount (-1: unset) */
} atr_dir_conf_t;

typedef struct atr_srv_conf_t {
    int member_page_size;       /* ATRMemberPageSize (-1: unset) */
    /* authorization (issue 3); server-wide (main server only) */
    const char *registry_url;   /* ATRRegistryURL: space-separated LDAP URIs (NULL: unset) */
    const char *registry_base_dn;   /* ATRRegistryBaseDN */
    const char *registry_bind_dn;   /* ATRRegistryBindDN */
    const char *registry_bind_pw_file; /* ATRRegistryBindPasswordFile */
    int registry_timeout;       /* ATRRegistryTimeout, s (-1: unset) */
    int registry_retries;       /* ATRRegistryRetries (-1: unset) */
    int registry_cache_ttl;     /* ATRRegistryCacheTTL, s (-1: unset) */
    int ldap_hold_down;         /* ATRRegistryHoldDown, s (-1: unset; 0 = none) */
    const char *token_key_file; /* ATRTokenKeyFile */
    int token_lifetime;         /* ATRTokenLifetime, s (-1: unset) */
    int jwks_timeout;           /* ATRJWKSTimeout, s (-1: unset) */
    int jwks_max_bytes;         /* ATRJWKSMaxBytes (-1: unset) */
    int jwks_allow_loopback_http; /* ATRJWKSAllowLoopbackHTTP (-1: unset) */
    /* bulk export (issue 4); server-wide */
    const char *export_dir;     /* ATRExportDir */
    int export_max_jobs;        /* ATRExportMaxJobs, per node (-1: unset; 0 = paused) */
    const char *node_name;      /* ATRNodeName (NULL: unset, the host name) */
    apr_int64_t export_max_file_size; /* ATRExportMaxFileSize, bytes (-1: unset) */
    int export_retention;       /* ATRExportRetention, s (-1: unset) */
    int export_stale_after;     /* ATRExportStaleAfter, s (-1: unset) */
    int export_poll_interval;   /* ATRExportPollInterval, s (-1: unset) */
    /* subscriptions (issue 5); server-wide */
    int sub_allow_loopback_http; /* ATRSubscriptionAllowLoopbackHTTP (-1: unset) */
} atr_srv_conf_t;

extern const command_rec atr_cmds[];
void *atr_dir_conf_create(apr_pool_t *p, char *path);
void *atr_dir_conf_merge(apr_pool_t *p, void *basev, void *addv);
void *atr_srv_conf_create(apr_pool_t *p, server_rec *s);
void *atr_srv_conf_merge(apr_pool_t *p, void *basev, void *addv);

/* httpd creates our per-dir config for a <Location> only when one of our directives is in
 * it, so a section holding just `SetHandler atr-fhir` would not tell us its path. This
 * notes the paths of every <Location> whose SetHandler is atr-fhir (post_config); the base
 * path of a request is then its own section's path, or the longest such path it is under. */
void atr_conf_find_locations(apr_pool_t *pconf);

/* Typed getters (defaults applied). */
const char *atr_conf_base_path(request_rec *r);
/* Public absolute FHIR base URL: ATRBaseURL, or scheme://host[:port] + base path. */
const char *atr_conf_base_url(request_rec *r);
int atr_conf_search_default_count(request_rec *r);
int atr_conf_search_max_count(request_rec *r);
int atr_conf_member_page_size(server_rec *s);

/* 1 if the config has a <Location> with SetHandler atr-fhir (after atr_conf_find_locations). */
int atr_conf_has_fhir_locations(void);

/* Authorization settings (defaults applied). */
const char *atr_conf_registry_url(server_rec *s);
const char *atr_conf_registry_base_dn(server_rec *s);
const char *atr_conf_registry_bind_dn(server_rec *s);
const char *atr_conf_registry_bind_pw_file(server_rec *s);
int atr_conf_registry_timeout(server_rec *s);          /* s */
int atr_conf_registry_retries(server_rec *s);
int atr_conf_registry_cache_ttl(server_rec *s);        /* s */
int atr_conf_ldap_hold_down(server_rec *s);            /* s; 0 = none */
const char *atr_conf_token_key_file(server_rec *s);
apr_interval_time_t atr_conf_token_lifetime(server_rec *s);
apr_interval_time_t atr_conf_jwks_timeout(server_rec *s);
apr_size_t atr_conf_jwks_max_bytes(server_rec *s);
int atr_conf_jwks_allow_loopback_http(server_rec *s);

/* Bulk export settings (defaults applied). */
const char *atr_conf_export_dir(server_rec *s);
int atr_conf_export_max_jobs(server_rec *s);
/* ATRNodeName, or NULL when not set (the caller uses the host name). */
const char *atr_conf_node_name(server_rec *s);
apr_off_t atr_conf_export_max_file_size(server_rec *s);
int atr_conf_export_retention(server_rec *s);       /* s */
int atr_conf_export_stale_after(server_rec *s);     /* s */
int atr_conf_export_poll_interval(server_rec *s);   /* s */
int atr_conf_sub_allow_loopback_http(server_rec *s);

/* Per-process objects made at startup (mod_atr.c): the registry handle (per child, NULL
 * when not configured or not created), the token key (NULL when not loaded), the JWKS cache. */
atr_registry_t *atr_conf_registry(server_rec *s);
const atr_token_key_t *atr_conf_token_key(server_rec *s);
atr_jwks_cache_t *atr_conf_jwks_cache(server_rec *s);
void atr_conf_set_runtime(atr_registry_t *reg, const atr_token_key_t *key, atr_jwks_cache_t *jwks);

#endif
