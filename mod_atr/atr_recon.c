/* Reconciliation: the pure parts (Parameters, parameter combinations, the created Group,
 * member entry JSON). The store side is atr_recon_store.c. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include "atr_recon.h"
#include "atr_fhir.h"
#include "atr_id.h"
#include "atr_json.h"
#include "atr_time.h"

const char *atr_recon_op_name(atr_recon_op_e op)
{
    switch (op) {
    case ATR_RECON_ADD: return "member-add";
    case ATR_RECON_REMOVE: return "member-remove";
    case ATR_RECON_CONFIRM: return "confirm-attribution-list";
    default: return "attribution-status";
    }
}

/* ---------------------------------------------------------------- Parameters */

typedef struct pdef_t {
    const char *name;
    const char *value_key;     /* valueIdentifier, valueReference, valuePeriod */
    unsigned bit;
} pdef_t;

static const pdef_t pdefs[] = {
    { "memberId", "valueIdentifier", ATR_RP_MEMBER_ID },
    { "providerNpi", "valueIdentifier", ATR_RP_NPI },
    { "patientReference", "valueReference", ATR_RP_PATIENT },
    { "providerReference", "valueReference", ATR_RP_PROVIDER },
    { "attributionPeriod", "valuePeriod", ATR_RP_PERIOD },
    { "coverageReference", "valueReference", ATR_RP_COVERAGE },
    { NULL, NULL, 0 }
};

/* Which parameters each operation defines (its OperationDefinition). */
static unsigned op_defines(atr_recon_op_e op)
{
    switch (op) {
    case ATR_RECON_ADD:
        return ATR_RP_MEMBER_ID | ATR_RP_NPI | ATR_RP_PATIENT | ATR_RP_PROVIDER | ATR_RP_PERIOD;
    case ATR_RECON_REMOVE:
        return ATR_RP_MEMBER_ID | ATR_RP_NPI | ATR_RP_PATIENT | ATR_RP_PROVIDER | ATR_RP_COVERAGE;
    case ATR_RECON_STATUS:
        return ATR_RP_MEMBER_ID | ATR_RP_PATIENT;
    default:
        return 0;
    }
}

/* The combinations the ATR spec lists (OP-ADD-01, OP-REM-01, OP-STAT-01). */
static int combination_ok(atr_recon_op_e op, unsigned g)
{
    switch (op) {
    case ATR_RECON_ADD:
        return g == (ATR_RP_MEMBER_ID | ATR_RP_NPI) || g == (ATR_RP_MEMBER_ID | ATR_RP_NPI | ATR_RP_PERIOD)
            || g == (ATR_RP_PATIENT | ATR_RP_PROVIDER) || g == (ATR_RP_PATIENT | ATR_RP_PROVIDER | ATR_RP_PERIOD);
    case ATR_RECON_REMOVE:
        return g == ATR_RP_MEMBER_ID || g == (ATR_RP_MEMBER_ID | ATR_RP_NPI) || g == ATR_RP_PATIENT
            || g == (ATR_RP_PATIENT | ATR_RP_PROVIDER) || g == (ATR_RP_PATIENT | ATR_RP_PROVIDER | ATR_RP_COVERAGE);
    case ATR_RECON_STATUS:
        return g == ATR_RP_MEMBER_ID || g == ATR_RP_PATIENT;
    default:
        return g == 0;
    }
}

static const char *combinations_text(atr_recon_op_e op)
{
    switch (op) {
    case ATR_RECON_ADD:
        return "memberId + providerNpi [+ attributionPeriod], or patientReference + providerReference "
               "[+ attributionPeriod]";
    case ATR_RECON_REMOVE:
        return "memberId [+ providerNpi], or patientReference [+ providerReference [+ coverageReference]]";
    case ATR_RECON_STATUS:
        return "memberId or patientReference (one of them)";
    default:
        return "no parameters";
    }
}

/* "Type/id" with type in types (NULL-terminated), or a full URL ending so; *pref = "Type/id". */
static int parse_ref(const char **pref, const char *s, const char *const *types, apr_pool_t *p)
{
    const char *slash, *start;
    if (!s || !*s) return 0;
    slash = strrchr(s, '/');
    if (!slash || slash == s || !atr_fhir_is_id(slash + 1)) return 0;
    for (start = slash - 1; start > s && start[-1] != '/'; start--) ;
    for (; *types; types++) {
        if ((apr_size_t)(slash - start) == strlen(*types) && !strncmp(start, *types, strlen(*types))) {
            /* a relative reference, or an absolute one (the server's own URL, by convention) */
            if (start != s && strncmp(s, "http://", 7) && strncmp(s, "https://", 8)) return 0;
            *pref = apr_pstrdup(p, start);
            return 1;
        }
    }
    return 0;
}

static const char *const patient_types[] = { "Patient", NULL };
static const char *const provider_types[] = { "Practitioner", "PractitionerRole", "Organization", NULL };
static const char *const coverage_types[] = { "Coverage", NULL };

/* A FHIR date or dateTime. */
static int is_datetime(const char *s)
{
    apr_time_t a, b;
    return s && atr_time_parse_datetime(&a, &b, s) == APR_SUCCESS;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) {
        if (!apr_isdigit(*s)) return 0;
    }
    return 1;
}

#define FAIL(code, ...) do { *pcode = (code); *perr = apr_psprintf(p, __VA_ARGS__); return APR_EINVAL; } while (0)

apr_status_t atr_recon_params_parse(atr_recon_params_t **pparams, atr_recon_op_e op, const char *body,
                                    const char **pcode, const char **perr, apr_pool_t *p)
{
    atr_recon_params_t *pa = apr_pcalloc(p, sizeof(*pa));
    const char *name = atr_recon_op_name(op), *rt;
    json_t *doc = NULL, *params, *item;
    unsigned defined = op_defines(op);
    size_t i;

    *pparams = pa;
    *pcode = NULL;
    *perr = NULL;
    if (body && *body) {
        const char *jerr;
        if (atr_json_parse(&doc, body, strlen(body), &jerr, p) != APR_SUCCESS) {
            FAIL("invalid", "the body is not JSON: %s", jerr);
        }
        rt = atr_json_str(doc, "resourceType");
        if (!json_is_object(doc) || !rt || strcmp(rt, "Parameters")) {
            FAIL("invalid", "$%s takes a Parameters resource", name);
        }
        params = json_object_get(doc, "parameter");
        if (params && !json_is_array(params)) FAIL("invalid", "Parameters.parameter is not an array");
        json_array_foreach(params, i, item) {
            const char *pn = atr_json_str(item, "name");
            const pdef_t *d;
            json_t *v;
            for (d = pdefs; pn && d->name && strcmp(d->name, pn); d++) ;
            if (!pn) FAIL("invalid", "parameter[%lu] has no name", (unsigned long)i);
            if (!d->name || !(d->bit & defined)) {
                FAIL("not-supported", "$%s has no parameter '%s'", name, pn);
            }
            if (pa->given & d->bit) FAIL("invalid", "parameter '%s' is repeated (at most one is allowed)", pn);
            v = json_object_get(item, d->value_key);
            if (!json_is_object(v)) FAIL("invalid", "parameter '%s' needs a %s", pn, d->value_key);
            pa->given |= d->bit;
            switch (d->bit) {
            case ATR_RP_MEMBER_ID:
                pa->member_value = atr_json_str(v, "value");
                pa->member_system = atr_json_str(v, "system");
                if (!pa->member_value || !*pa->member_value) FAIL("required", "memberId has no value");
                pa->member_value = apr_pstrdup(p, pa->member_value);
                if (pa->member_system) pa->member_system = apr_pstrdup(p, pa->member_system);
                break;
            case ATR_RP_NPI: {
                const char *sys = atr_json_str(v, "system"), *val = atr_json_str(v, "value");
                if (sys && strcmp(sys, ATR_SYS_NPI)) {
                    FAIL("invalid", "providerNpi.system must be %s, not %s", ATR_SYS_NPI, sys);
                }
                if (!val || strlen(val) != 10 || !all_digits(val)) {
                    FAIL("invalid", "providerNpi.value must be an NPI (10 digits)");
                }
                pa->npi = apr_pstrdup(p, val);
                break;
            }
            case ATR_RP_PATIENT:
                if (!parse_ref(&pa->patient_ref, atr_json_str(v, "reference"), patient_types, p)) {
                    FAIL("invalid", "patientReference must reference a Patient (Patient/<id>)");
                }
                break;
            case ATR_RP_PROVIDER:
                if (!parse_ref(&pa->provider_ref, atr_json_str(v, "reference"), provider_types, p)) {
                    FAIL("invalid", "providerReference must reference a Practitioner, PractitionerRole or "
                         "Organization (Type/<id>)");
                }
                break;
            case ATR_RP_COVERAGE:
                if (!parse_ref(&pa->coverage_ref, atr_json_str(v, "reference"), coverage_types, p)) {
                    FAIL("invalid", "coverageReference must reference a Coverage (Coverage/<id>)");
                }
                break;
            case ATR_RP_PERIOD: {
                const char *s = atr_json_str(v, "start"), *e = atr_json_str(v, "end");
                if (!s) FAIL("required", "attributionPeriod needs a start");
                if (!is_datetime(s)) FAIL("invalid", "attributionPeriod.start '%s' is not a FHIR date", s);
                if (e && !is_datetime(e)) FAIL("invalid", "attributionPeriod.end '%s' is not a FHIR date", e);
                if (e) {
                    apr_time_t s0, s1, e0, e1;
                    atr_time_parse_datetime(&s0, &s1, s);
                    atr_time_parse_datetime(&e0, &e1, e);
                    if (e1 <= s0) FAIL("invalid", "attributionPeriod ends (%s) before it starts (%s)", e, s);
                }
                pa->period_start = apr_pstrdup(p, s);
                pa->period_end = e ? apr_pstrdup(p, e) : NULL;
                break;
            }
            }
        }
    }
    if (!combination_ok(op, pa->given)) {
        FAIL(pa->given ? "invalid" : "required", "$%s takes %s", name, combinations_text(op));
    }
    return APR_SUCCESS;
}

/* ---------------------------------------------------------------- Group */

const char *atr_recon_list_status(const json_t *group)
{
    return atr_json_str(atr_json_ext_find(group, ATR_EXT_LIST_STATUS), "valueCode");
}

apr_status_t atr_recon_new_group(json_t **pgroup, const char *body, const char *id, const char **pcode,
                                 const char **perr, apr_pool_t *p)
{
    json_t *g, *exts, *e, *v;
    const char *jerr, *rt, *status;

    *pgroup = NULL;
    *pcode = NULL;
    *perr = NULL;
    if (!body || !*body) FAIL("required", "POST Group takes a Group resource as application/fhir+json");
    if (atr_json_parse(&g, body, strlen(body), &jerr, p) != APR_SUCCESS) {
        FAIL("invalid", "the body is not JSON: %s", jerr);
    }
    rt = atr_json_str(g, "resourceType");
    if (!json_is_object(g) || !rt || strcmp(rt, "Group")) FAIL("invalid", "the body is not a Group resource");
    v = json_object_get(g, "member");
    if (v && (!json_is_array(v) || json_array_size(v))) {
        FAIL("business-rule", "create the attribution list without members, then add them with $member-add");
    }
    json_object_del(g, "member");
    json_object_del(g, "meta");       /* the server owns versionId and lastUpdated */
    json_object_del(g, "quantity");
    v = json_object_get(g, "name");
    if (v && !json_is_string(v)) FAIL("invalid", "Group.name is not a string");
    v = json_object_get(g, "identifier");
    if (v && !json_is_array(v)) FAIL("invalid", "Group.identifier is not an array");
    v = json_object_get(g, "type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "person"))) {
        FAIL("invalid", "Group.type of a member attribution list is person");
    }
    v = json_object_get(g, "actual");
    if (v && !json_is_boolean(v)) FAIL("invalid", "Group.actual is not a boolean");
    exts = json_object_get(g, "extension");
    if (exts && !json_is_array(exts)) FAIL("invalid", "Group.extension is not an array");
    e = atr_json_ext_find(g, ATR_EXT_LIST_STATUS);
    if (e) {
        status = atr_json_str(e, "valueCode");
        if (!status || (strcmp(status, "draft") && strcmp(status, "open") && strcmp(status, "final"))) {
            FAIL("invalid", "attributionListStatus must be draft, open or final");
        }
    }
    else {
        /* D25: a new list is a draft unless the client says otherwise */
        if (!exts) {
            exts = json_array();
            json_object_set_new(g, "extension", exts);
        }
        json_array_append_new(exts, json_pack("{s:s,s:s}", "url", ATR_EXT_LIST_STATUS, "valueCode", "draft"));
    }
    /* the id is the server's (FHIR create); keep resourceType and id first */
    {
        json_t *out = json_pack("{s:s,s:s}", "resourceType", "Group", "id", id);
        const char *key;
        json_t *val;
        json_object_foreach(g, key, val) {
            if (strcmp(key, "resourceType") && strcmp(key, "id")) json_object_set(out, key, val);
        }
        if (!json_object_get(out, "type")) json_object_set_new(out, "type", json_string("person"));
        if (!json_object_get(out, "actual")) json_object_set_new(out, "actual", json_true());
        *pgroup = atr_json_pool_own(out, p);
    }
    return APR_SUCCESS;
}

const char *atr_recon_new_id(apr_pool_t *p)
{
    const char *s;
    apr_uint64_t t;

    if (atr_id_hex(&s, 16, p) == APR_SUCCESS) return s;
    /* no random source: still 32 hex digits, unique enough for one process */
    t = (apr_uint64_t)apr_time_now();
    return apr_psprintf(p, "%016" APR_UINT64_T_HEX_FMT "%016" APR_UINT64_T_HEX_FMT, t, (apr_uint64_t)0);
}

/* ---------------------------------------------------------------- member entries */

const char *atr_recon_change_type(const json_t *member)
{
    return atr_json_str(atr_json_ext_find(member, ATR_EXT_CHANGE_TYPE), "valueCode");
}

void atr_recon_set_change_type(json_t *member, const char *code)
{
    json_t *e = atr_json_ext_find(member, ATR_EXT_CHANGE_TYPE), *exts;
    if (e) {
        json_object_set_new(e, "valueCode", json_string(code));
        return;
    }
    exts = json_object_get(member, "extension");
    if (!json_is_array(exts)) {
        exts = json_array();
        json_object_set_new(member, "extension", exts);
    }
    json_array_insert_new(exts, 0, json_pack("{s:s,s:s}", "url", ATR_EXT_CHANGE_TYPE, "valueCode", code));
}

const char *atr_recon_entry_json(const char *entity, const char *provider, const char *coverage,
                                 const char *start, const char *end, apr_pool_t *p)
{
    json_t *m = json_object(), *exts = json_array(), *period;
    const char *s;

    json_array_append_new(exts, json_pack("{s:s,s:s}", "url", ATR_EXT_CHANGE_TYPE, "valueCode", "new"));
    if (coverage) {
        json_array_append_new(exts, json_pack("{s:s,s:{s:s}}", "url", ATR_EXT_COVERAGE_REF,
                                              "valueReference", "reference", coverage));
    }
    json_array_append_new(exts, json_pack("{s:s,s:{s:s}}", "url", ATR_EXT_PROVIDER,
                                          "valueReference", "reference", provider));
    json_object_set_new(m, "extension", exts);
    json_object_set_new(m, "entity", json_pack("{s:s}", "reference", entity));
    period = json_pack("{s:s}", "start", start);
    if (end) json_object_set_new(period, "end", json_string(end));
    json_object_set_new(m, "period", period);
    json_object_set_new(m, "inactive", json_false());
    s = atr_json_dump(m, p);
    json_decref(m);
    return s;
}
