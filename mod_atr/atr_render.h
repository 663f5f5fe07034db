/* Rendering stored resources as FHIR JSON onto an atr_out_t, streaming Group members. */
#ifndef ATR_RENDER_H
#define ATR_RENDER_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "atr_out.h"
#include "atr_store.h"

typedef enum {
    ATR_SUMMARY_FALSE = 0,  /* full resource */
    ATR_SUMMARY_TRUE,       /* R4 summary; Group keeps the ATR extensions (D6), drops member */
    ATR_SUMMARY_COUNT       /* only meaningful for search (Bundle.total only) */
} atr_summary_e;

typedef struct atr_render_opts_t {
    atr_summary_e summary;
    const apr_array_header_t *elements;  /* _elements: top-level names (const char *), or NULL */
    int member_page_size;                /* rows per member page (0 = default 1000) */
} atr_render_opts_t;

/* Write res as JSON: stored body + meta.versionId/lastUpdated (+ SUBSETTED tag when
 * summarised or element-filtered), and for Group the member array streamed from rows.
 * No trailing newline. */
apr_status_t atr_render_resource(atr_out_t *out, atr_db_t *db, const atr_resource_t *res,
                                 const atr_render_opts_t *opts, apr_pool_t *p);

#endif
