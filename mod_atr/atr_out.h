/* A byte sink: where rendered FHIR goes (an httpd response, a file, stdout, a buffer).
 * Renderers write through it piece by piece, so nothing large is ever held whole. */
#ifndef ATR_OUT_H
#define ATR_OUT_H
#include <apr_pools.h>
#include <jansson.h>

typedef apr_status_t atr_write_fn(void *ctx, const char *data, apr_size_t len);

typedef struct atr_out_t {
    atr_write_fn *write;
    void *ctx;
} atr_out_t;

apr_status_t atr_out_write(atr_out_t *out, const char *data, apr_size_t len);
apr_status_t atr_out_puts(atr_out_t *out, const char *s);
/* Compact JSON (JSON_COMPACT, keys in insertion order). */
apr_status_t atr_out_json(atr_out_t *out, const json_t *j);
/* A sink that appends to a growing buffer (tests, small documents). */
typedef struct atr_outbuf_t {
    char *data;
    apr_size_t len, cap;
    apr_pool_t *pool;
} atr_outbuf_t;
void atr_outbuf_init(atr_out_t *out, atr_outbuf_t *buf, apr_pool_t *p);
/* A sink on a stdio stream. */
void atr_out_stdio(atr_out_t *out, void *FILE_ptr);

#endif
