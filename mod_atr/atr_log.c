#include <stdio.h>
#include <apr_strings.h>
#include "atr_log.h"

static atr_log_sink_fn *log_sink;
static void *log_baton;
static atr_log_level_e log_max = ATR_LOG_NOTICE;

void atr_log_set_sink(atr_log_sink_fn *sink, void *baton, atr_log_level_e max_level)
{
    log_sink = sink;
    log_baton = baton;
    log_max = max_level;
}

int atr_log_is_level(atr_log_level_e level)
{
    return level <= log_max;
}

void atr_log_perror(const char *file, int line, atr_log_level_e level, apr_status_t rv,
                    apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    char err[256];

    if (!atr_log_is_level(level)) return;
    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    if (log_sink) {
        log_sink(log_baton, file, line, level, rv, msg);
    }
    else if (rv != APR_SUCCESS) {
        fprintf(stderr, "%s (%s)\n", msg, apr_strerror(rv, err, sizeof(err)));
    }
    else {
        fprintf(stderr, "%s\n", msg);
    }
}
