/* The Consumer list (GET /): every registered Consumer, or those a search text matches (the
 * registry escapes it for the LDAP filter). */
#include <apr_strings.h>
#include "admin_cgi.h"

static void consumer_row(admin_req_t *a, const atr_client_t *c)
{
    admin_out_fmt(a->out, "<tr><td><a href=\"%s\">%s</a></td><td>%s</td>",
                  admin_page_client_href(a, c->client_id), H(c->client_id), H(c->name));
    admin_out_fmt(a->out, "<td class=\"%s\">%s</td>", c->disabled ? "off" : "on", c->disabled ? "disabled" : "active");
    admin_out_fmt(a->out, "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                  H(admin_join(c->npis, ", ", a->p)), H(admin_join(c->tins, ", ", a->p)),
                  H(admin_join(c->groups, ", ", a->p)), H(admin_changed_text(c->changed_at, c->changed_by, a->p)));
}

void admin_list_page(admin_req_t *a)
{
    const char *q = admin_text_cut(admin_param(a->query, "q"), ADMIN_SEARCH_MAX, a->p);
    apr_array_header_t *clients = NULL;
    apr_status_t rv;
    int i;

    rv = atr_registry_client_list(&clients, a->reg, q && *q ? q : NULL, a->p);
    if (rv != APR_SUCCESS) {
        admin_dir_down(a, rv);
        return;
    }
    admin_page_begin_flash(a, "Consumers");
    admin_out_fmt(a->out,
        "<form method=\"get\" action=\"%s/\" role=\"search\">"
        "<label for=\"q\">Search by client id, name, NPI, TIN or contract</label> "
        "<input type=\"search\" id=\"q\" name=\"q\" maxlength=\"%d\" value=\"%s\"> "
        "<button type=\"submit\" id=\"search\">Search</button></form>\n",
        H(a->base), ADMIN_SEARCH_MAX, H(q));
    if (clients->nelts == 0) {
        admin_out_raw(a->out, "<p id=\"no-results\">No Consumer matches.</p>\n");
    }
    else {
        admin_out_raw(a->out, "<table id=\"consumers\"><caption>Registered Consumers</caption><thead><tr>"
                      "<th scope=\"col\">Client id</th><th scope=\"col\">Name</th><th scope=\"col\">Status</th>"
                      "<th scope=\"col\">NPI</th><th scope=\"col\">TIN</th><th scope=\"col\">Linked Groups</th>"
                      "<th scope=\"col\">Last changed</th></tr></thead><tbody>\n");
        for (i = 0; i < clients->nelts; i++) consumer_row(a, APR_ARRAY_IDX(clients, i, const atr_client_t *));
        admin_out_raw(a->out, "</tbody></table>\n");
    }
    admin_page_end(a);
}
