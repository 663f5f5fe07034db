/* The frame every HTML page of the CGI shares (header, navigation, who is signed in), the
 * pages that only say something (errors, redirects, the message after a redirect) and the
 * style sheet. */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"

void admin_page_begin(admin_req_t *a, const char *title)
{
    admin_out_fmt(a->out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>%s - ATR Consumers</title>"
        "<link rel=\"stylesheet\" href=\"%s/style.css\"></head><body>\n"
        "<header><nav aria-label=\"Main\"><a href=\"%s/\">Consumers</a> "
        "<a href=\"%s/new\">Register a Consumer</a></nav>"
        "<p class=\"who\">Signed in as <strong id=\"signed-in-user\">%s</strong></p></header>\n"
        "<main>\n<h1>%s</h1>\n",
        H(title), H(a->base), H(a->base), H(a->base), H(a->user), H(title));
}

void admin_page_end(admin_req_t *a)
{
    admin_out_raw(a->out, "</main></body></html>\n");
}

void admin_page_csrf_field(admin_req_t *a)
{
    admin_out_fmt(a->out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", H(a->csrf));
}

void admin_page_error(admin_req_t *a, int status, const char *title, const char *text)
{
    a->out->status = status;
    admin_page_begin(a, title);
    admin_out_fmt(a->out, "<p class=\"error\" role=\"alert\" id=\"error\">%s</p>\n", H(text));
    admin_page_end(a);
}

void admin_page_redirect(admin_req_t *a, const char *path)
{
    a->out->status = 303;
    a->out->location = apr_pstrcat(a->p, a->base, path, NULL);
    admin_out_fmt(a->out, "<!DOCTYPE html><title>See Other</title><p><a href=\"%s\">Continue</a></p>",
                  H(a->out->location));
}

/* Messages after a redirect come from a fixed list, never from the request. */
void admin_page_begin_flash(admin_req_t *a, const char *title)
{
    static const struct { const char *code, *text; } msgs[] = {
        { "added", "The Consumer was registered." }, { "saved", "Changes saved." },
        { "disabled", "The Consumer is disabled: it gets no more tokens." },
        { "enabled", "The Consumer is enabled." }, { "deleted", "The Consumer was deleted." },
        { "linked", "The Group was linked." }, { "unlinked", "The Group was unlinked." },
        { NULL, NULL }
    };
    const char *done = admin_param(a->query, "done");
    int i;

    admin_page_begin(a, title);
    for (i = 0; done && msgs[i].code; i++) {
        if (!strcmp(done, msgs[i].code)) {
            admin_out_fmt(a->out, "<p class=\"done\" role=\"status\" id=\"done\">%s</p>\n", msgs[i].text);
        }
    }
}

const char *admin_page_client_path(admin_req_t *a, const char *id, const char *rest)
{
    return apr_pstrcat(a->p, "/client/", U(id), rest, NULL);
}

const char *admin_page_client_href(admin_req_t *a, const char *id)
{
    return H(apr_pstrcat(a->p, a->base, admin_page_client_path(a, id, ""), NULL));
}

void admin_page_css(admin_req_t *a)
{
    a->out->content_type = "text/css; charset=utf-8";
    admin_out_raw(a->out,
        "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}"
        "header{background:#1d3557;color:#fff;padding:.5em 1em;display:flex;justify-content:space-between}"
        "header a{color:#fff;margin-right:1em}main{padding:1em}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "caption{text-align:left;font-weight:bold}label{font-weight:600;display:block}"
        "label.check{display:inline-block;font-weight:normal;margin-right:1em}"
        "input,textarea{font:inherit;min-width:28em}input[type=checkbox]{min-width:0}"
        "form.inline{display:inline}.error{color:#9b1c1c;background:#fde8e8;padding:.5em}"
        ".done{color:#03543f;background:#def7ec;padding:.5em}td.off{color:#9b1c1c}td.on{color:#03543f}"
        "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}\n");
}
