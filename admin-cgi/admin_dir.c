/* The CGI's connections: the Consumer registry (LDAP, bound as the CGI's own service account)
 * and the store (read only, for Groups); loading a Consumer and writing it back. */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"

apr_status_t admin_dir_open_registry(admin_req_t *a)
{
    atr_registry_conf_t rc;
    memset(&rc, 0, sizeof(rc));
    rc.uris = a->conf->ldap_uri;
    rc.base_dn = a->conf->ldap_base;
    rc.bind_dn = a->conf->ldap_bind_dn;
    if (a->conf->ldap_bind_dn && a->conf->ldap_password_file) {
        const char *pw = NULL;
        apr_size_t n = 0;
        if (admin_read_secret(&pw, &n, a->conf->ldap_password_file, 4096, a->p) != APR_SUCCESS) {
            admin_log_problem("ATR00901: cannot read the LDAP password file named in %s", a->conf->path);
            return APR_EGENERAL;
        }
        while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r')) n--;
        rc.bind_pw = apr_pstrndup(a->p, pw, n);
    }
    /* One request, one connection, nothing cached: every page shows the directory as it is. */
    rc.timeout_ms = 3000;
    rc.retries = 1;
    rc.cache_ttl = 0;
    rc.pool_max = 1;
    return atr_registry_create(&a->reg, &rc, a->p);
}

void admin_dir_down(admin_req_t *a, apr_status_t rv)
{
    const char *why = atr_registry_last_error(a->reg, a->p);
    admin_log_problem("ATR00902: registry unreachable (%d): %s", rv, why ? why : "unknown");
    admin_page_error(a, 503, "Directory unavailable",
                     "The Consumer directory (LDAP) cannot be reached right now; nothing was changed. "
                     "Try again in a minute.");
}

apr_status_t admin_dir_open_store(admin_req_t *a)
{
    const char *err = NULL;
    apr_status_t rv;
    if (a->db) return APR_SUCCESS;
    rv = atr_db_open(&a->db, a->conf->store, &err, a->p);
    if (rv != APR_SUCCESS) {
        admin_log_problem("ATR00903: cannot open the store: %s", err ? err : "error");
        a->db = NULL;
    }
    return rv;
}

int admin_dir_load(atr_client_t **pc, admin_req_t *a, const char *id)
{
    apr_status_t rv = APR_NOTFOUND;
    if (!atr_client_id_is_valid(id) || (rv = atr_registry_client_get(pc, a->reg, id, a->p)) == APR_NOTFOUND) {
        admin_page_error(a, 404, "No such Consumer", "There is no Consumer with this client id.");
        return 0;
    }
    if (rv != APR_SUCCESS) {
        admin_dir_down(a, rv);
        return 0;
    }
    return 1;
}

apr_status_t admin_dir_write(admin_req_t *a, atr_client_t *c, const char **perr)
{
    /* Who and when go into the same modify as the change itself (docs/admin.md). */
    atr_client_stamp(c, a->user, apr_time_now(), a->p);
    return atr_registry_client_modify(a->reg, c, perr, a->p);
}

int admin_dir_save(admin_req_t *a, atr_client_t *c)
{
    const char *err = NULL;
    apr_status_t rv = admin_dir_write(a, c, &err);
    if (rv == APR_NOTFOUND || rv == APR_EINVAL) {
        admin_page_error(a, rv == APR_NOTFOUND ? 404 : 400, "Not changed", err ? err : "The change was refused.");
        return 0;
    }
    if (rv != APR_SUCCESS) {
        admin_dir_down(a, rv);
        return 0;
    }
    return 1;
}
