/* Rendering a stored resource: meta injected, summary/_elements applied to top-level
 * elements, Group members streamed from rows (constant memory for any Group size). */
#include <string.h>
#include <apr_strings.h>
#include "atr_render.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_log.h"

#define DEFAULT_MEMBER_PAGE 1000

/* _summary=true, per type: the R4 elements marked "summary" (isSummary) at the top level,
 * which is what R4 summary returns (text dropped; modifierExtension kept because modifiers
 * must never be hidden). Group follows DECISION D6 instead: no member, no characteristic,
 * and the Group-level ATR extensions (contract validity period, list status) are kept,
 * because ATR consumers compare them from the _summary=true result. */
static const char *const common_summary[] = { "resourceType", "id", "meta", "implicitRules",
                                              "modifierExtension", NULL };
static const char *const group_summary[] = { "identifier", "active", "type", "actual", "name",
                                             "quantity", "managingEntity", NULL };
static const char *const patient_summary[] = { "identifier", "active", "name", "telecom", "gender",
                                               "birthDate", "deceasedBoolean", "deceasedDateTime",
                                               "address", "managingOrganization", "link", NULL };
static const char *const coverage_summary[] = { "identifier", "status", "type", "policyHolder", "subscriber",
                                                "subscriberId", "beneficiary", "dependent", "relationship",
                                                "period", "payor", "class", "order", "network",
                                                "subrogation", "contract", NULL };
static const char *const relatedperson_summary[] = { "identifier", "active", "patient", "relationship", "name",
                                                     "telecom", "gender", "birthDate", "address", "period",
                                                     NULL };
static const char *const practitioner_summary[] = { "identifier", "active", "name", "telecom", "address",
                                                    "gender", "birthDate", NULL };
static const char *const practitionerrole_summary[] = { "identifier", "active", "period", "practitioner",
                                                        "organization", "code", "specialty", "location",
                                                        "healthcareService", "telecom", NULL };
static const char *const organization_summary[] = { "identifier", "active", "type", "name", "partOf", NULL };
static const char *const location_summary[] = { "identifier", "status", "operationalStatus", "name", "alias",
                                                "mode", "type", "telecom", "address", "physicalType",
                                                "position", "managingOrganization", "partOf", NULL };

static const char *const *summary_list(const char *type)
{
    if (!strcmp(type, "Group")) return group_summary;
    if (!strcmp(type, "Patient")) return patient_summary;
    if (!strcmp(type, "Coverage")) return coverage_summary;
    if (!strcmp(type, "RelatedPerson")) return relatedperson_summary;
    if (!strcmp(type, "Practitioner")) return practitioner_summary;
    if (!strcmp(type, "PractitionerRole")) return practitionerrole_summary;
    if (!strcmp(type, "Organization")) return organization_summary;
    if (!strcmp(type, "Location")) return location_summary;
    return NULL;
}

static int in_list(const char *const *list, const char *key)
{
    for (; list && *list; list++) {
        if (!strcmp(*list, key)) return 1;
    }
    return 0;
}

static int in_array(const apr_array_header_t *arr, const char *key)
{
    int i;
    for (i = 0; arr && i < arr->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(arr, i, const char *), key)) return 1;
    }
    return 0;
}

/* Group-level extensions kept by the summary (D6), or NULL when none is there. */
static json_t *group_summary_extensions(const json_t *exts)
{
    json_t *kept = json_array(), *e;
    size_t i;

    json_array_foreach(exts, i, e) {
        const char *url = atr_json_str(e, "url");
        if (url && (!strcmp(url, ATR_EXT_CONTRACT_PERIOD) || !strcmp(url, ATR_EXT_LIST_STATUS))) {
            json_array_append(kept, e);
        }
    }
    if (json_array_size(kept) == 0) {
        json_decref(kept);
        return NULL;
    }
    return kept;
}

/* meta of the rendered resource: store-owned versionId/lastUpdated first, then what the
 * resource brought (profile, tag, ...), plus the SUBSETTED tag when subsetted. */
static json_t *render_meta(const atr_resource_t *res, const json_t *stored, int subsetted)
{
    json_t *meta = json_object(), *v, *tags;
    const char *key;
    char vbuf[24];

    apr_snprintf(vbuf, sizeof(vbuf), "%d", res->version);
    json_object_set_new(meta, "versionId", json_string(vbuf));
    json_object_set_new(meta, "lastUpdated", json_string(res->last_updated));
    json_object_foreach((json_t *)stored, key, v) {
        if (strcmp(key, "versionId") && strcmp(key, "lastUpdated")) json_object_set(meta, key, v);
    }
    if (subsetted) {
        json_t *t;
        size_t i;
        int have = 0;
        tags = json_object_get(meta, "tag");
        if (!json_is_array(tags)) {
            tags = json_array();
            json_object_set_new(meta, "tag", tags);
        }
        else {
            tags = json_copy(tags);
            json_object_set_new(meta, "tag", tags);
        }
        json_array_foreach(tags, i, t) {
            const char *sys = atr_json_str(t, "system"), *code = atr_json_str(t, "code");
            if (sys && code && !strcmp(sys, ATR_SUBSETTED_SYSTEM) && !strcmp(code, "SUBSETTED")) have = 1;
        }
        if (!have) {
            json_array_append_new(tags, json_pack("{s:s, s:s}", "system", ATR_SUBSETTED_SYSTEM,
                                                  "code", "SUBSETTED"));
        }
    }
    return meta;
}

typedef struct member_ctx_t {
    atr_out_t *out;
    long n;
} member_ctx_t;

static apr_status_t member_cb(void *baton, const char *member_json, apr_pool_t *ptemp)
{
    member_ctx_t *ctx = baton;
    apr_status_t rv;
    (void)ptemp;

    rv = atr_out_puts(ctx->out, ctx->n++ ? "," : ",\"member\":[");
    if (rv == APR_SUCCESS) rv = atr_out_puts(ctx->out, member_json);
    return rv;
}

apr_status_t atr_render_resource(atr_out_t *out, atr_db_t *db, const atr_resource_t *res,
                                 const atr_render_opts_t *opts, apr_pool_t *p)
{
    atr_render_opts_t defaults = { ATR_SUMMARY_FALSE, NULL, 0 };
    json_t *body = NULL, *view, *v, *meta;
    const char *key, *dump;
    const char *const *type_summary;
    int summary, elements, subsetted, is_group, with_members, meta_done = 0;
    apr_status_t rv;
    const char *perr = NULL;

    if (!opts) opts = &defaults;
    rv = atr_json_parse(&body, res->body, strlen(res->body), &perr, p);
    if (rv != APR_SUCCESS || !json_is_object(body)) {
        atr_log_perror(ATR_LOG_MARK, ATR_LOG_ERR, rv, p, "ATR00120: stored %s/%s version %d is not a JSON object: %s",
                       res->type, res->id, res->version, perr ? perr : "");
        return rv != APR_SUCCESS ? rv : APR_EGENERAL;
    }
    is_group = !strcmp(res->type, "Group");
    summary = opts->summary == ATR_SUMMARY_TRUE;
    elements = !summary && opts->elements != NULL;
    subsetted = summary || elements;
    with_members = is_group && (elements ? in_array(opts->elements, "member") : !summary);
    type_summary = summary_list(res->type);

    view = atr_json_pool_own(json_object(), p);
    meta = render_meta(res, json_object_get(body, "meta"), subsetted);
    json_object_foreach(body, key, v) {
        if (!strcmp(key, "meta")) {
            json_object_set(view, "meta", meta);
            meta_done = 1;
            continue;
        }
        if (summary) {
            if (!strcmp(key, "extension") && is_group) {
                json_t *kept = group_summary_extensions(v);
                if (kept) json_object_set_new(view, key, kept);
                continue;
            }
            if (!in_list(common_summary, key) && !in_list(type_summary, key)) continue;
        }
        else if (elements) {
            if (strcmp(key, "resourceType") && strcmp(key, "id") && !in_array(opts->elements, key)) continue;
        }
        json_object_set(view, key, v);
        if (!meta_done && !strcmp(key, "id")) {
            json_object_set(view, "meta", meta);
            meta_done = 1;
        }
    }
    if (!meta_done) json_object_set(view, "meta", meta);
    json_decref(meta);

    dump = atr_json_dump(view, p);
    if (!dump) return APR_EGENERAL;
    if (!with_members) return atr_out_puts(out, dump);

    /* Group: the object without its final '}', then the member array streamed from rows. */
    rv = atr_out_write(out, dump, strlen(dump) - 1);
    if (rv == APR_SUCCESS) {
        member_ctx_t ctx;
        ctx.out = out;
        ctx.n = 0;
        rv = atr_store_group_members(db, res->id, res->version,
                                     opts->member_page_size > 0 ? opts->member_page_size : DEFAULT_MEMBER_PAGE,
                                     member_cb, &ctx, p);
        if (rv == APR_SUCCESS && ctx.n) rv = atr_out_puts(out, "]");
    }
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, "}");
    return rv;
}
