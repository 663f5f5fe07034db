/* Member Attribution List export: references of one Group version are collected into the
 * store's atr_export_ref (its key deduplicates a member attributed twice, a payor shared by
 * every Coverage, ...) and read back type by type in keyset pages joined to the current
 * versions, so memory does not grow with the Group. Patients and Coverages of a whole Group
 * are read straight from the member indexes in reference order (equal references adjacent),
 * which needs no scratch rows. Each line is what the FHIR read renders. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>
#if APR_HAS_THREADS
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#endif
#include "atr_export.h"
#include "atr_fhir.h"
#include "atr_id.h"
#include "atr_json.h"
#include "atr_jscan.h"
#include "atr_log.h"
#include "atr_out.h"
#include "atr_render.h"
#include "atr_store.h"
#include "atr_time.h"

#define DEFAULT_PAGE 1000
/* atr_export_opts_t.export_id (the header's contract) */
#define ATR_EXPORT_ID_MAX 64
/* The run key made when the caller gives none (atrctl export): 24 hex digits */
#define EXPORT_ID_BYTES 12
/* Output goes to the files in chunks of this size: few system calls, and with threads the
 * kernel's copy of one chunk into the page cache (about half the work of a large export)
 * runs on another core while the next chunk is read and spliced. */
#define OUT_CHUNK (1024 * 1024)
/* References remembered as already stored, so a payor or provider shared by many rows is
 * inserted once, not once per page; cleared when full (memory stays bounded, the table's key
 * still deduplicates). */
#define SEEN_MAX 65536
/* References inserted per statement */
#define INSERT_BATCH 16

enum { T_GROUP, T_PATIENT, T_COVERAGE, T_RELATEDPERSON, T_PRACTITIONER, T_PRACTITIONERROLE,
       T_ORGANIZATION, T_LOCATION };

/* Referenced types are read after the types that reference them (Coverage -> RelatedPerson,
 * Organization; PractitionerRole -> Practitioner, Organization, Location). */
static const int read_order[] = { T_PATIENT, T_COVERAGE, T_PRACTITIONERROLE, T_RELATEDPERSON,
                                  T_PRACTITIONER, T_ORGANIZATION, T_LOCATION };

typedef struct export_t export_t;

/* The files of one type: <Type>-1.ndjson, <Type>-2.ndjson, ... */
typedef struct writer_t {
    export_t *x;
    const char *type;
    apr_array_header_t *list;   /* where its files are recorded */
    int n;
    apr_file_t *f;
    const char *tmp;
    atr_export_file_t *cur;
} writer_t;

/* Two output chunks: the export fills one while the other is written to the open file, by
 * the flusher thread when there is one (else at once, by the caller). */
typedef struct flusher_t {
    char *buf[2];
    int cur;                  /* the chunk being filled */
    apr_size_t len;           /* bytes in buf[cur] */
    apr_status_t err;         /* first write error (guarded by mu when threaded) */
#if APR_HAS_THREADS
    apr_pool_t *pool;         /* the thread, its mutex and condition (destroyed at the stop) */
    apr_thread_t *thread;     /* NULL: write synchronously */
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;    /* a job was handed over, finished, or quit was asked */
    int busy, quit;
    const char *job;
    apr_size_t job_len;
    apr_file_t *job_f;
#endif
} flusher_t;

/* One line as the pieces it is spliced from (no copy before the output chunk). */
typedef struct piece_t {
    const char *s;
    apr_size_t n;
} piece_t;

/* One row of a page of a type: reference or id, current version's columns (NULL: absent). */
typedef struct row_t {
    const char *key, *ver, *lu, *deleted, *body;
} row_t;

/* A page of rows in its own pool (and allocator): read by the export's thread, processed by
 * the page worker while the next page is read. */
typedef struct page_t {
    apr_pool_t *pool;
    row_t *rows;
    int n;
    apr_hash_t *refs;         /* references found in the bodies ("Type/id") */
    apr_status_t rv;          /* of processing */
    long total;               /* resources written after this page */
} page_t;

/* How the pages of the type being read are processed. */
typedef struct typectx_t {
    int t;
    const char *type;
    apr_size_t prefix;        /* of column 0 before the id ("Patient/"), 0: column 0 is the id */
    int follow;
    writer_t w;
    atr_out_t out;
} typectx_t;

/* Turns pages into lines (scan, splice, chunks), on a thread of its own when APR has threads,
 * so the export's thread only reads the store: reading (SQLite) and writing (the splice and
 * the kernel's copies) then use both cores. */
typedef struct worker_t {
    typectx_t *tc;
    page_t *job;              /* handed over and not processed yet; NULL: idle */
#if APR_HAS_THREADS
    apr_pool_t *pool;
    apr_thread_t *thread;
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;
    int quit;
#endif
} worker_t;

struct export_t {
    atr_db_t *db;
    const atr_export_opts_t *opts;
    atr_export_result_t *res;
    apr_pool_t *p;              /* the run's (a child of the caller's pool with its own allocator,
                                 * used by one thread at a time: the page worker's while it runs) */
    const char *xid;            /* this run's key in atr_export_ref */
    const char *since, *until;  /* store format, or NULL */
    apr_off_t max;
    int page;
    int want[ATR_EXPORT_NTYPES];
    int need[ATR_EXPORT_NTYPES];  /* read (to write or to follow its references) */
    const char *gid, *gver;       /* the Group version exported */
    int whole_group;              /* no patient filter: Patients/Coverages from the member indexes */
    apr_array_header_t *created;  /* final paths already renamed (removed on failure) */
    writer_t *open;               /* the writer with a file open (removed on failure) */
    apr_array_header_t *issues;   /* OperationOutcome lines (JSON text) */
    int fast;                     /* render without jansson where the body allows (tests: 0) */
    int copy_cols;                /* pgsql: column values die with the end of their rows */
    char *buf;                    /* one resource rendered by jansson */
    apr_size_t len, cap;
    flusher_t fl;
    worker_t wk;
    apr_pool_t *seen_pool;        /* references already in atr_export_ref (a bounded cache) */
    apr_hash_t *seen;
    const char **perr;
};

int atr_export_type_index(const char *type)
{
    int i;
    for (i = 0; type && atr_fhir_types[i]; i++) {
        if (!strcmp(atr_fhir_types[i], type)) return i;
    }
    return -1;
}

static apr_status_t fail(export_t *x, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static apr_status_t fail(export_t *x, apr_status_t rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *x->perr = apr_pvsprintf(x->p, fmt, ap);
    va_end(ap);
    return rv;
}

/* ---- output chunks ---- */

#if APR_HAS_THREADS
static void *APR_THREAD_FUNC flusher_main(apr_thread_t *th, void *data)
{
    flusher_t *fl = data;

    apr_thread_mutex_lock(fl->mu);
    for (;;) {
        while (!fl->busy && !fl->quit) apr_thread_cond_wait(fl->cv, fl->mu);
        if (!fl->busy) break;
        {
            const char *b = fl->job;
            apr_size_t n = fl->job_len;
            apr_file_t *f = fl->job_f;
            int skip = fl->err != APR_SUCCESS;
            apr_status_t rv = APR_SUCCESS;

            apr_thread_mutex_unlock(fl->mu);
            if (!skip) rv = apr_file_write_full(f, b, n, NULL);
            apr_thread_mutex_lock(fl->mu);
            if (rv != APR_SUCCESS && fl->err == APR_SUCCESS) fl->err = rv;
            fl->busy = 0;
            apr_thread_cond_broadcast(fl->cv);
        }
    }
    apr_thread_mutex_unlock(fl->mu);
    apr_thread_exit(th, APR_SUCCESS);
    return NULL;
}
#endif

/* Chunks, and the thread when the platform has threads (else writes are synchronous). */
static apr_status_t flusher_start(export_t *x)
{
    flusher_t *fl = &x->fl;

    fl->buf[0] = malloc(OUT_CHUNK);
    fl->buf[1] = malloc(OUT_CHUNK);
    if (!fl->buf[0] || !fl->buf[1]) return fail(x, APR_ENOMEM, "no memory for the output buffers");
#if APR_HAS_THREADS
    apr_pool_create(&fl->pool, x->p);
    if (apr_thread_mutex_create(&fl->mu, APR_THREAD_MUTEX_DEFAULT, fl->pool) != APR_SUCCESS
        || apr_thread_cond_create(&fl->cv, fl->pool) != APR_SUCCESS
        || apr_thread_create(&fl->thread, NULL, flusher_main, fl, fl->pool) != APR_SUCCESS) {
        fl->thread = NULL;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_EGENERAL, x->p,
                       "ATR00709: export: no writer thread; writing from the export's own thread");
    }
#endif
    return APR_SUCCESS;
}

/* Wait until no chunk is being written; the first write error of the run, if any. */
static apr_status_t flusher_wait(flusher_t *fl)
{
    apr_status_t rv;

#if APR_HAS_THREADS
    if (fl->thread) {
        apr_thread_mutex_lock(fl->mu);
        while (fl->busy) apr_thread_cond_wait(fl->cv, fl->mu);
        rv = fl->err;
        apr_thread_mutex_unlock(fl->mu);
        return rv;
    }
#endif
    rv = fl->err;
    return rv;
}

static void flusher_stop(export_t *x)
{
    flusher_t *fl = &x->fl;

#if APR_HAS_THREADS
    if (fl->thread) {
        apr_status_t trv;
        apr_thread_mutex_lock(fl->mu);
        fl->quit = 1;
        apr_thread_cond_broadcast(fl->cv);
        apr_thread_mutex_unlock(fl->mu);
        apr_thread_join(&trv, fl->thread);
        fl->thread = NULL;
    }
    if (fl->pool) apr_pool_destroy(fl->pool);
    fl->pool = NULL;
#endif
    free(fl->buf[0]);
    free(fl->buf[1]);
    fl->buf[0] = fl->buf[1] = NULL;
}

/* Hand the filled chunk to the open file and start filling the other one. */
static apr_status_t flusher_submit(flusher_t *fl, apr_file_t *f)
{
    apr_status_t rv;

    if (fl->len == 0) return flusher_wait(fl);
#if APR_HAS_THREADS
    if (fl->thread) {
        apr_thread_mutex_lock(fl->mu);
        while (fl->busy) apr_thread_cond_wait(fl->cv, fl->mu);
        rv = fl->err;
        if (rv == APR_SUCCESS) {
            fl->job = fl->buf[fl->cur];
            fl->job_len = fl->len;
            fl->job_f = f;
            fl->busy = 1;
            apr_thread_cond_broadcast(fl->cv);
        }
        apr_thread_mutex_unlock(fl->mu);
        fl->cur ^= 1;
        fl->len = 0;
        return rv;
    }
#endif
    rv = fl->err == APR_SUCCESS ? apr_file_write_full(f, fl->buf[fl->cur], fl->len, NULL) : fl->err;
    if (rv != APR_SUCCESS && fl->err == APR_SUCCESS) fl->err = rv;
    fl->len = 0;
    return rv;
}

/* ---- files ---- */

static apr_status_t writer_close(writer_t *w)
{
    export_t *x = w->x;
    apr_status_t rv;

    if (!w->f) return APR_SUCCESS;
    /* the last chunk, and nothing of this file still in flight */
    rv = flusher_submit(&x->fl, w->f);
    if (rv == APR_SUCCESS) rv = flusher_wait(&x->fl);
    if (rv == APR_SUCCESS) {
        rv = apr_file_close(w->f);
    }
    else {
        apr_file_close(w->f);
    }
    w->f = NULL;
    x->open = NULL;
    if (rv != APR_SUCCESS) {
        apr_file_remove(w->tmp, x->p);
        return fail(x, rv, "cannot write %s", w->cur->path);
    }
    rv = apr_file_rename(w->tmp, w->cur->path, x->p);
    if (rv != APR_SUCCESS) {
        apr_file_remove(w->tmp, x->p);
        return fail(x, rv, "cannot rename %s to %s", w->tmp, w->cur->path);
    }
    APR_ARRAY_PUSH(x->created, const char *) = w->cur->path;
    return APR_SUCCESS;
}

static apr_status_t writer_open(writer_t *w)
{
    export_t *x = w->x;
    atr_export_file_t *file = apr_array_push(w->list);
    apr_status_t rv;

    file->type = w->type;
    file->name = apr_psprintf(x->p, "%s-%d.ndjson", w->type, ++w->n);
    file->path = apr_pstrcat(x->p, x->opts->outdir, "/", file->name, NULL);
    file->count = 0;
    file->bytes = 0;
    w->cur = file;
    w->tmp = apr_pstrcat(x->p, x->opts->outdir, "/.", file->name, ".tmp", NULL);
    rv = apr_file_open(&w->f, w->tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE | APR_FOPEN_BINARY,
                       APR_FPROT_OS_DEFAULT, x->p);
    if (rv != APR_SUCCESS) {
        w->f = NULL;
        w->list->nelts--;
        return fail(x, rv, "cannot create %s", w->tmp);
    }
    x->open = w;
    return APR_SUCCESS;
}

static apr_status_t writer_raw(writer_t *w, const char *data, apr_size_t len)
{
    flusher_t *fl = &w->x->fl;

    w->cur->bytes += (apr_off_t)len;
    while (len) {
        apr_size_t room = OUT_CHUNK - fl->len, n = len < room ? len : room;
        memcpy(fl->buf[fl->cur] + fl->len, data, n);
        fl->len += n;
        data += n;
        len -= n;
        if (fl->len == OUT_CHUNK) {
            apr_status_t rv = flusher_submit(fl, w->f);
            if (rv != APR_SUCCESS) return fail(w->x, rv, "cannot write %s", w->cur->path);
        }
    }
    return APR_SUCCESS;
}

static apr_status_t file_sink(void *ctx, const char *data, apr_size_t len)
{
    return writer_raw(ctx, data, len);
}

/* One NDJSON line made of pieces; a new file first when this line would take the current one
 * past the size limit (a line longer than the limit gets a file of its own). */
static apr_status_t writer_pieces(writer_t *w, const piece_t *pc, int npc)
{
    apr_status_t rv = APR_SUCCESS;
    apr_size_t len = 0;
    int i;

    for (i = 0; i < npc; i++) len += pc[i].n;
    if (w->f && w->cur->count > 0 && w->cur->bytes + (apr_off_t)len + 1 > w->x->max) {
        rv = writer_close(w);
        if (rv != APR_SUCCESS) return rv;
    }
    if (!w->f && (rv = writer_open(w)) != APR_SUCCESS) return rv;
    for (i = 0; rv == APR_SUCCESS && i < npc; i++) rv = writer_raw(w, pc[i].s, pc[i].n);
    if (rv == APR_SUCCESS) rv = writer_raw(w, "\n", 1);
    if (rv == APR_SUCCESS) w->cur->count++;
    return rv;
}

static apr_status_t writer_line(writer_t *w, const char *data, apr_size_t len)
{
    piece_t pc;
    pc.s = data;
    pc.n = len;
    return writer_pieces(w, &pc, 1);
}

/* A failed writer's open file goes away before its writer_t (on the caller's stack) does:
 * nothing of it still in flight or buffered, closed, removed. */
static void writer_abort(writer_t *w)
{
    export_t *x = w->x;

    if (!w->f) return;
    flusher_wait(&x->fl);
    x->fl.len = 0;
    apr_file_close(w->f);
    w->f = NULL;
    apr_file_remove(w->tmp, x->p);
    if (x->open == w) x->open = NULL;
}

static void writer_init(writer_t *w, export_t *x, const char *type, apr_array_header_t *list)
{
    memset(w, 0, sizeof(*w));
    w->x = x;
    w->type = type;
    w->list = list;
}

/* Remove every file of a failed run: no partial export is ever left for someone to serve. */
static void discard_files(export_t *x)
{
    int i;

    if (x->open) {
        flusher_wait(&x->fl);   /* no write in flight to the file removed */
        x->fl.len = 0;
        apr_file_close(x->open->f);
        x->open->f = NULL;
        apr_file_remove(x->open->tmp, x->p);
        x->open = NULL;
    }
    for (i = 0; i < x->created->nelts; i++) apr_file_remove(APR_ARRAY_IDX(x->created, i, const char *), x->p);
    apr_array_clear(x->res->files);
    apr_array_clear(x->res->errors);
}

/* ---- the jansson-rendered line buffer (malloc'ed: reused for every resource, freed at the end) ---- */

static apr_status_t buf_sink(void *ctx, const char *data, apr_size_t len)
{
    export_t *x = ctx;

    if (x->len + len > x->cap) {
        apr_size_t cap = x->cap ? x->cap : 4096;
        char *nb;
        while (cap < x->len + len) cap *= 2;
        nb = realloc(x->buf, cap);
        if (!nb) return APR_ENOMEM;
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    return APR_SUCCESS;
}

static void worker_stop(export_t *x);

static apr_status_t free_buf(void *data)
{
    export_t *x = data;
    free(x->buf);
    x->buf = NULL;
    worker_stop(x);
    flusher_stop(x);
    return APR_SUCCESS;
}

static void add_issue(export_t *x, const char *severity, const char *code, const char *text)
{
    json_t *oo = atr_oo_make(severity, code, text);
    APR_ARRAY_PUSH(x->issues, const char *) = atr_json_dump(oo, x->p);
    json_decref(oo);
}

/* The caller's notes (opts->issues) go first in the error file, in the shape of ours. A
 * severity FHIR does not know, a missing code or text that is not UTF-8 (jansson would drop
 * it) is the caller's mistake: refused before anything is written. */
static apr_status_t add_caller_issues(export_t *x, const apr_array_header_t *issues)
{
    int i;

    for (i = 0; issues && i < issues->nelts; i++) {
        const atr_export_issue_t *is = &APR_ARRAY_IDX(issues, i, atr_export_issue_t);
        json_t *text = NULL;

        if (!is->severity || (strcmp(is->severity, "fatal") && strcmp(is->severity, "error")
                              && strcmp(is->severity, "warning") && strcmp(is->severity, "information"))) {
            return fail(x, APR_EINVAL, "issue %d: severity '%s' is not fatal, error, warning or information", i + 1,
                        is->severity ? is->severity : "");
        }
        if (!is->code || !*is->code || strpbrk(is->code, " \t\r\n")) {
            return fail(x, APR_EINVAL, "issue %d: code '%s' is not a FHIR code", i + 1, is->code ? is->code : "");
        }
        if (is->text && !(text = json_string(is->text))) {
            return fail(x, APR_EINVAL, "issue %d: diagnostics are not UTF-8 text", i + 1);
        }
        json_decref(text);
        add_issue(x, is->severity, is->code, is->text);
    }
    return APR_SUCCESS;
}

/* ---- references ---- */

static const char *ref_args_len(apr_pool_t *p, const char *type, int extra)
{
    return apr_itoa(p, (int)strlen(type) + extra);
}

/* Member references of one kind (entity/coverage/provider column) with type prefix into
 * atr_export_ref, for the members of one entity_ref (the patient filter). */
static apr_status_t collect_members(export_t *x, const char *label, const char *type, const char *entity,
                                    apr_pool_t *ptemp)
{
    const char *args[8];
    apr_status_t rv;

    args[0] = x->xid;
    args[1] = type;
    args[2] = ref_args_len(ptemp, type, 2);
    args[3] = x->gid;
    args[4] = x->gver;
    args[5] = ref_args_len(ptemp, type, 1);
    args[6] = apr_pstrcat(ptemp, type, "/", NULL);
    args[7] = entity;
    rv = atr_db_exec(x->db, NULL, label, ptemp, 8, args);
    if (rv != APR_SUCCESS) return fail(x, rv, "cannot collect %s references: %s", type, atr_db_error(x->db, rv));
    return APR_SUCCESS;
}

/* The attributed providers of every member, all needed provider types in one scan of the
 * member rows (they have no index: one scan per type cost a second each on a large Group). */
static apr_status_t collect_providers(export_t *x, apr_pool_t *ptemp)
{
    const char *args[6];
    apr_status_t rv;

    if (!x->need[T_PRACTITIONER] && !x->need[T_PRACTITIONERROLE] && !x->need[T_ORGANIZATION]) return APR_SUCCESS;
    args[0] = x->xid;
    args[1] = x->gid;
    args[2] = x->gver;
    args[3] = x->need[T_PRACTITIONER] ? "Practitioner" : NULL;
    args[4] = x->need[T_PRACTITIONERROLE] ? "PractitionerRole" : NULL;
    args[5] = x->need[T_ORGANIZATION] ? "Organization" : NULL;
    rv = atr_db_exec(x->db, NULL, "atr_exp_ref_providers", ptemp, 6, args);
    if (rv != APR_SUCCESS) return fail(x, rv, "cannot collect provider references: %s", atr_db_error(x->db, rv));
    return APR_SUCCESS;
}

/* A relative reference "Type/id" to one of the allowed types (bit mask of T_) goes to refs.
 * [s, e) is a Reference object in compact JSON text. */
static void note_ref(apr_hash_t *refs, const char *text, apr_size_t s, apr_size_t e, unsigned mask)
{
    apr_size_t vs, ve;
    const char *slash;
    char *ref;
    int t;

    if (!atr_jscan_field(text, s, e, "reference", &vs, &ve) || text[vs] != '"' || ve - vs < 4) return;
    ref = apr_pstrmemdup(apr_hash_pool_get(refs), text + vs + 1, ve - vs - 2);
    if (strchr(ref, '\\') || !(slash = strchr(ref, '/')) || !atr_fhir_is_id(slash + 1)) return;
    ref[slash - ref] = '\0';
    t = atr_export_type_index(ref);
    ref[slash - ref] = '/';
    if (t < 0 || !(mask & (1u << t))) return;
    apr_hash_set(refs, ref, APR_HASH_KEY_STRING, ref);
}

/* The Reference (or array of References) [vs, ve) of body. */
static void note_refs(apr_hash_t *refs, const char *body, apr_size_t vs, apr_size_t ve, unsigned mask)
{
    apr_size_t pos, es, ee;

    if (body[vs] == '{') {
        note_ref(refs, body, vs, ve, mask);
    }
    else if (body[vs] == '[') {
        pos = vs + 1;
        while (atr_jscan_next(body, &pos, ve, &es, &ee)) note_ref(refs, body, es, ee, mask);
    }
}

/* Where the splice goes: the top-level "meta" and "id" values ([0, 0) when absent). */
typedef struct spans_t {
    apr_size_t meta_s, meta_e, id_s, id_e;
} spans_t;

static int key_is(const char *b, apr_size_t ks, apr_size_t ke, const char *key, apr_size_t klen)
{
    return ke - ks == klen && !memcmp(b + ks, key, klen);
}

/* One pass over the top level of a Coverage / PractitionerRole body: the references the
 * export follows (EXP-07) and the splice spans. Stored bodies are compact JSON as
 * atr_json_dump writes it, so they are read without a tree. 0 when the body is not an object. */
static int scan_follow(export_t *x, apr_hash_t *refs, int t, const char *b, apr_size_t len, spans_t *sp)
{
    apr_size_t pos = 1, ks, ke, vs, ve;
    unsigned mask = 0;
    int i;

    memset(sp, 0, sizeof(*sp));
    if (len < 2 || b[0] != '{') return 0;
    for (i = 0; i < ATR_EXPORT_NTYPES; i++) {
        if (x->need[i]) mask |= 1u << i;
    }
    if (t == T_COVERAGE) mask &= (1u << T_RELATEDPERSON) | (1u << T_ORGANIZATION);
    else mask &= (1u << T_PRACTITIONER) | (1u << T_ORGANIZATION) | (1u << T_LOCATION);
    while (atr_jscan_pair(b, &pos, len, &ks, &ke, &vs, &ve)) {
        if (key_is(b, ks, ke, "meta", 4)) {
            if (!sp->meta_e) sp->meta_s = vs, sp->meta_e = ve;
        }
        else if (key_is(b, ks, ke, "id", 2)) {
            if (!sp->id_e) sp->id_s = vs, sp->id_e = ve;
        }
        else if (t == T_COVERAGE ? key_is(b, ks, ke, "subscriber", 10) || key_is(b, ks, ke, "policyHolder", 12)
                                       || key_is(b, ks, ke, "payor", 5)
                                 : key_is(b, ks, ke, "practitioner", 12) || key_is(b, ks, ke, "organization", 12)
                                       || key_is(b, ks, ke, "location", 8)) {
            note_refs(refs, b, vs, ve, mask);
        }
    }
    return 1;
}

static void scan_plain(const char *b, apr_size_t len, spans_t *sp)
{
    memset(sp, 0, sizeof(*sp));
    if (len < 2 || b[0] != '{') return;
    if (!atr_jscan_field(b, 0, len, "meta", &sp->meta_s, &sp->meta_e)) {
        sp->meta_s = sp->meta_e = 0;
        if (!atr_jscan_field(b, 0, len, "id", &sp->id_s, &sp->id_e)) sp->id_s = sp->id_e = 0;
    }
}

/* "versionId":"<v>","lastUpdated":"<instant>" into meta (at least 128 bytes); 0 when the
 * values are not what the splice can copy (the caller then renders with jansson). */
static apr_size_t meta_text(char *meta, const char *ver, const char *lu)
{
    apr_size_t vn = strlen(ver), ln = strlen(lu), i;
    char *m = meta;

    /* the renderer prints the version as a number: copy only its canonical spelling */
    if (vn == 0 || vn > 9 || (ver[0] == '0' && vn > 1) || ln > 64) return 0;
    for (i = 0; i < vn; i++) {
        if (ver[i] < '0' || ver[i] > '9') return 0;
    }
    memcpy(m, "\"versionId\":\"", 13), m += 13;
    memcpy(m, ver, vn), m += vn;
    memcpy(m, "\",\"lastUpdated\":\"", 17), m += 17;
    memcpy(m, lu, ln), m += ln;
    *m++ = '"';
    return (apr_size_t)(m - meta);
}

/* What atr_render_resource writes for a non-Group resource, without a JSON tree: stored
 * bodies are exactly what atr_json_dump writes (the store's contract), so the read's text is
 * the body with versionId/lastUpdated put first into its meta, or with a new meta right after
 * id. The line's pieces in pc (at most 5); 0 when the body has another shape (the caller then
 * renders with jansson). */
static int splice(piece_t *pc, int *npc, const char *b, apr_size_t len, const spans_t *sp, const char *meta,
                  apr_size_t mlen)
{
    apr_size_t vs, ve, ms = sp->meta_s, me = sp->meta_e;

    if (mlen == 0 || len < 2 || b[0] != '{') return 0;
    if (me) {
        if (b[ms] != '{' || atr_jscan_field(b, ms, me, "versionId", &vs, &ve)
            || atr_jscan_field(b, ms, me, "lastUpdated", &vs, &ve)) {
            return 0;
        }
        pc[0].s = b, pc[0].n = ms + 1;
        pc[1].s = meta, pc[1].n = mlen;
        *npc = 2;
        if (b[ms + 1] != '}') pc[(*npc)++] = (piece_t){ ",", 1 };
        pc[*npc].s = b + ms + 1, pc[*npc].n = len - ms - 1;
        (*npc)++;
        return 1;
    }
    if (!sp->id_e || b[sp->id_s] != '"') {
        /* "meta" present but not an object, or no id: leave it to the renderer */
        return 0;
    }
    pc[0].s = b, pc[0].n = sp->id_e;
    pc[1].s = ",\"meta\":{", pc[1].n = 9;
    pc[2].s = meta, pc[2].n = mlen;
    pc[3].s = "}", pc[3].n = 1;
    pc[4].s = b + sp->id_e, pc[4].n = len - sp->id_e;
    *npc = 5;
    return 1;
}

/* 1 when ref was stored by this run already (as far as the cache remembers); else
 * remembers it. */
static int seen_before(export_t *x, const char *ref)
{
    apr_size_t n = strlen(ref);

    if (apr_hash_get(x->seen, ref, (apr_ssize_t)n)) return 1;
    if (apr_hash_count(x->seen) >= SEEN_MAX) {
        apr_pool_clear(x->seen_pool);
        x->seen = apr_hash_make(x->seen_pool);
    }
    ref = apr_pstrmemdup(x->seen_pool, ref, n);
    apr_hash_set(x->seen, ref, (apr_ssize_t)n, ref);
    return 0;
}

/* The references of a page ("Type/id" keys of refs) into atr_export_ref, INSERT_BATCH per
 * statement, in one transaction. No message on failure (the page worker may be using x->p):
 * the caller says what failed. */
static apr_status_t store_refs(export_t *x, apr_hash_t *refs, apr_pool_t *ptemp)
{
    apr_hash_index_t *hi;
    atr_db_tx_t *tx = NULL;
    apr_status_t rv = APR_SUCCESS;
    const char *args[3 * INSERT_BATCH];
    int n = 0, i;

    if (apr_hash_count(refs) == 0) return APR_SUCCESS;
    for (hi = apr_hash_first(ptemp, refs); rv == APR_SUCCESS && hi; hi = apr_hash_next(hi)) {
        const char *ref = apr_hash_this_key(hi), *slash = strchr(ref, '/');

        if (seen_before(x, ref)) continue;
        if (!tx) {
            /* one transaction per page: one commit instead of one per reference */
            rv = atr_db_tx_begin(&tx, x->db, ptemp);
            if (rv != APR_SUCCESS) break;
        }
        args[3 * n] = x->xid;
        args[3 * n + 1] = apr_pstrmemdup(ptemp, ref, (apr_size_t)(slash - ref));
        args[3 * n + 2] = slash + 1;
        if (++n == INSERT_BATCH) {
            rv = atr_db_exec(x->db, NULL, "atr_exp_ref_insert16", ptemp, 3 * n, args);
            n = 0;
        }
    }
    for (i = 0; rv == APR_SUCCESS && i < n; i++) {
        rv = atr_db_exec(x->db, NULL, "atr_exp_ref_insert", ptemp, 3, args + 3 * i);
    }
    if (tx) {
        apr_status_t rv2;
        if (rv != APR_SUCCESS) atr_db_tx_fail(tx);
        rv2 = atr_db_tx_end(tx);
        if (rv == APR_SUCCESS) rv = rv2;
    }
    if (rv != APR_SUCCESS) {
        /* what the cache remembers may not be in the table: forget it */
        apr_pool_clear(x->seen_pool);
        x->seen = apr_hash_make(x->seen_pool);
    }
    return rv;
}

static int in_window(const export_t *x, const char *last_updated)
{
    if (x->since && strcmp(last_updated, x->since) <= 0) return 0;
    if (x->until && strcmp(last_updated, x->until) > 0) return 0;
    return 1;
}

/* ---- pages ---- */

/* A pool with an allocator of its own: pools of one allocator must not be used by two threads
 * at once (the caller's pools included, which its progress callback may use). */
static apr_pool_t *own_pool(apr_pool_t *parent)
{
    apr_allocator_t *a = NULL;
    apr_pool_t *np = NULL;

    if (apr_allocator_create(&a) != APR_SUCCESS) abort();
    if (apr_pool_create_ex(&np, parent, NULL, a) != APR_SUCCESS) abort();
    apr_allocator_owner_set(a, np);
    return np;
}

/* Write a page's current versions that pass _since/_until, follow the references of
 * Coverage/PractitionerRole into pg->refs, count the missing. Runs on the page worker: it
 * touches only the page, the writer, the counts and (for file names and errors) x->p. */
static apr_status_t process_page(export_t *x, typectx_t *tc, page_t *pg)
{
    atr_render_opts_t ropts = { ATR_SUMMARY_FALSE, NULL, 0 };
    const char *prev = NULL;
    apr_status_t rv = APR_SUCCESS;
    int i, t = tc->t;

    for (i = 0; rv == APR_SUCCESS && i < pg->n; i++) {
        const row_t *r = &pg->rows[i];
        atr_resource_t res;
        apr_size_t len, mlen;
        spans_t sp;
        piece_t pc[5];
        int npc = 0, same = prev && !strcmp(prev, r->key);
        char meta[128];

        prev = r->key;
        if (same) continue;   /* members sharing a reference: adjacent rows */
        if (!r->ver || (r->deleted && strcmp(r->deleted, "0")) || !r->lu || !r->body) {
            x->res->missing[t]++;
            continue;
        }
        len = strlen(r->body);
        if (tc->follow && !scan_follow(x, pg->refs, t, r->body, len, &sp)) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, APR_EGENERAL, pg->pool,
                           "ATR00700: export: stored %s/%s is not JSON; its references are not followed",
                           tc->type, r->key + tc->prefix);
        }
        if (!x->want[t] || !in_window(x, r->lu)) continue;
        if (!tc->follow && x->fast) scan_plain(r->body, len, &sp);
        mlen = x->fast ? meta_text(meta, r->ver, r->lu) : 0;
        if (x->fast && splice(pc, &npc, r->body, len, &sp, meta, mlen)) {
            rv = writer_pieces(&tc->w, pc, npc);
        }
        else {
            res.type = tc->type;
            res.id = r->key + tc->prefix;
            res.version = atoi(r->ver);
            res.last_updated = r->lu;
            res.deleted = 0;
            res.body = r->body;
            x->len = 0;
            /* not a Group: the renderer does not read the store */
            rv = atr_render_resource(&tc->out, x->db, &res, &ropts, pg->pool);
            if (rv != APR_SUCCESS) {
                rv = fail(x, rv, "cannot render %s/%s", tc->type, res.id);
                break;
            }
            rv = writer_line(&tc->w, x->buf, x->len);
        }
        if (rv == APR_SUCCESS) {
            x->res->counts[t]++;
            x->res->total++;
        }
    }
    pg->total = x->res->total;
    return rv;
}

#if APR_HAS_THREADS
static void *APR_THREAD_FUNC worker_main(apr_thread_t *th, void *data)
{
    export_t *x = data;
    worker_t *wk = &x->wk;

    apr_thread_mutex_lock(wk->mu);
    for (;;) {
        page_t *pg;
        while (!wk->job && !wk->quit) apr_thread_cond_wait(wk->cv, wk->mu);
        if (!wk->job) break;
        pg = wk->job;
        apr_thread_mutex_unlock(wk->mu);
        pg->rv = process_page(x, wk->tc, pg);
        apr_thread_mutex_lock(wk->mu);
        wk->job = NULL;
        apr_thread_cond_broadcast(wk->cv);
    }
    apr_thread_mutex_unlock(wk->mu);
    apr_thread_exit(th, APR_SUCCESS);
    return NULL;
}
#endif

static void worker_start(export_t *x)
{
#if APR_HAS_THREADS
    worker_t *wk = &x->wk;

    apr_pool_create(&wk->pool, x->p);
    if (apr_thread_mutex_create(&wk->mu, APR_THREAD_MUTEX_DEFAULT, wk->pool) != APR_SUCCESS
        || apr_thread_cond_create(&wk->cv, wk->pool) != APR_SUCCESS
        || apr_thread_create(&wk->thread, NULL, worker_main, x, wk->pool) != APR_SUCCESS) {
        wk->thread = NULL;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_EGENERAL, x->p,
                       "ATR00710: export: no page worker thread; pages are written by the export's thread");
    }
#else
    (void)x;
#endif
}

static void worker_stop(export_t *x)
{
#if APR_HAS_THREADS
    worker_t *wk = &x->wk;

    if (wk->thread) {
        apr_status_t trv;
        apr_thread_mutex_lock(wk->mu);
        wk->quit = 1;
        apr_thread_cond_broadcast(wk->cv);
        apr_thread_mutex_unlock(wk->mu);
        apr_thread_join(&trv, wk->thread);
        wk->thread = NULL;
    }
    if (wk->pool) apr_pool_destroy(wk->pool);
    wk->pool = NULL;
#else
    (void)x;
#endif
}

/* Until the page handed over is processed. */
static void worker_wait(export_t *x)
{
#if APR_HAS_THREADS
    worker_t *wk = &x->wk;

    if (wk->thread) {
        apr_thread_mutex_lock(wk->mu);
        while (wk->job) apr_thread_cond_wait(wk->cv, wk->mu);
        apr_thread_mutex_unlock(wk->mu);
    }
#else
    (void)x;
#endif
}

/* Hand pg to the worker (processed at once without threads); the worker must be idle. */
static void worker_submit(export_t *x, page_t *pg)
{
#if APR_HAS_THREADS
    worker_t *wk = &x->wk;

    if (wk->thread) {
        apr_thread_mutex_lock(wk->mu);
        wk->job = pg;
        apr_thread_cond_broadcast(wk->cv);
        apr_thread_mutex_unlock(wk->mu);
        return;
    }
#endif
    pg->rv = process_page(x, x->wk.tc, pg);
}

/* Where a type's pages come from: the join of the ids with the current versions (one b-tree
 * search in atr_current and one in atr_resource per id), or the ids alone, whose current
 * versions and bodies are then read as two ranges (lowest to highest id of the page) and
 * matched in memory. Ranges read the rows in b-tree order, which is three times cheaper than
 * the searches when the page's ids are most of the range (a large Group's members are
 * most of the store); a sparse page (the range limit reached, or an id not found in it)
 * falls back to the join, and after RANGE_GIVE_UP sparse pages the type keeps to the join. */
typedef struct source_t {
    const char *join;         /* ids joined to the current versions */
    const char *ids;          /* ids alone (same order and limit) */
    int sparse;               /* sparse pages so far */
    long ranged, joined;      /* pages read each way (debug log) */
} source_t;

#define RANGE_FACTOR 4
#define RANGE_GIVE_UP 2

/* A column value that must outlive the reading of its rows: apr_dbd_pgsql frees a result
 * once its rows are read to the end (sqlite3's values stay in the pool until it is cleared,
 * as atr_db.h says), so pgsql's are copied into p. */
static const char *keep_col(const export_t *x, atr_db_rows_t *rows, apr_dbd_row_t *row, int col, apr_pool_t *p)
{
    const char *v = atr_db_col(rows, row, col);
    return v && x->copy_cols ? apr_pstrdup(p, v) : v;
}

/* A current version found in a range. */
typedef struct cur_t {
    const char *ver, *lu, *deleted;
} cur_t;

static void args_for(const char **args, export_t *x, const typectx_t *tc, const char *keyset, apr_pool_t *p)
{
    if (tc->prefix) {
        args[0] = x->gid;
        args[1] = x->gver;
    }
    else {
        args[0] = x->xid;
        args[1] = tc->type;
    }
    args[2] = keyset;
    args[3] = apr_itoa(p, x->page);
}

static void page_reset(export_t *x, page_t *pg)
{
    apr_pool_clear(pg->pool);
    pg->refs = apr_hash_make(pg->pool);
    pg->rows = apr_palloc(pg->pool, sizeof(row_t) * (apr_size_t)x->page);
    pg->n = 0;
    pg->rv = APR_SUCCESS;
}

static apr_status_t fetch_join(export_t *x, page_t *pg, const source_t *src, const typectx_t *tc, const char *keyset)
{
    const char *args[4];
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_status_t rv;

    page_reset(x, pg);
    args_for(args, x, tc, keyset, pg->pool);
    rv = atr_db_select(&rows, x->db, src->join, pg->pool, 4, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        row_t *r;
        if (pg->n == x->page) continue;   /* not more than LIMIT; drained all the same */
        r = &pg->rows[pg->n++];
        r->key = keep_col(x, rows, row, 0, pg->pool);
        r->ver = keep_col(x, rows, row, 1, pg->pool);
        r->lu = keep_col(x, rows, row, 2, pg->pool);
        r->deleted = keep_col(x, rows, row, 3, pg->pool);
        r->body = keep_col(x, rows, row, 4, pg->pool);
        if (!r->key) r->key = "";
    }
    return APR_SUCCESS;
}

/* The ids of the page, then its ranges; 1 in *psparse (pg left to be refetched with the
 * join) when a range does not hold every id of the page. */
static apr_status_t fetch_range(int *psparse, export_t *x, page_t *pg, const source_t *src, const typectx_t *tc,
                                const char *keyset)
{
    const char *args[4], *lo, *hi;
    atr_db_rows_t *rows;
    apr_dbd_row_t *row;
    apr_hash_t *cur, *bodies;
    apr_status_t rv;
    int i, limit, got;

    *psparse = 0;
    page_reset(x, pg);
    args_for(args, x, tc, keyset, pg->pool);
    rv = atr_db_select(&rows, x->db, src->ids, pg->pool, 4, args);
    if (rv != APR_SUCCESS) return rv;
    while (atr_db_next(&row, rows) == APR_SUCCESS) {
        const char *key;
        if (pg->n == x->page) continue;
        key = keep_col(x, rows, row, 0, pg->pool);
        memset(&pg->rows[pg->n], 0, sizeof(row_t));
        pg->rows[pg->n++].key = key ? key : "";
    }
    if (pg->n == 0) return APR_SUCCESS;
    lo = pg->rows[0].key + tc->prefix;
    hi = pg->rows[pg->n - 1].key + tc->prefix;
    limit = RANGE_FACTOR * pg->n + 16;

    /* current versions in [lo, hi] */
    cur = apr_hash_make(pg->pool);
    args[0] = tc->type;
    args[1] = lo;
    args[2] = hi;
    args[3] = apr_itoa(pg->pool, limit);
    rv = atr_db_select(&rows, x->db, "atr_exp_current_range", pg->pool, 4, args);
    if (rv != APR_SUCCESS) return rv;
    for (got = 0; atr_db_next(&row, rows) == APR_SUCCESS; got++) {
        const char *id = keep_col(x, rows, row, 0, pg->pool);
        cur_t *c = apr_palloc(pg->pool, sizeof(*c));
        c->ver = keep_col(x, rows, row, 1, pg->pool);
        c->lu = keep_col(x, rows, row, 2, pg->pool);
        c->deleted = keep_col(x, rows, row, 3, pg->pool);
        if (id) apr_hash_set(cur, id, APR_HASH_KEY_STRING, c);
    }
    if (got >= limit) {
        *psparse = 1;
        return APR_SUCCESS;
    }
    for (i = 0; i < pg->n; i++) {
        row_t *r = &pg->rows[i];
        const cur_t *c = apr_hash_get(cur, r->key + tc->prefix, APR_HASH_KEY_STRING);
        if (!c) {
            /* absent from the store, or outside the range: the join tells */
            *psparse = 1;
            return APR_SUCCESS;
        }
        r->ver = c->ver;
        r->lu = c->lu;
        r->deleted = c->deleted;
    }

    /* bodies of every version in [lo, hi], keyed "id\1version" */
    bodies = apr_hash_make(pg->pool);
    args[3] = apr_itoa(pg->pool, limit);
    rv = atr_db_select(&rows, x->db, "atr_exp_body_range", pg->pool, 4, args);
    if (rv != APR_SUCCESS) return rv;
    for (got = 0; atr_db_next(&row, rows) == APR_SUCCESS; got++) {
        const char *id = atr_db_col(rows, row, 0), *ver = atr_db_col(rows, row, 1);
        if (id && ver) apr_hash_set(bodies, apr_pstrcat(pg->pool, id, "\1", ver, NULL), APR_HASH_KEY_STRING,
                                    keep_col(x, rows, row, 2, pg->pool));
    }
    if (got >= limit) {
        *psparse = 1;
        return APR_SUCCESS;
    }
    for (i = 0; i < pg->n; i++) {
        row_t *r = &pg->rows[i];
        if (!r->ver || (r->deleted && strcmp(r->deleted, "0"))) continue;
        r->body = apr_hash_get(bodies, apr_pstrcat(pg->pool, r->key + tc->prefix, "\1", r->ver, NULL),
                               APR_HASH_KEY_STRING);
        if (!r->body) {
            *psparse = 1;
            return APR_SUCCESS;
        }
    }
    return APR_SUCCESS;
}

/* The page after keyset into pg (its pool cleared first). Store errors come back without a
 * message: the worker may be using x->p, the caller says what failed once it is idle. */
static apr_status_t fetch_page(export_t *x, page_t *pg, source_t *src, const typectx_t *tc, const char *keyset)
{
    apr_status_t rv;
    int sparse = 0;

    if (src->ids && src->sparse < RANGE_GIVE_UP) {
        rv = fetch_range(&sparse, x, pg, src, tc, keyset);
        if (rv != APR_SUCCESS || !sparse) {
            src->ranged++;
            return rv;
        }
        src->sparse++;
    }
    src->joined++;
    return fetch_join(x, pg, src, tc, keyset);
}

/* Read one type page by page, the worker turning each page into lines while the next one is
 * read. A whole Group's Patients and Coverages come from the member indexes (column 0 is
 * then the reference, "Patient/<id>", in order, a reference shared by several members on
 * adjacent rows); the rest from the collected references (column 0 the id). The references
 * found in a page are stored while the worker processes the next. */
static apr_status_t export_type(export_t *x, int t, apr_pool_t *p)
{
    const char *keyset, *what = NULL;
    source_t src;
    page_t pages[2], *prev = NULL;
    typectx_t tc;
    apr_status_t rv;
    int cur = 0, last = 0;

    memset(&tc, 0, sizeof(tc));
    tc.t = t;
    tc.type = atr_fhir_types[t];
    tc.follow = (t == T_COVERAGE || t == T_PRACTITIONERROLE);
    memset(&src, 0, sizeof(src));
    if (x->whole_group && t == T_PATIENT) {
        src.join = "atr_exp_patient_page";
        src.ids = "atr_exp_patient_refs";
        keyset = "Patient/";
        tc.prefix = 8;
    }
    else if (x->whole_group && t == T_COVERAGE) {
        src.join = "atr_exp_coverage_page";
        src.ids = "atr_exp_coverage_refs";
        keyset = "Coverage/";
        tc.prefix = 9;
    }
    else {
        src.join = "atr_exp_ref_page";
        src.ids = "atr_exp_ref_ids";
        keyset = "";
    }
    writer_init(&tc.w, x, tc.type, x->res->files);
    tc.out.write = buf_sink;
    tc.out.ctx = x;
    x->wk.tc = &tc;
    memset(pages, 0, sizeof(pages));
    pages[0].pool = own_pool(p);
    pages[1].pool = own_pool(p);

    rv = fetch_page(x, &pages[0], &src, &tc, keyset);
    if (rv != APR_SUCCESS) what = "read";
    while (rv == APR_SUCCESS) {
        page_t *pg = &pages[cur];

        last = pg->n < x->page;
        if (pg->n) keyset = pg->rows[pg->n - 1].key;
        worker_submit(x, pg);
        /* meanwhile: the previous page's references, progress, and the next page */
        if (prev) {
            rv = store_refs(x, prev->refs, prev->pool);
            if (rv != APR_SUCCESS) what = "store";
            if (rv == APR_SUCCESS && x->opts->progress) rv = x->opts->progress(x->opts->progress_baton, prev->total);
        }
        if (rv == APR_SUCCESS && !last) {
            rv = fetch_page(x, &pages[cur ^ 1], &src, &tc, keyset);
            if (rv != APR_SUCCESS) what = "read";
        }
        worker_wait(x);
        if (rv == APR_SUCCESS) rv = pg->rv;
        prev = pg;
        cur ^= 1;
        if (last) break;
    }
    if (rv == APR_SUCCESS && prev) {
        rv = store_refs(x, prev->refs, prev->pool);
        if (rv != APR_SUCCESS) what = "store";
        if (rv == APR_SUCCESS && x->opts->progress) rv = x->opts->progress(x->opts->progress_baton, prev->total);
    }
    /* the worker is idle from here on */
    x->wk.tc = NULL;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p, "ATR00711: export %s: %s: %ld pages read as ranges, %ld joined",
                   x->xid, tc.type, src.ranged, src.joined);
    if (what && !strcmp(what, "read")) rv = fail(x, rv, "cannot read %s: %s", tc.type, atr_db_error(x->db, rv));
    if (what && !strcmp(what, "store")) rv = fail(x, rv, "cannot record references: %s", atr_db_error(x->db, rv));
    if (rv == APR_SUCCESS) rv = writer_close(&tc.w);
    else writer_abort(&tc.w);
    if (rv == APR_SUCCESS && x->want[t] && x->res->missing[t]) {
        add_issue(x, "warning", "not-found",
                  apr_psprintf(p, "%ld referenced %s resource%s not in the store (or deleted): not exported",
                               x->res->missing[t], tc.type, x->res->missing[t] == 1 ? " is" : "s are"));
    }
    apr_pool_destroy(pages[0].pool);
    apr_pool_destroy(pages[1].pool);
    return rv;
}

/* ---- setup ---- */

static apr_status_t check_opts(export_t *x, const atr_export_opts_t *o)
{
    int i, t;
    apr_time_t tm;

    if (!o->group_id || !atr_fhir_is_id(o->group_id)) {
        return fail(x, APR_EINVAL, "Group id '%s' is not a valid FHIR id", o->group_id ? o->group_id : "");
    }
    if (!o->outdir || !*o->outdir) return fail(x, APR_EINVAL, "no output directory");
    if (!o->types || o->types->nelts == 0) {
        for (t = 0; t < ATR_EXPORT_NTYPES; t++) x->want[t] = 1;
    }
    for (i = 0; o->types && i < o->types->nelts; i++) {
        const char *type = APR_ARRAY_IDX(o->types, i, const char *);
        t = atr_export_type_index(type);
        if (t < 0) {
            return fail(x, APR_EINVAL, "'%s' is not a resource type of the attribution list export", type);
        }
        x->want[t] = 1;
    }
    if (o->since) {
        if (atr_time_parse_instant(&tm, o->since) != APR_SUCCESS) {
            return fail(x, APR_EINVAL, "_since '%s' is not a FHIR instant", o->since);
        }
        x->since = atr_time_instant(tm, x->p);
    }
    if (o->until) {
        if (atr_time_parse_instant(&tm, o->until) != APR_SUCCESS) {
            return fail(x, APR_EINVAL, "_until '%s' is not a FHIR instant", o->until);
        }
        x->until = atr_time_instant(tm, x->p);
    }
    for (i = 0; o->patients && i < o->patients->nelts; i++) {
        const char *ref = APR_ARRAY_IDX(o->patients, i, const char *);
        if (!ref || strncmp(ref, "Patient/", 8) || !atr_fhir_is_id(ref + 8)) {
            return fail(x, APR_EINVAL, "patient '%s' is not a Patient reference (Patient/id)", ref ? ref : "");
        }
    }
    if (o->export_id && (!*o->export_id || strlen(o->export_id) > ATR_EXPORT_ID_MAX)) {
        return fail(x, APR_EINVAL, "export id must be 1 to %d characters", ATR_EXPORT_ID_MAX);
    }
    x->max = o->max_file_size > 0 ? o->max_file_size : ATR_EXPORT_DEFAULT_MAX_FILE;
    x->page = o->page_size > 0 ? o->page_size : DEFAULT_PAGE;
    /* what must be read: the wanted types and those whose references lead to them */
    memcpy(x->need, x->want, sizeof(x->need));
    if (x->want[T_RELATEDPERSON] || x->want[T_ORGANIZATION]) x->need[T_COVERAGE] = 1;
    if (x->want[T_PRACTITIONER] || x->want[T_ORGANIZATION] || x->want[T_LOCATION]) x->need[T_PRACTITIONERROLE] = 1;
    return APR_SUCCESS;
}

/* The references of the members of one entity_ref (the patient filter). */
static apr_status_t collect_for(export_t *x, const char *entity, apr_pool_t *ptemp)
{
    apr_status_t rv = APR_SUCCESS;

    if (x->need[T_PATIENT]) rv = collect_members(x, "atr_exp_ref_entity_p", "Patient", entity, ptemp);
    if (rv == APR_SUCCESS && x->need[T_COVERAGE]) {
        rv = collect_members(x, "atr_exp_ref_coverage_p", "Coverage", entity, ptemp);
    }
    if (rv == APR_SUCCESS && x->need[T_PRACTITIONER]) {
        rv = collect_members(x, "atr_exp_ref_provider_p", "Practitioner", entity, ptemp);
    }
    if (rv == APR_SUCCESS && x->need[T_PRACTITIONERROLE]) {
        rv = collect_members(x, "atr_exp_ref_provider_p", "PractitionerRole", entity, ptemp);
    }
    if (rv == APR_SUCCESS && x->need[T_ORGANIZATION]) {
        rv = collect_members(x, "atr_exp_ref_provider_p", "Organization", entity, ptemp);
    }
    return rv;
}

/* EXP-06: only the listed members; a reference that is not a member of this Group version
 * is reported in the error file and otherwise ignored. */
static apr_status_t collect_patients(export_t *x, apr_pool_t *p)
{
    apr_pool_t *ptemp;
    apr_status_t rv = APR_SUCCESS;
    int i;

    apr_pool_create(&ptemp, p);
    for (i = 0; rv == APR_SUCCESS && i < x->opts->patients->nelts; i++) {
        const char *ref = APR_ARRAY_IDX(x->opts->patients, i, const char *), *args[2];
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;

        apr_pool_clear(ptemp);
        args[0] = x->gid;
        args[1] = ref;
        rv = atr_db_select(&rows, x->db, "atr_ent_member_entity", ptemp, 2, args);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "cannot check the members: %s", atr_db_error(x->db, rv));
            break;
        }
        if (atr_db_next(&row, rows) != APR_SUCCESS) {
            x->res->not_members++;
            add_issue(x, "error", "not-found",
                      apr_psprintf(x->p, "patient %s is not a member of Group/%s: ignored", ref, x->gid));
            continue;
        }
        while (atr_db_next(&row, rows) == APR_SUCCESS) {}
        rv = collect_for(x, ref, ptemp);
    }
    apr_pool_destroy(ptemp);
    return rv;
}

/* An attributed provider reference (member provider_ref) of a type the export reads goes to
 * refs: the same rule as atr_exp_ref_providers. */
static void note_provider(export_t *x, apr_hash_t *refs, const char *ref)
{
    const char *slash = ref ? strchr(ref, '/') : NULL;
    apr_size_t n;
    int t;

    if (!slash || !slash[1]) return;
    n = (apr_size_t)(slash - ref);
    if (n == 12 && !memcmp(ref, "Practitioner", 12)) t = T_PRACTITIONER;
    else if (n == 16 && !memcmp(ref, "PractitionerRole", 16)) t = T_PRACTITIONERROLE;
    else if (n == 12 && !memcmp(ref, "Organization", 12)) t = T_ORGANIZATION;
    else return;
    if (x->need[t] && !apr_hash_get(refs, ref, APR_HASH_KEY_STRING)) {
        ref = apr_pstrdup(apr_hash_pool_get(refs), ref);
        apr_hash_set(refs, ref, APR_HASH_KEY_STRING, ref);
    }
}

/* The Group line as atr_render_resource writes it (the body spliced like every other type,
 * then the member array), streamed page by page from the member rows; the attributed
 * providers are collected on the way when providers is set, which saves a second scan of
 * the members. 0 in *pdone when the body has a shape only the renderer handles. */
static apr_status_t group_line_fast(int *pdone, export_t *x, writer_t *w, const atr_resource_t *g, int providers,
                                    apr_pool_t *p)
{
    const char *body = g->body, *ver = apr_itoa(p, g->version), *args[4];
    apr_size_t len = strlen(body), mlen;
    char meta[128];
    piece_t pc[5];
    spans_t sp;
    apr_pool_t *ptemp;
    apr_status_t rv = APR_SUCCESS;
    int npc = 0, i;
    long members = 0, last = 0;

    *pdone = 0;
    scan_plain(body, len, &sp);
    mlen = meta_text(meta, ver, g->last_updated);
    if (len < 2 || body[len - 1] != '}' || !splice(pc, &npc, body, len, &sp, meta, mlen)) return APR_SUCCESS;
    *pdone = 1;
    pc[npc - 1].n--;   /* without the final '}': the member array comes first */
    for (i = 0; rv == APR_SUCCESS && i < npc; i++) rv = writer_raw(w, pc[i].s, pc[i].n);
    apr_pool_create(&ptemp, p);
    args[0] = g->id;
    args[1] = ver;
    while (rv == APR_SUCCESS) {
        atr_db_rows_t *rows;
        apr_dbd_row_t *row;
        apr_hash_t *refs;
        int n = 0;

        apr_pool_clear(ptemp);
        refs = apr_hash_make(ptemp);
        args[2] = apr_ltoa(ptemp, last);
        args[3] = apr_itoa(ptemp, x->page);
        rv = atr_db_select(&rows, x->db, "atr_exp_member_page", ptemp, 4, args);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "cannot render Group/%s: %s", g->id, atr_db_error(x->db, rv));
            break;
        }
        while (atr_db_next(&row, rows) == APR_SUCCESS) {
            const char *seq = atr_db_col(rows, row, 0), *mb = atr_db_col(rows, row, 1);
            n++;
            last = seq ? atol(seq) : last + 1;
            if (rv != APR_SUCCESS) continue;   /* drain the rows */
            rv = members++ ? writer_raw(w, ",", 1) : writer_raw(w, ",\"member\":[", 11);
            if (rv == APR_SUCCESS) rv = writer_raw(w, mb ? mb : "{}", mb ? strlen(mb) : 2);
            if (providers) note_provider(x, refs, atr_db_col(rows, row, 2));
        }
        if (rv == APR_SUCCESS && (rv = store_refs(x, refs, ptemp)) != APR_SUCCESS) {
            rv = fail(x, rv, "cannot record references: %s", atr_db_error(x->db, rv));
        }
        if (n < x->page) break;
    }
    apr_pool_destroy(ptemp);
    if (rv == APR_SUCCESS && members) rv = writer_raw(w, "]", 1);
    if (rv == APR_SUCCESS) rv = writer_raw(w, "}", 1);
    return rv;
}

/* The Group line; *pproviders set when the attributed providers were collected with it. */
static apr_status_t export_group_line(int *pproviders, export_t *x, const atr_resource_t *g, apr_pool_t *p)
{
    writer_t w;
    atr_out_t out;
    atr_render_opts_t ropts = { ATR_SUMMARY_FALSE, NULL, 0 };
    apr_status_t rv;
    int done = 0;

    *pproviders = 0;
    writer_init(&w, x, "Group", x->res->files);
    rv = writer_open(&w);
    if (rv != APR_SUCCESS) return rv;
    if (x->fast) {
        int providers = x->whole_group
                        && (x->need[T_PRACTITIONER] || x->need[T_PRACTITIONERROLE] || x->need[T_ORGANIZATION]);
        rv = group_line_fast(&done, x, &w, g, providers, p);
        if (done) *pproviders = providers;
    }
    if (rv == APR_SUCCESS && !done) {
        out.write = file_sink;
        out.ctx = &w;
        /* streamed straight to the file: the member list can be any size */
        rv = atr_render_resource(&out, x->db, g, &ropts, p);
        if (rv != APR_SUCCESS && !*x->perr) {
            rv = fail(x, rv, "cannot render Group/%s: %s", g->id, atr_db_error(x->db, rv));
        }
    }
    if (rv == APR_SUCCESS) rv = writer_raw(&w, "\n", 1);
    if (rv == APR_SUCCESS) {
        w.cur->count = 1;
        x->res->counts[T_GROUP] = 1;
        x->res->total++;
        rv = writer_close(&w);
    }
    else {
        writer_abort(&w);
    }
    return rv;
}

static apr_status_t write_issues(export_t *x)
{
    writer_t w;
    apr_status_t rv = APR_SUCCESS;
    int i;

    writer_init(&w, x, "OperationOutcome", x->res->errors);
    for (i = 0; rv == APR_SUCCESS && i < x->issues->nelts; i++) {
        const char *line = APR_ARRAY_IDX(x->issues, i, const char *);
        rv = writer_line(&w, line, strlen(line));
    }
    if (rv == APR_SUCCESS) rv = writer_close(&w);
    else writer_abort(&w);
    return rv;
}

apr_status_t atr_export_group(atr_export_result_t **pres, atr_db_t *db, const atr_export_opts_t *opts,
                              const char **perr, apr_pool_t *pcaller)
{
    /* everything of the run in a child pool with its own allocator: the page worker
     * allocates in it while the caller's progress callback may use the caller's pools */
    apr_pool_t *p = own_pool(pcaller);
    export_t *x = apr_pcalloc(p, sizeof(*x));
    atr_resource_t *g = NULL;
    apr_pool_t *ptemp = NULL;
    apr_status_t rv;
    int i, scratch = 0, providers = 0;
    const char *dummy = NULL;
    apr_time_t t0 = apr_time_now();

    if (!perr) perr = &dummy;
    *perr = NULL;
    *pres = NULL;
    x->db = db;
    x->opts = opts;
    x->p = p;
    x->perr = perr;
    x->fast = !opts->jansson_render;
    x->copy_cols = db->driver_name && !strcmp(db->driver_name, "pgsql");
    x->res = apr_pcalloc(p, sizeof(*x->res));
    x->res->files = apr_array_make(p, 8, sizeof(atr_export_file_t));
    x->res->errors = apr_array_make(p, 1, sizeof(atr_export_file_t));
    x->created = apr_array_make(p, 8, sizeof(const char *));
    x->issues = apr_array_make(p, 4, sizeof(const char *));
    x->seen_pool = own_pool(p);
    x->seen = apr_hash_make(x->seen_pool);
    apr_pool_cleanup_register(p, x, free_buf, apr_pool_cleanup_null);

    rv = check_opts(x, opts);
    if (rv == APR_SUCCESS) rv = add_caller_issues(x, opts->issues);
    if (rv != APR_SUCCESS) goto leave;
    apr_pool_create(&ptemp, p);
    rv = atr_store_get(&g, db, "Group", opts->group_id, 0, p);
    if (rv == APR_NOTFOUND || (rv == APR_SUCCESS && g->deleted)) {
        rv = fail(x, APR_NOTFOUND, "Group/%s is not in the store", opts->group_id);
        goto leave;
    }
    if (rv != APR_SUCCESS) {
        rv = fail(x, rv, "cannot read Group/%s: %s", opts->group_id, atr_db_error(db, rv));
        goto leave;
    }
    x->res->group_version = apr_itoa(p, g->version);
    if (opts->export_id) {
        x->xid = opts->export_id;
        /* a key the caller chose may hold what an earlier run under it left behind: those
         * rows would be taken for this run's references */
        rv = atr_export_forget(db, x->xid, ptemp);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "cannot clear the scratch rows of export %s: %s", x->xid, atr_db_error(db, rv));
            goto leave;
        }
    }
    else {
        rv = atr_id_hex(&x->xid, EXPORT_ID_BYTES, p);
        if (rv != APR_SUCCESS) {
            rv = fail(x, rv, "no random bytes for the export id");
            goto leave;
        }
    }
    scratch = 1;
    atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, ptemp, "ATR00701: export %s: Group/%s version %d to %s",
                   x->xid, g->id, g->version, opts->outdir);

    x->gid = g->id;
    x->gver = x->res->group_version;
    x->whole_group = !(opts->patients && opts->patients->nelts > 0);
    if (!x->whole_group) rv = collect_patients(x, p);
    if (rv == APR_SUCCESS) rv = flusher_start(x);
    if (rv != APR_SUCCESS) goto leave;
    worker_start(x);

    if (x->want[T_GROUP]) {
        rv = export_group_line(&providers, x, g, ptemp);
        if (rv != APR_SUCCESS) goto leave;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, ptemp, "ATR00707: export %s: Group line in %.2f s",
                       x->xid, (double)(apr_time_now() - t0) / APR_USEC_PER_SEC);
    }
    if (x->whole_group && !providers) {
        t0 = apr_time_now();
        rv = collect_providers(x, ptemp);
        if (rv != APR_SUCCESS) goto leave;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, ptemp,
                       "ATR00706: export %s: attributed providers collected in %.2f s", x->xid,
                       (double)(apr_time_now() - t0) / APR_USEC_PER_SEC);
    }
    for (i = 0; i < (int)(sizeof(read_order) / sizeof(read_order[0])); i++) {
        if (!x->need[read_order[i]]) continue;
        t0 = apr_time_now();
        rv = export_type(x, read_order[i], p);
        if (rv != APR_SUCCESS) goto leave;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, ptemp, "ATR00708: export %s: %s: %ld written in %.2f s",
                       x->xid, atr_fhir_types[read_order[i]], x->res->counts[read_order[i]],
                       (double)(apr_time_now() - t0) / APR_USEC_PER_SEC);
    }
    /* output files in atr_fhir_types order, whatever order they were read in */
    if (x->res->files->nelts > 1) {
        apr_array_header_t *sorted = apr_array_make(p, x->res->files->nelts, sizeof(atr_export_file_t));
        int t, k;
        for (t = 0; t < ATR_EXPORT_NTYPES; t++) {
            for (k = 0; k < x->res->files->nelts; k++) {
                atr_export_file_t *f = &APR_ARRAY_IDX(x->res->files, k, atr_export_file_t);
                if (!strcmp(f->type, atr_fhir_types[t])) *(atr_export_file_t *)apr_array_push(sorted) = *f;
            }
        }
        x->res->files = sorted;
    }
    rv = write_issues(x);

leave:
    if (scratch) {
        apr_status_t rv2;
        if (!ptemp) apr_pool_create(&ptemp, p);
        apr_pool_clear(ptemp);
        rv2 = atr_export_forget(db, x->xid, ptemp);
        if (rv2 != APR_SUCCESS) {
            atr_log_perror(ATR_LOG_MARK, ATR_LOG_WARNING, rv2, ptemp,
                           "ATR00702: export %s: cannot remove its scratch rows: %s", x->xid, atr_db_error(db, rv2));
        }
    }
    if (rv != APR_SUCCESS) {
        discard_files(x);
        if (!*perr) *perr = "export failed";
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, rv, p, "ATR00703: export of Group/%s failed: %s",
                       opts->group_id ? opts->group_id : "", *perr);
    }
    else {
        *pres = x->res;
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p, "ATR00704: export %s: %ld resources in %d files",
                       x->xid, x->res->total, x->res->files->nelts);
    }
    if (ptemp) apr_pool_destroy(ptemp);
    free_buf(x);
    return rv;
}

apr_status_t atr_export_forget(atr_db_t *db, const char *export_id, apr_pool_t *p)
{
    const char *args[1];
    apr_status_t rv;

    if (!export_id || !*export_id) return APR_EINVAL;
    args[0] = export_id;
    rv = atr_db_exec(db, NULL, "atr_exp_ref_delete", p, 1, args);
    if (rv == APR_SUCCESS) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_DEBUG, APR_SUCCESS, p, "ATR00705: export %s: scratch rows removed",
                       export_id);
    }
    return rv;
}
