/* mod_atr directives: per-location FHIR endpoint settings and server-wide ones.
 * House style: unset sentinels, one defaults struct, one merge line per field, typed getters. */
#ifndef MOD_ATR_CONFIG_H
#define MOD_ATR_CONFIG_H
#include "httpd.h"
#include "http_config.h"

typedef struct atr_dir_conf_t {
    const char *base_path;      /* the <Location> path: the FHIR base path (NULL: unset) */
    const char *base_url;       /* ATRBaseURL, without trailing '/' (NULL: unset) */
    int search_default_count;   /* ATRSearchDefaultCount (-1: unset) */
    int search_max_count;       /* ATRSearchMaxCount (-1: unset) */
} atr_dir_conf_t;

typedef struct atr_srv_conf_t {
    int member_page_size;       /* ATRMemberPageSize (-1: unset) */
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

#endif
