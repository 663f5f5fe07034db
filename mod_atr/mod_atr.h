/* mod_atr: the module record and what its glue files share. */
#ifndef MOD_ATR_H
#define MOD_ATR_H
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include "atr_db.h"

extern module AP_MODULE_DECLARE_DATA atr_module;
#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(atr);
#endif

/* The store for this request: mod_dbd's pooled connection (ap_dbd_acquire) as an atr_db_t,
 * its schema checked once per pooled connection. APR_EGENERAL when the store is
 * unavailable or holds the wrong schema (logged; callers answer 503). */
apr_status_t atr_mod_db(atr_db_t **pdb, request_rec *r);

/* A store connection outside a request (the export workers): mod_dbd's ap_dbd_open, set up
 * like atr_mod_db's. Give it back with atr_mod_db_close. */
apr_status_t atr_mod_db_open(atr_db_t **pdb, ap_dbd_t **pdbd, server_rec *s, apr_pool_t *p);
void atr_mod_db_close(ap_dbd_t *dbd, server_rec *s);

#endif
