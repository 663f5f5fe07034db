/* The pages that submit the Consumer form: register (/new, one LDAP add) and edit
 * (/client/ID/edit, one modify). Nothing is written unless every check passed. */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"

void admin_edit_new(admin_req_t *a)
{
    admin_form_t *f;
    const char *err = NULL;
    apr_status_t rv;

    if (strcmp(a->method, "POST")) {
        if ((f = admin_form_new(a)) != NULL) admin_form_render(a, f, 1, 200);
        return;
    }
    if ((f = admin_form_read(a, NULL)) == NULL) return;
    atr_client_stamp(f->c, a->user, apr_time_now(), a->p);
    rv = atr_registry_client_add(a->reg, f->c, &err, a->p);
    if (rv == APR_EEXIST) {
        /* The form was sent twice (reload): the id is generated when the form is shown. */
        admin_form_refuse(a, f, 1, 409, apr_psprintf(a->p, "client id: %s is already registered "
                          "(was this form sent twice?)", f->c->client_id));
        return;
    }
    if (rv == APR_EINVAL || rv == APR_NOTFOUND) {
        admin_form_refuse(a, f, 1, 400, err ? err : "the directory refused the entry");
        return;
    }
    if (rv != APR_SUCCESS) {
        admin_dir_down(a, rv);
        return;
    }
    admin_log_audit(a, "ATR00910: registered client %s", f->c->client_id);
    admin_page_redirect(a, admin_page_client_path(a, f->c->client_id, "?done=added"));
}

void admin_edit_page(admin_req_t *a, const char *id)
{
    atr_client_t *c = NULL;
    admin_form_t *f;
    const char *err = NULL;
    apr_status_t rv;

    if (!admin_dir_load(&c, a, id)) return;
    if (strcmp(a->method, "POST")) {
        admin_form_render(a, admin_form_from_client(c, a->p), 0, 200);
        return;
    }
    if ((f = admin_form_read(a, c)) == NULL) return;
    rv = admin_dir_write(a, f->c, &err);
    if (rv == APR_NOTFOUND) {
        admin_page_error(a, 404, "No such Consumer", "The Consumer was deleted meanwhile.");
        return;
    }
    if (rv == APR_EINVAL) {
        admin_form_refuse(a, f, 0, 400, err ? err : "the directory refused the change");
        return;
    }
    if (rv != APR_SUCCESS) {
        admin_dir_down(a, rv);
        return;
    }
    admin_log_audit(a, "ATR00911: modified client %s", c->client_id);
    admin_page_redirect(a, admin_page_client_path(a, c->client_id, "?done=saved"));
}
