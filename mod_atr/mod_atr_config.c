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
    return c;
}

void *atr_srv_conf_merge(apr_pool_t *p, void *basev, void *addv)
{
    atr_srv_conf_t *base = basev, *add = addv, *n = apr_pcalloc(p, sizeof(*n));
    MERGE_INT(member_page_size);
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

const command_rec atr_cmds[] = {
    AP_INIT_TAKE1("ATRBaseURL", set_base_url, NULL, OR_NONE | ACCESS_CONF | RSRC_CONF,
                  "public absolute FHIR base URL used in fullUrl and links"),
    AP_INIT_TAKE1("ATRSearchDefaultCount", set_default_count, NULL, ACCESS_CONF | RSRC_CONF,
                  "entries per search page when _count is not given (default 50)"),
    AP_INIT_TAKE1("ATRSearchMaxCount", set_max_count, NULL, ACCESS_CONF | RSRC_CONF,
                  "largest _count honoured (default 1000)"),
    AP_INIT_TAKE1("ATRMemberPageSize", set_member_page_size, NULL, RSRC_CONF,
                  "store rows per page when streaming Group members (default 1000)"),
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
