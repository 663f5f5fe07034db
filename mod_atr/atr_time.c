#include <ctype.h>
#include <string.h>
#include <apr_strings.h>
#include "atr_time.h"

const char *atr_time_instant(apr_time_t t, apr_pool_t *p)
{
    apr_time_exp_t x;
    apr_time_exp_gmt(&x, t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", x.tm_year + 1900, x.tm_mon + 1,
                        x.tm_mday, x.tm_hour, x.tm_min, x.tm_sec, x.tm_usec / 1000);
}

/* Reads exactly n digits at *ps; advances. */
static int digits(const char **ps, int n, int *out)
{
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*ps)[i])) return 0;
        v = v * 10 + ((*ps)[i] - '0');
    }
    *ps += n;
    *out = v;
    return 1;
}

static int days_in_month(int year, int month)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
    return d[month - 1];
}

/* precision: 1 year, 2 month, 3 day, 4 seconds (with zone). */
static apr_status_t parse_fhir(apr_time_t *pt, apr_time_t *pend, const char *s, int need_instant)
{
    apr_time_exp_t x;
    int year, mon = 1, day = 1, hh = 0, mm = 0, ss = 0, usec = 0, prec, tzsign = 0, tzh = 0, tzm = 0;
    apr_time_t t;

    if (!s) return APR_EINVAL;
    if (!digits(&s, 4, &year) || year < 1) return APR_EINVAL;
    prec = 1;
    if (*s == '-') {
        s++;
        if (!digits(&s, 2, &mon) || mon < 1 || mon > 12) return APR_EINVAL;
        prec = 2;
        if (*s == '-') {
            s++;
            if (!digits(&s, 2, &day) || day < 1 || day > days_in_month(year, mon)) return APR_EINVAL;
            prec = 3;
            if (*s == 'T') {
                s++;
                if (!digits(&s, 2, &hh) || *s++ != ':' || !digits(&s, 2, &mm) || *s++ != ':'
                    || !digits(&s, 2, &ss) || hh > 23 || mm > 59 || ss > 60) return APR_EINVAL;
                if (*s == '.') {
                    int scale = 100000, nd = 0;
                    s++;
                    while (isdigit((unsigned char)*s)) {
                        if (scale) { usec += (*s - '0') * scale; scale /= 10; }
                        s++; nd++;
                    }
                    if (!nd) return APR_EINVAL;
                }
                if (*s == 'Z') { s++; }
                else if (*s == '+' || *s == '-') {
                    tzsign = *s == '+' ? 1 : -1;
                    s++;
                    if (!digits(&s, 2, &tzh) || *s++ != ':' || !digits(&s, 2, &tzm) || tzh > 14 || tzm > 59)
                        return APR_EINVAL;
                }
                else return APR_EINVAL;
                prec = 4;
            }
        }
    }
    if (*s) return APR_EINVAL;
    if (need_instant && prec != 4) return APR_EINVAL;

    memset(&x, 0, sizeof(x));
    x.tm_year = year - 1900; x.tm_mon = mon - 1; x.tm_mday = day;
    x.tm_hour = hh; x.tm_min = mm; x.tm_sec = ss; x.tm_usec = usec;
    if (apr_time_exp_gmt_get(&t, &x) != APR_SUCCESS) return APR_EINVAL;
    t -= apr_time_from_sec((apr_time_t)tzsign * (tzh * 3600 + tzm * 60));
    *pt = t;
    if (pend) {
        switch (prec) {
        case 1: x.tm_year += 1; break;
        case 2: if (++x.tm_mon == 12) { x.tm_mon = 0; x.tm_year++; } break;
        case 3: x.tm_mday = 1; apr_time_exp_gmt_get(pend, &x); *pend += apr_time_from_sec(86400LL * day); return APR_SUCCESS;
        default: *pend = t + (usec ? 1000 : apr_time_from_sec(1)); return APR_SUCCESS;
        }
        x.tm_mday = 1;
        if (apr_time_exp_gmt_get(pend, &x) != APR_SUCCESS) return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t atr_time_parse_instant(apr_time_t *pt, const char *s)
{
    return parse_fhir(pt, NULL, s, 1);
}

apr_status_t atr_time_parse_datetime(apr_time_t *pt, apr_time_t *pend, const char *s)
{
    return parse_fhir(pt, pend, s, 0);
}

int atr_time_is_date(const char *s)
{
    apr_time_t t;
    return s && strlen(s) == 10 && parse_fhir(&t, NULL, s, 0) == APR_SUCCESS;
}
