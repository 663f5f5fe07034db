/* Linking a Group a Consumer created to its registry entry (atrGroupId), so that its
 * entitlement (atr_entitle.h) covers it like any Group staff linked. */
#include <string.h>
#include <apr_strings.h>
#include "atr_recon.h"
#include "atr_log.h"

apr_status_t atr_recon_link(atr_registry_t *reg, const char *client_id, const char *group_id,
                            const char **perr, apr_pool_t *p)
{
    atr_client_t *client = NULL;
    apr_status_t rv;
    int i;

    *perr = NULL;
    if (!reg) {
        *perr = "no Consumer registry";
        return APR_EGENERAL;
    }
    /* the entry as the directory has it now, not a cached copy: the modify replaces every
     * attribute, so it must start from the current values */
    atr_registry_cache_forget(reg, client_id);
    rv = atr_registry_client_get(&client, reg, client_id, p);
    if (rv != APR_SUCCESS || !client) {
        *perr = apr_psprintf(p, "cannot read the registry entry of client %s", client_id);
        return rv == APR_SUCCESS ? APR_NOTFOUND : rv;
    }
    for (i = 0; client->groups && i < client->groups->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(client->groups, i, const char *), group_id)) return APR_SUCCESS;
    }
    client = atr_client_copy(client, p);
    if (!client->groups) client->groups = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(client->groups, const char *) = apr_pstrdup(p, group_id);
    rv = atr_registry_client_modify(reg, client, perr, p);
    atr_registry_cache_forget(reg, client_id);
    if (rv != APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00844: linking Group/%s to client %s failed: %s",
                       group_id, client_id, *perr ? *perr : "registry error");
        return rv;
    }
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p, "ATR00845: Group/%s linked to client %s",
                   group_id, client_id);
    return APR_SUCCESS;
}
