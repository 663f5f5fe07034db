/* Where the CGI's messages go: changes (and refused forms) to the audit log, problems of the
 * server to stderr, which httpd puts in its error log. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include "admin_cgi.h"

void admin_log_audit(admin_req_t *a, const char *fmt, ...)
{
    va_list ap;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    const char *msg, *line;
    apr_file_t *f;

    va_start(ap, fmt);
    msg = apr_pvsprintf(a->p, fmt, ap);
    va_end(ap);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    line = apr_psprintf(a->p, "%s atr-admin %s user=\"%s\"\n", ts, msg, a->user ? a->user : "-");
    if (a->conf && a->conf->audit_log
        && apr_file_open(&f, a->conf->audit_log, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                         APR_FPROT_UREAD | APR_FPROT_UWRITE, a->p) == APR_SUCCESS) {
        apr_size_t n = strlen(line);
        /* One write per line: O_APPEND keeps concurrent CGIs' lines whole. */
        apr_file_write(f, line, &n);
        apr_file_close(f);
        return;
    }
    fputs(line, stderr);
}

void admin_log_problem(const char *fmt, ...)
{
    va_list ap;
    fputs("atr-admin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
