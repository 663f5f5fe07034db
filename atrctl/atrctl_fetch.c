/* atrctl fetch: a provider organization's client for its Member Attribution Lists. Against
 * any Producer speaking SMART Backend Services and Bulk Data: discovery, token, Group search
 * by NPI / TIN / contract, kick-off, polling, parallel downloads, verification.
 *
 * An export in progress is remembered in DIR/.atrctl-fetch.json (status URL, then manifest),
 * so a run that was interrupted (Ctrl-C, a crash, a lost network) picks up where it stopped
 * when started again with the same arguments: it polls the same job, keeps the files already
 * verified and continues partial ones with Range requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <curl/curl.h>
#include "atr_consumer.h"
#include "atr_fhir.h"
#include "atr_jose.h"
#include "atr_json.h"
#include "atr_log.h"
#include "atr_time.h"
#include "atrctl.h"

/* Exit codes of fetch (docs/fetch.md); 0, 1 and 2 as for every command. */
#define FETCH_EXIT_DISCOVERY 3
#define FETCH_EXIT_AUTH 4
#define FETCH_EXIT_NOGROUP 5
#define FETCH_EXIT_SERVER 6
#define FETCH_EXIT_DOWNLOAD 7
#define FETCH_EXIT_NETWORK 8

#define STATE_FILE ".atrctl-fetch.json"
#define SYS_NPI "http://hl7.org/fhir/sid/us-npi"
#define SYS_TIN "urn:oid:2.16.840.1.113883.4.4"

typedef struct criterion_t {
    const char *system, *value, *type_code, *label;
} criterion_t;

typedef struct fetch_t {
    atrctl_ctx_t *ctx;
    atr_consumer_opts_t opts;
    apr_array_header_t *criteria;   /* criterion_t */
    apr_array_header_t *groups;     /* const char * from --group */
    const char *query;              /* kick-off parameters, encoded */
    const char *body;               /* or, with --patient, a Parameters resource to POST */
    const char *request_key;        /* what the state file remembers of the request */
    const char *out;
    int parallel;
    apr_interval_time_t max_wait;
    int restart;
    int tty;                        /* stderr is a terminal: show progress */
    int progress_shown;
    const char *current;            /* Group/<id> being fetched, for the progress line */
    apr_time_t started;
} fetch_t;

static void fetch_usage(FILE *f)
{
    fprintf(f,
        "usage: atrctl fetch --base URL --client-id ID --key KEY.pem [--kid KID] [--alg RS384|ES384]\n"
        "                    [--npi N] [--tin T] [--contract SYSTEM|VALUE] [--group ID]...\n"
        "                    [--since INSTANT] [--type T,...] [--patient Patient/ID]...\n"
        "                    --out DIR [--scope S]\n"
        "                    [--parallel N] [--max-wait S] [--timeout S] [--restart] [--allow-http]\n"
        "\n"
        "As a Consumer (SMART Backend Services client), gets Member Attribution Lists from a\n"
        "Producer: reads URL/.well-known/smart-configuration, signs a client assertion with\n"
        "KEY.pem (RS384 for RSA, ES384 for P-384 keys; kid defaults to the key's RFC 7638\n"
        "thumbprint, as `atrctl keygen` makes it), finds the Group(s) with --npi / --tin /\n"
        "--contract (all given must match) or takes --group, starts a $davinci-data-export\n"
        "($export when the server has none), waits for it honouring Retry-After, downloads the\n"
        "files (--parallel at once, default 4), checks their line counts against the manifest\n"
        "and writes them with manifest.json to DIR (DIR/<group id>/ when several Groups match).\n"
        "--patient limits the export to those members (the kick-off is then a POST of a\n"
        "Parameters resource; members not in the Group are reported in the error files).\n"
        "Run again after an interruption: the export and partial downloads are resumed\n"
        "(--restart starts a new export). Defaults: $ATR_BASE_URL, $ATR_CLIENT_ID,\n"
        "$ATR_CLIENT_KEY, $ATR_CLIENT_KID. Exit codes: 0 done, 1 local error, 2 usage,\n"
        "3 discovery, 4 authorization, 5 no Group found, 6 export refused or failed,\n"
        "7 download or verification failed, 8 network.\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "atrctl fetch: %s\n", msg);
    fetch_usage(stderr);
    return ATRCTL_EXIT_USAGE;
}

static int exit_code(atr_consumer_err_e kind)
{
    switch (kind) {
    case ATR_CONSUMER_E_DISCOVERY: return FETCH_EXIT_DISCOVERY;
    case ATR_CONSUMER_E_AUTH: return FETCH_EXIT_AUTH;
    case ATR_CONSUMER_E_NOGROUP: return FETCH_EXIT_NOGROUP;
    case ATR_CONSUMER_E_SERVER: return FETCH_EXIT_SERVER;
    case ATR_CONSUMER_E_DOWNLOAD: return FETCH_EXIT_DOWNLOAD;
    case ATR_CONSUMER_E_NETWORK: return FETCH_EXIT_NETWORK;
    default: return ATRCTL_EXIT_FAIL;
    }
}

/* ---- progress on a terminal ---- */

static void clear_progress(fetch_t *ft)
{
    if (ft->progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        ft->progress_shown = 0;
    }
}

static const char *mib(apr_off_t n, apr_pool_t *p)
{
    return apr_psprintf(p, "%.1f MiB", (double)n / (1024.0 * 1024.0));
}

static void on_progress(void *baton, const atr_consumer_progress_t *pr)
{
    fetch_t *ft = baton;
    char line[512];
    apr_pool_t *p;
    long secs = (long)apr_time_sec(apr_time_now() - ft->started);

    if (!ft->tty) return;
    apr_pool_create(&p, ft->ctx->pool);
    if (!strcmp(pr->phase, "download") && pr->files_total > 0) {
        char bar[31];
        int width = 30, fill = 0, pct = -1, k;
        if (pr->bytes_expected > 0 && pr->files_done < pr->files_total) {
            pct = (int)(100.0 * (double)pr->bytes / (double)pr->bytes_expected);
        }
        else {
            pct = 100 * pr->files_done / pr->files_total;
        }
        if (pct > 100) pct = 100;
        fill = pct * width / 100;
        for (k = 0; k < width; k++) bar[k] = k < fill ? '#' : '.';
        bar[width] = '\0';
        snprintf(line, sizeof(line), "%s: [%s] %3d%% %d/%d files, %s, %lds", ft->current ? ft->current : "",
                 bar, pct, pr->files_done, pr->files_total, mib(pr->bytes, p), secs);
    }
    else {
        snprintf(line, sizeof(line), "%s: %s%s%s, %lds", ft->current ? ft->current : "atrctl fetch", pr->phase,
                 pr->detail ? " " : "", pr->detail ? pr->detail : "", secs);
    }
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    ft->progress_shown = 1;
    apr_pool_destroy(p);
}

/* ---- saved state ---- */

static json_t *state_read(const char *dir, apr_pool_t *p)
{
    const char *path = apr_pstrcat(p, dir, "/" STATE_FILE, NULL);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) return NULL;
    atr_json_pool_own(j, p);
    return json_is_object(j) ? j : NULL;
}

static apr_status_t state_write(const char *dir, json_t *state, apr_pool_t *p)
{
    const char *path = apr_pstrcat(p, dir, "/" STATE_FILE, NULL);
    const char *tmp = apr_pstrcat(p, path, ".tmp", NULL);
    if (json_dump_file(state, tmp, JSON_INDENT(1)) != 0) return APR_EGENERAL;
    return apr_file_rename(tmp, path, p);
}

/* Removes what an earlier, different export left in dir, so no part of it is taken for ours. */
static void state_discard(const char *dir, json_t *state, apr_pool_t *p)
{
    apr_array_header_t *files = NULL;
    const char *err = NULL;
    int req, i;
    json_t *m = json_object_get(state, "manifest");

    if (m && atr_consumer_manifest_files(&files, &req, m, &err, p) == APR_SUCCESS) {
        for (i = 0; i < files->nelts; i++) {
            atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
            apr_file_remove(apr_pstrcat(p, dir, "/", f->name, ".part", NULL), p);
        }
    }
    apr_file_remove(apr_pstrcat(p, dir, "/" STATE_FILE, NULL), p);
}

/* ---- one Group ---- */

static apr_status_t remove_targets(const char *dir, json_t *manifest, apr_pool_t *p)
{
    apr_array_header_t *files = NULL;
    const char *err = NULL;
    int req, i;

    if (atr_consumer_manifest_files(&files, &req, manifest, &err, p) != APR_SUCCESS) return APR_SUCCESS;
    for (i = 0; i < files->nelts; i++) {
        atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
        apr_status_t rv = apr_file_remove(apr_pstrcat(p, dir, "/", f->name, NULL), p);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv)) return rv;
        rv = apr_file_remove(apr_pstrcat(p, dir, "/", f->name, ".part", NULL), p);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv)) return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t write_manifest(const char *dir, json_t *manifest, apr_array_header_t *files, apr_pool_t *p)
{
    json_t *m = atr_json_pool_own(json_deep_copy(manifest), p);
    static const char *const lists[] = { "output", "error" };
    int k, i = 0;
    const char *path = apr_pstrcat(p, dir, "/manifest.json", NULL);

    /* the same manifest, with each url naming the local file (relative to DIR) */
    for (k = 0; k < 2; k++) {
        json_t *arr = json_object_get(m, lists[k]), *it;
        size_t j;
        json_array_foreach(arr, j, it) {
            atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
            i++;
            json_object_set_new(it, "url", json_string(f->name));
        }
    }
    if (json_dump_file(m, apr_pstrcat(p, path, ".tmp", NULL), JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        return APR_EGENERAL;
    }
    return apr_file_rename(apr_pstrcat(p, path, ".tmp", NULL), path, p);
}

static int fetch_group(json_t **psummary, fetch_t *ft, atr_consumer_t *c, const char *gid, const char *dir,
                       apr_pool_t *p)
{
    json_t *state, *manifest = NULL, *list;
    const char *status_url = NULL, *op = NULL, *err = NULL;
    apr_array_header_t *files = NULL;
    int requires_token = 1, i, resumed = 0;
    apr_status_t rv;
    char buf[256];

    ft->current = apr_pstrcat(p, "Group/", gid, NULL);
    if ((rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p)) != APR_SUCCESS) {
        clear_progress(ft);
        fprintf(stderr, "atrctl fetch: cannot create %s: %s\n", dir, apr_strerror(rv, buf, sizeof(buf)));
        return ATRCTL_EXIT_FAIL;
    }
    state = state_read(dir, p);
    if (state && (ft->restart || strcmp(atr_json_str(state, "base") ? atr_json_str(state, "base") : "",
                                        ft->opts.base)
                  || strcmp(atr_json_str(state, "group") ? atr_json_str(state, "group") : "", gid)
                  || strcmp(atr_json_str(state, "query") ? atr_json_str(state, "query") : "", ft->request_key))) {
        if (!ft->restart) {
            clear_progress(ft);
            fprintf(stderr, "atrctl fetch: %s held another export (base, Group or parameters differ); "
                            "starting a new one\n", dir);
        }
        state_discard(dir, state, p);
        state = NULL;
    }
    if (state) {
        manifest = json_object_get(state, "manifest");
        status_url = atr_json_str(state, "statusUrl");
        op = atr_json_str(state, "operation");
        resumed = 1;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_NOTICE, 0, p, "ATR00820: resuming the export of %s in %s (%s)",
                       ft->current, dir, manifest ? "downloads" : "status polling");
    }
    else {
        state = atr_json_pool_own(json_pack("{s:s, s:s, s:s}", "base", ft->opts.base, "group", gid,
                                            "query", ft->request_key), p);
    }
    while (!manifest) {
        if (!status_url) {
            if ((rv = atr_consumer_kickoff(&status_url, &op, c, gid, ft->query, ft->body, &err, p)) != APR_SUCCESS) goto fail;
            json_object_set_new(state, "statusUrl", json_string(status_url));
            json_object_set_new(state, "operation", json_string(op));
            if (state_write(dir, state, p) != APR_SUCCESS) {
                clear_progress(ft);
                fprintf(stderr, "atrctl fetch: cannot write %s/" STATE_FILE "; a later run cannot resume\n", dir);
            }
        }
        rv = atr_consumer_poll(&manifest, c, status_url, ft->max_wait, &err, p);
        if (rv == APR_NOTFOUND && resumed) {
            /* the saved job expired or was deleted: a new export */
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_NOTICE, 0, p, "ATR00821: the saved export job is gone (%s); "
                           "starting a new one", err);
            resumed = 0;
            status_url = NULL;
            json_object_del(state, "statusUrl");
            continue;
        }
        if (rv != APR_SUCCESS) goto fail;
        /* files of an earlier fetch into this directory must not pass for this export's */
        if (remove_targets(dir, manifest, p) != APR_SUCCESS) {
            clear_progress(ft);
            fprintf(stderr, "atrctl fetch: cannot replace the files of an earlier fetch in %s\n", dir);
            return ATRCTL_EXIT_FAIL;
        }
        json_object_set(state, "manifest", manifest);
        if (state_write(dir, state, p) != APR_SUCCESS) {
            clear_progress(ft);
            fprintf(stderr, "atrctl fetch: cannot write %s/" STATE_FILE "; a later run cannot resume\n", dir);
        }
    }
    if ((rv = atr_consumer_manifest_files(&files, &requires_token, manifest, &err, p)) != APR_SUCCESS) {
        clear_progress(ft);
        fprintf(stderr, "atrctl fetch: %s: the manifest of %s is unusable: %s\n", ft->current, status_url, err);
        return FETCH_EXIT_SERVER;
    }
    if ((rv = atr_consumer_download(c, files, requires_token, dir, ft->parallel, &err, p)) != APR_SUCCESS) goto fail;
    if (write_manifest(dir, manifest, files, p) != APR_SUCCESS) {
        clear_progress(ft);
        fprintf(stderr, "atrctl fetch: cannot write %s/manifest.json\n", dir);
        return ATRCTL_EXIT_FAIL;
    }
    apr_file_remove(apr_pstrcat(p, dir, "/" STATE_FILE, NULL), p);

    list = json_array();
    for (i = 0; i < files->nelts; i++) {
        atr_consumer_file_t *f = &APR_ARRAY_IDX(files, i, atr_consumer_file_t);
        json_t *it = json_pack("{s:s, s:s, s:I, s:I, s:b, s:b}", "type", f->type, "file", f->name,
                               "count", (json_int_t)f->lines, "bytes", (json_int_t)f->bytes, "error", f->is_error,
                               "resumed", f->resumed > 0);
        json_array_append_new(list, it);
    }
    *psummary = json_pack("{s:s, s:s, s:s, s:s, s:o}", "group", ft->current, "operation", op ? op : "?",
                          "dir", dir, "transactionTime", atr_json_str(manifest, "transactionTime")
                          ? atr_json_str(manifest, "transactionTime") : "", "files", list);
    return ATRCTL_EXIT_OK;
fail:
    clear_progress(ft);
    fprintf(stderr, "atrctl fetch: %s: %s\n", ft->current, err ? err : "failed");
    if (status_url && atr_consumer_error_kind(c) != ATR_CONSUMER_E_NETWORK && !manifest) {
        fprintf(stderr, "atrctl fetch: the export job %s is kept in %s/" STATE_FILE "; run again to resume, "
                        "or with --restart\n", status_url, dir);
    }
    else if (manifest) {
        fprintf(stderr, "atrctl fetch: downloads so far are kept in %s; run again to resume\n", dir);
    }
    return exit_code(atr_consumer_error_kind(c));
}

/* ---- the command ---- */

/* The POST kick-off's Parameters (Bulk Data: patient is a valueReference, _type a
 * comma-separated valueString, _since a valueInstant). */
static const char *kickoff_parameters(const apr_array_header_t *types, const char *since,
                                      const apr_array_header_t *patients, apr_pool_t *p)
{
    json_t *params = json_array(), *doc;
    int i;

    if (types->nelts) {
        json_array_append_new(params, json_pack("{s:s, s:s}", "name", "_type", "valueString",
                                                apr_array_pstrcat(p, types, ',')));
    }
    if (since) json_array_append_new(params, json_pack("{s:s, s:s}", "name", "_since", "valueInstant", since));
    for (i = 0; i < patients->nelts; i++) {
        json_array_append_new(params, json_pack("{s:s, s:{s:s}}", "name", "patient", "valueReference",
                                                "reference", APR_ARRAY_IDX(patients, i, const char *)));
    }
    doc = atr_json_pool_own(json_pack("{s:s, s:o}", "resourceType", "Parameters", "parameter", params), p);
    return atr_json_dump(doc, p);
}

static int add_list(apr_array_header_t *arr, const char *v, apr_pool_t *p)
{
    char *list = apr_pstrdup(p, v), *last = NULL, *tok;
    for (tok = apr_strtok(list, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
        if (!atr_fhir_is_type(tok)) return 0;
        APR_ARRAY_PUSH(arr, const char *) = tok;
    }
    return 1;
}

static const char *qescape(const char *s, apr_pool_t *p)
{
    char *e = curl_easy_escape(NULL, s, 0);
    const char *r = apr_pstrdup(p, e ? e : "");
    curl_free(e);
    return r;
}

int atrctl_cmd_fetch(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    apr_pool_t *p = ctx->pool;
    fetch_t ft;
    apr_array_header_t *types = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *patients = apr_array_make(p, 4, sizeof(const char *));
    apr_array_header_t *ids = NULL;
    const char *key_path = getenv("ATR_CLIENT_KEY"), *alg = NULL, *since = NULL, *err = NULL, *env;
    atr_consumer_t *c = NULL;
    json_t *summaries;
    apr_time_t tm;
    int i, rc = ATRCTL_EXIT_OK;
    char *dump;

    memset(&ft, 0, sizeof(ft));
    ft.ctx = ctx;
    ft.criteria = apr_array_make(p, 4, sizeof(criterion_t));
    ft.groups = apr_array_make(p, 4, sizeof(const char *));
    ft.parallel = 4;
    ft.opts.base = (env = getenv("ATR_BASE_URL")) && *env ? env : NULL;
    ft.opts.client_id = (env = getenv("ATR_CLIENT_ID")) && *env ? env : NULL;
    ft.opts.kid = (env = getenv("ATR_CLIENT_KID")) && *env ? env : NULL;
    if (key_path && !*key_path) key_path = NULL;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fetch_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        if (!strcmp(a, "--restart")) { ft.restart = 1; continue; }
        if (!strcmp(a, "--allow-http")) { ft.opts.allow_http = 1; continue; }
        if (strcmp(a, "--base") && strcmp(a, "--client-id") && strcmp(a, "--key") && strcmp(a, "--kid")
            && strcmp(a, "--alg") && strcmp(a, "--npi") && strcmp(a, "--tin") && strcmp(a, "--contract")
            && strcmp(a, "--group") && strcmp(a, "--since") && strcmp(a, "--type") && strcmp(a, "--out")
            && strcmp(a, "--scope") && strcmp(a, "--parallel") && strcmp(a, "--patient")
            && strcmp(a, "--max-wait") && strcmp(a, "--timeout")) {
            return usage_error(apr_psprintf(p, "unknown argument %s", a));
        }
        if (!v) return usage_error(apr_psprintf(p, "%s needs a value", a));
        i++;
        if (!strcmp(a, "--base")) ft.opts.base = v;
        else if (!strcmp(a, "--client-id")) ft.opts.client_id = v;
        else if (!strcmp(a, "--key")) key_path = v;
        else if (!strcmp(a, "--kid")) ft.opts.kid = v;
        else if (!strcmp(a, "--scope")) ft.opts.scope = v;
        else if (!strcmp(a, "--out")) ft.out = v;
        else if (!strcmp(a, "--alg")) {
            if (atr_jose_alg_parse(v) == ATR_JOSE_ALG_NONE) return usage_error(apr_psprintf(p, "--alg '%s': RS384 or ES384", v));
            alg = v;
        }
        else if (!strcmp(a, "--npi") || !strcmp(a, "--tin")) {
            criterion_t *cr = apr_array_push(ft.criteria);
            int npi = a[2] == 'n';
            apr_size_t k, n = strlen(v);
            for (k = 0; k < n && v[k] >= '0' && v[k] <= '9'; k++) ;
            if (k != n || n != (npi ? 10u : 9u)) {
                return usage_error(apr_psprintf(p, "%s '%s': %s digits", a, v, npi ? "10" : "9"));
            }
            cr->system = npi ? SYS_NPI : SYS_TIN;
            cr->value = v;
            cr->type_code = npi ? "NPI" : "TAX";
            cr->label = apr_psprintf(p, "%s %s", npi ? "NPI" : "TIN", v);
        }
        else if (!strcmp(a, "--contract")) {
            criterion_t *cr = apr_array_push(ft.criteria);
            const char *bar = strchr(v, '|');
            if (!bar || bar == v || !bar[1]) return usage_error(apr_psprintf(p, "--contract '%s': SYSTEM|VALUE", v));
            cr->system = apr_pstrmemdup(p, v, (apr_size_t)(bar - v));
            cr->value = bar + 1;
            cr->type_code = NULL;
            cr->label = apr_psprintf(p, "contract %s", v);
        }
        else if (!strcmp(a, "--group")) {
            if (!strncmp(v, "Group/", 6)) v += 6;
            if (!atr_fhir_is_id(v)) return usage_error(apr_psprintf(p, "'%s' is not a Group id", v));
            APR_ARRAY_PUSH(ft.groups, const char *) = v;
        }
        else if (!strcmp(a, "--patient")) {
            const char *id = !strncmp(v, "Patient/", 8) ? v + 8 : v;
            if (!atr_fhir_is_id(id)) return usage_error(apr_psprintf(p, "--patient '%s': Patient/ID", v));
            APR_ARRAY_PUSH(patients, const char *) = apr_pstrcat(p, "Patient/", id, NULL);
        }
        else if (!strcmp(a, "--since")) {
            if (atr_time_parse_instant(&tm, v) != APR_SUCCESS) {
                return usage_error(apr_psprintf(p, "--since '%s' is not a FHIR instant "
                                                   "(YYYY-MM-DDThh:mm:ss[.sss](Z|+hh:mm))", v));
            }
            since = v;
        }
        else if (!strcmp(a, "--type")) {
            if (!add_list(types, v, p)) return usage_error(apr_psprintf(p, "--type '%s': ATR resource types", v));
        }
        else {
            char *end = NULL;
            apr_int64_t n = apr_strtoi64(v, &end, 10);
            if (!*v || *end || n < 1 || n > (strcmp(a, "--parallel") ? APR_INT32_MAX : 32)) {
                return usage_error(apr_psprintf(p, "%s '%s': a positive number%s", a, v,
                                                strcmp(a, "--parallel") ? "" : " up to 32"));
            }
            if (!strcmp(a, "--parallel")) ft.parallel = (int)n;
            else if (!strcmp(a, "--max-wait")) ft.max_wait = apr_time_from_sec(n);
            else ft.opts.timeout = (long)n;
        }
    }
    if (!ft.opts.base) return usage_error("--base is required (or $ATR_BASE_URL)");
    if (!ft.opts.client_id) return usage_error("--client-id is required (or $ATR_CLIENT_ID)");
    if (!key_path) return usage_error("--key is required (or $ATR_CLIENT_KEY)");
    if (!ft.out) return usage_error("--out is required");
    if (!ft.criteria->nelts && !ft.groups->nelts) return usage_error("name the Group(s): --npi, --tin, --contract or --group");

    ft.query = "";
    if (types->nelts) {
        ft.query = apr_pstrcat(p, "_type=", qescape(apr_array_pstrcat(p, types, ','), p), NULL);
    }
    if (since) ft.query = apr_pstrcat(p, ft.query, *ft.query ? "&" : "", "_since=", qescape(since, p), NULL);
    ft.request_key = ft.query;
    if (patients->nelts) {
        ft.body = kickoff_parameters(types, since, patients, p);
        ft.request_key = apr_pstrcat(p, "POST ", ft.body, NULL);
    }

    if (atr_jose_load_private_pem(&ft.opts.key, key_path, &err, p) != APR_SUCCESS) {
        fprintf(stderr, "atrctl fetch: %s\n", err);
        return ATRCTL_EXIT_FAIL;
    }
    if (alg && strcmp(alg, EVP_PKEY_is_a(ft.opts.key, "RSA") ? "RS384" : "ES384")) {
        fprintf(stderr, "atrctl fetch: --alg %s does not fit the key in %s (%s)\n", alg, key_path,
                EVP_PKEY_is_a(ft.opts.key, "RSA") ? "RSA: RS384" : "EC P-384: ES384");
        return ATRCTL_EXIT_USAGE;
    }
    ft.tty = isatty(2);
    ft.started = apr_time_now();
    ft.opts.progress = on_progress;
    ft.opts.progress_baton = &ft;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (atr_consumer_create(&c, &ft.opts, &err, p) != APR_SUCCESS) {
        fprintf(stderr, "atrctl fetch: %s\n", err);
        return ATRCTL_EXIT_USAGE;
    }
    if (atr_consumer_discover(c, &err, p) != APR_SUCCESS) goto fail;

    /* the Groups: every criterion must match (intersection), and --group narrows it too */
    for (i = 0; i < ft.criteria->nelts; i++) {
        criterion_t *cr = &APR_ARRAY_IDX(ft.criteria, i, criterion_t);
        apr_array_header_t *found = NULL, *keep;
        int k, m;
        if (atr_consumer_find_groups(&found, c, cr->system, cr->value, cr->type_code, &err, p) != APR_SUCCESS) goto fail;
        if (!ids) {
            ids = found;
            continue;
        }
        keep = apr_array_make(p, 4, sizeof(const char *));
        for (k = 0; k < ids->nelts; k++) {
            for (m = 0; m < found->nelts; m++) {
                if (!strcmp(APR_ARRAY_IDX(ids, k, const char *), APR_ARRAY_IDX(found, m, const char *))) {
                    APR_ARRAY_PUSH(keep, const char *) = APR_ARRAY_IDX(ids, k, const char *);
                    break;
                }
            }
        }
        ids = keep;
    }
    if (ft.groups->nelts) {
        apr_array_header_t *keep = apr_array_make(p, 4, sizeof(const char *));
        int k, m;
        for (k = 0; k < ft.groups->nelts; k++) {
            const char *g = APR_ARRAY_IDX(ft.groups, k, const char *);
            int ok = !ids;
            for (m = 0; ids && m < ids->nelts; m++) ok |= !strcmp(APR_ARRAY_IDX(ids, m, const char *), g);
            for (m = 0; m < keep->nelts; m++) ok &= !!strcmp(APR_ARRAY_IDX(keep, m, const char *), g);
            if (ok) APR_ARRAY_PUSH(keep, const char *) = g;
        }
        ids = keep;
    }
    if (!ids->nelts) {
        clear_progress(&ft);
        fprintf(stderr, "atrctl fetch: no Group of %s matches", ft.opts.base);
        for (i = 0; i < ft.criteria->nelts; i++) {
            fprintf(stderr, "%s%s", i ? " and " : " ", APR_ARRAY_IDX(ft.criteria, i, criterion_t).label);
        }
        if (ft.groups->nelts) fprintf(stderr, "%s--group %s", ft.criteria->nelts ? " and " : " ",
                                      apr_array_pstrcat(p, ft.groups, ','));
        fprintf(stderr, " (or client %s is not entitled to it)%s%s\n", ft.opts.client_id, err ? ": " : "",
                err ? err : "");
        return FETCH_EXIT_NOGROUP;
    }
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, 0, p, "ATR00822: %d Group(s) to fetch: %s", ids->nelts,
                   apr_array_pstrcat(p, ids, ','));

    summaries = atr_json_pool_own(json_array(), p);
    for (i = 0; i < ids->nelts; i++) {
        const char *gid = APR_ARRAY_IDX(ids, i, const char *);
        const char *dir = ids->nelts == 1 ? ft.out : apr_pstrcat(p, ft.out, "/", gid, NULL);
        json_t *s = NULL;
        int r = fetch_group(&s, &ft, c, gid, dir, p);
        if (r != ATRCTL_EXIT_OK) {
            rc = rc == ATRCTL_EXIT_OK ? r : rc;   /* the first failure decides the exit code */
            continue;
        }
        json_array_append_new(summaries, s);
    }
    clear_progress(&ft);
    dump = json_dumps(atr_json_pool_own(json_pack("{s:O, s:i, s:f}", "groups", summaries,
                                                  "tokens", atr_consumer_tokens_issued(c), "seconds",
                                                  (double)(apr_time_now() - ft.started) / APR_USEC_PER_SEC), p),
                      JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (dump) {
        puts(dump);
        free(dump);
    }
    return rc;
fail:
    clear_progress(&ft);
    fprintf(stderr, "atrctl fetch: %s\n", err ? err : "failed");
    return exit_code(atr_consumer_error_kind(c));
}
