/* atr-admin: the CGI payer staff use to register ATR Consumers in the LDAP registry and link
 * them to Groups of the store (docs/admin.md).
 *
 * httpd authenticates and authorizes (AuthBasicProvider ldap, Require ldap-group): this
 * program only refuses to run without REMOTE_USER. It binds to LDAP as its own service
 * account (password from a file named in its config file) and reuses libatr for everything
 * that is not web: the registry (atr_registry.h), validation (atr_client_validate), JWKS
 * parsing and fetching, the Group search of the store.
 *
 * Pages (PATH_INFO):
 *   GET  /                       Consumers, searchable (?q=)
 *   GET  /new   POST /new        register a Consumer
 *   GET  /client/ID              one Consumer: keys, linked Groups, last change
 *   GET  /client/ID/edit  POST   edit
 *   POST /client/ID/status       enable / disable
 *   GET  /client/ID/delete POST  delete, after a confirmation page
 *   GET  /client/ID/groups?q=    find Groups in the store to link
 *   POST /client/ID/link  POST /client/ID/unlink
 *   GET  /style.css
 * Every POST carries a CSRF token; every change is one LDAP operation, audit-logged with
 * REMOTE_USER. Log tags ATR00900-ATR00949. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include "admin_web.h"
#include "atr_admin_group.h"
#include "atr_db.h"
#include "atr_fhir.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_jwks_fetch.h"
#include "atr_log.h"
#include "atr_registry.h"
#include "atr_search.h"

#define GROUPS_SHOWN 100
#define SEARCH_MAX 256

typedef struct adm_t {
    apr_pool_t *p;
    admin_conf_t *conf;
    const char *user;            /* REMOTE_USER, set by httpd after authentication */
    const char *base;            /* SCRIPT_NAME, e.g. /atr-admin */
    const char *path;            /* PATH_INFO */
    const char *method;
    apr_array_header_t *query;   /* atr_param_t */
    apr_array_header_t *form;    /* atr_param_t (POST) */
    const unsigned char *csrf_key;
    apr_size_t csrf_klen;
    const char *csrf;            /* token for the forms of this page */
    atr_registry_t *reg;
    atr_db_t *db;
    admin_out_t *out;
} adm_t;

/* ---- logging ------------------------------------------------------------------------------ */

/* Problems go to stderr (httpd's error log); changes go to the audit log when configured. */
static void audit(adm_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void audit(adm_t *a, const char *fmt, ...)
{
    va_list ap;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    const char *msg, *line;
    apr_file_t *f;

    va_start(ap, fmt);
    msg = apr_pvsprintf(a->p, fmt, ap);
    va_end(ap);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    line = apr_psprintf(a->p, "%s atr-admin %s user=\"%s\"\n", ts, msg, a->user ? a->user : "-");
    if (a->conf && a->conf->audit_log
        && apr_file_open(&f, a->conf->audit_log, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                         APR_FPROT_UREAD | APR_FPROT_UWRITE, a->p) == APR_SUCCESS) {
        apr_size_t n = strlen(line);
        /* One write per line: O_APPEND keeps concurrent CGIs' lines whole. */
        apr_file_write(f, line, &n);
        apr_file_close(f);
        return;
    }
    fputs(line, stderr);
}

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    va_list ap;
    fputs("atr-admin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- page frame ---------------------------------------------------------------------------- */

#define H(s) admin_h((s), a->p)
#define U(s) admin_url_enc((s), a->p)

static void page_begin(adm_t *a, const char *title)
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

static void page_end(adm_t *a)
{
    admin_out_raw(a->out, "</main></body></html>\n");
}

static void csrf_field(adm_t *a)
{
    admin_out_fmt(a->out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", H(a->csrf));
}

static void error_page(adm_t *a, int status, const char *title, const char *text)
{
    a->out->status = status;
    page_begin(a, title);
    admin_out_fmt(a->out, "<p class=\"error\" role=\"alert\" id=\"error\">%s</p>\n", H(text));
    page_end(a);
}

static void redirect(adm_t *a, const char *path)
{
    a->out->status = 303;
    a->out->location = apr_pstrcat(a->p, a->base, path, NULL);
    admin_out_fmt(a->out, "<!DOCTYPE html><title>See Other</title><p><a href=\"%s\">Continue</a></p>",
                  H(a->out->location));
}

/* Messages after a redirect come from a fixed list, never from the request. */
static void flash(adm_t *a)
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
    for (i = 0; done && msgs[i].code; i++) {
        if (!strcmp(done, msgs[i].code)) {
            admin_out_fmt(a->out, "<p class=\"done\" role=\"status\" id=\"done\">%s</p>\n", msgs[i].text);
        }
    }
}

static const char *join(const apr_array_header_t *arr, const char *sep, apr_pool_t *p)
{
    const char *s = "";
    int i;
    for (i = 0; arr && i < arr->nelts; i++) {
        s = apr_pstrcat(p, s, i ? sep : "", APR_ARRAY_IDX(arr, i, const char *), NULL);
    }
    return s;
}

static const char *ldap_time(const char *gt, apr_pool_t *p)
{
    /* 20261125011500Z → 2026-11-25 01:15:00 UTC */
    if (!gt || strlen(gt) < 15) return gt ? gt : "";
    return apr_psprintf(p, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC", gt, gt + 4, gt + 6, gt + 8, gt + 10, gt + 12);
}

/* "2026-11-25 01:15:00 UTC by alice" from atrChangedAt/atrChangedBy: the staff member (or
 * atrctl user) who made the last change. Entries written by other tools have neither. */
static const char *changed_text(const atr_client_t *c, apr_pool_t *p)
{
    if (!c->changed_at && !c->changed_by) return "not recorded";
    return apr_pstrcat(p, c->changed_at ? ldap_time(c->changed_at, p) : "(time not recorded)", " by ",
                       c->changed_by ? c->changed_by : "(not recorded)", NULL);
}

/* ---- connections --------------------------------------------------------------------------- */

static apr_status_t open_registry(adm_t *a)
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
            problem("ATR00901: cannot read the LDAP password file named in %s", a->conf->path);
            return APR_EGENERAL;
        }
        while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r')) n--;
        rc.bind_pw = apr_pstrndup(a->p, pw, n);
    }
    rc.timeout_ms = 3000;
    rc.retries = 1;
    rc.cache_ttl = 0;
    rc.pool_max = 1;
    return atr_registry_create(&a->reg, &rc, a->p);
}

static int registry_down(adm_t *a, apr_status_t rv)
{
    const char *why = atr_registry_last_error(a->reg, a->p);
    problem("ATR00902: registry unreachable (%d): %s", rv, why ? why : "unknown");
    error_page(a, 503, "Directory unavailable",
               "The Consumer directory (LDAP) cannot be reached right now; nothing was changed. "
               "Try again in a minute.");
    return 1;
}

static apr_status_t open_store(adm_t *a)
{
    const char *err = NULL;
    apr_status_t rv;
    if (a->db) return APR_SUCCESS;
    rv = atr_db_open(&a->db, a->conf->store, &err, a->p);
    if (rv != APR_SUCCESS) {
        problem("ATR00903: cannot open the store: %s", err ? err : "error");
        a->db = NULL;
    }
    return rv;
}

/* ---- Consumer list ------------------------------------------------------------------------- */

static void status_cell(adm_t *a, const atr_client_t *c)
{
    admin_out_fmt(a->out, "<td class=\"%s\">%s</td>", c->disabled ? "off" : "on",
                  c->disabled ? "disabled" : "active");
}

static void page_list(adm_t *a)
{
    const char *q = admin_param(a->query, "q");
    apr_array_header_t *clients = NULL;
    apr_status_t rv;
    int i;

    q = admin_text_cut(q, SEARCH_MAX, a->p);
    rv = atr_registry_client_list(&clients, a->reg, q && *q ? q : NULL, a->p);
    if (rv != APR_SUCCESS) {
        registry_down(a, rv);
        return;
    }
    page_begin(a, "Consumers");
    flash(a);
    admin_out_fmt(a->out,
        "<form method=\"get\" action=\"%s/\" role=\"search\">"
        "<label for=\"q\">Search by client id, name, NPI, TIN or contract</label> "
        "<input type=\"search\" id=\"q\" name=\"q\" maxlength=\"%d\" value=\"%s\"> "
        "<button type=\"submit\" id=\"search\">Search</button></form>\n",
        H(a->base), SEARCH_MAX, H(q));
    if (clients->nelts == 0) {
        admin_out_raw(a->out, "<p id=\"no-results\">No Consumer matches.</p>\n");
        page_end(a);
        return;
    }
    admin_out_raw(a->out, "<table id=\"consumers\"><caption>Registered Consumers</caption><thead><tr>"
                  "<th scope=\"col\">Client id</th><th scope=\"col\">Name</th><th scope=\"col\">Status</th>"
                  "<th scope=\"col\">NPI</th><th scope=\"col\">TIN</th><th scope=\"col\">Linked Groups</th>"
                  "<th scope=\"col\">Last changed</th></tr></thead><tbody>\n");
    for (i = 0; i < clients->nelts; i++) {
        const atr_client_t *c = APR_ARRAY_IDX(clients, i, const atr_client_t *);
        admin_out_fmt(a->out, "<tr><td><a href=\"%s/client/%s\">%s</a></td><td>%s</td>",
                      H(a->base), H(U(c->client_id)), H(c->client_id), H(c->name));
        status_cell(a, c);
        admin_out_fmt(a->out, "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                      H(join(c->npis, ", ", a->p)), H(join(c->tins, ", ", a->p)),
                      H(join(c->groups, ", ", a->p)), H(changed_text(c, a->p)));
    }
    admin_out_raw(a->out, "</tbody></table>\n");
    page_end(a);
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void keys_table(adm_t *a, const char *caption, const apr_array_header_t *keys)
{
    int i;
    admin_out_fmt(a->out, "<table class=\"keys\"><caption>%s</caption><thead><tr><th scope=\"col\">kid</th>"
                  "<th scope=\"col\">kty</th><th scope=\"col\">alg</th></tr></thead><tbody>", H(caption));
    for (i = 0; keys && i < keys->nelts; i++) {
        const atr_jwk_t *k = APR_ARRAY_IDX(keys, i, const atr_jwk_t *);
        admin_out_fmt(a->out, "<tr><td class=\"kid\">%s</td><td>%s</td><td>%s</td></tr>",
                      H(k->kid), H(k->kty), H(k->alg ? k->alg : "(any)"));
    }
    admin_out_raw(a->out, "</tbody></table>\n");
}

/* Fetch a JWKS URL once (a fresh cache: nothing is remembered between requests). */
static apr_status_t fetch_jwks(apr_array_header_t **pkeys, adm_t *a, const char *url, const char **perr)
{
    atr_jwks_fetch_conf_t fc;
    atr_jwks_cache_t *cache = NULL;
    apr_status_t rv;

    memset(&fc, 0, sizeof(fc));
    fc.timeout = apr_time_from_sec(5);
    fc.max_bytes = 65536;
    fc.allow_loopback_http = a->conf->allow_http_loopback;
    rv = atr_jwks_cache_create(&cache, &fc, a->p);
    if (rv != APR_SUCCESS) {
        *perr = "cannot create the JWKS fetcher";
        return rv;
    }
    rv = atr_jwks_cache_get(pkeys, NULL, cache, url, 0, perr, a->p);
    if (rv == APR_SUCCESS && (!*pkeys || (*pkeys)->nelts == 0)) {
        *perr = "the JWK Set holds no usable key (RSA >= 2048 bits or EC P-384, each with a kid)";
        rv = APR_EINVAL;
    }
    return rv;
}

static apr_status_t parse_inline_jwks(apr_array_header_t **pkeys, const char *text, const char **perr,
                                      apr_pool_t *p)
{
    json_t *j = NULL;
    int skipped = 0;
    apr_status_t rv = atr_json_parse(&j, text, strlen(text), perr, p);
    if (rv != APR_SUCCESS) return rv;
    return atr_jwks_parse(pkeys, &skipped, j, perr, p);
}

/* ---- register / edit form ------------------------------------------------------------------ */

typedef struct form_t {
    atr_client_t *c;
    const char *npis, *tins, *contracts;     /* textareas as typed */
    apr_array_header_t *errors;              /* const char *: one line per problem */
    apr_array_header_t *url_keys;            /* keys fetched from the JWKS URL */
    apr_array_header_t *inline_keys;
} form_t;

static int has_str(const apr_array_header_t *arr, const char *s)
{
    int i;
    for (i = 0; arr && i < arr->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(arr, i, const char *), s)) return 1;
    }
    return 0;
}

static void render_form(adm_t *a, form_t *f, int is_new)
{
    const atr_client_t *c = f->c;
    apr_array_header_t *offered = apr_array_copy(a->p, a->conf->scopes);
    const char *action = is_new ? "/new" : apr_pstrcat(a->p, "/client/", U(c->client_id), "/edit", NULL);
    int i;

    /* A scope given by atrctl but not offered here stays visible, so saving keeps it. */
    for (i = 0; c->scopes && i < c->scopes->nelts; i++) {
        const char *s = APR_ARRAY_IDX(c->scopes, i, const char *);
        if (!has_str(offered, s)) APR_ARRAY_PUSH(offered, const char *) = s;
    }
    page_begin(a, is_new ? "Register a Consumer" : apr_pstrcat(a->p, "Edit ", c->client_id, NULL));
    if (f->errors && f->errors->nelts) {
        admin_out_raw(a->out, "<div class=\"error\" role=\"alert\" id=\"errors\"><p>Nothing was saved:</p><ul>");
        for (i = 0; i < f->errors->nelts; i++) {
            admin_out_fmt(a->out, "<li>%s</li>", H(APR_ARRAY_IDX(f->errors, i, const char *)));
        }
        admin_out_raw(a->out, "</ul></div>\n");
    }
    if (f->url_keys) keys_table(a, "Keys found at the JWKS URL", f->url_keys);
    if (f->inline_keys) keys_table(a, "Keys in the pasted JWKS", f->inline_keys);
    admin_out_fmt(a->out, "<form method=\"post\" action=\"%s%s\" id=\"consumer-form\" novalidate>", H(a->base), H(action));
    csrf_field(a);
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
    for (i = 0; i < offered->nelts; i++) {
        const char *s = APR_ARRAY_IDX(offered, i, const char *);
        admin_out_fmt(a->out, "<label class=\"check\"><input type=\"checkbox\" name=\"scope\" "
                      "id=\"scope-%d\" value=\"%s\"%s> %s</label> ", i, H(s),
                      has_str(c->scopes, s) ? " checked" : "", H(s));
    }
    admin_out_fmt(a->out,
        "</fieldset>\n<fieldset><legend>Identifiers (one per line)</legend>"
        "<p><label for=\"npi\">NPIs</label> <textarea id=\"npi\" name=\"npi\" rows=\"2\">%s</textarea></p>"
        "<p><label for=\"tin\">TINs</label> <textarea id=\"tin\" name=\"tin\" rows=\"2\">%s</textarea></p>"
        "<p><label for=\"contract\">Contract ids (system|value)</label> "
        "<textarea id=\"contract\" name=\"contract\" rows=\"2\">%s</textarea></p></fieldset>\n"
        "<p><button type=\"submit\" id=\"save\">%s</button></p></form>\n",
        H(f->npis), H(f->tins), H(f->contracts), is_new ? "Register" : "Save");
    page_end(a);
}

static form_t *form_from_client(const atr_client_t *c, apr_pool_t *p)
{
    form_t *f = apr_pcalloc(p, sizeof(*f));
    f->c = atr_client_copy(c, p);
    f->npis = join(c->npis, "\n", p);
    f->tins = join(c->tins, "\n", p);
    f->contracts = join(c->contracts, "\n", p);
    return f;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* The posted fields into f (status and groups come from base, which the form never edits). */
static form_t *form_from_post(adm_t *a, const atr_client_t *base)
{
    form_t *f = apr_pcalloc(a->p, sizeof(*f));
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

/* Every check, each problem reported (not just the first): the rules of atr_client_validate
 * applied field by field, then the keys themselves (the URL is fetched once). */
static void form_check(adm_t *a, form_t *f, const atr_client_t *base)
{
    atr_client_t *c = f->c, probe;
    const char *err = NULL;
    int i;

#define PUSH_ERR(e) (APR_ARRAY_PUSH(f->errors, const char *) = (e))
    /* Field by field: validate a copy holding only that field (plus a key, which the
     * validator requires), so each invalid field gets its own message. */
    struct { const char *label; int which; } fields[] = {
        { "name", 0 }, { "contact", 1 }, { "description", 2 }, { "scope", 3 }, { "NPI", 4 },
        { "TIN", 5 }, { "contract", 6 }, { "JWKS URL", 7 }, { "JWKS", 8 }, { "client id", 9 }, { NULL, 0 }
    };
    static const char dummy_jwks_url[] = "https://keys.invalid/jwks.json";
    for (i = 0; fields[i].label; i++) {
        memset(&probe, 0, sizeof(probe));
        probe.client_id = "probe";
        probe.jwks_url = dummy_jwks_url;
        switch (fields[i].which) {
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
    if (!c->jwks_url && !c->jwks) PUSH_ERR("keys: give a JWKS URL or paste a JWKS (or both)");
    if (!c->scopes || c->scopes->nelts == 0) PUSH_ERR("scope: choose at least one scope");
    for (i = 0; c->scopes && i < c->scopes->nelts; i++) {
        const char *s = APR_ARRAY_IDX(c->scopes, i, const char *);
        if (!has_str(a->conf->scopes, s) && !(base && has_str(base->scopes, s))) {
            PUSH_ERR(apr_psprintf(a->p, "scope: '%s' is not one this server offers", s));
        }
    }
    if (f->errors->nelts) return;
    /* The keys themselves: the URL is fetched and parsed, the pasted JWKS parsed; their keys
     * are shown with the result. */
    if (c->jwks) {
        if (parse_inline_jwks(&f->inline_keys, c->jwks, &err, a->p) != APR_SUCCESS) {
            PUSH_ERR(apr_psprintf(a->p, "JWKS: %s", err ? err : "not a JWK Set"));
        }
    }
    if (c->jwks_url) {
        if (fetch_jwks(&f->url_keys, a, c->jwks_url, &err) != APR_SUCCESS) {
            PUSH_ERR(apr_psprintf(a->p, "JWKS URL: %s", err ? err : "could not be fetched"));
            f->url_keys = NULL;
        }
    }
    /* Last, the whole entry as the registry will see it. */
    if (!f->errors->nelts && atr_client_validate(c, a->conf->allow_http_loopback, &err, a->p) != APR_SUCCESS) {
        PUSH_ERR(err);
    }
#undef PUSH_ERR
}

static void page_new(adm_t *a)
{
    form_t *f;
    const char *id = NULL;

    if (!strcmp(a->method, "POST")) {
        const char *err = NULL;
        apr_status_t rv;
        f = form_from_post(a, NULL);
        form_check(a, f, NULL);
        if (f->errors->nelts) {
            a->out->status = 400;
            render_form(a, f, 1);
            return;
        }
        atr_client_stamp(f->c, a->user, apr_time_now(), a->p);
        rv = atr_registry_client_add(a->reg, f->c, &err, a->p);
        if (rv == APR_EEXIST) {
            /* The form was sent twice (reload): the id is generated when the form is shown. */
            APR_ARRAY_PUSH(f->errors, const char *) = apr_psprintf(a->p, "client id: %s is already "
                "registered (was this form sent twice?)", f->c->client_id);
            a->out->status = 409;
            render_form(a, f, 1);
            return;
        }
        if (rv != APR_SUCCESS) {
            if (rv == APR_EINVAL || rv == APR_NOTFOUND) {
                APR_ARRAY_PUSH(f->errors, const char *) = err ? err : "the directory refused the entry";
                a->out->status = 400;
                render_form(a, f, 1);
                return;
            }
            registry_down(a, rv);
            return;
        }
        audit(a, "ATR00910: registered client %s", f->c->client_id);
        redirect(a, apr_pstrcat(a->p, "/client/", U(f->c->client_id), "?done=added", NULL));
        return;
    }
    if (admin_new_client_id(&id, a->p) != APR_SUCCESS) {
        error_page(a, 500, "Error", "No random bytes for a client id.");
        return;
    }
    f = apr_pcalloc(a->p, sizeof(*f));
    f->c = apr_pcalloc(a->p, sizeof(atr_client_t));
    f->c->client_id = id;
    render_form(a, f, 1);
}

/* ---- one Consumer -------------------------------------------------------------------------- */

static int load_client(atr_client_t **pc, adm_t *a, const char *id)
{
    apr_status_t rv;
    if (!atr_client_id_is_valid(id)) {
        error_page(a, 404, "No such Consumer", "There is no Consumer with this client id.");
        return 0;
    }
    rv = atr_registry_client_get(pc, a->reg, id, a->p);
    if (rv == APR_NOTFOUND) {
        error_page(a, 404, "No such Consumer", "There is no Consumer with this client id.");
        return 0;
    }
    if (rv != APR_SUCCESS) {
        registry_down(a, rv);
        return 0;
    }
    return 1;
}

static void group_row(adm_t *a, const char *id, const char *button_html)
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

static void group_table_head(adm_t *a, const char *id, const char *caption)
{
    admin_out_fmt(a->out, "<table id=\"%s\"><caption>%s</caption><thead><tr><th scope=\"col\">Group id</th>"
                  "<th scope=\"col\">Name</th><th scope=\"col\">Contract period</th><th scope=\"col\">Status</th>"
                  "<th scope=\"col\">Members</th><th scope=\"col\">Action</th></tr></thead><tbody>\n",
                  id, H(caption));
}

static const char *link_button(adm_t *a, const char *cid, const char *gid, int link, const char *q)
{
    return apr_psprintf(a->p,
        "<form method=\"post\" action=\"%s/client/%s/%s\" class=\"inline\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"group\" value=\"%s\">"
        "%s<button type=\"submit\" aria-label=\"%s %s\" class=\"%s\">%s</button></form>",
        H(a->base), H(U(cid)), link ? "link" : "unlink", H(a->csrf), H(gid),
        q ? apr_psprintf(a->p, "<input type=\"hidden\" name=\"q\" value=\"%s\">", H(q)) : "",
        link ? "Link" : "Unlink", H(gid), link ? "link" : "unlink", link ? "Link" : "Unlink");
}

static void page_client(adm_t *a, const char *id)
{
    atr_client_t *c = NULL;
    int i;

    if (!load_client(&c, a, id)) return;
    open_store(a);
    page_begin(a, apr_pstrcat(a->p, "Consumer ", c->client_id, NULL));
    flash(a);
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
        H(c->description), H(join(c->scopes, " ", a->p)), H(join(c->npis, ", ", a->p)),
        H(join(c->tins, ", ", a->p)), H(join(c->contracts, ", ", a->p)), H(c->jwks_url),
        H(changed_text(c, a->p)), H(ldap_time(c->modified_at, a->p)), H(c->modified_by ? c->modified_by : "?"));
    if (c->jwks_url) {
        apr_array_header_t *keys = NULL;
        const char *err = NULL;
        if (fetch_jwks(&keys, a, c->jwks_url, &err) == APR_SUCCESS) keys_table(a, "Keys at the JWKS URL now", keys);
        else admin_out_fmt(a->out, "<p class=\"error\">JWKS URL: %s</p>\n", H(err));
    }
    if (c->jwks) {
        apr_array_header_t *keys = NULL;
        const char *err = NULL;
        if (parse_inline_jwks(&keys, c->jwks, &err, a->p) == APR_SUCCESS) keys_table(a, "Keys in the stored JWKS", keys);
        else admin_out_fmt(a->out, "<p class=\"error\">Stored JWKS: %s</p>\n", H(err));
    }
    admin_out_fmt(a->out, "<p class=\"actions\"><a href=\"%s/client/%s/edit\" id=\"edit\">Edit</a> "
                  "<a href=\"%s/client/%s/groups\" id=\"link-groups\">Link Groups</a> "
                  "<a href=\"%s/client/%s/delete\" id=\"delete\">Delete</a></p>\n",
                  H(a->base), H(U(c->client_id)), H(a->base), H(U(c->client_id)), H(a->base), H(U(c->client_id)));
    admin_out_fmt(a->out, "<form method=\"post\" action=\"%s/client/%s/status\">", H(a->base), H(U(c->client_id)));
    csrf_field(a);
    admin_out_fmt(a->out, "<input type=\"hidden\" name=\"status\" value=\"%s\">"
                  "<button type=\"submit\" id=\"toggle-status\">%s</button></form>\n",
                  c->disabled ? "active" : "disabled", c->disabled ? "Enable" : "Disable");
    group_table_head(a, "linked-groups", "Linked Groups");
    for (i = 0; c->groups && i < c->groups->nelts; i++) {
        const char *gid = APR_ARRAY_IDX(c->groups, i, const char *);
        group_row(a, gid, link_button(a, c->client_id, gid, 0, NULL));
    }
    admin_out_raw(a->out, "</tbody></table>\n");
    page_end(a);
}

static void page_edit(adm_t *a, const char *id)
{
    atr_client_t *c = NULL;
    form_t *f;
    const char *err = NULL;
    apr_status_t rv;

    if (!load_client(&c, a, id)) return;
    if (strcmp(a->method, "POST")) {
        render_form(a, form_from_client(c, a->p), 0);
        return;
    }
    f = form_from_post(a, c);
    form_check(a, f, c);
    if (f->errors->nelts) {
        a->out->status = 400;
        render_form(a, f, 0);
        return;
    }
    atr_client_stamp(f->c, a->user, apr_time_now(), a->p);
    rv = atr_registry_client_modify(a->reg, f->c, &err, a->p);
    if (rv != APR_SUCCESS) {
        if (rv == APR_NOTFOUND) {
            error_page(a, 404, "No such Consumer", "The Consumer was deleted meanwhile.");
            return;
        }
        if (rv == APR_EINVAL) {
            APR_ARRAY_PUSH(f->errors, const char *) = err ? err : "the directory refused the change";
            a->out->status = 400;
            render_form(a, f, 0);
            return;
        }
        registry_down(a, rv);
        return;
    }
    audit(a, "ATR00911: modified client %s", c->client_id);
    redirect(a, apr_pstrcat(a->p, "/client/", U(c->client_id), "?done=saved", NULL));
}

static void page_status(adm_t *a, const char *id)
{
    atr_client_t *c = NULL;
    const char *want = admin_param(a->form, "status"), *err = NULL;
    apr_status_t rv;

    if (!want || (strcmp(want, "active") && strcmp(want, "disabled"))) {
        error_page(a, 400, "Bad request", "status must be active or disabled.");
        return;
    }
    if (!load_client(&c, a, id)) return;
    c->disabled = !strcmp(want, "disabled");
    atr_client_stamp(c, a->user, apr_time_now(), a->p);
    rv = atr_registry_client_modify(a->reg, c, &err, a->p);
    if (rv != APR_SUCCESS) {
        if (rv == APR_NOTFOUND || rv == APR_EINVAL) {
            error_page(a, rv == APR_NOTFOUND ? 404 : 400, "Not changed", err ? err : "The change was refused.");
            return;
        }
        registry_down(a, rv);
        return;
    }
    audit(a, "ATR00912: %s client %s", c->disabled ? "disabled" : "enabled", c->client_id);
    redirect(a, apr_pstrcat(a->p, "/client/", U(c->client_id), c->disabled ? "?done=disabled" : "?done=enabled", NULL));
}

static void page_delete(adm_t *a, const char *id)
{
    atr_client_t *c = NULL;
    const char *err = NULL;
    apr_status_t rv;

    if (!load_client(&c, a, id)) return;
    if (strcmp(a->method, "POST")) {
        page_begin(a, apr_pstrcat(a->p, "Delete ", c->client_id, "?", NULL));
        admin_out_fmt(a->out, "<p>Deleting <strong>%s</strong> (%s) removes its registration: it gets "
                      "no more tokens and its Group links are gone. This cannot be undone.</p>"
                      "<form method=\"post\" action=\"%s/client/%s/delete\">",
                      H(c->client_id), H(c->name ? c->name : "no name"), H(a->base), H(U(c->client_id)));
        csrf_field(a);
        admin_out_fmt(a->out, "<p><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" "
                      "id=\"confirm\" required> Yes, delete %s</label></p>"
                      "<p><button type=\"submit\" id=\"confirm-delete\">Delete</button> "
                      "<a href=\"%s/client/%s\">Cancel</a></p></form>\n",
                      H(c->client_id), H(a->base), H(U(c->client_id)));
        page_end(a);
        return;
    }
    if (!admin_param(a->form, "confirm") || strcmp(admin_param(a->form, "confirm"), "yes")) {
        error_page(a, 400, "Not deleted", "Tick the confirmation box to delete the Consumer.");
        return;
    }
    rv = atr_registry_client_delete(a->reg, c->client_id, &err, a->p);
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
        registry_down(a, rv);
        return;
    }
    audit(a, "ATR00913: deleted client %s", c->client_id);
    redirect(a, "/?done=deleted");
}

static void page_groups(adm_t *a, const char *id)
{
    atr_client_t *c = NULL;
    const char *q = admin_param(a->query, "q");
    apr_array_header_t *ids = NULL;
    int truncated = 0, i;

    if (!load_client(&c, a, id)) return;
    q = admin_text_cut(q, SEARCH_MAX, a->p);
    if (open_store(a) != APR_SUCCESS
        || atr_admin_group_find(&ids, &truncated, a->db, q, GROUPS_SHOWN, a->p) != APR_SUCCESS) {
        problem("ATR00904: Group search failed in the store");
        error_page(a, 503, "Store unavailable", "The Group store cannot be searched right now.");
        return;
    }
    page_begin(a, apr_pstrcat(a->p, "Link Groups to ", c->client_id, NULL));
    flash(a);
    admin_out_fmt(a->out,
        "<p><a href=\"%s/client/%s\" id=\"back\">Back to %s</a></p>"
        "<form method=\"get\" action=\"%s/client/%s/groups\" role=\"search\">"
        "<label for=\"gq\">Find Groups by identifier (NPI, TIN, contract) or name</label> "
        "<input type=\"search\" id=\"gq\" name=\"q\" maxlength=\"%d\" value=\"%s\"> "
        "<button type=\"submit\" id=\"group-search\">Search</button></form>\n",
        H(a->base), H(U(c->client_id)), H(c->client_id), H(a->base), H(U(c->client_id)), SEARCH_MAX, H(q));
    if (ids->nelts == 0) {
        admin_out_raw(a->out, "<p id=\"no-results\">No Group matches.</p>\n");
    }
    else {
        group_table_head(a, "found-groups", truncated ? "Groups found (first 100)" : "Groups found");
        for (i = 0; i < ids->nelts; i++) {
            const char *gid = APR_ARRAY_IDX(ids, i, const char *);
            int linked = has_str(c->groups, gid);
            group_row(a, gid, link_button(a, c->client_id, gid, !linked, q));
        }
        admin_out_raw(a->out, "</tbody></table>\n");
    }
    page_end(a);
}

static void page_link(adm_t *a, const char *id, int link)
{
    atr_client_t *c = NULL;
    const char *gid = admin_param(a->form, "group"), *q = admin_param(a->form, "q"), *err = NULL;
    apr_array_header_t *groups;
    atr_admin_group_t *g = NULL;
    apr_status_t rv;
    int i;

    if (!load_client(&c, a, id)) return;
    if (!gid || !atr_fhir_is_id(gid)) {
        error_page(a, 400, "Bad request", "No valid Group id was sent.");
        return;
    }
    if (link) {
        if (open_store(a) != APR_SUCCESS) {
            error_page(a, 503, "Store unavailable", "The Group store cannot be read right now.");
            return;
        }
        rv = atr_admin_group_get(&g, a->db, gid, a->p);
        if (rv != APR_SUCCESS || g->deleted) {
            error_page(a, 404, "No such Group", "The store has no Group with this id.");
            return;
        }
    }
    groups = apr_array_make(a->p, c->groups ? c->groups->nelts + 1 : 1, sizeof(const char *));
    for (i = 0; c->groups && i < c->groups->nelts; i++) {
        const char *x = APR_ARRAY_IDX(c->groups, i, const char *);
        if (strcmp(x, gid)) APR_ARRAY_PUSH(groups, const char *) = x;
    }
    if (link) APR_ARRAY_PUSH(groups, const char *) = gid;
    c->groups = groups;
    atr_client_stamp(c, a->user, apr_time_now(), a->p);
    rv = atr_registry_client_modify(a->reg, c, &err, a->p);
    if (rv != APR_SUCCESS) {
        if (rv == APR_NOTFOUND || rv == APR_EINVAL) {
            error_page(a, rv == APR_NOTFOUND ? 404 : 400, "Not changed", err ? err : "The change was refused.");
            return;
        }
        registry_down(a, rv);
        return;
    }
    audit(a, "ATR0091%d: %s Group %s %s client %s", link ? 4 : 5, link ? "linked" : "unlinked", gid,
          link ? "to" : "from", c->client_id);
    if (q) {
        redirect(a, apr_pstrcat(a->p, "/client/", U(c->client_id), "/groups?q=", U(q),
                                link ? "&done=linked" : "&done=unlinked", NULL));
    }
    else {
        redirect(a, apr_pstrcat(a->p, "/client/", U(c->client_id), link ? "?done=linked" : "?done=unlinked", NULL));
    }
}

static void page_css(adm_t *a)
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

/* ---- request ------------------------------------------------------------------------------- */

static int read_body(adm_t *a)
{
    const char *cl = getenv("CONTENT_LENGTH");
    apr_size_t n = 0;
    char *buf;
    size_t got = 0;
    int status = admin_body_check(&n, cl, getenv("CONTENT_TYPE"), a->conf->max_body);

    if (status == 400) {
        error_page(a, 400, "Bad request", "The form's length is not a number.");
        return 0;
    }
    if (status == 413) {
        audit(a, "ATR00905: request body of %.20s bytes refused (limit %lu)", cl,
              (unsigned long)a->conf->max_body);
        error_page(a, 413, "Too large", "The form is larger than this server accepts.");
        /* Drain what httpd passes (bounded by its LimitRequestBody): a client still sending
         * when we answer would otherwise see a reset connection instead of this page. */
        {
            char sink[8192];
            while (fread(sink, 1, sizeof(sink), stdin) > 0) {}
        }
        return 0;
    }
    if (status == 415) {
        error_page(a, 415, "Unsupported form", "Forms must be sent as application/x-www-form-urlencoded.");
        return 0;
    }
    buf = apr_palloc(a->p, n + 1);
    while (got < n) {
        size_t r = fread(buf + got, 1, n - got, stdin);
        if (r == 0) break;
        got += r;
    }
    if (got != n || admin_form_decode(&a->form, buf, n, a->p) != APR_SUCCESS) {
        error_page(a, 400, "Bad request", "The form could not be decoded.");
        return 0;
    }
    return 1;
}

static void route(adm_t *a)
{
    const char *path = a->path;
    int post = !strcmp(a->method, "POST");
    char *id, *rest;

    if (!strcmp(path, "/style.css")) {
        page_css(a);
        return;
    }
    if (post) {
        if (!read_body(a)) return;
        if (!admin_csrf_check(a->csrf_key, a->csrf_klen, a->user, admin_param(a->form, "csrf"), a->p)) {
            audit(a, "ATR00906: POST %s without a valid CSRF token refused", admin_url_enc(path, a->p));
            error_page(a, 403, "Form expired",
                       "This form has expired or did not come from this site (no valid CSRF token). "
                       "Nothing was changed; go back, reload the page and try again.");
            return;
        }
    }
    if (!strcmp(path, "/") && !post) {
        page_list(a);
        return;
    }
    if (!strcmp(path, "/new")) {
        page_new(a);
        return;
    }
    if (!strncmp(path, "/client/", 8)) {
        id = apr_pstrdup(a->p, path + 8);
        rest = strchr(id, '/');
        if (rest) *rest++ = '\0';
        if (!rest && !post) {
            page_client(a, id);
            return;
        }
        if (rest && !strcmp(rest, "edit")) {
            page_edit(a, id);
            return;
        }
        if (rest && !strcmp(rest, "delete")) {
            page_delete(a, id);
            return;
        }
        if (rest && !strcmp(rest, "groups") && !post) {
            page_groups(a, id);
            return;
        }
        if (rest && post && !strcmp(rest, "status")) {
            page_status(a, id);
            return;
        }
        if (rest && post && (!strcmp(rest, "link") || !strcmp(rest, "unlink"))) {
            page_link(a, id, !strcmp(rest, "link"));
            return;
        }
    }
    error_page(a, 404, "Not found", "There is no such page here.");
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    adm_t a;
    const char *conf_path, *err = NULL, *qs, *key = NULL;
    int head, status;

    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    memset(&a, 0, sizeof(a));
    a.p = p;
    a.out = admin_out_make(p);
    a.method = getenv("REQUEST_METHOD");
    a.user = getenv("REMOTE_USER");
    a.base = getenv("SCRIPT_NAME");
    a.path = getenv("PATH_INFO");
    if (!a.base) a.base = "";
    if (!a.method) {
        fprintf(stderr, "atr-admin is a CGI program: httpd runs it (see docs/admin.md)\n");
        return 2;
    }
    head = !strcmp(a.method, "HEAD");
    if (head) a.method = "GET";
    if (strcmp(a.method, "GET") && strcmp(a.method, "POST")) {
        error_page(&a, 405, "Method not allowed", "Only GET and POST are used here.");
        admin_out_send(a.out, head);
        return 0;
    }
    /* httpd does the sign-in; without REMOTE_USER it was not configured to: fail closed. */
    if (!a.user || !*a.user) {
        problem("ATR00907: no REMOTE_USER: httpd must authenticate /atr-admin (docs/admin.md)");
        a.user = "";
        error_page(&a, 403, "Forbidden", "Sign-in is required.");
        admin_out_send(a.out, head);
        return 0;
    }
    if (!a.path || !*a.path) {
        redirect(&a, "/");
        admin_out_send(a.out, head);
        return 0;
    }
    /* The config path comes from httpd's configuration (SetEnv), never from the request. */
    conf_path = getenv("ATR_ADMIN_CONF");
    if (!conf_path || !*conf_path) conf_path = ADMIN_DEFAULT_CONF;
    if (admin_conf_read(&a.conf, conf_path, &err, p) != APR_SUCCESS) {
        problem("ATR00900: %s", err);
        error_page(&a, 500, "Not configured", "The admin form is not configured; see the error log.");
        admin_out_send(a.out, head);
        return 0;
    }
    if (admin_read_secret(&key, &a.csrf_klen, a.conf->csrf_key_file, 4096, p) != APR_SUCCESS || a.csrf_klen < 16) {
        problem("ATR00908: cannot read csrf_key_file (at least 16 bytes) named in %s", conf_path);
        error_page(&a, 500, "Not configured", "The admin form is not configured; see the error log.");
        admin_out_send(a.out, head);
        return 0;
    }
    a.csrf_key = (const unsigned char *)key;
    a.csrf = admin_csrf_make(a.csrf_key, a.csrf_klen, a.user, p);
    qs = getenv("QUERY_STRING");
    status = admin_query_decode(&a.query, qs, p);
    if (status == 413) {
        error_page(&a, 413, "Too large", "The address is longer than this server accepts.");
        admin_out_send(a.out, head);
        return 0;
    }
    if (status != 0) {
        error_page(&a, 400, "Bad request", "The address could not be decoded.");
        admin_out_send(a.out, head);
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || open_registry(&a) != APR_SUCCESS) {
        error_page(&a, 500, "Not configured", "The admin form is not configured; see the error log.");
        admin_out_send(a.out, head);
        return 0;
    }
    route(&a);
    admin_out_send(a.out, head);
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
