/* The register/edit form of a Consumer: shown (filled in from the entry, or as typed, with
 * every problem listed), read back from a POST and checked field by field with the rules of
 * atr_client_validate, then the keys themselves. */
#include <string.h>
#include <apr_strings.h>
#include "admin_cgi.h"

admin_form_t *admin_form_new(admin_req_t *a)
{
    admin_form_t *f;
    const char *id = NULL;

    /* The id is generated when the form is shown, so sending it twice cannot register two. */
    if (admin_new_client_id(&id, a->p) != APR_SUCCESS) {
        admin_page_error(a, 500, "Error", "No random bytes for a client id.");
        return NULL;
    }
    f = apr_pcalloc(a->p, sizeof(*f));
    f->c = apr_pcalloc(a->p, sizeof(atr_client_t));
    f->c->client_id = id;
    return f;
}

admin_form_t *admin_form_from_client(const atr_client_t *c, apr_pool_t *p)
{
    admin_form_t *f = apr_pcalloc(p, sizeof(*f));
    f->c = atr_client_copy(c, p);
    f->npis = admin_join(c->npis, "\n", p);
    f->tins = admin_join(c->tins, "\n", p);
    f->contracts = admin_join(c->contracts, "\n", p);
    return f;
}

static void render_errors(admin_req_t *a, const apr_array_header_t *errors)
{
    int i;
    if (!errors || !errors->nelts) return;
    admin_out_raw(a->out, "<div class=\"error\" role=\"alert\" id=\"errors\"><p>Nothing was saved:</p><ul>");
    for (i = 0; i < errors->nelts; i++) {
        admin_out_fmt(a->out, "<li>%s</li>", H(APR_ARRAY_IDX(errors, i, const char *)));
    }
    admin_out_raw(a->out, "</ul></div>\n");
}

/* A check box for each scope offered, and for each the Consumer has that is not offered: a
 * scope given by atrctl stays visible, so saving keeps it. */
static void render_scopes(admin_req_t *a, const atr_client_t *c)
{
    apr_array_header_t *offered = apr_array_copy(a->p, a->conf->scopes);
    int i;

    for (i = 0; c->scopes && i < c->scopes->nelts; i++) {
        const char *s = APR_ARRAY_IDX(c->scopes, i, const char *);
        if (!admin_has_str(offered, s)) APR_ARRAY_PUSH(offered, const char *) = s;
    }
    for (i = 0; i < offered->nelts; i++) {
        const char *s = APR_ARRAY_IDX(offered, i, const char *);
        admin_out_fmt(a->out, "<label class=\"check\"><input type=\"checkbox\" name=\"scope\" "
                      "id=\"scope-%d\" value=\"%s\"%s> %s</label> ", i, H(s),
                      admin_has_str(c->scopes, s) ? " checked" : "", H(s));
    }
}

void admin_form_render(admin_req_t *a, admin_form_t *f, int is_new, int status)
{
    const atr_client_t *c = f->c;
    const char *action = is_new ? H(apr_pstrcat(a->p, a->base, "/new", NULL))
                                : apr_pstrcat(a->p, admin_page_client_href(a, c->client_id), "/edit", NULL);

    a->out->status = status;
    admin_page_begin(a, is_new ? "Register a Consumer" : apr_pstrcat(a->p, "Edit ", c->client_id, NULL));
    render_errors(a, f->errors);
    if (f->url_keys) admin_keys_table(a, "Keys found at the JWKS URL", f->url_keys);
    if (f->inline_keys) admin_keys_table(a, "Keys in the pasted JWKS", f->inline_keys);
    admin_out_fmt(a->out, "<form method=\"post\" action=\"%s\" id=\"consumer-form\" novalidate>", action);
    admin_page_csrf_field(a);
    admin_out_fmt(a->out,
        "<p><label for=\"client_id\">Client id (generated)</label> "
        "<input id=\"client_id\" name=\"client_id\" value=\"%s\" readonly></p>\n"
        "<p><label for=\"name\">Name</label> <input id=\"name\" name=\"name\" maxlength=\"1024\" value=\"%s\"></p>\n"
        "<p><label for=\"contact\">Technical contact (e-mail)</label> "
        "<input id=\"contact\" name=\"contact\" type=\"email\" maxlength=\"1024\" value=\"%s\"></p>\n"
        "<p><label for=\"description\">Description</label> "
        "<textarea id=\"description\" name=\"description\" rows=\"2\">%s</textarea></p>\n"
        "<fieldset><legend>Keys (a JWKS URL, a pasted JWKS, or both)</legend>"
        "<p><label for=\"jwks_url\">JWKS URL (https)</label> "
        "<input id=\"jwks_url\" name=\"jwks_url\" type=\"url\" maxlength=\"2048\" value=\"%s\"></p>"
        "<p><label for=\"jwks\">JWKS (JSON)</label> "
        "<textarea id=\"jwks\" name=\"jwks\" rows=\"6\">%s</textarea></p></fieldset>\n"
        "<fieldset id=\"scopes\"><legend>Allowed scopes</legend>",
        H(c->client_id), H(c->name), H(c->contact), H(c->description), H(c->jwks_url), H(c->jwks));
    render_scopes(a, c);
    admin_out_fmt(a->out,
        "</fieldset>\n<fieldset><legend>Identifiers (one per line)</legend>"
        "<p><label for=\"npi\">NPIs</label> <textarea id=\"npi\" name=\"npi\" rows=\"2\">%s</textarea></p>"
        "<p><label for=\"tin\">TINs</label> <textarea id=\"tin\" name=\"tin\" rows=\"2\">%s</textarea></p>"
        "<p><label for=\"contract\">Contract ids (system|value)</label> "
        "<textarea id=\"contract\" name=\"contract\" rows=\"2\">%s</textarea></p></fieldset>\n"
        "<p><button type=\"submit\" id=\"save\">%s</button></p></form>\n",
        H(f->npis), H(f->tins), H(f->contracts), is_new ? "Register" : "Save");
    admin_page_end(a);
}

void admin_form_refuse(admin_req_t *a, admin_form_t *f, int is_new, int status, const char *err)
{
    if (err) APR_ARRAY_PUSH(f->errors, const char *) = err;
    admin_form_render(a, f, is_new, status);
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* The posted fields into a form (status and groups come from base, which the form never
 * edits). */
static admin_form_t *form_from_post(admin_req_t *a, const atr_client_t *base)
{
    admin_form_t *f = apr_pcalloc(a->p, sizeof(*f));
    atr_client_t *c = base ? atr_client_copy(base, a->p) : apr_pcalloc(a->p, sizeof(*c));
    f->c = c;
    f->errors = apr_array_make(a->p, 4, sizeof(const char *));
    if (!base) {
        c->client_id = admin_param(a->form, "client_id");
        c->groups = apr_array_make(a->p, 1, sizeof(const char *));
        c->disabled = 0;
    }
    c->name = nonempty(admin_param(a->form, "name"));
    c->contact = nonempty(admin_param(a->form, "contact"));
    c->description = nonempty(admin_param(a->form, "description"));
    c->jwks_url = nonempty(admin_param(a->form, "jwks_url"));
    c->jwks = nonempty(admin_param(a->form, "jwks"));
    c->scopes = admin_param_all(a->form, "scope", a->p);
    f->npis = admin_param(a->form, "npi");
    f->tins = admin_param(a->form, "tin");
    f->contracts = admin_param(a->form, "contract");
    c->npis = admin_split_list(f->npis, a->p);
    c->tins = admin_split_list(f->tins, a->p);
    c->contracts = admin_split_list(f->contracts, a->p);
    return f;
}

#define PUSH_ERR(e) (APR_ARRAY_PUSH(f->errors, const char *) = (e))

/* Field by field: validate a copy holding only that field (plus a key, which the validator
 * requires), so each invalid field gets its own message. */
static void check_fields(admin_req_t *a, admin_form_t *f)
{
    const atr_client_t *c = f->c;
    atr_client_t probe;
    const char *err = NULL;
    int i;
    static const char *const fields[] = {
        "name", "contact", "description", "scope", "NPI", "TIN", "contract", "JWKS URL", "JWKS", "client id", NULL
    };
    static const char dummy_jwks_url[] = "https://keys.invalid/jwks.json";

    for (i = 0; fields[i]; i++) {
        memset(&probe, 0, sizeof(probe));
        probe.client_id = "probe";
        probe.jwks_url = dummy_jwks_url;
        switch (i) {
        case 0: probe.name = c->name; break;
        case 1: probe.contact = c->contact; break;
        case 2: probe.description = c->description; break;
        case 3: probe.scopes = c->scopes; break;
        case 4: probe.npis = c->npis; break;
        case 5: probe.tins = c->tins; break;
        case 6: probe.contracts = c->contracts; break;
        case 7: if (!c->jwks_url) continue; probe.jwks_url = c->jwks_url; break;
        case 8: if (!c->jwks) continue; probe.jwks_url = NULL; probe.jwks = c->jwks; break;
        case 9: probe.client_id = c->client_id; break;
        }
        if (atr_client_validate(&probe, a->conf->allow_http_loopback, &err, a->p) != APR_SUCCESS) PUSH_ERR(err);
    }
}

/* Every check, each problem reported (not just the first): the fields, the scopes offered,
 * then the keys themselves (the URL is fetched once), last the whole entry. */
static void form_check(admin_req_t *a, admin_form_t *f, const atr_client_t *base)
{
    atr_client_t *c = f->c;
    const char *err = NULL;
    int i;

    check_fields(a, f);
    if (!c->jwks_url && !c->jwks) PUSH_ERR("keys: give a JWKS URL or paste a JWKS (or both)");
    if (!c->scopes || c->scopes->nelts == 0) PUSH_ERR("scope: choose at least one scope");
    for (i = 0; c->scopes && i < c->scopes->nelts; i++) {
        const char *s = APR_ARRAY_IDX(c->scopes, i, const char *);
        if (!admin_has_str(a->conf->scopes, s) && !(base && admin_has_str(base->scopes, s))) {
            PUSH_ERR(apr_psprintf(a->p, "scope: '%s' is not one this server offers", s));
        }
    }
    if (f->errors->nelts) return;
    /* The keys themselves: the URL is fetched and parsed, the pasted JWKS parsed; their keys
     * are shown with the result. */
    if (c->jwks) {
        if (admin_keys_parse(&f->inline_keys, c->jwks, &err, a->p) != APR_SUCCESS) {
            PUSH_ERR(apr_psprintf(a->p, "JWKS: %s", err ? err : "not a JWK Set"));
        }
    }
    if (c->jwks_url) {
        if (admin_keys_fetch(&f->url_keys, a, c->jwks_url, &err) != APR_SUCCESS) {
            PUSH_ERR(apr_psprintf(a->p, "JWKS URL: %s", err ? err : "could not be fetched"));
            f->url_keys = NULL;
        }
    }
    /* Last, the whole entry as the registry will see it. */
    if (!f->errors->nelts && atr_client_validate(c, a->conf->allow_http_loopback, &err, a->p) != APR_SUCCESS) {
        PUSH_ERR(err);
    }
}

#undef PUSH_ERR

admin_form_t *admin_form_read(admin_req_t *a, const atr_client_t *base)
{
    admin_form_t *f = form_from_post(a, base);
    form_check(a, f, base);
    if (f->errors->nelts) {
        admin_form_render(a, f, !base, 400);
        return NULL;
    }
    return f;
}
