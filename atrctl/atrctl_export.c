/* atrctl export: the Member Attribution List of one Group as NDJSON files in a directory,
 * exactly what a bulk export writes, with a manifest-like JSON summary on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>
#include "atr_export.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_time.h"
#include "atrctl.h"

static void export_usage(FILE *f)
{
    fprintf(f, "usage: atrctl [--db DRIVER:PARAMS] export --group ID --out DIR [--type T,...]\n"
               "              [--since INSTANT] [--until INSTANT] [--patient Patient/ID]...\n"
               "              [--max-file-size BYTES]\n\n"
               "Writes the Group (one line, every member), its member Patients, their Coverage,\n"
               "RelatedPerson, attributed Practitioner/PractitionerRole/Organization and what those\n"
               "reference (Organization, Practitioner, Location) as <Type>-<n>.ndjson files in DIR\n"
               "(created if missing), the way $davinci-data-export does. --since/--until filter\n"
               "everything but the Group line on meta.lastUpdated; --patient limits the export to\n"
               "those members (others are reported in OperationOutcome-1.ndjson); a new file\n"
               "starts when one would pass --max-file-size (default 1 GiB). Prints a JSON summary.\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "atrctl export: %s\n", msg);
    export_usage(stderr);
    return ATRCTL_EXIT_USAGE;
}

static json_t *file_list(const apr_array_header_t *files)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; i < files->nelts; i++) {
        const atr_export_file_t *f = &APR_ARRAY_IDX(files, i, atr_export_file_t);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I}", "type", f->type, "url", f->path,
                                             "count", (json_int_t)f->count, "bytes", (json_int_t)f->bytes));
    }
    return arr;
}

int atrctl_cmd_export(atrctl_ctx_t *ctx, int argc, const char *const *argv)
{
    apr_pool_t *p = ctx->pool;
    atr_export_opts_t opts;
    atr_export_result_t *res = NULL;
    apr_array_header_t *types = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *patients = apr_array_make(p, 4, sizeof(const char *));
    atr_db_t *db;
    apr_time_t start, tm;
    apr_status_t rv;
    const char *err = NULL;
    json_t *summary, *counts, *missing;
    char *dump;
    int i, t;

    memset(&opts, 0, sizeof(opts));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            export_usage(stdout);
            return ATRCTL_EXIT_OK;
        }
        if (strcmp(a, "--group") && strcmp(a, "--out") && strcmp(a, "--type") && strcmp(a, "--since")
            && strcmp(a, "--until") && strcmp(a, "--patient") && strcmp(a, "--max-file-size")) {
            return usage_error(apr_psprintf(p, "unknown argument %s", a));
        }
        if (!v) return usage_error(apr_psprintf(p, "%s needs a value", a));
        i++;
        if (!strcmp(a, "--group")) {
            if (!strncmp(v, "Group/", 6)) v += 6;
            if (!atr_fhir_is_id(v)) return usage_error(apr_psprintf(p, "'%s' is not a Group id", v));
            opts.group_id = v;
        }
        else if (!strcmp(a, "--out")) {
            opts.outdir = v;
        }
        else if (!strcmp(a, "--type")) {
            char *list = apr_pstrdup(p, v), *last = NULL, *tok;
            for (tok = apr_strtok(list, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
                if (atr_export_type_index(tok) < 0) {
                    return usage_error(apr_psprintf(p, "'%s' is not one of the 8 ATR resource types", tok));
                }
                APR_ARRAY_PUSH(types, const char *) = tok;
            }
        }
        else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
            if (atr_time_parse_instant(&tm, v) != APR_SUCCESS) {
                return usage_error(apr_psprintf(p, "'%s' is not a FHIR instant "
                                                   "(YYYY-MM-DDThh:mm:ss[.sss](Z|+hh:mm))", v));
            }
            if (a[2] == 's') opts.since = v;
            else opts.until = v;
        }
        else if (!strcmp(a, "--patient")) {
            if (strncmp(v, "Patient/", 8) || !atr_fhir_is_id(v + 8)) {
                return usage_error(apr_psprintf(p, "'%s' is not a Patient reference (Patient/ID)", v));
            }
            APR_ARRAY_PUSH(patients, const char *) = v;
        }
        else {
            char *end = NULL;
            apr_int64_t n = apr_strtoi64(v, &end, 10);
            if (!*v || *end || n < 1) {
                return usage_error(apr_psprintf(p, "--max-file-size '%s' is not a positive byte count", v));
            }
            opts.max_file_size = (apr_off_t)n;
        }
    }
    if (!opts.group_id) return usage_error("--group is required");
    if (!opts.outdir) return usage_error("--out is required");
    opts.types = types;
    opts.patients = patients;

    rv = apr_dir_make_recursive(opts.outdir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        char buf[256];
        fprintf(stderr, "atrctl export: cannot create %s: %s\n", opts.outdir, apr_strerror(rv, buf, sizeof(buf)));
        return ATRCTL_EXIT_FAIL;
    }
    db = atrctl_open_db(ctx, 1);
    if (!db) return ATRCTL_EXIT_FAIL;
    start = apr_time_now();
    rv = atr_export_group(&res, db, &opts, &err, p);
    if (rv != APR_SUCCESS) {
        char buf[256];
        fprintf(stderr, "atrctl export: %s", err ? err : "export failed");
        if (rv != APR_EINVAL && rv != APR_NOTFOUND) fprintf(stderr, " (%s)", apr_strerror(rv, buf, sizeof(buf)));
        fprintf(stderr, "; no files were left in %s\n", opts.outdir);
        return ATRCTL_EXIT_FAIL;
    }
    counts = json_object();
    missing = json_object();
    for (t = 0; t < ATR_EXPORT_NTYPES; t++) {
        if (res->counts[t]) json_object_set_new(counts, atr_fhir_types[t], json_integer(res->counts[t]));
        if (res->missing[t]) json_object_set_new(missing, atr_fhir_types[t], json_integer(res->missing[t]));
    }
    summary = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:f}",
                        "transactionTime", atr_time_instant(start, p),
                        "group", apr_pstrcat(p, "Group/", opts.group_id, NULL),
                        "groupVersion", res->group_version,
                        "output", file_list(res->files), "error", file_list(res->errors),
                        "counts", counts, "missing", missing,
                        "notMembers", (json_int_t)res->not_members, "total", (json_int_t)res->total,
                        "seconds", (double)(apr_time_now() - start) / APR_USEC_PER_SEC);
    atr_json_pool_own(summary, p);
    dump = json_dumps(summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (dump) {
        puts(dump);
        free(dump);
    }
    return ATRCTL_EXIT_OK;
}
