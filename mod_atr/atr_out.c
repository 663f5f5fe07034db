#include <stdio.h>
#include <string.h>
#include "atr_out.h"

apr_status_t atr_out_write(atr_out_t *out, const char *data, apr_size_t len)
{
    return len ? out->write(out->ctx, data, len) : APR_SUCCESS;
}

apr_status_t atr_out_puts(atr_out_t *out, const char *s)
{
    return atr_out_write(out, s, strlen(s));
}

typedef struct { atr_out_t *out; apr_status_t rv; } json_cb_ctx;

static int json_cb(const char *buffer, size_t size, void *data)
{
    json_cb_ctx *ctx = data;
    ctx->rv = atr_out_write(ctx->out, buffer, size);
    return ctx->rv == APR_SUCCESS ? 0 : -1;
}

apr_status_t atr_out_json(atr_out_t *out, const json_t *j)
{
    json_cb_ctx ctx = { out, APR_SUCCESS };
    if (json_dump_callback(j, json_cb, &ctx, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
        return ctx.rv != APR_SUCCESS ? ctx.rv : APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t buf_write(void *ctx, const char *data, apr_size_t len)
{
    atr_outbuf_t *b = ctx;
    if (b->len + len + 1 > b->cap) {
        apr_size_t cap = b->cap ? b->cap * 2 : 1024;
        char *n;
        while (cap < b->len + len + 1) cap *= 2;
        n = apr_palloc(b->pool, cap);
        if (b->len) memcpy(n, b->data, b->len);
        b->data = n;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return APR_SUCCESS;
}

void atr_outbuf_init(atr_out_t *out, atr_outbuf_t *buf, apr_pool_t *p)
{
    memset(buf, 0, sizeof(*buf));
    buf->pool = p;
    buf->data = apr_pcalloc(p, 1);
    out->write = buf_write;
    out->ctx = buf;
}

static apr_status_t stdio_write(void *ctx, const char *data, apr_size_t len)
{
    return fwrite(data, 1, len, (FILE *)ctx) == len ? APR_SUCCESS : APR_EGENERAL;
}

void atr_out_stdio(atr_out_t *out, void *FILE_ptr)
{
    out->write = stdio_write;
    out->ctx = FILE_ptr;
}
