/* Roster apply: CSV rows -> atr_roster_row -> resolved, checked, diffed in SQL -> the next
 * Group version written through atr_store_put_text with the members streamed page by page.
 * Nothing here holds more than one page of rows, so a million-row roster stays small. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <apr_strings.h>
#include <jansson.h>
#include "atr_roster.h"
#include "atr_store.h"
#include "atr_json.h"
#include "atr_fhir.h"
#include "atr_time.h"
#include "atr_log.h"

#define ROSTER_PAGE 1000
#define CSV_MAX_FIELDS 32

const char *const atr_roster_change_codes[ATR_ROSTER_NCT] = { "new", "changed", "nochange", "dropped" };

enum { C_MEMBER, C_PAYER, C_CONTRACT, C_PLAN, C_PROVIDER, C_START, C_END, C_COVERAGE, C_NCOLS };
static const char *const column_names[C_NCOLS] = {
    "member_id", "payer_id", "contract_id", "plan_id", "provider", "period_start", "period_end", "coverage"
};

/* ---- RFC 4180 reader: one record per call, fields may span lines when quoted ---- */
typedef struct csv_t {
    FILE *f;
    long line;          /* physical line of the next character */
    char *buf;          /* field bytes of the current record, NUL-separated */
    apr_size_t len, cap;
    apr_size_t starts[CSV_MAX_FIELDS];
    int nfields;
    int eof;
} csv_t;

static int csv_put(csv_t *c, int ch)
{
    if (c->len + 1 >= c->cap) {
        apr_size_t cap = c->cap ? c->cap * 2 : 4096;
        char *nb = realloc(c->buf, cap);
        if (!nb) return 0;
        c->buf = nb;
        c->cap = cap;
    }
    c->buf[c->len++] = (char)ch;
    return 1;
}

/* 1: a record (*pline = its first line); 0: end of file; -1: bad record (*perr), skipped. */
static int csv_read(csv_t *c, long *pline, const char **perr)
{
    int ch;
    *perr = NULL;
    for (;;) {
        if (c->eof) return 0;
        c->len = 0;
        c->nfields = 0;
        *pline = c->line;
        ch = getc(c->f);
        if (ch == EOF) return 0;
        if (ch == '\n') { c->line++; continue; }          /* blank line */
        if (ch == '\r') {
            int n = getc(c->f);
            if (n == '\n') { c->line++; continue; }
            if (n != EOF) ungetc(n, c->f);
        }
        break;
    }
    for (;;) {   /* one field per iteration; ch is its first character */
        if (c->nfields >= CSV_MAX_FIELDS) { *perr = "too many columns"; goto bad; }
        c->starts[c->nfields++] = c->len;
        if (ch == '"') {
            for (;;) {
                ch = getc(c->f);
                if (ch == EOF) { *perr = "unterminated quoted field"; c->eof = 1; return -1; }
                if (ch == '"') {
                    ch = getc(c->f);
                    if (ch != '"') break;
                }
                if (ch == '\n') c->line++;
                if (!csv_put(c, ch)) { *perr = "out of memory"; goto bad; }
            }
            if (ch == '\r') {
                ch = getc(c->f);
                if (ch != '\n') { *perr = "characters after a closing quote"; goto bad; }
            }
            if (ch != ',' && ch != '\n' && ch != EOF) { *perr = "characters after a closing quote"; goto bad; }
        }
        else {
            while (ch != ',' && ch != '\n' && ch != EOF) {
                if (ch == '\r') {
                    ch = getc(c->f);
                    if (ch == '\n') break;
                    if (!csv_put(c, '\r')) { *perr = "out of memory"; goto bad; }
                    continue;
                }
                if (ch == '"') { *perr = "quote inside an unquoted field"; goto bad; }
                if (!csv_put(c, ch)) { *perr = "out of memory"; goto bad; }
                ch = getc(c->f);
            }
        }
        if (!csv_put(c, '\0')) { *perr = "out of memory"; goto bad; }
        if (ch == ',') {
            ch = getc(c->f);
            continue;
        }
        if (ch == '\n') c->line++;
        else c->eof = 1;
        return 1;
    }
bad:
    while (ch != '\n' && ch != EOF) ch = getc(c->f);   /* resynchronise at the next line */
    if (ch == '\n') c->line++;
    else c->eof = 1;
    return -1;
}

static const char *csv_field(csv_t *c, int i)
{
    return c->buf + c->starts[i];
}

/* ---- results ---- */
static void add_error(atr_roster_result_t *res, apr_pool_t *p, long line, const char *fmt, ...)
{
    va_list ap;
    res->nerrors++;
    if (res->errors->nelts >= ATR_ROSTER_MAX_ERRORS) return;
    va_start(ap, fmt);
    APR_ARRAY_PUSH(res->errors, const char *) = apr_psprintf(p, "line %ld: %s", line, apr_pvsprintf(p, fmt, ap));
    va_end(ap);
}

static int all_digits(const char *s, apr_size_t n)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
    }
    return 1;
}

/* NPI (10 digits) or TIN (9 digits, dashes ignored): kind and normalized value, else NULL. */
static const char *provider_ident(const char **pval, const char *s, apr_pool_t *p)
{
    char *v = apr_palloc(p, strlen(s) + 1), *o = v;
    for (; *s; s++) {
        if (*s != '-') *o++ = *s;
    }
    *o = '\0';
    *pval = v;
    if (!all_digits(v, strlen(v))) return NULL;
    if (strlen(v) == 10 && !strchr(*pval, '-')) return "NPI";
    if (strlen(v) == 9) return "TIN";
    return NULL;
}

/* FHIR date: YYYY, YYYY-MM or YYYY-MM-DD with a real month and day. */
static int fhir_date(const char *s)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    apr_size_t n = strlen(s);
    int y, m, d;
    if ((n != 4 && n != 7 && n != 10) || !all_digits(s, 4)) return 0;
    if (n == 4) return 1;
    if (s[4] != '-' || !all_digits(s + 5, 2)) return 0;
    m = (s[5] - '0') * 10 + (s[6] - '0');
    if (m < 1 || m > 12) return 0;
    if (n == 7) return 1;
    if (s[7] != '-' || !all_digits(s + 8, 2)) return 0;
    y = atoi(s);
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (d < 1 || d > mdays[m - 1]) return 0;
    return !(m == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400)));
}

/* "Type/id" with type in types (NULL-terminated): the type, *pid set; else NULL. */
static const char *split_ref(const char **pid, const char *s, const char *const *types, apr_pool_t *p)
{
    const char *slash = strchr(s, '/');
    if (!slash || !atr_fhir_is_id(slash + 1)) return NULL;
    for (; *types; types++) {
        if ((apr_size_t)(slash - s) == strlen(*types) && !strncmp(s, *types, strlen(*types))) {
            *pid = slash + 1;
            return apr_pstrdup(p, *types);
        }
    }
    return NULL;
}

static const char *const patient_types[] = { "Patient", NULL };
static const char *const provider_types[] = { "Practitioner", "PractitionerRole", "Organization", NULL };
static const char *const coverage_types[] = { "Coverage", NULL };

/* Check one data row and stage it. Row errors go to res; store errors are returned. */
static apr_status_t stage_row(atr_roster_result_t *res, atr_db_t *db, csv_t *c, const int *map, long line,
                              apr_pool_t *p, apr_pool_t *ptemp)
{
    const char *args[11], *v[C_NCOLS], *id = NULL;
    int i, bad = 0;

    if (c->nfields != C_NCOLS) {
        add_error(res, p, line, "%d columns, the header has %d", c->nfields, C_NCOLS);
        return APR_SUCCESS;
    }
    for (i = 0; i < C_NCOLS; i++) v[i] = csv_field(c, map[i]);
    args[0] = apr_ltoa(ptemp, line);
    if (!*v[C_MEMBER]) { add_error(res, p, line, "member_id is empty"); bad = 1; }
    else if (strchr(v[C_MEMBER], '/')) {
        if (!(args[1] = split_ref(&id, v[C_MEMBER], patient_types, ptemp))) {
            add_error(res, p, line, "member_id \"%s\" is neither a member identifier nor Patient/<id>", v[C_MEMBER]);
            bad = 1;
        }
        args[2] = id;
    }
    else {
        args[1] = "MB";
        args[2] = v[C_MEMBER];
    }
    if (!*v[C_PROVIDER]) { add_error(res, p, line, "provider is empty"); bad = 1; }
    else if (strchr(v[C_PROVIDER], '/')) {
        if (!(args[3] = split_ref(&id, v[C_PROVIDER], provider_types, ptemp))) {
            add_error(res, p, line, "provider \"%s\" is not a Practitioner, PractitionerRole or Organization"
                      " reference", v[C_PROVIDER]);
            bad = 1;
        }
        args[4] = id;
    }
    else if (!(args[3] = provider_ident(&args[4], v[C_PROVIDER], ptemp))) {
        add_error(res, p, line, "provider \"%s\" is neither an NPI (10 digits), a TIN (9 digits) nor a reference",
                  v[C_PROVIDER]);
        bad = 1;
    }
    for (i = C_PAYER; i <= C_PLAN; i++) {
        if (!*v[i]) { add_error(res, p, line, "%s is empty", column_names[i]); bad = 1; }
    }
    if (!fhir_date(v[C_START])) {
        add_error(res, p, line, "period_start \"%s\" is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)", v[C_START]);
        bad = 1;
    }
    else if (*v[C_END] && !fhir_date(v[C_END])) {
        add_error(res, p, line, "period_end \"%s\" is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)", v[C_END]);
        bad = 1;
    }
    else if (*v[C_END]) {
        apr_size_t n = strlen(v[C_START]) < strlen(v[C_END]) ? strlen(v[C_START]) : strlen(v[C_END]);
        if (strncmp(v[C_END], v[C_START], n) < 0) {
            add_error(res, p, line, "period_end %s is before period_start %s", v[C_END], v[C_START]);
            bad = 1;
        }
    }
    if (*v[C_COVERAGE] && !split_ref(&id, v[C_COVERAGE], coverage_types, ptemp)) {
        add_error(res, p, line, "coverage \"%s\" is not a Coverage/<id> reference", v[C_COVERAGE]);
        bad = 1;
    }
    if (bad) return APR_SUCCESS;
    args[5] = v[C_PAYER];
    args[6] = v[C_CONTRACT];
    args[7] = v[C_PLAN];
    args[8] = v[C_START];
    args[9] = *v[C_END] ? v[C_END] : NULL;
    args[10] = *v[C_COVERAGE] ? v[C_COVERAGE] : NULL;
    return atr_db_exec(db, NULL, "atr_ros_insert", ptemp, 11, args);
}

static apr_status_t read_roster(atr_roster_result_t *res, atr_db_t *db, const char *path, const char **perr,
                                apr_pool_t *p)
{
    csv_t c;
    int map[C_NCOLS], i, j, r;
    long line;
    const char *cerr;
    apr_pool_t *ptemp;
    apr_status_t rv = APR_SUCCESS;

    memset(&c, 0, sizeof(c));
    c.line = 1;
    c.f = fopen(path, "rb");
    if (!c.f) {
        *perr = apr_psprintf(p, "cannot open %s", path);
        return APR_ENOENT;
    }
    apr_pool_create(&ptemp, p);
    r = csv_read(&c, &line, &cerr);
    if (r <= 0) {
        *perr = r == 0 ? "the roster is empty (a header line is required)"
                       : apr_psprintf(p, "line %ld: bad header: %s", line, cerr);
        rv = APR_EINVAL;
        goto leave;
    }
    for (i = 0; i < C_NCOLS; i++) map[i] = -1;
    for (j = 0; j < c.nfields; j++) {
        const char *name = csv_field(&c, j);
        for (i = 0; i < C_NCOLS && strcmp(name, column_names[i]); i++);
        if (i == C_NCOLS || map[i] >= 0) {
            *perr = apr_psprintf(p, "line %ld: header column \"%s\" is %s", line, name,
                                 i == C_NCOLS ? "unknown" : "repeated");
            rv = APR_EINVAL;
            goto leave;
        }
        map[i] = j;
    }
    for (i = 0; i < C_NCOLS; i++) {
        if (map[i] < 0) {
            *perr = apr_psprintf(p, "line %ld: header lacks column %s (needed: member_id, payer_id, contract_id,"
                                 " plan_id, provider, period_start, period_end, coverage)", line, column_names[i]);
            rv = APR_EINVAL;
            goto leave;
        }
    }
    while ((r = csv_read(&c, &line, &cerr)) != 0) {
        apr_pool_clear(ptemp);
        res->rows++;
        if (r < 0) {
            add_error(res, p, line, "%s", cerr);
            continue;
        }
        rv = stage_row(res, db, &c, map, line, p, ptemp);
        if (rv != APR_SUCCESS) {
            *perr = apr_psprintf(p, "store error staging line %ld: %s", line, atr_db_error(db, (int)rv));
            goto leave;
        }
    }
leave:
    fclose(c.f);
    free(c.buf);
    apr_pool_destroy(ptemp);
    return rv;
}

/* ---- identifiers of current Patients (MB) and Practitioners/Organizations (NPI, TIN) ---- */
static int ident_has_type(const json_t *ident, const char *code)
{
    const json_t *codings = json_object_get(json_object_get(ident, "type"), "coding"), *cd;
    size_t k;
    json_array_foreach(codings, k, cd) {
        const char *sys = atr_json_str(cd, "system"), *cc = atr_json_str(cd, "code");
        if (cc && !strcmp(cc, code) && (!sys || !strcmp(sys, ATR_SYS_V2_0203))) return 1;
    }
    return 0;
}

static apr_status_t index_type(atr_db_t *db, const char *type, apr_pool_t *p)
{
    const char *args[3], *last = "";
    apr_pool_t *ptemp, *plast;
    apr_status_t rv = APR_SUCCESS;
    int is_patient = !strcmp(type, "Patient");

    apr_pool_create(&ptemp, p);
    apr_pool_create(&plast, p);
    for (;;) {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        int n = 0;
        apr_pool_clear(ptemp);
        args[0] = type;
        args[1] = last;
        args[2] = apr_itoa(ptemp, ROSTER_PAGE);
        rv = atr_db_select(&rows, db, "atr_ros_scan", ptemp, 3, args);
        if (rv != APR_SUCCESS) break;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *id = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1), *ref;
            json_t *res, *ident;
            json_error_t jerr;
            size_t k;
            n++;
            if (!id) continue;
            last = id;
            res = body ? json_loads(body, 0, &jerr) : NULL;
            if (!res) continue;
            atr_json_pool_own(res, ptemp);
            ref = apr_pstrcat(ptemp, type, "/", id, NULL);
            json_array_foreach(json_object_get(res, "identifier"), k, ident) {
                const char *sys = atr_json_str(ident, "system"), *val = atr_json_str(ident, "value");
                const char *kind = NULL, *iargs[3];
                if (!val || !*val) continue;
                if (is_patient) {
                    if (ident_has_type(ident, "MB")) kind = "MB";
                }
                else if ((sys && !strcmp(sys, ATR_SYS_NPI)) || ident_has_type(ident, "NPI")) kind = "NPI";
                else if ((sys && !strcmp(sys, ATR_SYS_TIN)) || ident_has_type(ident, "TAX")) {
                    kind = "TIN";
                    if (!provider_ident(&val, val, ptemp)) val = atr_json_str(ident, "value");
                }
                if (!kind) continue;
                iargs[0] = kind;
                iargs[1] = val;
                iargs[2] = ref;
                rv = atr_db_exec(db, NULL, "atr_ros_ident_insert", ptemp, 3, iargs);
                if (rv != APR_SUCCESS) goto leave;
            }
        }
        if (n < ROSTER_PAGE) break;
        /* keep the keyset cursor alive across the clear of ptemp */
        apr_pool_clear(plast);
        last = apr_pstrdup(plast, last);
    }
leave:
    apr_pool_destroy(ptemp);
    apr_pool_destroy(plast);
    return rv;
}

static apr_status_t select_long(long *pv, atr_db_t *db, const char *label, apr_pool_t *p, int nargs,
                                const char **args)
{
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv = atr_db_select(&rows, db, label, p, nargs, args);
    *pv = 0;
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *v = atr_db_col(rows, row, 0);
        *pv = v ? atol(v) : 1;
    }
    return APR_SUCCESS;
}

/* Resolve member and provider keys to references; report unknown ones and DM-02 repeats. */
static apr_status_t resolve_and_check(atr_roster_result_t *res, atr_db_t *db, apr_pool_t *p)
{
    const char *args[2];
    long need, total, shown = 0;
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    args[0] = "MB";
    args[1] = "MB";
    if ((rv = select_long(&need, db, "atr_ros_need", p, 2, args)) != APR_SUCCESS) return rv;
    if (need && (rv = index_type(db, "Patient", p)) != APR_SUCCESS) return rv;
    args[0] = args[1] = "NPI";
    if ((rv = select_long(&need, db, "atr_ros_need", p, 2, args)) != APR_SUCCESS) return rv;
    if (!need) {
        args[0] = args[1] = "TIN";
        if ((rv = select_long(&need, db, "atr_ros_need", p, 2, args)) != APR_SUCCESS) return rv;
    }
    if (need && ((rv = index_type(db, "Practitioner", p)) != APR_SUCCESS
                 || (rv = index_type(db, "Organization", p)) != APR_SUCCESS)) return rv;
    if ((rv = atr_db_exec(db, NULL, "atr_ros_resolve_m_ref", p, 0, NULL)) != APR_SUCCESS
        || (rv = atr_db_exec(db, NULL, "atr_ros_resolve_m_ident", p, 0, NULL)) != APR_SUCCESS
        || (rv = atr_db_exec(db, NULL, "atr_ros_resolve_p_ref", p, 0, NULL)) != APR_SUCCESS
        || (rv = atr_db_exec(db, NULL, "atr_ros_resolve_p_ident", p, 0, NULL)) != APR_SUCCESS) return rv;

    if ((rv = select_long(&total, db, "atr_ros_unresolved_count", p, 0, NULL)) != APR_SUCCESS) return rv;
    if (total) {
        args[0] = apr_itoa(p, ATR_ROSTER_MAX_ERRORS);
        if ((rv = atr_db_select(&rows, db, "atr_ros_unresolved", p, 1, args)) != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            long line = atol(atr_db_col(rows, row, 0));
            const char *mt = atr_db_col(rows, row, 1), *mv = atr_db_col(rows, row, 2);
            const char *pt = atr_db_col(rows, row, 3), *pv = atr_db_col(rows, row, 4);
            int um = !atr_db_col(rows, row, 5), up = !atr_db_col(rows, row, 6);
            const char *mwhat = strcmp(mt, "MB") ? apr_pstrcat(p, mt, "/", mv, NULL)
                                                 : apr_pstrcat(p, "(member identifier ", mv, ")", NULL);
            const char *pwhat = strcmp(pt, "NPI") && strcmp(pt, "TIN") ? apr_pstrcat(p, pt, "/", pv, NULL)
                                                                       : apr_pstrcat(p, "(", pt, " ", pv, ")", NULL);
            shown++;
            if (um && up) add_error(res, p, line, "unknown member %s and unknown provider %s", mwhat, pwhat);
            else if (um) add_error(res, p, line, "unknown member %s", mwhat);
            else add_error(res, p, line, "unknown provider %s", pwhat);
        }
        res->nerrors += total - shown;
    }
    if ((rv = select_long(&total, db, "atr_ros_dups_count", p, 0, NULL)) != APR_SUCCESS) return rv;
    if (total) {
        shown = 0;
        args[0] = apr_itoa(p, ATR_ROSTER_MAX_ERRORS);
        if ((rv = atr_db_select(&rows, db, "atr_ros_dups", p, 1, args)) != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            shown++;
            add_error(res, p, atol(atr_db_col(rows, row, 0)),
                      "same member and provider as line %s: one line per member, payer, contract, plan"
                      " and provider (DM-02, DM-13)", atr_db_col(rows, row, 1));
        }
        res->nerrors += total - shown;
    }
    /* a coverage reference must name a Coverage the store has (DM-08): the export and
     * $attribution-status follow it */
    if ((rv = select_long(&total, db, "atr_rec_ros_cov_unknown_count", p, 0, NULL)) != APR_SUCCESS) return rv;
    if (total) {
        shown = 0;
        args[0] = apr_itoa(p, ATR_ROSTER_MAX_ERRORS);
        if ((rv = atr_db_select(&rows, db, "atr_rec_ros_cov_unknown", p, 1, args)) != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            shown++;
            add_error(res, p, atol(atr_db_col(rows, row, 0)), "unknown coverage %s", atr_db_col(rows, row, 1));
        }
        res->nerrors += total - shown;
    }
    return APR_SUCCESS;
}

/* ---- the next version's members, generated page by page ---- */
typedef struct gen_t {
    atr_db_t *db;
    const char *group_id, *prev_version;
    apr_size_t nrows, count;
    apr_pool_t *page_pool;
    const char **json;        /* this page's member JSON */
    int *change;              /* and their changeType */
    const char **what;        /* and a line for people */
    apr_size_t first, n;      /* page covers entries [first, first + n) */
    long after_line, after_seq;
} gen_t;

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static const char *roster_entry_json(const char *change, const char *entity, const char *provider,
                                     const char *start, const char *end, const char *coverage, apr_pool_t *p)
{
    /* every value was validated (FHIR ids, dates), so none needs JSON escaping */
    return apr_pstrcat(p, "{\"extension\":[{\"url\":\"" ATR_EXT_CHANGE_TYPE "\",\"valueCode\":\"", change, "\"},",
                       coverage ? "{\"url\":\"" ATR_EXT_COVERAGE_REF "\",\"valueReference\":{\"reference\":\"" : "",
                       coverage ? coverage : "", coverage ? "\"}}," : "",
                       "{\"url\":\"" ATR_EXT_PROVIDER "\",\"valueReference\":{\"reference\":\"", provider, "\"}}],"
                       "\"entity\":{\"reference\":\"", entity, "\"},\"period\":{\"start\":\"", start, "\"",
                       end ? ",\"end\":\"" : "", end ? end : "", end ? "\"" : "", "},\"inactive\":false}", NULL);
}

/* The previous entry marked dropped: inactive = true, changeType = dropped, the rest kept. */
static const char *dropped_json(const char *body, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *m = json_loads(body, 0, &jerr), *exts, *e;
    size_t k;
    int done = 0;

    if (!m) return NULL;
    atr_json_pool_own(m, p);
    exts = json_object_get(m, "extension");
    if (!json_is_array(exts)) {
        exts = json_array();
        json_object_set_new(m, "extension", exts);
    }
    json_array_foreach(exts, k, e) {
        const char *url = atr_json_str(e, "url");
        if (url && !strcmp(url, ATR_EXT_CHANGE_TYPE)) {
            json_object_set_new(e, "valueCode", json_string("dropped"));
            done = 1;
            break;
        }
    }
    if (!done) {
        e = json_object();
        json_object_set_new(e, "url", json_string(ATR_EXT_CHANGE_TYPE));
        json_object_set_new(e, "valueCode", json_string("dropped"));
        json_array_insert_new(exts, 0, e);
    }
    json_object_set_new(m, "inactive", json_true());
    return atr_json_dump(m, p);
}

static apr_status_t gen_page(gen_t *g, apr_size_t i)
{
    const char *args[8];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_pool_t *pp = g->page_pool;
    apr_status_t rv;

    apr_pool_clear(pp);
    g->json = apr_palloc(pp, sizeof(*g->json) * ROSTER_PAGE);
    g->what = apr_palloc(pp, sizeof(*g->what) * ROSTER_PAGE);
    g->change = apr_palloc(pp, sizeof(*g->change) * ROSTER_PAGE);
    g->first = i;
    g->n = 0;
    if (i < g->nrows) {
        args[0] = g->group_id;
        args[1] = g->prev_version;
        args[2] = g->group_id;
        args[3] = g->prev_version;
        args[4] = g->group_id;
        args[5] = g->prev_version;
        args[6] = apr_ltoa(pp, g->after_line);
        args[7] = apr_itoa(pp, ROSTER_PAGE);
        rv = atr_db_select(&rows, g->db, "atr_ros_entries", pp, 8, args);
        if (rv != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *line = atr_db_col(rows, row, 0), *ent = atr_db_col(rows, row, 1);
            const char *prov = atr_db_col(rows, row, 2), *start = atr_db_col(rows, row, 3);
            const char *end = atr_db_col(rows, row, 4), *cov = atr_db_col(rows, row, 5);
            int ct;
            if (g->n >= ROSTER_PAGE) break;
            if (!atr_db_col(rows, row, 6)) ct = ATR_ROSTER_NEW;
            else if (same(start, atr_db_col(rows, row, 7)) && same(end, atr_db_col(rows, row, 8))
                     && same(cov, atr_db_col(rows, row, 9))) ct = ATR_ROSTER_NOCHANGE;
            else ct = ATR_ROSTER_CHANGED;
            g->after_line = atol(line);
            g->change[g->n] = ct;
            g->json[g->n] = roster_entry_json(atr_roster_change_codes[ct], ent, prov, start, end, cov, pp);
            g->what[g->n] = apr_psprintf(pp, "line %s: %s %s with %s, %s..%s%s%s", line,
                                         atr_roster_change_codes[ct], ent, prov, start, end ? end : "",
                                         cov ? ", " : "", cov ? cov : "");
            g->n++;
        }
    }
    else {
        args[0] = g->group_id;
        args[1] = g->prev_version;
        args[2] = apr_ltoa(pp, g->after_seq);
        args[3] = apr_itoa(pp, ROSTER_PAGE);
        rv = atr_db_select(&rows, g->db, "atr_ros_dropped", pp, 4, args);
        if (rv != APR_SUCCESS) return rv;
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *seq = atr_db_col(rows, row, 0), *body = atr_db_col(rows, row, 1);
            if (g->n >= ROSTER_PAGE) break;
            g->after_seq = atol(seq);
            g->change[g->n] = ATR_ROSTER_DROPPED;
            g->json[g->n] = body ? dropped_json(body, pp) : NULL;
            if (!g->json[g->n]) return APR_EGENERAL;
            g->what[g->n] = apr_psprintf(pp, "dropped %s with %s (entry %s of version %s)",
                                         atr_db_col(rows, row, 2), atr_db_col(rows, row, 3) ? atr_db_col(rows, row, 3)
                                         : "no provider", seq, g->prev_version);
            g->n++;
        }
    }
    /* the roster part never runs into the dropped part within one page */
    if (g->first < g->nrows && g->first + g->n > g->nrows) g->n = g->nrows - g->first;
    return g->n ? APR_SUCCESS : APR_EGENERAL;
}

static apr_status_t gen_get(void *baton, apr_size_t i, const char **pjson, apr_pool_t *ptemp)
{
    gen_t *g = baton;
    apr_status_t rv;
    (void)ptemp;
    if (i == 0) {              /* a new pass */
        g->after_line = 0;
        g->after_seq = 0;
        g->n = 0;
        g->first = 0;
    }
    if (i >= g->count) return APR_EGENERAL;
    if (i < g->first || i >= g->first + g->n) {
        if (i != g->first + g->n) return APR_EGENERAL;   /* callers go in order */
        rv = gen_page(g, i);
        if (rv != APR_SUCCESS) return rv;
    }
    *pjson = g->json[i - g->first];
    return APR_SUCCESS;
}

/* ---- the apply ---- */
apr_status_t atr_roster_find_group(const char **pgroup_id, atr_db_t *db, const char *system,
                                   const char *value, const char **perr, apr_pool_t *p)
{
    const char *args[2], *found = NULL;
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;
    int n = 0;

    *pgroup_id = NULL;
    args[0] = system;
    args[1] = value;
    if (system && *system) rv = atr_db_select(&rows, db, "atr_gs_ident_sys_val", p, 2, args);
    else rv = atr_db_select(&rows, db, "atr_gs_ident_val", p, 1, args + 1);
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "store error: %s", atr_db_error(db, (int)rv));
        return rv;
    }
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *g = atr_db_col(rows, row, 0);
        if (g && (!found || strcmp(found, g))) {
            n++;
            found = g;
        }
    }
    if (!n) {
        *perr = apr_psprintf(p, "no Group has the identifier %s|%s", system ? system : "", value);
        return APR_NOTFOUND;
    }
    if (n > 1) {
        *perr = apr_psprintf(p, "several Groups have the identifier %s|%s (DM-01 wants one per contract):"
                             " use --group", system ? system : "", value);
        return APR_EINVAL;
    }
    *pgroup_id = found;
    return APR_SUCCESS;
}

static apr_status_t clear_stage(atr_db_t *db, apr_pool_t *p)
{
    apr_status_t rv = atr_db_exec(db, NULL, "atr_ros_clear_rows", p, 0, NULL);
    if (rv == APR_SUCCESS) rv = atr_db_exec(db, NULL, "atr_ros_clear_ident", p, 0, NULL);
    return rv;
}

apr_status_t atr_roster_apply(atr_roster_result_t **pres, atr_db_t *db, const char *group_id,
                              const char *path, int dry_run, apr_time_t now, const char **perr,
                              apr_pool_t *p)
{
    atr_roster_result_t *res = apr_pcalloc(p, sizeof(*res));
    atr_resource_t *prev = NULL;
    atr_store_members_t ms;
    atr_db_tx_t *tx = NULL;
    json_t *parsed;
    json_error_t jerr;
    gen_t g;
    const char *args[2];
    long dropped = 0;
    apr_size_t i;
    apr_status_t rv;
    int changed = 0;

    *perr = NULL;
    *pres = res;
    res->errors = apr_array_make(p, ATR_ROSTER_MAX_ERRORS, sizeof(const char *));
    res->sample = apr_array_make(p, ATR_ROSTER_SAMPLE, sizeof(const char *));
    memset(&g, 0, sizeof(g));

    rv = atr_db_tx_begin(&tx, db, p);
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot start a transaction: %s", atr_db_error(db, (int)rv));
        return rv;
    }
    /* the diff is against the version this apply replaces: no other writer (a reconciliation
     * operation, another node) may write one in between (a no-op on SQLite, whose write
     * transaction already excludes them) */
    rv = atr_store_lock(db, "Group", group_id, p);
    if (rv == APR_SUCCESS) rv = atr_store_get(&prev, db, "Group", group_id, 0, p);
    if (rv != APR_SUCCESS || prev->deleted) {
        *perr = rv == APR_NOTFOUND || rv == APR_SUCCESS ? apr_psprintf(p, "Group/%s does not exist%s", group_id,
                                                                       rv == APR_SUCCESS ? " (deleted)" : "")
                : apr_psprintf(p, "store error reading Group/%s: %s", group_id, atr_db_error(db, (int)rv));
        if (rv == APR_SUCCESS) rv = APR_NOTFOUND;
        goto fail;
    }
    res->version = prev->version;
    if ((rv = clear_stage(db, p)) != APR_SUCCESS) goto store_error;
    rv = read_roster(res, db, path, perr, p);
    if (rv != APR_SUCCESS) goto fail;
    rv = resolve_and_check(res, db, p);
    if (rv != APR_SUCCESS) goto store_error;
    if (res->nerrors) {
        *perr = apr_psprintf(p, "%ld bad row%s: nothing was written", res->nerrors, res->nerrors == 1 ? "" : "s");
        rv = APR_EINVAL;
        goto fail;
    }

    g.db = db;
    g.group_id = group_id;
    g.prev_version = apr_itoa(p, prev->version);
    g.nrows = (apr_size_t)(res->rows);
    args[0] = group_id;
    args[1] = g.prev_version;
    if ((rv = select_long(&dropped, db, "atr_ros_dropped_count", p, 2, args)) != APR_SUCCESS) goto store_error;
    g.count = g.nrows + (apr_size_t)dropped;
    apr_pool_create(&g.page_pool, p);

    /* pass 1: counts and the first changes (the only pass of a dry run) */
    for (i = 0; i < g.count; i++) {
        const char *json;
        int ct;
        rv = gen_get(&g, i, &json, p);
        if (rv != APR_SUCCESS) goto store_error;
        ct = g.change[i - g.first];
        res->counts[ct]++;
        if (ct != ATR_ROSTER_NOCHANGE && res->sample->nelts < ATR_ROSTER_SAMPLE)
            APR_ARRAY_PUSH(res->sample, const char *) = apr_pstrdup(p, g.what[i - g.first]);
    }
    if (dry_run) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                       "ATR00750: roster dry run for Group/%s: %ld rows, nothing written", group_id, res->rows);
        atr_db_tx_fail(tx);
        atr_db_tx_end(tx);
        return APR_SUCCESS;
    }

    parsed = json_loads(prev->body, 0, &jerr);
    if (!parsed) {
        *perr = apr_psprintf(p, "Group/%s: stored body is not JSON", group_id);
        rv = APR_EGENERAL;
        goto fail;
    }
    atr_json_pool_own(parsed, p);
    ms.count = g.count;
    ms.get = gen_get;
    ms.baton = &g;
    rv = atr_store_put_text(&res->version, &changed, db, "Group", group_id, prev->body, parsed, &ms, now, perr, p);
    if (rv != APR_SUCCESS) goto fail;
    res->written = changed;
    if ((rv = clear_stage(db, p)) != APR_SUCCESS) goto store_error;
    rv = atr_db_tx_end(tx);
    tx = NULL;
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "commit failed: %s", atr_db_error(db, (int)rv));
        res->written = 0;
        return rv;
    }
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_INFO, APR_SUCCESS, p,
                   "ATR00751: roster applied to Group/%s: version %d (%s), %ld new, %ld changed, %ld nochange,"
                   " %ld dropped", group_id, res->version, changed ? "written" : "unchanged",
                   res->counts[ATR_ROSTER_NEW], res->counts[ATR_ROSTER_CHANGED],
                   res->counts[ATR_ROSTER_NOCHANGE], res->counts[ATR_ROSTER_DROPPED]);
    return APR_SUCCESS;

store_error:
    *perr = apr_psprintf(p, "store error applying the roster to Group/%s: %s", group_id, atr_db_error(db, (int)rv));
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00752: %s", *perr);
fail:
    if (tx) {
        atr_db_tx_fail(tx);
        atr_db_tx_end(tx);
    }
    return rv;
}
