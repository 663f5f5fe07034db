/* Kick-off parameters of a Group bulk export. The query string and the Parameters body are
 * first brought to one list of (name, string value) entries, the body's shape checked on
 * the way; the rules then run once over that list, so GET and POST cannot drift apart.
 * Malformed input is always refused; only "we do not do that" cases bend under lenient. */
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <jansson.h>
#include "atr_bulk_params.h"
#include "atr_export.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_search.h"
#include "atr_time.h"

#define OUTPUT_FORMAT_DEFAULT "application/fhir+ndjson"

/* One parameter, wherever it came from. */
typedef struct entry_t {
    const char *name;      /* as the client spelled it */
    const char *canon;     /* the parameter it means: "_type" for its alias resourceTypes */
    const char *value;     /* string value; for a body `patient`, the reference; NULL for a
                            * body parameter we do not support (its value is never read) */
    const char *where;     /* for messages: "query parameter _since", "Parameters.parameter[2] (_since)" */
    int in_body;
} entry_t;

typedef struct parse_t {
    atr_bulk_params_t *params;
    atr_bulk_error_t *err;
    atr_bulk_op_e op;
    int lenient;
    apr_pool_t *p;
    int want[ATR_EXPORT_NTYPES];
    const char *type_name;          /* first spelling of _type used, for messages; NULL = absent */
    int types_ignored;              /* unknown types dropped under lenient */
    apr_time_t since_t, until_t;
    int have_output_format, have_export_type;
    apr_hash_t *patients_seen;
} parse_t;

/* Primitive FHIR types whose JSON form is a string: any of them may carry a string
 * parameter (clients use valueString, valueCode, valueInstant, valueCanonical, ...). */
static const char *const string_value_types[] = {
    "Base64Binary", "Canonical", "Code", "Date", "DateTime", "Id", "Instant", "Markdown", "Oid",
    "String", "Time", "Uri", "Url", "Uuid", NULL
};

static const char *const minimum_types[] = { "Group", "Patient", "Coverage", NULL };

static const char *const output_formats[] = {
    OUTPUT_FORMAT_DEFAULT, "application/ndjson", "ndjson", NULL
};

static apr_status_t fail(parse_t *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static apr_status_t fail(parse_t *x, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    x->err->status = 400;
    x->err->code = code;
    x->err->text = apr_pvsprintf(x->p, fmt, ap);
    va_end(ap);
    return APR_EINVAL;
}

/* A lenient note; the same sentence twice (a parameter repeated) is noted once. */
static void note(parse_t *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(parse_t *x, const char *code, const char *fmt, ...)
{
    va_list ap;
    const char *text;
    int i;

    va_start(ap, fmt);
    text = apr_pvsprintf(x->p, fmt, ap);
    va_end(ap);
    for (i = 0; i < x->params->issues->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(x->params->issues, i, atr_export_issue_t).text, text)) return;
    }
    APR_ARRAY_PUSH(x->params->issues, atr_export_issue_t) = (atr_export_issue_t){ "warning", code, text };
}

/* "Not supported": refused, or under lenient ignored with a note saying so. */
static apr_status_t unsupported(parse_t *x, const char *sentence)
{
    if (!x->lenient) return fail(x, "not-supported", "%s", sentence);
    note(x, "not-supported", "%s; it was ignored (Prefer: handling=lenient)", sentence);
    return APR_SUCCESS;
}

static const char *canonical_name(const char *name)
{
    return strcmp(name, "resourceTypes") ? name : "_type";
}

/* ---------------------------------------------------------------- the Parameters body */

static int is_string_value_key(const char *key)
{
    int i;
    if (strncmp(key, "value", 5)) return 0;
    for (i = 0; string_value_types[i]; i++) {
        if (!strcmp(key + 5, string_value_types[i])) return 1;
    }
    return 0;
}

/* One Parameters.parameter entry to an entry_t. FHIR's rule (one and only one of value[x],
 * resource, part) is checked for every entry; the value's type only for the parameters we
 * read, since any other parameter is refused or ignored whatever it holds. */
static apr_status_t body_entry(entry_t *e, parse_t *x, const json_t *jp, int i)
{
    const char *key, *name, *vkey = NULL;
    json_t *v, *vval = NULL;
    int nvalues = 0;

    if (!json_is_object(jp)) {
        return fail(x, "invalid", "Parameters.parameter[%d] is not a JSON object", i);
    }
    name = atr_json_str(jp, "name");
    if (!name || !*name) {
        return fail(x, "invalid", "Parameters.parameter[%d] has no name", i);
    }
    e->name = name;
    e->canon = canonical_name(name);
    e->where = apr_psprintf(x->p, "Parameters.parameter[%d] (%s)", i, name);
    e->in_body = 1;
    e->value = NULL;

    json_object_foreach((json_t *)jp, key, v) {
        if (!strcmp(key, "name") || !strcmp(key, "id") || !strcmp(key, "extension")
            || !strncmp(key, "_value", 6)) {
            continue;   /* _valueX: the id/extensions of a primitive value, harmless */
        }
        if (!strcmp(key, "modifierExtension")) {
            /* A modifier we do not understand changes the meaning: never ignore it. */
            return fail(x, "not-supported", "%s has a modifierExtension, which this server does "
                        "not understand", e->where);
        }
        if (!strncmp(key, "value", 5) || !strcmp(key, "resource") || !strcmp(key, "part")) {
            nvalues++;
            vkey = key;
            vval = v;
            continue;
        }
        return fail(x, "invalid", "%s has an unknown element '%s'", e->where, key);
    }
    if (nvalues == 0) return fail(x, "invalid", "%s has no value", e->where);
    if (nvalues > 1) return fail(x, "invalid", "%s has more than one value", e->where);

    if (!strcmp(e->canon, "patient")) {
        const char *ref;
        if (strcmp(vkey, "valueReference") || !json_is_object(vval)) {
            return fail(x, "invalid", "%s must be a valueReference, not %s", e->where, vkey);
        }
        ref = atr_json_str(vval, "reference");
        if (!ref) {
            return fail(x, "invalid", "%s has no valueReference.reference (Patient/<id>)", e->where);
        }
        e->value = ref;
    }
    else if (!strcmp(e->canon, "_type") || !strcmp(e->canon, "_since") || !strcmp(e->canon, "_until")
             || !strcmp(e->canon, "_outputFormat") || !strcmp(e->canon, "exportType")) {
        if (!is_string_value_key(vkey) || !json_is_string(vval)) {
            return fail(x, "invalid", "%s must have a string value (valueString, valueCode, "
                        "valueInstant, ...), not %s", e->where, vkey);
        }
        e->value = json_string_value(vval);
    }
    return APR_SUCCESS;
}

static apr_status_t body_entries(apr_array_header_t *entries, parse_t *x, const char *body)
{
    json_t *j, *list;
    const char *perr = NULL, *rt;
    apr_size_t i;

    if (atr_json_parse(&j, body, strlen(body), &perr, x->p) != APR_SUCCESS) {
        return fail(x, "invalid", "The body is not JSON (%s)", perr);
    }
    if (!json_is_object(j)) {
        return fail(x, "invalid", "The body is not a FHIR Parameters resource (not a JSON object)");
    }
    rt = atr_json_str(j, "resourceType");
    if (!rt) {
        return fail(x, "invalid", "The body is not a FHIR resource (no resourceType); a Parameters "
                    "resource is expected");
    }
    if (strcmp(rt, "Parameters")) {
        return fail(x, "invalid", "The body is a %s, not a FHIR Parameters resource", rt);
    }
    list = json_object_get(j, "parameter");
    if (!list) return APR_SUCCESS;
    if (!json_is_array(list)) {
        return fail(x, "invalid", "Parameters.parameter is not a JSON array");
    }
    for (i = 0; i < json_array_size(list); i++) {
        entry_t *e = &APR_ARRAY_PUSH(entries, entry_t);
        apr_status_t rv = body_entry(e, x, json_array_get(list, i), (int)i);
        if (rv != APR_SUCCESS) return rv;
    }
    return APR_SUCCESS;
}

/* ---------------------------------------------------------------- one parameter */

/* A query string decoded as a form turns an unescaped '+' into a space, and clients often
 * write `_since=...+01:00` or `_outputFormat=application/fhir+ndjson` unescaped: a value from
 * the query that fails as given is tried once more with its spaces read as '+'. */
static const char *plus_restored(const entry_t *e, apr_pool_t *p)
{
    char *s, *c;
    if (e->in_body || !strchr(e->value, ' ')) return NULL;
    s = apr_pstrdup(p, e->value);
    for (c = s; *c; c++) {
        if (*c == ' ') *c = '+';
    }
    return s;
}

static apr_status_t do_type(parse_t *x, const entry_t *e)
{
    const char *s = e->value;

    if (!x->type_name) x->type_name = e->name;
    for (;;) {
        const char *comma = strchr(s, ',');
        apr_size_t n = comma ? (apr_size_t)(comma - s) : strlen(s);
        const char *type = apr_pstrmemdup(x->p, s, n);
        int idx;

        if (n == 0) {
            return fail(x, "invalid", "%s has an empty resource type in '%s' (a comma list of "
                        "resource types is expected)", e->where, e->value);
        }
        idx = atr_export_type_index(type);
        if (idx >= 0) {
            x->want[idx] = 1;
        }
        else {
            apr_status_t rv = unsupported(x, apr_psprintf(x->p, "%s: '%s' is not a resource type "
                                          "this server exports (type names are case-sensitive: "
                                          "Group, Patient, Coverage, RelatedPerson, Practitioner, "
                                          "PractitionerRole, Organization, Location)", e->name, type));
            if (rv != APR_SUCCESS) return rv;
            x->types_ignored = 1;
        }
        if (!comma) break;
        s = comma + 1;
    }
    return APR_SUCCESS;
}

static apr_status_t do_instant(parse_t *x, const entry_t *e, const char **pval, apr_time_t *pt)
{
    const char *v = e->value, *alt;

    if (*pval) return fail(x, "invalid", "%s is given more than once", e->name);
    if (atr_time_parse_instant(pt, v) != APR_SUCCESS) {
        alt = plus_restored(e, x->p);
        if (!alt || atr_time_parse_instant(pt, alt) != APR_SUCCESS) {
            return fail(x, "invalid", "%s '%s' is not a FHIR instant "
                        "(YYYY-MM-DDThh:mm:ss[.fff] with Z or +hh:mm/-hh:mm)", e->name, v);
        }
        v = alt;
    }
    *pval = v;
    return APR_SUCCESS;
}

static int is_output_format(const char *v)
{
    int i;
    for (i = 0; v && output_formats[i]; i++) {
        if (!strcasecmp(v, output_formats[i])) return 1;   /* media types: any case */
    }
    return 0;
}

static apr_status_t do_output_format(parse_t *x, const entry_t *e)
{
    if (x->have_output_format) return fail(x, "invalid", "%s is given more than once", e->name);
    x->have_output_format = 1;
    if (is_output_format(e->value) || is_output_format(plus_restored(e, x->p))) return APR_SUCCESS;
    /* Files in another format than asked would be worse than a refusal: not lenient. */
    return fail(x, "not-supported", "%s '%s' is not supported: use application/fhir+ndjson, "
                "application/ndjson or ndjson", e->name, e->value);
}

static apr_status_t do_export_type(parse_t *x, const entry_t *e)
{
    if (x->have_export_type) return fail(x, "invalid", "%s is given more than once", e->name);
    x->have_export_type = 1;
    /* A package id typed canonical (S11): compared as an opaque string. Another export type
     * asks for other content (e.g. PDex payer-to-payer), so this is never lenient (D11). */
    if (!strcmp(e->value, ATR_EXPORT_TYPE_ATR)) return APR_SUCCESS;
    return fail(x, "not-supported", "%s '%s' is not supported: this server exports "
                ATR_EXPORT_TYPE_ATR " only", e->name, e->value);
}

static apr_status_t do_patient(parse_t *x, const entry_t *e)
{
    const char *id;

    if (!e->in_body) {
        return unsupported(x, "patient is accepted only in a POST Parameters body (as a "
                           "valueReference), not in the query string");
    }
    id = !strncmp(e->value, "Patient/", 8) ? e->value + 8 : NULL;
    if (!id || !atr_fhir_is_id(id)) {
        return fail(x, "invalid", "%s: '%s' is not a relative reference Patient/<id>", e->where, e->value);
    }
    if (!x->params->patients) {
        x->params->patients = apr_array_make(x->p, 4, sizeof(const char *));
        x->patients_seen = apr_hash_make(x->p);
    }
    if (!apr_hash_get(x->patients_seen, e->value, APR_HASH_KEY_STRING)) {
        apr_hash_set(x->patients_seen, e->value, APR_HASH_KEY_STRING, e->value);
        APR_ARRAY_PUSH(x->params->patients, const char *) = e->value;
    }
    return APR_SUCCESS;
}

static apr_status_t do_entry(parse_t *x, const entry_t *e)
{
    const char *c = e->canon;

    if (!strcmp(c, "_type")) {
        if (!*e->value) {
            return fail(x, "invalid", "%s is empty (a comma list of resource types is expected)", e->where);
        }
        return do_type(x, e);
    }
    if (!strcmp(c, "_since")) return do_instant(x, e, &x->params->since, &x->since_t);
    if (!strcmp(c, "_until")) return do_instant(x, e, &x->params->until, &x->until_t);
    if (!strcmp(c, "_outputFormat")) return do_output_format(x, e);
    if (!strcmp(c, "exportType")) return do_export_type(x, e);
    if (!strcmp(c, "patient")) return do_patient(x, e);
    /* _typeFilter, _elements, includeAssociatedData (EXP-14) and anything else. */
    return unsupported(x, apr_psprintf(x->p, "The parameter %s is not supported", e->name));
}

/* ---------------------------------------------------------------- after every parameter */

static apr_status_t finish_types(parse_t *x)
{
    apr_array_header_t *types = x->params->types;
    const char *missing = NULL;
    int i;

    if (!x->type_name) {
        for (i = 0; i < ATR_EXPORT_NTYPES; i++) x->want[i] = 1;
    }
    else if (x->op == ATR_BULK_OP_DAVINCI) {
        /* EXP-04: Group, Patient and Coverage are the minimum; D12: lenient adds them. */
        for (i = 0; minimum_types[i]; i++) {
            int idx = atr_export_type_index(minimum_types[i]);
            if (!x->want[idx]) {
                missing = missing ? apr_pstrcat(x->p, missing, ", ", minimum_types[i], NULL)
                                  : minimum_types[i];
                if (x->lenient) x->want[idx] = 1;
            }
        }
        if (missing && !x->lenient) {
            return fail(x, "required", "%s must include Group, Patient and Coverage for "
                        "$davinci-data-export; missing: %s", x->type_name, missing);
        }
        if (missing) {
            note(x, "informational", "%s did not include %s, which $davinci-data-export always "
                 "exports; added (Prefer: handling=lenient)", x->type_name, missing);
        }
    }
    for (i = 0; i < ATR_EXPORT_NTYPES; i++) {
        if (x->want[i]) APR_ARRAY_PUSH(types, const char *) = atr_fhir_types[i];
    }
    if (types->nelts == 0) {
        /* Only under lenient: every type was unknown. Exporting everything instead would
         * hand out what nobody asked for; there is nothing sensible to do. */
        return fail(x, "not-supported", "%s names no resource type this server exports",
                    x->type_name);
    }
    return APR_SUCCESS;
}

apr_status_t atr_bulk_params_parse(atr_bulk_params_t **pparams, atr_bulk_error_t *perr,
                                   atr_bulk_op_e op, const apr_array_header_t *query,
                                   const char *body, int lenient, apr_pool_t *p)
{
    parse_t x;
    apr_array_header_t *entries = apr_array_make(p, 8, sizeof(entry_t));
    apr_hash_t *in_query = apr_hash_make(p);
    apr_status_t rv = APR_SUCCESS;
    int i;

    memset(&x, 0, sizeof(x));
    x.params = apr_pcalloc(p, sizeof(*x.params));
    x.params->types = apr_array_make(p, ATR_EXPORT_NTYPES, sizeof(const char *));
    x.params->issues = apr_array_make(p, 2, sizeof(atr_export_issue_t));
    x.err = perr;
    x.op = op;
    x.lenient = lenient;
    x.p = p;
    *pparams = NULL;
    memset(perr, 0, sizeof(*perr));

    for (i = 0; query && i < query->nelts; i++) {
        const atr_param_t *q = &APR_ARRAY_IDX(query, i, atr_param_t);
        entry_t *e;
        if (!strcmp(q->name, "_format")) continue;   /* content negotiation had it */
        e = &APR_ARRAY_PUSH(entries, entry_t);
        e->name = q->name;
        e->canon = canonical_name(q->name);
        e->value = q->value;
        e->where = apr_pstrcat(p, "query parameter ", q->name, NULL);
        e->in_body = 0;
        apr_hash_set(in_query, e->canon, APR_HASH_KEY_STRING, e);
    }
    if (body) {
        int nquery = entries->nelts;
        if ((rv = body_entries(entries, &x, body)) != APR_SUCCESS) goto out;
        for (i = nquery; i < entries->nelts; i++) {
            const entry_t *e = &APR_ARRAY_IDX(entries, i, entry_t);
            const entry_t *q = apr_hash_get(in_query, e->canon, APR_HASH_KEY_STRING);
            if (q) {
                rv = strcmp(q->name, e->name)
                    ? fail(&x, "invalid", "%s is given in the query string and its alias %s in the "
                           "Parameters body: one place only", q->name, e->name)
                    : fail(&x, "invalid", "%s is given both in the query string and in the "
                           "Parameters body: one place only", e->name);
                goto out;
            }
        }
    }
    for (i = 0; i < entries->nelts; i++) {
        if ((rv = do_entry(&x, &APR_ARRAY_IDX(entries, i, entry_t))) != APR_SUCCESS) goto out;
    }
    if ((rv = finish_types(&x)) != APR_SUCCESS) goto out;
    if (x.params->since && x.params->until && x.until_t < x.since_t) {
        rv = fail(&x, "invalid", "_until (%s) is before _since (%s)", x.params->until, x.params->since);
        goto out;
    }
    *pparams = x.params;
out:
    return rv;
}

/* ---------------------------------------------------------------- job row form */

const char *atr_bulk_params_to_json(const atr_bulk_params_t *params, apr_pool_t *p)
{
    json_t *j = atr_json_pool_own(json_object(), p);
    json_t *types = json_array(), *issues = json_array();
    int i;

    for (i = 0; params->types && i < params->types->nelts; i++) {
        json_array_append_new(types, json_string(APR_ARRAY_IDX(params->types, i, const char *)));
    }
    json_object_set_new(j, "types", types);
    if (params->since) json_object_set_new(j, "since", json_string(params->since));
    if (params->until) json_object_set_new(j, "until", json_string(params->until));
    /* Empty and absent mean the same (all members): only a real list is written. */
    if (params->patients && params->patients->nelts > 0) {
        json_t *pats = json_array();
        for (i = 0; i < params->patients->nelts; i++) {
            json_array_append_new(pats, json_string(APR_ARRAY_IDX(params->patients, i, const char *)));
        }
        json_object_set_new(j, "patients", pats);
    }
    for (i = 0; params->issues && i < params->issues->nelts; i++) {
        const atr_export_issue_t *is = &APR_ARRAY_IDX(params->issues, i, atr_export_issue_t);
        json_array_append_new(issues, json_pack("{s:s, s:s, s:s}", "severity", is->severity ? is->severity : "",
                                                "code", is->code ? is->code : "",
                                                "text", is->text ? is->text : ""));
    }
    json_object_set_new(j, "issues", issues);
    return atr_json_dump(j, p);
}

static int is_patient_ref(const char *s)
{
    return s && !strncmp(s, "Patient/", 8) && atr_fhir_is_id(s + 8);
}

static const char *opt_instant(const json_t *j, const char *key, apr_time_t *pt, int *pok)
{
    json_t *v = json_object_get(j, key);
    if (!v) return NULL;
    if (!json_is_string(v) || atr_time_parse_instant(pt, json_string_value(v)) != APR_SUCCESS) {
        *pok = 0;
        return NULL;
    }
    return json_string_value(v);
}

apr_status_t atr_bulk_params_from_json(atr_bulk_params_t **pparams, const char *json, apr_pool_t *p)
{
    atr_bulk_params_t *bp;
    json_t *j, *types, *pats, *issues;
    const char *perr = NULL, *again;
    apr_time_t since_t = 0, until_t = 0;
    int ok = 1, last = -1;
    apr_size_t i;

    *pparams = NULL;
    if (!json || atr_json_parse(&j, json, strlen(json), &perr, p) != APR_SUCCESS || !json_is_object(j)) {
        return APR_EINVAL;
    }
    bp = apr_pcalloc(p, sizeof(*bp));
    types = json_object_get(j, "types");
    issues = json_object_get(j, "issues");
    pats = json_object_get(j, "patients");
    if (!json_is_array(types) || json_array_size(types) == 0 || !json_is_array(issues)) return APR_EINVAL;

    bp->types = apr_array_make(p, (int)json_array_size(types), sizeof(const char *));
    for (i = 0; i < json_array_size(types); i++) {
        json_t *t = json_array_get(types, i);
        int idx = json_is_string(t) ? atr_export_type_index(json_string_value(t)) : -1;
        if (idx <= last) return APR_EINVAL;   /* unknown, repeated or out of order */
        last = idx;
        APR_ARRAY_PUSH(bp->types, const char *) = atr_fhir_types[idx];
    }
    bp->since = opt_instant(j, "since", &since_t, &ok);
    bp->until = opt_instant(j, "until", &until_t, &ok);
    if (!ok || (bp->since && bp->until && until_t < since_t)) return APR_EINVAL;
    if (pats) {
        apr_hash_t *seen = apr_hash_make(p);
        if (!json_is_array(pats) || json_array_size(pats) == 0) return APR_EINVAL;
        bp->patients = apr_array_make(p, (int)json_array_size(pats), sizeof(const char *));
        for (i = 0; i < json_array_size(pats); i++) {
            const char *ref = json_string_value(json_array_get(pats, i));
            if (!is_patient_ref(ref) || apr_hash_get(seen, ref, APR_HASH_KEY_STRING)) return APR_EINVAL;
            apr_hash_set(seen, ref, APR_HASH_KEY_STRING, ref);
            APR_ARRAY_PUSH(bp->patients, const char *) = ref;
        }
    }
    bp->issues = apr_array_make(p, (int)json_array_size(issues) + 1, sizeof(atr_export_issue_t));
    for (i = 0; i < json_array_size(issues); i++) {
        json_t *is = json_array_get(issues, i);
        atr_export_issue_t issue;
        issue.severity = atr_json_str(is, "severity");
        issue.code = atr_json_str(is, "code");
        issue.text = atr_json_str(is, "text");
        if (!issue.severity || !issue.code || !*issue.code || !issue.text
            || (strcmp(issue.severity, "error") && strcmp(issue.severity, "warning")
                && strcmp(issue.severity, "information"))) {
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(bp->issues, atr_export_issue_t) = issue;
    }
    /* Extra members, another order, whitespace, escapes we would not write: not ours. The
     * row is only ever written by atr_bulk_params_to_json, so anything else is damage. */
    again = atr_bulk_params_to_json(bp, p);
    if (!again || strcmp(again, json)) return APR_EINVAL;
    *pparams = bp;
    return APR_SUCCESS;
}
