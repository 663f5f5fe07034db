/* The bulk export workers (mod_watchdog threads in every child; docs/bulk-export.md). */
#ifndef MOD_ATR_EXPORT_WORKER_H
#define MOD_ATR_EXPORT_WORKER_H
#include "httpd.h"

/* post_config: check ATRExportDir and register the worker with mod_watchdog. Must run
 * before mod_watchdog's own post_config (it runs last). OK or an error that stops httpd. */
int atr_export_worker_post_config(apr_pool_t *pconf, server_rec *s);

/* child_init: make the child's exit wait for its worker (see mod_atr_export_worker.c). */
void atr_export_worker_child_init(apr_pool_t *pchild, server_rec *s);

#endif
