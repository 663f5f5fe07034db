/* atr-admin: the CGI payer staff use to register ATR Consumers in the LDAP registry and link
 * them to Groups of the store (docs/admin.md). This file is its main: the CGI environment,
 * the config, the CSRF gate every POST passes, and the routing to the pages (admin_cgi.h
 * lists the files that make them).
 *
 * httpd authenticates and authorizes (AuthBasicProvider ldap, Require ldap-group): this
 * program only refuses to run without REMOTE_USER. It binds to LDAP as its own service
 * account (password from a file named in its config file) and reuses libatr for everything
 * that is not web: the registry (atr_registry.h), validation (atr_client_validate), JWKS
 * parsing and fetching, the Group search of the store.
 *
 * Pages (PATH_INFO):
 *   GET  /                       Consumers, searchable (?q=)             admin_list.c
 *   GET  /new   POST /new        register a Consumer                     admin_edit.c
 *   GET  /client/ID              one Consumer: keys, linked Groups, last change  admin_client.c
 *   GET  /client/ID/edit  POST   edit                                    admin_edit.c
 *   POST /client/ID/status       enable / disable                        admin_client.c
 *   GET  /client/ID/delete POST  delete, after a confirmation page       admin_client.c
 *   GET  /client/ID/groups?q=    find Groups in the store to link        admin_groups.c
 *   POST /client/ID/link  POST /client/ID/unlink                         admin_groups.c
 *   GET  /style.css                                                      admin_page.c
 * Every POST carries a CSRF token; every change is one LDAP operation, audit-logged with
 * REMOTE_USER. Log tags ATR00900-ATR00949. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include "admin_cgi.h"

static int not_configured(admin_req_t *a)
{
    admin_page_error(a, 500, "Not configured", "The admin form is not configured; see the error log.");
    return 0;
}

/* Everything a page needs before routing, in this order: a method we serve, a signed-in
 * user, a path, the config, the CSRF key, the query, the registry. 1, or 0 with the page
 * answered. */
static int prepare(admin_req_t *a)
{
    const char *conf_path, *err = NULL, *key = NULL;
    int status;

    if (strcmp(a->method, "GET") && strcmp(a->method, "POST")) {
        admin_page_error(a, 405, "Method not allowed", "Only GET and POST are used here.");
        return 0;
    }
    /* httpd does the sign-in; without REMOTE_USER it was not configured to: fail closed. */
    if (!a->user || !*a->user) {
        admin_log_problem("ATR00907: no REMOTE_USER: httpd must authenticate /atr-admin (docs/admin.md)");
        a->user = "";
        admin_page_error(a, 403, "Forbidden", "Sign-in is required.");
        return 0;
    }
    if (!a->path || !*a->path) {
        admin_page_redirect(a, "/");
        return 0;
    }
    /* The config path comes from httpd's configuration (SetEnv), never from the request. */
    conf_path = getenv("ATR_ADMIN_CONF");
    if (!conf_path || !*conf_path) conf_path = ADMIN_DEFAULT_CONF;
    if (admin_conf_read(&a->conf, conf_path, &err, a->p) != APR_SUCCESS) {
        admin_log_problem("ATR00900: %s", err);
        return not_configured(a);
    }
    if (admin_read_secret(&key, &a->csrf_klen, a->conf->csrf_key_file, 4096, a->p) != APR_SUCCESS
        || a->csrf_klen < 16) {
        admin_log_problem("ATR00908: cannot read csrf_key_file (at least 16 bytes) named in %s", conf_path);
        return not_configured(a);
    }
    a->csrf_key = (const unsigned char *)key;
    a->csrf = admin_csrf_make(a->csrf_key, a->csrf_klen, a->user, a->p);
    status = admin_query_decode(&a->query, getenv("QUERY_STRING"), a->p);
    if (status == 413) {
        admin_page_error(a, 413, "Too large", "The address is longer than this server accepts.");
        return 0;
    }
    if (status != 0) {
        admin_page_error(a, 400, "Bad request", "The address could not be decoded.");
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || admin_dir_open_registry(a) != APR_SUCCESS) {
        return not_configured(a);
    }
    return 1;
}

/* The POST body as a form: 1, or 0 with the page answered. */
static int read_body(admin_req_t *a)
{
    const char *cl = getenv("CONTENT_LENGTH");
    apr_size_t n = 0;
    char *buf;
    size_t got = 0;
    int status = admin_body_check(&n, cl, getenv("CONTENT_TYPE"), a->conf->max_body);

    if (status == 400) {
        admin_page_error(a, 400, "Bad request", "The form's length is not a number.");
        return 0;
    }
    if (status == 413) {
        admin_log_audit(a, "ATR00905: request body of %.20s bytes refused (limit %lu)", cl,
                        (unsigned long)a->conf->max_body);
        admin_page_error(a, 413, "Too large", "The form is larger than this server accepts.");
        /* Drain what httpd passes (bounded by its LimitRequestBody): a client still sending
         * when we answer would otherwise see a reset connection instead of this page. */
        {
            char sink[8192];
            while (fread(sink, 1, sizeof(sink), stdin) > 0) {}
        }
        return 0;
    }
    if (status == 415) {
        admin_page_error(a, 415, "Unsupported form", "Forms must be sent as application/x-www-form-urlencoded.");
        return 0;
    }
    buf = apr_palloc(a->p, n + 1);
    while (got < n) {
        size_t r = fread(buf + got, 1, n - got, stdin);
        if (r == 0) break;
        got += r;
    }
    if (got != n || admin_form_decode(&a->form, buf, n, a->p) != APR_SUCCESS) {
        admin_page_error(a, 400, "Bad request", "The form could not be decoded.");
        return 0;
    }
    return 1;
}

/* A POST is read and its CSRF token checked before anything else happens: 1, or 0 with the
 * page answered. */
static int read_post(admin_req_t *a)
{
    if (!read_body(a)) return 0;
    if (!admin_csrf_check(a->csrf_key, a->csrf_klen, a->user, admin_param(a->form, "csrf"), a->p)) {
        admin_log_audit(a, "ATR00906: POST %s without a valid CSRF token refused", admin_url_enc(a->path, a->p));
        admin_page_error(a, 403, "Form expired",
                         "This form has expired or did not come from this site (no valid CSRF token). "
                         "Nothing was changed; go back, reload the page and try again.");
        return 0;
    }
    return 1;
}

/* The pages below /client/ID: rest is what follows "ID/" (NULL: /client/ID itself). 1, or 0
 * when there is no such page. */
static int route_client(admin_req_t *a, const char *id, const char *rest, int post)
{
    if (!rest) {
        if (post) return 0;
        admin_client_page(a, id);
    }
    else if (!strcmp(rest, "edit")) admin_edit_page(a, id);
    else if (!strcmp(rest, "delete")) admin_client_delete(a, id);
    else if (!strcmp(rest, "groups") && !post) admin_groups_page(a, id);
    else if (!strcmp(rest, "status") && post) admin_client_status(a, id);
    else if ((!strcmp(rest, "link") || !strcmp(rest, "unlink")) && post) admin_groups_link(a, id, !strcmp(rest, "link"));
    else return 0;
    return 1;
}

static void route(admin_req_t *a)
{
    const char *path = a->path;
    int post = !strcmp(a->method, "POST");

    if (!strcmp(path, "/style.css")) {
        admin_page_css(a);
        return;
    }
    if (post && !read_post(a)) return;
    if (!strcmp(path, "/") && !post) {
        admin_list_page(a);
        return;
    }
    if (!strcmp(path, "/new")) {
        admin_edit_new(a);
        return;
    }
    if (!strncmp(path, "/client/", 8)) {
        char *id = apr_pstrdup(a->p, path + 8), *rest = strchr(id, '/');
        if (rest) *rest++ = '\0';
        if (route_client(a, id, rest, post)) return;
    }
    admin_page_error(a, 404, "Not found", "There is no such page here.");
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    admin_req_t a;
    int head;

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
    if (prepare(&a)) route(&a);
    admin_out_send(a.out, head);
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
