/* The Member Attribution List export writer: one Group and what its members reference,
 * as NDJSON files in a directory (ATR EXP-06/07/08/12, Bulk BULK-FILE-02/04). Portable core:
 * both the httpd export workers and `atrctl export` run it. Memory stays bounded whatever
 * the Group size: references are collected and deduplicated in the store (atr_export_ref,
 * keyed by a per-run id) and read back page by page; the Group line streams its members. */
#ifndef ATR_EXPORT_H
#define ATR_EXPORT_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "atr_db.h"

#define ATR_EXPORT_NTYPES 8
/* Default split size of output files (bytes). */
#define ATR_EXPORT_DEFAULT_MAX_FILE (1024 * 1024 * 1024)

/* Called after every page of resources; a non-success return stops the export (cancel),
 * which then cleans up and returns that status. */
typedef apr_status_t atr_export_progress_fn(void *baton, long resources_written);

/* A note the caller wants in the error file (e.g. a kick-off parameter ignored under
 * Prefer: handling=lenient): written first, one OperationOutcome line each. */
typedef struct atr_export_issue_t {
    const char *severity;   /* "error", "warning" or "information" */
    const char *code;       /* FHIR IssueType, e.g. "not-supported" */
    const char *text;       /* diagnostics */
} atr_export_issue_t;

typedef struct atr_export_opts_t {
    const char *group_id;
    const apr_array_header_t *types;     /* const char *: subset of atr_fhir_types; NULL/empty = all */
    const char *since, *until;           /* FHIR instants, or NULL (non-Group resources only, D15) */
    const apr_array_header_t *patients;  /* const char * "Patient/x"; NULL/empty = all members */
    const char *outdir;                  /* existing directory; files are created in it */
    apr_off_t max_file_size;             /* split size; 0 = ATR_EXPORT_DEFAULT_MAX_FILE */
    int page_size;                       /* rows per store page; 0 = 1000 */
    int jansson_render;                  /* 1: every line through atr_render_resource (tests compare
                                          * it with the default text splice of stored bodies) */
    const char *export_id;               /* this run's key in atr_export_ref (<= 64 chars); NULL =
                                          * random. Callers that may die mid-run (the httpd
                                          * workers) pass their claim so the next claimer can
                                          * atr_export_forget() what was left behind. */
    const apr_array_header_t *issues;    /* atr_export_issue_t to put in the error file; optional */
    atr_export_progress_fn *progress;    /* optional */
    void *progress_baton;
} atr_export_opts_t;

typedef struct atr_export_file_t {
    const char *type;    /* resource type, or "OperationOutcome" for an error file */
    const char *name;    /* file name in outdir: <Type>-<n>.ndjson */
    const char *path;    /* outdir/name */
    long count;          /* lines (resources) */
    apr_off_t bytes;
} atr_export_file_t;

typedef struct atr_export_result_t {
    apr_array_header_t *files;    /* atr_export_file_t: output files, per type in atr_fhir_types order */
    apr_array_header_t *errors;   /* atr_export_file_t: OperationOutcome-<n>.ndjson (EXP-06, warnings) */
    long counts[ATR_EXPORT_NTYPES];   /* resources written per type (atr_fhir_types order) */
    long missing[ATR_EXPORT_NTYPES];  /* referenced but absent or deleted, skipped */
    long not_members;                 /* `patient` entries that are not members (EXP-06) */
    long total;                       /* resources written, all types */
    const char *group_version;        /* versionId of the exported Group */
} atr_export_result_t;

/* Export opts->group_id's current version to opts->outdir. Files appear under their final
 * name only when complete (written as .<name>.tmp, then renamed); on any failure every file
 * of this run is removed and the error returned with *perr. Errors: APR_NOTFOUND (no such
 * Group, or deleted), APR_EINVAL (bad type, instant or patient reference), store and file
 * errors (e.g. ENOSPC). Files and arrays are allocated in p. */
apr_status_t atr_export_group(atr_export_result_t **pres, atr_db_t *db, const atr_export_opts_t *opts,
                              const char **perr, apr_pool_t *p);

/* Remove the atr_export_ref rows of a run that did not finish (its process died). */
apr_status_t atr_export_forget(atr_db_t *db, const char *export_id, apr_pool_t *p);

/* Index of type in atr_fhir_types, or -1. */
int atr_export_type_index(const char *type);

#endif
