/* What the files of the atr-admin CGI share (docs/admin.md): the request being answered, the
 * helpers every page uses, and the pages themselves, which atr_admin.c routes to.
 *
 *   atr_admin.c      main: the CGI environment, config, CSRF gate, routing
 *   admin_log.c      the audit log and the error log
 *   admin_page.c     the page frame, error pages, redirects, messages, the style sheet
 *   admin_dir.c      the registry (LDAP) and the store: open, load and save a Consumer
 *   admin_keys.c     a Consumer's keys: JWKS URL fetch, pasted JWKS, key tables
 *   admin_list.c     the Consumer list
 *   admin_client.c   one Consumer: its page, enable/disable, delete
 *   admin_form.c     the register/edit form: shown, read back, checked
 *   admin_edit.c     the register and edit pages, which submit that form
 *   admin_groups.c   Groups: find, link, unlink
 * Web plumbing without LDAP (config file, escaping, CSRF tokens, limits) is admin_web.h.
 * Log tags ATR00900-ATR00949. */
#ifndef ADMIN_CGI_H
#define ADMIN_CGI_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "admin_web.h"
#include "atr_db.h"
#include "atr_registry.h"

#define ADMIN_GROUPS_SHOWN 100          /* Groups a search lists at the most */
#define ADMIN_SEARCH_MAX 256            /* bytes of a search text */

/* One request: what httpd passed, what the config says, the connections, the response. */
typedef struct admin_req_t {
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
} admin_req_t;

/* Escaped for HTML, %-encoded for a URL, in the request's pool (a is the request). */
#define H(s) admin_h((s), a->p)
#define U(s) admin_url_enc((s), a->p)

/* ---- admin_log.c ---- */
/* A change (or a refused form) to the audit log, with REMOTE_USER; stderr when none is set. */
void admin_log_audit(admin_req_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A problem of the server to stderr (httpd's error log). */
void admin_log_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- admin_page.c ---- */
void admin_page_begin(admin_req_t *a, const char *title);
void admin_page_end(admin_req_t *a);
/* The hidden CSRF field of a form. */
void admin_page_csrf_field(admin_req_t *a);
/* A whole page answering status with text as its alert. */
void admin_page_error(admin_req_t *a, int status, const char *title, const char *text);
/* 303 to base + path. */
void admin_page_redirect(admin_req_t *a, const char *path);
/* admin_page_begin for the pages a change redirects to: then the message ?done= names. */
void admin_page_begin_flash(admin_req_t *a, const char *title);
/* "/client/ID" + rest, the id %-encoded: a path below base. */
const char *admin_page_client_path(admin_req_t *a, const char *id, const char *rest);
/* base + "/client/ID", HTML-escaped: for href and action attributes. */
const char *admin_page_client_href(admin_req_t *a, const char *id);
void admin_page_css(admin_req_t *a);

/* ---- admin_dir.c ---- */
apr_status_t admin_dir_open_registry(admin_req_t *a);
/* The store, opened once per request; logged when it cannot be. */
apr_status_t admin_dir_open_store(admin_req_t *a);
/* The 503 page for an unreachable registry (rv logged). */
void admin_dir_down(admin_req_t *a, apr_status_t rv);
/* Load the Consumer with client id id: 1, or 0 with the page answered (404, or 503). */
int admin_dir_load(atr_client_t **pc, admin_req_t *a, const char *id);
/* c stamped with the signed-in user and written back in one modify: as
 * atr_registry_client_modify. */
apr_status_t admin_dir_write(admin_req_t *a, atr_client_t *c, const char **perr);
/* admin_dir_write for the buttons (status, link): 1, or 0 with the page answered (404 or 400
 * "Not changed", or 503). */
int admin_dir_save(admin_req_t *a, atr_client_t *c);

/* ---- admin_keys.c ---- */
void admin_keys_table(admin_req_t *a, const char *caption, const apr_array_header_t *keys);
/* The keys at a JWKS URL, fetched now; APR_EINVAL with *perr when it holds no usable key. */
apr_status_t admin_keys_fetch(apr_array_header_t **pkeys, admin_req_t *a, const char *url, const char **perr);
apr_status_t admin_keys_parse(apr_array_header_t **pkeys, const char *text, const char **perr, apr_pool_t *p);
/* A stored Consumer's keys as they are now: a table for each of its JWKS URL and pasted
 * JWKS, or what is wrong with it. */
void admin_keys_show(admin_req_t *a, const atr_client_t *c);

/* ---- admin_form.c ---- */
typedef struct admin_form_t {
    atr_client_t *c;
    const char *npis, *tins, *contracts;     /* textareas as typed */
    apr_array_header_t *errors;              /* const char *: one line per problem */
    apr_array_header_t *url_keys;            /* keys fetched from the JWKS URL */
    apr_array_header_t *inline_keys;
} admin_form_t;

/* The form of a new Consumer with a fresh client id, or NULL with the page answered (500). */
admin_form_t *admin_form_new(admin_req_t *a);
admin_form_t *admin_form_from_client(const atr_client_t *c, apr_pool_t *p);
/* The posted fields (status and Groups come from base, which the form never edits; NULL: a
 * new Consumer), every one checked: the form, or NULL with it shown again, every problem
 * listed (400). */
admin_form_t *admin_form_read(admin_req_t *a, const atr_client_t *base);
/* The register (is_new) or edit page showing f, answering status. */
void admin_form_render(admin_req_t *a, admin_form_t *f, int is_new, int status);
/* The form again with err (if any) added to its errors, answering status. */
void admin_form_refuse(admin_req_t *a, admin_form_t *f, int is_new, int status, const char *err);

/* ---- admin_groups.c ---- */
/* A table of Groups (ids, const char *; NULL: none) with the store's view of each, and a
 * button each: Unlink for those linked to c, Link for the others (q: the search to return
 * to afterwards, or NULL). */
void admin_groups_table(admin_req_t *a, const atr_client_t *c, const char *table_id, const char *caption,
                        const apr_array_header_t *ids, const char *q);

/* ---- the pages ---- */
void admin_list_page(admin_req_t *a);                    /* GET / */
void admin_edit_new(admin_req_t *a);                     /* /new */
void admin_edit_page(admin_req_t *a, const char *id);    /* /client/ID/edit */
void admin_client_page(admin_req_t *a, const char *id);  /* GET /client/ID */
void admin_client_status(admin_req_t *a, const char *id);/* POST /client/ID/status */
void admin_client_delete(admin_req_t *a, const char *id);/* /client/ID/delete */
void admin_groups_page(admin_req_t *a, const char *id);  /* GET /client/ID/groups */
void admin_groups_link(admin_req_t *a, const char *id, int link); /* POST /client/ID/(un)link */

#endif
