/* The Bulk Data endpoints of a Group export (docs/bulk-export.md): kick-off
 * ($davinci-data-export, $export), the status URL (GET, DELETE) and the output files. Each
 * function answers the request (status in r->status) and returns OK for the handler. */
#ifndef MOD_ATR_BULK_H
#define MOD_ATR_BULK_H
#include "httpd.h"
#include "atr_bulk_params.h"
#include "mod_atr_authz.h"

#define ATR_BULK_STATUS_SEG "export-status"
#define ATR_BULK_FILES_SEG "export-files"

/* 1 if path (relative to the FHIR base) is a bulk endpoint: those do their own content
 * negotiation (kick-off headers per D16; files are NDJSON). */
int atr_bulk_is_path(const char *path);

/* op_name: "$davinci-data-export" or "$export"; path: relative to the base (for "request"). */
int atr_bulk_kickoff(request_rec *r, const char *base, const apr_array_header_t *query,
                     atr_authz_t *az, const char *group_id, const char *op_name, const char *path);
int atr_bulk_status(request_rec *r, const char *base, atr_authz_t *az, const char *job_id);
int atr_bulk_file(request_rec *r, atr_authz_t *az, const char *job_id, const char *name);

#endif
