/* Linking a Group a Consumer created to its registry entry (atrGroupId), so that its
 * entitlement (atr_entitle.h) covers it like any Group staff linked. */
#include <apr_strings.h>
#include "atr_recon.h"
#include "atr_log.h"

apr_status_t atr_recon_link(atr_registry_t *reg, const char *client_id, const char *group_id,
                            const char **perr, apr_pool_t *p)
{
    apr_status_t rv;

    *perr = NULL;
    if (!reg) {
        *perr = "no Consumer registry";
        return APR_EGENERAL;
    }
    /* one value added (not the entry read and written back): nothing else in the entry can
     * be lost to a concurrent change, and mod_atr's directory account needs write access to
     * atrGroupId, atrChangedBy and atrChangedAt only */
    rv = atr_registry_client_link_group(reg, client_id, group_id,
                                        apr_pstrcat(p, "consumer:", client_id, NULL), perr, p);
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
