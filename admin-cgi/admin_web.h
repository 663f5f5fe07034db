/* The web plumbing of the admin CGI: its config file, the request (CGI environment, size
 * limits, form decoding), CSRF tokens, HTML escaping and the response buffer. No LDAP here. */
#ifndef ADMIN_WEB_H
#define ADMIN_WEB_H
#include <apr_pools.h>
#include <apr_tables.h>

#define ADMIN_DEFAULT_CONF "/etc/apache2/atr/admin.conf"
#define ADMIN_QUERY_MAX 4096          /* bytes of QUERY_STRING */
#define ADMIN_BODY_MAX_DEFAULT 262144  /* bytes of a POST body unless max_body says otherwise */
#define ADMIN_CSRF_TTL (12 * 3600)     /* s a form stays valid */

typedef struct admin_conf_t {
    const char *path;
    const char *ldap_uri, *ldap_base, *ldap_bind_dn, *ldap_password_file;
    const char *store;                 /* "sqlite3:/var/lib/atr/atr.db" */
    const char *csrf_key_file;         /* >= 32 random bytes */
    const char *audit_log;             /* file the changes are appended to; NULL: stderr */
    apr_array_header_t *scopes;        /* the scopes offered (const char *) */
    int allow_http_loopback;           /* JWKS URLs on http://127.x (tests only) */
    apr_size_t max_body;
} admin_conf_t;

/* Read the config file ("key value" lines; lines starting with # are comments). APR_EINVAL + *perr on a bad line or a
 * missing required key. */
apr_status_t admin_conf_read(admin_conf_t **pconf, const char *path, const char **perr, apr_pool_t *p);

/* Read a small secret file (at most max bytes): its contents and length. */
apr_status_t admin_read_secret(const char **pdata, apr_size_t *plen, const char *path, apr_size_t max,
                               apr_pool_t *p);

/* The response being built: status, extra headers, body. */
typedef struct admin_out_t {
    int status;
    const char *location;              /* 303 target (absolute path) or NULL */
    const char *content_type;
    apr_array_header_t *body;          /* chars */
    apr_pool_t *p;
} admin_out_t;

admin_out_t *admin_out_make(apr_pool_t *p);
void admin_out_raw(admin_out_t *o, const char *s);
void admin_out_fmt(admin_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write headers and body to stdout (CGI). */
void admin_out_send(admin_out_t *o, int head_only);

/* HTML-escaped copy of s (& < > " ' escaped; NULL gives ""). Safe in text and quoted attributes. */
const char *admin_h(const char *s, apr_pool_t *p);
/* %-encoded copy of s for a URL path segment or query value. */
const char *admin_url_enc(const char *s, apr_pool_t *p);

/* The form values named name (const char *), from a decoded atr_param_t array; first/only. */
const char *admin_param(const apr_array_header_t *params, const char *name);
apr_array_header_t *admin_param_all(const apr_array_header_t *params, const char *name, apr_pool_t *p);
/* Split a textarea into its non-empty values (separated by newlines, commas or spaces). */
apr_array_header_t *admin_split_list(const char *text, apr_pool_t *p);
/* The strings of arr (const char *; NULL: none) joined with sep ("" when none). */
const char *admin_join(const apr_array_header_t *arr, const char *sep, apr_pool_t *p);
/* 1 when arr (const char *; NULL: none) holds s. */
int admin_has_str(const apr_array_header_t *arr, const char *s);

/* An LDAP GeneralizedTime as shown: 20261125011500Z -> "2026-11-25 01:15:00 UTC"; shorter
 * text as it is, NULL as "". */
const char *admin_ldap_time(const char *gt, apr_pool_t *p);
/* Who changed an entry last, from its atrChangedAt / atrChangedBy: "2026-11-25 01:15:00 UTC by
 * alice", with "(time not recorded)" or "(not recorded)" for the one missing, and "not
 * recorded" when both are (entries written by other tools have neither). */
const char *admin_changed_text(const char *changed_at, const char *changed_by, apr_pool_t *p);

/* CSRF token for user (HMAC-SHA256 over user and issue time, keyed with the secret):
 * "<time>.<hex mac>". check returns 1 when token is one we issued for user within the TTL
 * (and not more than a minute in the future: clocks of several hosts differ a little). */
const char *admin_csrf_make(const unsigned char *key, apr_size_t klen, const char *user, apr_pool_t *p);
int admin_csrf_check(const unsigned char *key, apr_size_t klen, const char *user, const char *token,
                     apr_pool_t *p);
/* The same at a given time (seconds since the epoch): tests fix the clock with these. */
const char *admin_csrf_make_at(const unsigned char *key, apr_size_t klen, const char *user, apr_int64_t now,
                               apr_pool_t *p);
int admin_csrf_check_at(const unsigned char *key, apr_size_t klen, const char *user, const char *token,
                        apr_int64_t now, apr_pool_t *p);

/* Whether a POST body may be read, from CONTENT_LENGTH and CONTENT_TYPE: 0 and *plen, or the
 * status to answer, in this order: 400 when the length is not a decimal number, 413 when it
 * is over max bytes (before the type: a huge body is refused whatever it claims to be), 415
 * unless the type is application/x-www-form-urlencoded (parameters after ';' allowed). No
 * length: 0 bytes. */
int admin_body_check(apr_size_t *plen, const char *content_length, const char *content_type, apr_size_t max);
/* Decode a form body of len bytes (atr_param_t array). APR_EINVAL when it holds a NUL byte,
 * a bad %-escape or an escaped NUL. */
apr_status_t admin_form_decode(apr_array_header_t **pform, const char *body, apr_size_t len, apr_pool_t *p);
/* Decode QUERY_STRING (NULL: empty): 0, or 413 over ADMIN_QUERY_MAX bytes, 400 when it does
 * not decode. */
int admin_query_decode(apr_array_header_t **pquery, const char *qs, apr_pool_t *p);
/* s cut to at most max bytes, never inside a UTF-8 sequence (search texts); NULL stays NULL. */
const char *admin_text_cut(const char *s, apr_size_t max, apr_pool_t *p);

/* A new client id: "atr-" and 20 random lowercase hex digits. */
apr_status_t admin_new_client_id(const char **pid, apr_pool_t *p);

#endif
