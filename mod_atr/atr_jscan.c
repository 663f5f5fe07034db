/* Validating, compacting JSON scanner (see atr_jscan.h for why it exists). */
#include <stdlib.h>
#include <string.h>
#include "atr_jscan.h"

#define MAX_DEPTH 512          /* jansson's own limit is 2048; deeper goes to jansson */
#define MAX_INT_DIGITS 18      /* fits json_int_t; longer integers go to jansson */
#define LOCAL_KEYS 32

typedef struct scan_t {
    char *b;                   /* input and (compacted) output */
    apr_size_t r, w, n;        /* read, write, input length */
    atr_jscan_t *out;
} scan_t;

typedef struct jkey_t {
    apr_size_t s, len;         /* raw key text in the output, without quotes */
} jkey_t;

static int value(scan_t *sc, int depth, int in_meta);

static void ws(scan_t *sc)
{
    while (sc->r < sc->n) {
        char c = sc->b[sc->r];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        sc->r++;
    }
}

static int hex4(scan_t *sc)
{
    int i;
    for (i = 0; i < 4; i++) {
        char c;
        if (sc->r >= sc->n) return 0;
        c = sc->b[sc->r];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return 0;
        sc->b[sc->w++] = c;
        sc->r++;
    }
    return 1;
}

/* One UTF-8 sequence starting with lead byte c (>= 0x80), as strict as jansson. */
static int utf8(scan_t *sc, unsigned char c)
{
    unsigned int cp, need, min, i;

    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
    else return 0;
    sc->b[sc->w++] = (char)c;
    for (i = 0; i < need; i++) {
        unsigned char cc;
        if (sc->r >= sc->n) return 0;
        cc = (unsigned char)sc->b[sc->r];
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3F);
        sc->b[sc->w++] = (char)cc;
        sc->r++;
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return 1;
}

/* A string at sc->r (on its opening quote). */
static int string(scan_t *sc)
{
    sc->b[sc->w++] = '"';
    sc->r++;
    while (sc->r < sc->n) {
        unsigned char c = (unsigned char)sc->b[sc->r++];
        if (c == '"') {
            sc->b[sc->w++] = '"';
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            char e;
            if (sc->r >= sc->n) return 0;
            e = sc->b[sc->r++];
            sc->b[sc->w++] = '\\';
            sc->b[sc->w++] = e;
            switch (e) {
            case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
                break;
            case '/':
                sc->out->canonical = 0;  /* jansson writes a plain '/' */
                break;
            case 'u':
                sc->out->canonical = 0;  /* jansson writes the character itself */
                if (!hex4(sc)) return 0;
                break;
            default:
                return 0;
            }
            continue;
        }
        if (c >= 0x80) {
            if (!utf8(sc, c)) return 0;
            continue;
        }
        sc->b[sc->w++] = (char)c;
    }
    return 0;
}

static int number(scan_t *sc)
{
    apr_size_t start = sc->r, digits = 0;
    int neg = 0;

    if (sc->b[sc->r] == '-') {
        neg = 1;
        sc->r++;
    }
    if (sc->r >= sc->n) return 0;
    if (sc->b[sc->r] == '0') {
        sc->r++;
        digits = 1;
        if (neg) sc->out->canonical = 0;  /* -0 is written 0 */
    }
    else if (sc->b[sc->r] >= '1' && sc->b[sc->r] <= '9') {
        while (sc->r < sc->n && sc->b[sc->r] >= '0' && sc->b[sc->r] <= '9') {
            sc->r++;
            digits++;
        }
    }
    else return 0;
    if (digits > MAX_INT_DIGITS) sc->out->canonical = 0;
    if (sc->r < sc->n && sc->b[sc->r] == '.') {
        apr_size_t frac = 0;
        sc->r++;
        while (sc->r < sc->n && sc->b[sc->r] >= '0' && sc->b[sc->r] <= '9') {
            sc->r++;
            frac++;
        }
        if (!frac) return 0;
        sc->out->canonical = 0;  /* reals are re-formatted by jansson */
    }
    if (sc->r < sc->n && (sc->b[sc->r] == 'e' || sc->b[sc->r] == 'E')) {
        apr_size_t exp = 0;
        sc->r++;
        if (sc->r < sc->n && (sc->b[sc->r] == '+' || sc->b[sc->r] == '-')) sc->r++;
        while (sc->r < sc->n && sc->b[sc->r] >= '0' && sc->b[sc->r] <= '9') {
            sc->r++;
            exp++;
        }
        if (!exp) return 0;
        sc->out->canonical = 0;
    }
    memmove(sc->b + sc->w, sc->b + start, sc->r - start);
    sc->w += sc->r - start;
    return 1;
}

static int literal(scan_t *sc, const char *word)
{
    apr_size_t n = strlen(word);
    if (sc->n - sc->r < n || memcmp(sc->b + sc->r, word, n)) return 0;
    memmove(sc->b + sc->w, word, n);
    sc->r += n;
    sc->w += n;
    return 1;
}

static int key_is(scan_t *sc, const jkey_t *k, const char *name)
{
    apr_size_t n = strlen(name);
    return k->len == n && !memcmp(sc->b + k->s, name, n);
}

static int array(scan_t *sc, int depth, apr_size_t *pcount)
{
    apr_size_t count = 0;

    sc->b[sc->w++] = '[';
    sc->r++;
    ws(sc);
    if (sc->r < sc->n && sc->b[sc->r] == ']') {
        sc->b[sc->w++] = ']';
        sc->r++;
        if (pcount) *pcount = 0;
        return 1;
    }
    for (;;) {
        if (!value(sc, depth + 1, 0)) return 0;
        count++;
        ws(sc);
        if (sc->r >= sc->n) return 0;
        if (sc->b[sc->r] == ']') break;
        if (sc->b[sc->r] != ',') return 0;
        sc->b[sc->w++] = ',';
        sc->r++;
        ws(sc);
    }
    sc->b[sc->w++] = ']';
    sc->r++;
    if (pcount) *pcount = count;
    return 1;
}

/* depth 1 = the resource itself: its spans are recorded. in_meta: this is resource.meta. */
static int object(scan_t *sc, int depth, int in_meta)
{
    jkey_t local[LOCAL_KEYS], *keys = local;
    apr_size_t nkeys = 0, cap = LOCAL_KEYS, i;
    int ok = 0;

    sc->b[sc->w++] = '{';
    sc->r++;
    ws(sc);
    if (sc->r < sc->n && sc->b[sc->r] == '}') {
        sc->b[sc->w++] = '}';
        sc->r++;
        return 1;
    }
    for (;;) {
        jkey_t k;
        apr_size_t pair_s = sc->w, vs;

        if (sc->r >= sc->n || sc->b[sc->r] != '"') goto leave;
        if (!string(sc)) goto leave;
        k.s = pair_s + 1;
        k.len = sc->w - pair_s - 2;
        if (memchr(sc->b + k.s, '\\', k.len)) sc->out->canonical = 0;
        for (i = 0; i < nkeys; i++) {
            if (keys[i].len == k.len && !memcmp(sc->b + keys[i].s, sc->b + k.s, k.len)) goto leave;
        }
        if (nkeys == cap) {
            jkey_t *more = malloc(sizeof(jkey_t) * cap * 2);
            if (!more) goto leave;
            memcpy(more, keys, sizeof(jkey_t) * nkeys);
            if (keys != local) free(keys);
            keys = more;
            cap *= 2;
        }
        keys[nkeys++] = k;
        ws(sc);
        if (sc->r >= sc->n || sc->b[sc->r] != ':') goto leave;
        sc->b[sc->w++] = ':';
        sc->r++;
        ws(sc);
        vs = sc->w;
        if (in_meta && (key_is(sc, &k, "versionId") || key_is(sc, &k, "lastUpdated"))) sc->out->meta_version = 1;
        if (depth == 1 && key_is(sc, &k, "member") && sc->r < sc->n && sc->b[sc->r] == '[') {
            if (!array(sc, depth, &sc->out->member_count)) goto leave;
        }
        else if (!value(sc, depth, depth == 1 && key_is(sc, &k, "meta"))) {
            goto leave;
        }
        if (depth == 1) {
            atr_jscan_t *o = sc->out;
            if (key_is(sc, &k, "resourceType")) { o->type_s = vs; o->type_e = sc->w; }
            else if (key_is(sc, &k, "id")) { o->id_s = vs; o->id_e = sc->w; }
            else if (key_is(sc, &k, "meta")) { o->meta_s = vs; o->meta_e = sc->w; }
            else if (key_is(sc, &k, "member")) {
                o->member_s = vs;
                o->member_e = sc->w;
                /* with its comma: the one before it, or after it when it comes first */
                o->member_pair_s = nkeys > 1 ? pair_s - 1 : pair_s;
                o->member_pair_e = sc->w;
            }
        }
        ws(sc);
        if (sc->r >= sc->n) goto leave;
        if (sc->b[sc->r] == '}') break;
        if (sc->b[sc->r] != ',') goto leave;
        sc->b[sc->w++] = ',';
        sc->r++;
        ws(sc);
    }
    sc->b[sc->w++] = '}';
    sc->r++;
    ok = 1;
leave:
    if (keys != local) free(keys);
    return ok;
}

static int value(scan_t *sc, int depth, int in_meta)
{
    char c;

    if (depth > MAX_DEPTH || sc->r >= sc->n) return 0;
    c = sc->b[sc->r];
    switch (c) {
    case '{': return object(sc, depth + 1, in_meta);
    case '[': return array(sc, depth, NULL);
    case '"': return string(sc);
    case 't': return literal(sc, "true");
    case 'f': return literal(sc, "false");
    case 'n': return literal(sc, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(sc);
        return 0;
    }
}

int atr_jscan_object(atr_jscan_t *scan, char *buf, apr_size_t len)
{
    scan_t sc;

    memset(scan, 0, sizeof(*scan));
    scan->canonical = 1;
    sc.b = buf;
    sc.r = sc.w = 0;
    sc.n = len;
    sc.out = scan;
    ws(&sc);
    if (sc.r >= sc.n || sc.b[sc.r] != '{') return 0;
    if (!object(&sc, 1, 0)) return 0;
    ws(&sc);
    if (sc.r != sc.n) return 0;
    scan->len = sc.w;
    if (scan->member_e && scan->member_pair_s == scan->member_s - strlen("\"member\":")
        && scan->member_pair_e < sc.w && buf[scan->member_pair_e] == ',') {
        scan->member_pair_e++;  /* member came first: take the comma after it */
    }
    return 1;
}

/* End of the string whose opening quote is at buf[i]: index of its closing quote (or end). */
static apr_size_t string_end(const char *buf, apr_size_t i, apr_size_t end)
{
    i++;
    while (i < end) {
        const char *q = memchr(buf + i, '"', end - i);
        apr_size_t j, bs = 0;
        if (!q) return end;
        j = (apr_size_t)(q - buf);
        while (j - bs > i && buf[j - bs - 1] == '\\') bs++;
        if (bs % 2 == 0) return j;  /* not escaped */
        i = j + 1;
    }
    return end;
}

int atr_jscan_next(const char *buf, apr_size_t *pos, apr_size_t end, apr_size_t *ps, apr_size_t *pe)
{
    apr_size_t i = *pos;
    int depth = 0;

    if (i >= end || buf[i] == ']' || buf[i] == '}') return 0;
    *ps = i;
    for (; i < end; i++) {
        char c = buf[i];
        if (c == '"') i = string_end(buf, i, end);
        else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0) break;  /* the enclosing array's or object's end */
            depth--;
        }
        else if (c == ',' && depth == 0) break;
    }
    *pe = i;
    *pos = (i < end && buf[i] == ',') ? i + 1 : i;
    return 1;
}

int atr_jscan_pair(const char *t, apr_size_t *pos, apr_size_t e, apr_size_t *pks, apr_size_t *pke,
                   apr_size_t *pvs, apr_size_t *pve)
{
    apr_size_t ks = *pos, ke;

    if (ks >= e || t[ks] != '"') return 0;
    ke = string_end(t, ks, e);
    if (ke + 1 >= e || t[ke + 1] != ':') return 0;
    *pos = ke + 2;
    if (!atr_jscan_next(t, pos, e, pvs, pve)) return 0;
    *pks = ks + 1;
    *pke = ke;
    return 1;
}

int atr_jscan_field(const char *t, apr_size_t s, apr_size_t e, const char *key,
                    apr_size_t *pvs, apr_size_t *pve)
{
    apr_size_t klen = strlen(key), pos, ks, ke;

    if (s >= e || t[s] != '{') return 0;
    pos = s + 1;
    while (atr_jscan_pair(t, &pos, e, &ks, &ke, pvs, pve)) {
        if (ke - ks == klen && !memcmp(t + ks, key, klen)) return 1;
    }
    return 0;
}
