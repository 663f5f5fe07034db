/* One Consumer (/client/ID): its page (every field, its keys as they are now, its Groups, who
 * changed it last) and the buttons that change it without the form: enable/disable and
 * delete, after a confirmation page. */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"

/* Every field, and who changed the entry last: the staff member (atrChangedBy) and the
 * account that wrote it (the directory's modifiersName). */
static void details(admin_req_t *a, const atr_client_t *c)
{
    admin_out_fmt(a->out,
        "<dl id=\"details\"><dt>Client id</dt><dd id=\"d-client-id\">%s</dd>"
        "<dt>Status</dt><dd id=\"d-status\">%s</dd><dt>Name</dt><dd id=\"d-name\">%s</dd>"
        "<dt>Contact</dt><dd id=\"d-contact\">%s</dd><dt>Description</dt><dd id=\"d-description\">%s</dd>"
        "<dt>Scopes</dt><dd id=\"d-scopes\">%s</dd><dt>NPI</dt><dd id=\"d-npi\">%s</dd>"
        "<dt>TIN</dt><dd id=\"d-tin\">%s</dd><dt>Contracts</dt><dd id=\"d-contract\">%s</dd>"
        "<dt>JWKS URL</dt><dd id=\"d-jwks-url\">%s</dd>"
        "<dt>Last changed</dt><dd id=\"d-changed\">%s</dd>"
        "<dt>Entry written</dt><dd id=\"d-written\">%s by %s (directory)</dd></dl>\n",
        H(c->client_id), c->disabled ? "disabled" : "active", H(c->name), H(c->contact),
        H(c->description), H(admin_join(c->scopes, " ", a->p)), H(admin_join(c->npis, ", ", a->p)),
        H(admin_join(c->tins, ", ", a->p)), H(admin_join(c->contracts, ", ", a->p)), H(c->jwks_url),
        H(admin_changed_text(c->changed_at, c->changed_by, a->p)), H(admin_ldap_time(c->modified_at, a->p)),
        H(c->modified_by ? c->modified_by : "?"));
}

/* Edit, Link Groups, Delete, and the Disable/Enable button. */
static void actions(admin_req_t *a, const atr_client_t *c)
{
    const char *url = admin_page_client_href(a, c->client_id);

    admin_out_fmt(a->out, "<p class=\"actions\"><a href=\"%s/edit\" id=\"edit\">Edit</a> "
                  "<a href=\"%s/groups\" id=\"link-groups\">Link Groups</a> "
                  "<a href=\"%s/delete\" id=\"delete\">Delete</a></p>\n", url, url, url);
    admin_out_fmt(a->out, "<form method=\"post\" action=\"%s/status\">", url);
    admin_page_csrf_field(a);
    admin_out_fmt(a->out, "<input type=\"hidden\" name=\"status\" value=\"%s\">"
                  "<button type=\"submit\" id=\"toggle-status\">%s</button></form>\n",
                  c->disabled ? "active" : "disabled", c->disabled ? "Enable" : "Disable");
}

void admin_client_page(admin_req_t *a, const char *id)
{
    atr_client_t *c = NULL;

    if (!admin_dir_load(&c, a, id)) return;
    /* Without a store the Groups are listed by id, marked "store unavailable". */
    admin_dir_open_store(a);
    admin_page_begin_flash(a, apr_pstrcat(a->p, "Consumer ", c->client_id, NULL));
    details(a, c);
    admin_keys_show(a, c);
    actions(a, c);
    admin_groups_table(a, c, "linked-groups", "Linked Groups", c->groups, NULL);
    admin_page_end(a);
}

void admin_client_status(admin_req_t *a, const char *id)
{
    atr_client_t *c = NULL;
    const char *want = admin_param(a->form, "status");

    if (!want || (strcmp(want, "active") && strcmp(want, "disabled"))) {
        admin_page_error(a, 400, "Bad request", "status must be active or disabled.");
        return;
    }
    if (!admin_dir_load(&c, a, id)) return;
    c->disabled = !strcmp(want, "disabled");
    if (!admin_dir_save(a, c)) return;
    admin_log_audit(a, "ATR00912: %s client %s", c->disabled ? "disabled" : "enabled", c->client_id);
    admin_page_redirect(a, admin_page_client_path(a, c->client_id, c->disabled ? "?done=disabled" : "?done=enabled"));
}

static void delete_confirmation(admin_req_t *a, const atr_client_t *c)
{
    const char *url = admin_page_client_href(a, c->client_id);

    admin_page_begin(a, apr_pstrcat(a->p, "Delete ", c->client_id, "?", NULL));
    admin_out_fmt(a->out, "<p>Deleting <strong>%s</strong> (%s) removes its registration: it gets "
                  "no more tokens and its Group links are gone. This cannot be undone.</p>"
                  "<form method=\"post\" action=\"%s/delete\">",
                  H(c->client_id), H(c->name ? c->name : "no name"), url);
    admin_page_csrf_field(a);
    admin_out_fmt(a->out, "<p><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" "
                  "id=\"confirm\" required> Yes, delete %s</label></p>"
                  "<p><button type=\"submit\" id=\"confirm-delete\">Delete</button> "
                  "<a href=\"%s\">Cancel</a></p></form>\n", H(c->client_id), url);
    admin_page_end(a);
}

void admin_client_delete(admin_req_t *a, const char *id)
{
    atr_client_t *c = NULL;
    const char *err = NULL, *confirm = admin_param(a->form, "confirm");
    apr_status_t rv;

    if (!admin_dir_load(&c, a, id)) return;
    if (strcmp(a->method, "POST")) {
        delete_confirmation(a, c);
        return;
    }
    if (!confirm || strcmp(confirm, "yes")) {
        admin_page_error(a, 400, "Not deleted", "Tick the confirmation box to delete the Consumer.");
        return;
    }
    rv = atr_registry_client_delete(a->reg, c->client_id, &err, a->p);
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
        admin_dir_down(a, rv);
        return;
    }
    admin_log_audit(a, "ATR00913: deleted client %s", c->client_id);
    admin_page_redirect(a, "/?done=deleted");
}
