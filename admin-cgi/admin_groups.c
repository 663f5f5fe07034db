/* Groups and a Consumer (/client/ID/groups, /link, /unlink): Groups found in the store by
 * identifier or name (atr_admin_group.c), each with its contract period, status and member
 * count, and the buttons that link or unlink one (one LDAP modify each). */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"
#include "atr_admin_group.h"
#include "atr_fhir.h"

/* The Link or Unlink button of Group gid: a form of its own, carrying the search (q) to go
 * back to. */
static const char *link_button(admin_req_t *a, const char *cid, const char *gid, int link, const char *q)
{
    return apr_psprintf(a->p,
        "<form method=\"post\" action=\"%s/%s\" class=\"inline\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"group\" value=\"%s\">"
        "%s<button type=\"submit\" aria-label=\"%s %s\" class=\"%s\">%s</button></form>",
        admin_page_client_href(a, cid), link ? "link" : "unlink", H(a->csrf), H(gid),
        q ? apr_psprintf(a->p, "<input type=\"hidden\" name=\"q\" value=\"%s\">", H(q)) : "",
        link ? "Link" : "Unlink", H(gid), link ? "link" : "unlink", link ? "Link" : "Unlink");
}

static void group_row(admin_req_t *a, const char *id, const char *button_html)
{
    atr_admin_group_t *g = NULL;
    apr_status_t rv = a->db ? atr_admin_group_get(&g, a->db, id, a->p) : APR_EGENERAL;
    if (rv != APR_SUCCESS || !g) {
        admin_out_fmt(a->out, "<tr><td>%s</td><td colspan=\"4\">%s</td><td>%s</td></tr>\n", H(id),
                      rv == APR_NOTFOUND ? "not in the store" : "store unavailable", button_html);
        return;
    }
    admin_out_fmt(a->out, "<tr><td class=\"gid\">%s</td><td>%s</td><td>%s &ndash; %s</td><td>%s%s</td>"
                  "<td>%s</td><td>%s</td></tr>\n",
                  H(g->id), H(g->name), H(g->period_start ? g->period_start : "?"),
                  H(g->period_end ? g->period_end : "?"),
                  H(g->deleted ? "deleted" : g->list_status ? g->list_status : "-"),
                  g->active || g->deleted ? "" : " (inactive)",
                  g->members >= 0 ? apr_psprintf(a->p, "%ld", g->members) : "-", button_html);
}

void admin_groups_table(admin_req_t *a, const atr_client_t *c, const char *table_id, const char *caption,
                        const apr_array_header_t *ids, const char *q)
{
    int i;
    admin_out_fmt(a->out, "<table id=\"%s\"><caption>%s</caption><thead><tr><th scope=\"col\">Group id</th>"
                  "<th scope=\"col\">Name</th><th scope=\"col\">Contract period</th><th scope=\"col\">Status</th>"
                  "<th scope=\"col\">Members</th><th scope=\"col\">Action</th></tr></thead><tbody>\n",
                  table_id, H(caption));
    for (i = 0; ids && i < ids->nelts; i++) {
        const char *gid = APR_ARRAY_IDX(ids, i, const char *);
        group_row(a, gid, link_button(a, c->client_id, gid, !admin_has_str(c->groups, gid), q));
    }
    admin_out_raw(a->out, "</tbody></table>\n");
}

void admin_groups_page(admin_req_t *a, const char *id)
{
    atr_client_t *c = NULL;
    const char *q = admin_text_cut(admin_param(a->query, "q"), ADMIN_SEARCH_MAX, a->p), *url;
    apr_array_header_t *ids = NULL;
    int truncated = 0;

    if (!admin_dir_load(&c, a, id)) return;
    if (admin_dir_open_store(a) != APR_SUCCESS
        || atr_admin_group_find(&ids, &truncated, a->db, q, ADMIN_GROUPS_SHOWN, a->p) != APR_SUCCESS) {
        admin_log_problem("ATR00904: Group search failed in the store");
        admin_page_error(a, 503, "Store unavailable", "The Group store cannot be searched right now.");
        return;
    }
    url = admin_page_client_href(a, c->client_id);
    admin_page_begin_flash(a, apr_pstrcat(a->p, "Link Groups to ", c->client_id, NULL));
    admin_out_fmt(a->out,
        "<p><a href=\"%s\" id=\"back\">Back to %s</a></p>"
        "<form method=\"get\" action=\"%s/groups\" role=\"search\">"
        "<label for=\"gq\">Find Groups by identifier (NPI, TIN, contract) or name</label> "
        "<input type=\"search\" id=\"gq\" name=\"q\" maxlength=\"%d\" value=\"%s\"> "
        "<button type=\"submit\" id=\"group-search\">Search</button></form>\n",
        url, H(c->client_id), url, ADMIN_SEARCH_MAX, H(q));
    if (ids->nelts == 0) {
        admin_out_raw(a->out, "<p id=\"no-results\">No Group matches.</p>\n");
    }
    else {
        admin_groups_table(a, c, "found-groups",
                           truncated ? apr_psprintf(a->p, "Groups found (first %d)", ADMIN_GROUPS_SHOWN)
                                     : "Groups found", ids, q);
    }
    admin_page_end(a);
}

/* Whether gid may be linked: a Group the store holds and has not deleted. 1, or 0 with the
 * page answered. */
static int group_linkable(admin_req_t *a, const char *gid)
{
    atr_admin_group_t *g = NULL;
    apr_status_t rv;

    if (admin_dir_open_store(a) != APR_SUCCESS) {
        admin_page_error(a, 503, "Store unavailable", "The Group store cannot be read right now.");
        return 0;
    }
    rv = atr_admin_group_get(&g, a->db, gid, a->p);
    if (rv != APR_SUCCESS || g->deleted) {
        admin_page_error(a, 404, "No such Group", "The store has no Group with this id.");
        return 0;
    }
    return 1;
}

void admin_groups_link(admin_req_t *a, const char *id, int link)
{
    atr_client_t *c = NULL;
    const char *gid = admin_param(a->form, "group"), *q = admin_param(a->form, "q");
    const char *done = link ? "done=linked" : "done=unlinked";
    apr_array_header_t *groups;
    int i;

    if (!admin_dir_load(&c, a, id)) return;
    if (!gid || !atr_fhir_is_id(gid)) {
        admin_page_error(a, 400, "Bad request", "No valid Group id was sent.");
        return;
    }
    if (link && !group_linkable(a, gid)) return;
    /* Linking twice leaves one link; unlinking what is not linked changes nothing else. */
    groups = apr_array_make(a->p, c->groups ? c->groups->nelts + 1 : 1, sizeof(const char *));
    for (i = 0; c->groups && i < c->groups->nelts; i++) {
        const char *x = APR_ARRAY_IDX(c->groups, i, const char *);
        if (strcmp(x, gid)) APR_ARRAY_PUSH(groups, const char *) = x;
    }
    if (link) APR_ARRAY_PUSH(groups, const char *) = gid;
    c->groups = groups;
    if (!admin_dir_save(a, c)) return;
    /* Tags are written literally (docs/log-message-tags), one each. */
    if (link) admin_log_audit(a, "ATR00914: linked Group %s to client %s", gid, c->client_id);
    else admin_log_audit(a, "ATR00915: unlinked Group %s from client %s", gid, c->client_id);
    admin_page_redirect(a, admin_page_client_path(a, c->client_id,
        q ? apr_pstrcat(a->p, "/groups?q=", U(q), "&", done, NULL) : apr_pstrcat(a->p, "?", done, NULL)));
}
