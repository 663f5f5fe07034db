/* atrctl client ...: register Consumers in the LDAP registry from scripts (config management).
 * Every write is validated first (atr_client_validate) and is one LDAP operation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_user.h>
#include <jansson.h>
#include "atr_json.h"
#include "atr_registry.h"
#include "atrctl.h"

/* Which options a subcommand takes. */
#define O_FIELDS 1
#define O_JSON 2
#define O_SEARCH 4
#define O_YES 8
#define O_CLEAR 16
#define O_LOOPBACK 32

#define FILE_MAX (64 * 1024)

typedef struct client_sub_t {
    const char *name;
    unsigned opts;
    int min_pos, max_pos;   /* positional arguments after the subcommand */
} client_sub_t;

static const client_sub_t subs[] = {
    { "add", O_FIELDS | O_LOOPBACK, 0, 1 },
    { "show", O_JSON, 1, 1 },
    { "list", O_JSON | O_SEARCH, 0, 0 },
    { "set", O_FIELDS | O_CLEAR | O_LOOPBACK, 1, 1 },
    { "link", O_LOOPBACK, 2, 1000000 },
    { "unlink", O_LOOPBACK, 2, 1000000 },
    { "disable", O_LOOPBACK, 1, 1 },
    { "enable", O_LOOPBACK, 1, 1 },
    { "delete", O_YES, 1, 1 },
    { NULL, 0, 0, 0 }
};

typedef struct client_opts_t {
    const char *ldap_uris, *base_dn, *bind_dn, *pw_file;
    /* Fields: NULL = not given; "" = clear (set). */
    const char *name, *contact, *description, *jwks_url, *jwks_file;
    apr_array_header_t *scopes, *npis, *tins, *contracts, *groups;   /* NULL = not given */
    int status;       /* -1 not given, 0 active, 1 disabled */
    int clear_jwks_url, clear_jwks, allow_http_loopback, json, yes;
    const char *search;
    apr_array_header_t *pos;
} client_opts_t;

static void client_usage(FILE *f)
{
    fprintf(f,
        "usage: atrctl client SUBCOMMAND [LDAP OPTIONS] ...\n\n"
        "  add [ID] [FIELDS] [--allow-http-loopback]   register a Consumer (no ID: one is\n"
        "                                              generated and printed)\n"
        "  show ID [--json]                            print one Consumer\n"
        "  list [--search TEXT] [--json]               list Consumers (TEXT in id, name or\n"
        "                                              contract; NPI/TIN exactly)\n"
        "  set ID [FIELDS] [--clear-jwks-url] [--clear-jwks] [--enabled]\n"
        "                                              change fields; a list option given\n"
        "                                              replaces that whole list\n"
        "  link ID GROUP...  /  unlink ID GROUP...     add / remove linked Group ids\n"
        "  disable ID  /  enable ID                    set the status\n"
        "  delete ID --yes                             remove the entry\n\n"
        "FIELDS: --name N  --contact MAIL  --description D  --jwks-url URL  --jwks-file FILE\n"
        "        --scope S...  --npi N...  --tin T...  --contract SYSTEM|VALUE...  --group ID...\n"
        "        --disabled   (repeat list options; an empty value clears a field)\n\n"
        "LDAP OPTIONS (or the environment):\n"
        "  --ldap URI...               $ATR_LDAP_URI; several URIs are tried in order\n"
        "  --ldap-base DN              $ATR_LDAP_BASE; entries are atrClientId=ID,DN\n"
        "  --ldap-bind-dn DN           $ATR_LDAP_BIND_DN; none: anonymous\n"
        "  --ldap-password-file FILE   $ATR_LDAP_PASSWORD_FILE; the bind password\n\n"
        "Exit codes: 0 ok, 1 failure (not found, invalid field, LDAP unreachable), 2 usage.\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "atrctl client: %s\n", msg);
    client_usage(stderr);
    return ATRCTL_EXIT_USAGE;
}

static apr_array_header_t *list_add(apr_array_header_t *a, const char *v, apr_pool_t *p)
{
    if (!a) a = apr_array_make(p, 2, sizeof(const char *));
    /* An empty value clears the list (set ID --group ''). */
    if (*v) APR_ARRAY_PUSH(a, const char *) = v;
    return a;
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

/* Parses argv after the subcommand. Returns -1 on success, else an exit code. */
static int parse_opts(client_opts_t *o, const client_sub_t *sub, int argc, const char *const *argv,
                      apr_pool_t *p)
{
    static const struct { const char *name; unsigned needs; int has_arg; } known[] = {
        { "--ldap", 0, 1 }, { "--ldap-base", 0, 1 }, { "--ldap-bind-dn", 0, 1 },
        { "--ldap-password-file", 0, 1 },
        { "--name", O_FIELDS, 1 }, { "--contact", O_FIELDS, 1 }, { "--description", O_FIELDS, 1 },
        { "--jwks-url", O_FIELDS, 1 }, { "--jwks-file", O_FIELDS, 1 }, { "--scope", O_FIELDS, 1 },
        { "--npi", O_FIELDS, 1 }, { "--tin", O_FIELDS, 1 }, { "--contract", O_FIELDS, 1 },
        { "--group", O_FIELDS, 1 }, { "--disabled", O_FIELDS, 0 }, { "--enabled", O_CLEAR, 0 },
        { "--clear-jwks-url", O_CLEAR, 0 }, { "--clear-jwks", O_CLEAR, 0 },
        { "--allow-http-loopback", O_LOOPBACK, 0 }, { "--json", O_JSON, 0 },
        { "--search", O_SEARCH, 1 }, { "--yes", O_YES, 0 }, { NULL, 0, 0 }
    };
    int i, k;
    char *uris = NULL;

    o->pos = apr_array_make(p, 2, sizeof(const char *));
    o->status = -1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL, *eq;
        char *name;

        if (a[0] != '-' || !strcmp(a, "-")) {
            APR_ARRAY_PUSH(o->pos, const char *) = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) APR_ARRAY_PUSH(o->pos, const char *) = argv[i];
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            client_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        eq = strchr(a, '=');
        name = eq ? apr_pstrndup(p, a, (apr_size_t)(eq - a)) : apr_pstrdup(p, a);
        for (k = 0; known[k].name && strcmp(known[k].name, name); k++) {}
        if (!known[k].name) return usage_error(apr_psprintf(p, "unknown option %s", name));
        if (known[k].needs && !(sub->opts & known[k].needs)) {
            return usage_error(apr_psprintf(p, "option %s does not apply to client %s", name, sub->name));
        }
        if (known[k].has_arg) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else return usage_error(apr_psprintf(p, "option %s needs a value", name));
        }
        else if (eq) {
            return usage_error(apr_psprintf(p, "option %s takes no value", name));
        }
        if (!strcmp(name, "--ldap")) uris = uris ? apr_pstrcat(p, uris, " ", val, NULL) : apr_pstrdup(p, val);
        else if (!strcmp(name, "--ldap-base")) o->base_dn = val;
        else if (!strcmp(name, "--ldap-bind-dn")) o->bind_dn = val;
        else if (!strcmp(name, "--ldap-password-file")) o->pw_file = val;
        else if (!strcmp(name, "--name")) o->name = val;
        else if (!strcmp(name, "--contact")) o->contact = val;
        else if (!strcmp(name, "--description")) o->description = val;
        else if (!strcmp(name, "--jwks-url")) o->jwks_url = val;
        else if (!strcmp(name, "--jwks-file")) o->jwks_file = val;
        else if (!strcmp(name, "--scope")) o->scopes = list_add(o->scopes, val, p);
        else if (!strcmp(name, "--npi")) o->npis = list_add(o->npis, val, p);
        else if (!strcmp(name, "--tin")) o->tins = list_add(o->tins, val, p);
        else if (!strcmp(name, "--contract")) o->contracts = list_add(o->contracts, val, p);
        else if (!strcmp(name, "--group")) o->groups = list_add(o->groups, val, p);
        else if (!strcmp(name, "--disabled")) o->status = 1;
        else if (!strcmp(name, "--enabled")) o->status = 0;
        else if (!strcmp(name, "--clear-jwks-url")) o->clear_jwks_url = 1;
        else if (!strcmp(name, "--clear-jwks")) o->clear_jwks = 1;
        else if (!strcmp(name, "--allow-http-loopback")) o->allow_http_loopback = 1;
        else if (!strcmp(name, "--json")) o->json = 1;
        else if (!strcmp(name, "--search")) o->search = val;
        else if (!strcmp(name, "--yes")) o->yes = 1;
    }
    if (o->pos->nelts < sub->min_pos || o->pos->nelts > sub->max_pos) {
        return usage_error(apr_psprintf(p, "client %s: %s", sub->name,
                                        sub->min_pos == 1 && sub->max_pos == 1 ? "needs exactly one ID"
                                        : sub->min_pos >= 2 ? "needs an ID and at least one GROUP"
                                        : "too many arguments"));
    }
    o->ldap_uris = uris ? uris : env_or_null("ATR_LDAP_URI");
    if (!o->base_dn) o->base_dn = env_or_null("ATR_LDAP_BASE");
    if (!o->bind_dn) o->bind_dn = env_or_null("ATR_LDAP_BIND_DN");
    if (!o->pw_file) o->pw_file = env_or_null("ATR_LDAP_PASSWORD_FILE");
    if (!o->ldap_uris || !*o->ldap_uris) return usage_error("no LDAP URI: give --ldap URI or set ATR_LDAP_URI");
    if (!o->base_dn || !*o->base_dn) return usage_error("no base DN: give --ldap-base DN or set ATR_LDAP_BASE");
    return -1;
}

/* Reads at most max bytes of path; NULL + message on stderr when it cannot. */
static const char *read_small_file(const char *path, const char *what, apr_pool_t *p)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    char err[256];
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "atrctl client: cannot read %s %s: %s\n", what, path, apr_strerror(rv, err, sizeof(err)));
        return NULL;
    }
    if (fi.size > FILE_MAX) {
        fprintf(stderr, "atrctl client: %s %s is larger than 64 KiB\n", what, path);
        return NULL;
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(p, n + 1);
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        fprintf(stderr, "atrctl client: cannot read %s %s: %s\n", what, path, apr_strerror(rv, err, sizeof(err)));
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        fprintf(stderr, "atrctl client: %s %s contains NUL bytes\n", what, path);
        return NULL;
    }
    return buf;
}

static atr_registry_t *open_registry(const client_opts_t *o, apr_pool_t *p)
{
    atr_registry_conf_t conf;
    atr_registry_t *reg = NULL;

    memset(&conf, 0, sizeof(conf));
    conf.uris = o->ldap_uris;
    conf.base_dn = o->base_dn;
    conf.bind_dn = o->bind_dn;
    if (o->pw_file) {
        char *pw = (char *)read_small_file(o->pw_file, "LDAP password file", p);
        apr_size_t n;
        if (!pw) return NULL;
        /* The file usually ends with a newline that is not part of the password. */
        n = strlen(pw);
        while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r')) pw[--n] = '\0';
        conf.bind_pw = pw;
    }
    conf.timeout_ms = 3000;
    conf.retries = 1;
    conf.cache_ttl = 0;
    conf.pool_max = 1;
    if (atr_registry_create(&reg, &conf, p) != APR_SUCCESS) {
        fprintf(stderr, "atrctl client: bad LDAP settings (URI '%s', base '%s')\n", o->ldap_uris, o->base_dn);
        return NULL;
    }
    return reg;
}

static int unreachable(atr_registry_t *reg, const client_opts_t *o, apr_pool_t *p)
{
    const char *why = atr_registry_last_error(reg, p);
    fprintf(stderr, "atrctl client: cannot reach the LDAP directory (tried %s)%s%s\n", o->ldap_uris,
            why ? ": " : "", why ? why : "");
    return ATRCTL_EXIT_FAIL;
}

/* Fetches ID; prints why not and returns an exit code when it cannot. */
static int fetch(atr_client_t **pc, atr_registry_t *reg, const client_opts_t *o, const char *id, apr_pool_t *p)
{
    apr_status_t rv;
    if (!atr_client_id_is_valid(id)) {
        fprintf(stderr, "atrctl client: '%s' is not a valid client id\n", id);
        return ATRCTL_EXIT_FAIL;
    }
    rv = atr_registry_client_get(pc, reg, id, p);
    if (rv == APR_NOTFOUND) {
        fprintf(stderr, "atrctl client: client %s not found under %s\n", id, o->base_dn);
        return ATRCTL_EXIT_FAIL;
    }
    if (rv != APR_SUCCESS) return unreachable(reg, o, p);
    return -1;
}

static const char *generate_id(apr_pool_t *p)
{
    unsigned char b[16];
    if (apr_generate_random_bytes(b, sizeof(b)) != APR_SUCCESS) return NULL;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* UUID version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    return apr_psprintf(p, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                        b[12], b[13], b[14], b[15]);
}

/* atrChangedBy of atrctl's writes: "atrctl:" and the Unix account running it (the effective
 * one: under sudo that is root, and sudo's own log names the person). */
static void stamp(atr_client_t *c, apr_pool_t *p)
{
    apr_uid_t uid;
    apr_gid_t gid;
    char *name = NULL;

    if (apr_uid_current(&uid, &gid, p) != APR_SUCCESS) name = apr_pstrdup(p, "unknown");
    else if (apr_uid_name_get(&name, uid, p) != APR_SUCCESS || !name) name = apr_psprintf(p, "uid%ld", (long)uid);
    atr_client_stamp(c, apr_pstrcat(p, "atrctl:", name, NULL), apr_time_now(), p);
}

static const char *opt_text(const char *given, const char *old)
{
    if (!given) return old;
    return *given ? given : NULL;
}

/* Applies the FIELDS options to c. Returns -1, or an exit code when a file cannot be read. */
static int apply_fields(atr_client_t *c, const client_opts_t *o, apr_pool_t *p)
{
    c->name = opt_text(o->name, c->name);
    c->contact = opt_text(o->contact, c->contact);
    c->description = opt_text(o->description, c->description);
    c->jwks_url = o->clear_jwks_url ? NULL : opt_text(o->jwks_url, c->jwks_url);
    if (o->clear_jwks) c->jwks = NULL;
    if (o->jwks_file) {
        if (!*o->jwks_file) {
            c->jwks = NULL;
        }
        else {
            json_t *j = NULL;
            const char *err = NULL;
            c->jwks = read_small_file(o->jwks_file, "JWKS file", p);
            if (!c->jwks) return ATRCTL_EXIT_FAIL;
            /* Stored compact, so `client show` keeps one line per value; unparseable text
             * is kept as is for atr_client_validate to report. */
            if (atr_json_parse(&j, c->jwks, strlen(c->jwks), &err, p) == APR_SUCCESS) {
                c->jwks = atr_json_dump(j, p);
            }
        }
    }
    if (o->scopes) c->scopes = o->scopes;
    if (o->npis) c->npis = o->npis;
    if (o->tins) c->tins = o->tins;
    if (o->contracts) c->contracts = o->contracts;
    if (o->groups) c->groups = o->groups;
    if (o->status >= 0) c->disabled = o->status;
    return -1;
}

static int validate(const atr_client_t *c, const atr_client_t *old, const client_opts_t *o, apr_pool_t *p)
{
    const char *err = NULL;
    /* An http loopback URL already stored (test setups) stays acceptable when unchanged. */
    int loopback = o->allow_http_loopback
        || (old && old->jwks_url && c->jwks_url && !strcmp(old->jwks_url, c->jwks_url));

    if (atr_client_validate(c, loopback, &err, p) != APR_SUCCESS) {
        fprintf(stderr, "atrctl client: invalid %s; nothing was written\n", err ? err : "client");
        return ATRCTL_EXIT_FAIL;
    }
    return -1;
}

static int write_result(apr_status_t rv, const char *err, atr_registry_t *reg, const client_opts_t *o,
                        apr_pool_t *p)
{
    if (rv == APR_SUCCESS) return ATRCTL_EXIT_OK;
    if (rv == APR_EGENERAL && err && !strncmp(err, "LDAP directory unreachable", 26)) return unreachable(reg, o, p);
    fprintf(stderr, "atrctl client: %s\n", err ? err : "LDAP write failed");
    return ATRCTL_EXIT_FAIL;
}

static json_t *strings_json(const apr_array_header_t *a)
{
    json_t *j = json_array();
    int i;
    for (i = 0; a && i < a->nelts; i++) json_array_append_new(j, json_string(APR_ARRAY_IDX(a, i, const char *)));
    return j;
}

static void json_set_str(json_t *o, const char *key, const char *v)
{
    if (v) json_object_set_new(o, key, json_string(v));
}

static json_t *client_json(const atr_client_t *c, apr_pool_t *p)
{
    json_t *o = json_object(), *jwks = NULL;
    const char *err;

    json_set_str(o, "client_id", c->client_id);
    json_set_str(o, "status", c->disabled ? "disabled" : "active");
    json_set_str(o, "name", c->name);
    json_set_str(o, "contact", c->contact);
    json_set_str(o, "description", c->description);
    json_set_str(o, "jwks_url", c->jwks_url);
    if (c->jwks) {
        if (atr_json_parse(&jwks, c->jwks, strlen(c->jwks), &err, p) == APR_SUCCESS) {
            json_object_set(o, "jwks", jwks);
        }
        else {
            json_set_str(o, "jwks", c->jwks);
        }
    }
    json_object_set_new(o, "scopes", strings_json(c->scopes));
    json_object_set_new(o, "npis", strings_json(c->npis));
    json_object_set_new(o, "tins", strings_json(c->tins));
    json_object_set_new(o, "contracts", strings_json(c->contracts));
    json_object_set_new(o, "groups", strings_json(c->groups));
    json_set_str(o, "dn", c->dn);
    json_set_str(o, "modified_by", c->modified_by);
    json_set_str(o, "modified_at", c->modified_at);
    json_set_str(o, "changed_by", c->changed_by);
    json_set_str(o, "changed_at", c->changed_at);
    return o;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(j);
}

static void print_line(const char *key, const char *v)
{
    if (v) printf("%s: %s\n", key, v);
}

static void print_lines(const char *key, const apr_array_header_t *a)
{
    int i;
    for (i = 0; a && i < a->nelts; i++) print_line(key, APR_ARRAY_IDX(a, i, const char *));
}

static void print_client(const atr_client_t *c, apr_pool_t *p)
{
    print_line("client_id", c->client_id);
    print_line("status", c->disabled ? "disabled" : "active");
    print_line("name", c->name);
    print_line("contact", c->contact);
    print_line("description", c->description);
    print_line("jwks_url", c->jwks_url);
    if (c->jwks) {
        json_t *j = NULL;
        const char *err = NULL;
        print_line("jwks", atr_json_parse(&j, c->jwks, strlen(c->jwks), &err, p) == APR_SUCCESS
                           ? atr_json_dump(j, p) : c->jwks);
    }
    print_lines("scope", c->scopes);
    print_lines("npi", c->npis);
    print_lines("tin", c->tins);
    print_lines("contract", c->contracts);
    print_lines("group", c->groups);
    print_line("dn", c->dn);
    print_line("modified_by", c->modified_by);
    print_line("modified_at", c->modified_at);
    print_line("changed_by", c->changed_by);
    print_line("changed_at", c->changed_at);
}

static int cmd_add(atr_registry_t *reg, const client_opts_t *o, apr_pool_t *p)
{
    atr_client_t *c = apr_pcalloc(p, sizeof(*c));
    const char *err = NULL;
    int generated = 0, rc;
    apr_status_t rv;

    if (o->pos->nelts) {
        c->client_id = APR_ARRAY_IDX(o->pos, 0, const char *);
    }
    else {
        c->client_id = generate_id(p);
        generated = 1;
        if (!c->client_id) {
            fprintf(stderr, "atrctl client: no random bytes to generate a client id\n");
            return ATRCTL_EXIT_FAIL;
        }
    }
    if ((rc = apply_fields(c, o, p)) >= 0) return rc;
    if ((rc = validate(c, NULL, o, p)) >= 0) return rc;
    stamp(c, p);
    rv = atr_registry_client_add(reg, c, &err, p);
    if (rv != APR_SUCCESS) return write_result(rv, err, reg, o, p);
    if (generated) printf("%s\n", c->client_id);
    else printf("client %s added\n", c->client_id);
    return ATRCTL_EXIT_OK;
}

static int cmd_show(atr_registry_t *reg, const client_opts_t *o, apr_pool_t *p)
{
    atr_client_t *c = NULL;
    int rc = fetch(&c, reg, o, APR_ARRAY_IDX(o->pos, 0, const char *), p);
    if (rc >= 0) return rc;
    if (o->json) print_json(client_json(c, p));
    else print_client(c, p);
    return ATRCTL_EXIT_OK;
}

static int cmd_list(atr_registry_t *reg, const client_opts_t *o, apr_pool_t *p)
{
    apr_array_header_t *clients = NULL;
    int i;

    if (atr_registry_client_list(&clients, reg, o->search, p) != APR_SUCCESS) return unreachable(reg, o, p);
    if (o->json) {
        json_t *a = json_array();
        for (i = 0; i < clients->nelts; i++) {
            json_array_append_new(a, client_json(APR_ARRAY_IDX(clients, i, atr_client_t *), p));
        }
        print_json(a);
        return ATRCTL_EXIT_OK;
    }
    for (i = 0; i < clients->nelts; i++) {
        const atr_client_t *c = APR_ARRAY_IDX(clients, i, atr_client_t *);
        printf("%-36s %-8s %3d groups  %s\n", c->client_id, c->disabled ? "disabled" : "active",
               c->groups ? c->groups->nelts : 0, c->name ? c->name : "");
    }
    return ATRCTL_EXIT_OK;
}

static int has_string(const apr_array_header_t *a, const char *s)
{
    int i;
    for (i = 0; a && i < a->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(a, i, const char *), s)) return 1;
    }
    return 0;
}

/* set, link, unlink, disable, enable: read, change, validate, one modify. */
static int cmd_change(const char *sub, atr_registry_t *reg, const client_opts_t *o, apr_pool_t *p)
{
    atr_client_t *old = NULL, *c;
    const char *id = APR_ARRAY_IDX(o->pos, 0, const char *), *err = NULL, *done;
    apr_status_t rv;
    int rc, i;

    if ((rc = fetch(&old, reg, o, id, p)) >= 0) return rc;
    c = atr_client_copy(old, p);
    if (!strcmp(sub, "set")) {
        if ((rc = apply_fields(c, o, p)) >= 0) return rc;
        done = "updated";
    }
    else if (!strcmp(sub, "link") || !strcmp(sub, "unlink")) {
        apr_array_header_t *groups = apr_array_make(p, 4, sizeof(const char *));
        int link = !strcmp(sub, "link");
        for (i = 0; i < old->groups->nelts; i++) {
            const char *g = APR_ARRAY_IDX(old->groups, i, const char *);
            if (link || !has_string(o->pos, g)) APR_ARRAY_PUSH(groups, const char *) = g;
        }
        for (i = 1; i < o->pos->nelts; i++) {
            const char *g = APR_ARRAY_IDX(o->pos, i, const char *);
            if (link && !has_string(groups, g)) APR_ARRAY_PUSH(groups, const char *) = g;
            if (!link && !has_string(old->groups, g)) {
                fprintf(stderr, "atrctl client: note: %s was not linked to %s\n", g, id);
            }
        }
        c->groups = groups;
        done = link ? "linked" : "unlinked";
    }
    else {
        c->disabled = !strcmp(sub, "disable");
        done = c->disabled ? "disabled" : "enabled";
    }
    if ((rc = validate(c, old, o, p)) >= 0) return rc;
    stamp(c, p);
    rv = atr_registry_client_modify(reg, c, &err, p);
    if (rv != APR_SUCCESS) return write_result(rv, err, reg, o, p);
    printf("client %s %s\n", id, done);
    return ATRCTL_EXIT_OK;
}

static int cmd_delete(atr_registry_t *reg, const client_opts_t *o, apr_pool_t *p)
{
    const char *id = APR_ARRAY_IDX(o->pos, 0, const char *), *err = NULL;
    apr_status_t rv;

    if (!o->yes) {
        fprintf(stderr, "atrctl client: deleting %s cannot be undone; add --yes to confirm "
                        "(or use `client disable %s`)\n", id, id);
        return ATRCTL_EXIT_USAGE;
    }
    rv = atr_registry_client_delete(reg, id, &err, p);
    if (rv != APR_SUCCESS) return write_result(rv, err, reg, o, p);
    printf("client %s deleted\n", id);
    return ATRCTL_EXIT_OK;
}

int atrctl_cmd_client(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    client_opts_t o;
    const client_sub_t *sub;
    atr_registry_t *reg;
    int rc;

    if (argc < 2) return usage_error("no subcommand given");
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        client_usage(stdout);
        return ATRCTL_EXIT_OK;
    }
    for (sub = subs; sub->name && strcmp(sub->name, argv[1]); sub++) {}
    if (!sub->name) return usage_error(apr_psprintf(ctx->pool, "unknown subcommand %s", argv[1]));
    memset(&o, 0, sizeof(o));
    if ((rc = parse_opts(&o, sub, argc - 2, argv + 2, ctx->pool)) >= 0) return rc;
    reg = open_registry(&o, ctx->pool);
    if (!reg) return ATRCTL_EXIT_FAIL;
    if (!strcmp(sub->name, "add")) return cmd_add(reg, &o, ctx->pool);
    if (!strcmp(sub->name, "show")) return cmd_show(reg, &o, ctx->pool);
    if (!strcmp(sub->name, "list")) return cmd_list(reg, &o, ctx->pool);
    if (!strcmp(sub->name, "delete")) return cmd_delete(reg, &o, ctx->pool);
    return cmd_change(sub->name, reg, &o, ctx->pool);
}
