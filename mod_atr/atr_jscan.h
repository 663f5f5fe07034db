/* A validating JSON scanner for the loader's fast path: it compacts a resource line in place
 * without building a tree, so bulk loads skip jansson's allocation-heavy parse, and a Group of
 * a million members is never held as a tree (its members are cut out of the text one by one).
 * Anything unusual (invalid JSON, escapes or numbers jansson would re-spell) is left to the
 * jansson path, which also produces the error messages. */
#ifndef ATR_JSCAN_H
#define ATR_JSCAN_H
#include <apr.h>

typedef struct atr_jscan_t {
    apr_size_t len;           /* length of the compacted text, written over the input */
    int canonical;            /* 1: the text is exactly what atr_json_dump would write */
    int meta_version;         /* meta has versionId or lastUpdated */
    /* top-level value spans [s, e) in the compacted text; s == e == 0 when absent */
    apr_size_t type_s, type_e;    /* "resourceType" value, with quotes */
    apr_size_t id_s, id_e;        /* "id" value */
    apr_size_t meta_s, meta_e;    /* "meta" value */
    apr_size_t member_s, member_e;            /* "member" value */
    apr_size_t member_pair_s, member_pair_e;  /* the "member" pair with one adjacent comma */
    apr_size_t member_count;                  /* elements of member when it is an array */
} atr_jscan_t;

/* 1 when buf[0..len) is one JSON object (RFC 8259, UTF-8, no duplicate keys at any level,
 * whitespace around it allowed); buf is compacted in place (scan->len). 0 otherwise: the
 * buffer content is then undefined, callers re-read it with jansson from a copy. */
int atr_jscan_object(atr_jscan_t *scan, char *buf, apr_size_t len);

/* Next element of a compacted array whose text is buf[*pos..end): *pos starts just after
 * '['. 1 and [*ps, *pe) = the element, *pos moved past it and its comma; 0 at ']'. */
int atr_jscan_next(const char *buf, apr_size_t *pos, apr_size_t end, apr_size_t *ps, apr_size_t *pe);

/* Next key/value pair of a compacted object whose text is t[*pos..e): *pos starts just
 * after '{'. 1 with the raw key [*pks, *pke) (no quotes) and value [*pvs, *pve); 0 at '}'. */
int atr_jscan_pair(const char *t, apr_size_t *pos, apr_size_t e, apr_size_t *pks, apr_size_t *pke,
                   apr_size_t *pvs, apr_size_t *pve);

/* In the compact object text t[s..e) (as atr_jscan_object or atr_json_dump write it), the
 * value of key at its top level: 1 and [*pvs, *pve), or 0 when absent (or not an object). */
int atr_jscan_field(const char *t, apr_size_t s, apr_size_t e, const char *key,
                    apr_size_t *pvs, apr_size_t *pve);

#endif
