/* Logging sink of the portable core: mod_atr plugs in ap_log_error, the CLIs stderr.
 * Every message at debug or above carries an ATRnnnnn tag (docs/log-message-tags). */
#ifndef ATR_LOG_H
#define ATR_LOG_H
#include <apr_pools.h>
#include <apr_errno.h>

typedef enum {
    ATR_LOG_ERR = 3, ATR_LOG_WARNING = 4, ATR_LOG_NOTICE = 5, ATR_LOG_INFO = 6,
    ATR_LOG_DEBUG = 7, ATR_LOG_TRACE1 = 8
} atr_log_level_e;

#define ATR_LOG_MARK __FILE__, __LINE__

typedef void atr_log_sink_fn(void *baton, const char *file, int line, atr_log_level_e level,
                             apr_status_t rv, const char *message);

/* Install the sink (NULL: messages go to stderr) and the most verbose level it wants. */
void atr_log_set_sink(atr_log_sink_fn *sink, void *baton, atr_log_level_e max_level);
int atr_log_is_level(atr_log_level_e level);
/* printf-style; formats into pool p only when the level is enabled. */
void atr_log_perror(const char *file, int line, atr_log_level_e level, apr_status_t rv,
                    apr_pool_t *p, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
