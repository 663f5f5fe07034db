/* The CapabilityStatement: only what this build serves. The reconciliation operations are
 * added here when they are implemented (not before: clients and testers take the statement
 * at its word). */
#include <string.h>
#include <apr_strings.h>
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_capability.h"

#define ATR_PRODUCER_CS ATR_IG "/CapabilityStatement/atr-producer"
#define ATR_SOFTWARE_VERSION "0.1.0"

static json_t *interactions(void)
{
    return json_pack("[{s:s},{s:s},{s:s}]", "code", "read", "code", "vread",
                     "code", "history-instance");
}

static json_t *search_param(const char *name, const char *definition, const char *type,
                            const char *doc)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "name", name, "definition", definition,
                     "type", type, "documentation", doc);
}

static json_t *group_resource(const char *base_url, apr_pool_t *p)
{
    json_t *res = json_pack("{s:s, s:[s], s:o, s:s, s:b}",
                            "type", "Group",
                            "supportedProfile", atr_fhir_profile("Group"),
                            "interaction", interactions(),
                            "versioning", "versioned",
                            "readHistory", 1);
    json_t *params = json_array();

    json_array_append_new(json_object_get(res, "interaction"),
                          json_pack("{s:s}", "code", "search-type"));
    json_array_append_new(params, search_param("identifier",
        "http://hl7.org/fhir/SearchParameter/Group-identifier", "token",
        "system|value, value, |value, system|; also :of-type=type-system|type-code|value"));
    json_array_append_new(params, search_param("characteristic",
        "http://hl7.org/fhir/SearchParameter/Group-characteristic", "token",
        "Group.characteristic.code: system|code or code"));
    json_array_append_new(params, search_param("characteristic-value",
        "http://hl7.org/fhir/SearchParameter/Group-characteristic-value", "composite",
        "code$Type/id (Reference value, as ATR uses), system|code$Type/id, or code$token"));
    json_array_append_new(params, search_param("name",
        /* not an R4 Group parameter (D4): defined locally */
        apr_pstrcat(p, base_url, "/SearchParameter/Group-name", NULL), "string",
        "Group.name: starts with (case and accent insensitive); :exact, :contains"));
    json_array_append_new(params, search_param("_id",
        "http://hl7.org/fhir/SearchParameter/Resource-id", "token", "logical id"));
    json_object_set_new(res, "searchParam", params);
    /* EXP-01, EXP-13: the Group-level bulk export, ATR 2.x and STU1 forms */
    json_object_set_new(res, "operation", json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]",
        "name", "davinci-data-export",
        "definition", ATR_IG "/OperationDefinition/davinci-data-export",
        "documentation", "Bulk Data kick-off (GET, or POST with Parameters); requires read scope "
                         "on every exported type; output per docs/bulk-export.md",
        "name", "export",
        "definition", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
        "documentation", "the same export for ATR STU1 and plain Bulk Data clients"));
    /* §2.4, §7: the ATR 2.x reconciliation operations (docs/reconciliation.md) */
    {
        json_t *ops = json_object_get(res, "operation");
        /* CRE-01: POST [base]/Group creates an empty attribution list */
        json_array_append_new(json_object_get(res, "interaction"), json_pack("{s:s}", "code", "create"));
        json_array_append_new(ops, json_pack("{s:s,s:s,s:s}", "name", "member-add",
            "definition", ATR_IG "/OperationDefinition/member-add",
            "documentation", "POST Parameters; draft or open lists; needs system/Group.write (or .u)"));
        json_array_append_new(ops, json_pack("{s:s,s:s,s:s}", "name", "member-remove",
            "definition", ATR_IG "/OperationDefinition/member-remove",
            "documentation", "POST Parameters; draft lists keep the entry inactive, open lists drop it"));
        json_array_append_new(ops, json_pack("{s:s,s:s,s:s}", "name", "confirm-attribution-list",
            "definition", ATR_IG "/OperationDefinition/confirm-attribution-list",
            "documentation", "POST; the list becomes final (201)"));
        json_array_append_new(ops, json_pack("{s:s,s:s,s:s}", "name", "attribution-status",
            "definition", ATR_IG "/OperationDefinition/attribution-status",
            "documentation", "POST Parameters (memberId or patientReference); answers a collection Bundle"));
    }
    return res;
}

/* SEC-01: every endpoint but /metadata and the SMART discovery document needs a Bearer
 * token from our SMART Backend Services token endpoint; the extension tells clients where. */
static json_t *security(const char *base_url, apr_pool_t *p)
{
    return json_pack("{s:b, s:[{s:[{s:s, s:s, s:s}], s:s}], s:s, s:[{s:s, s:[{s:s, s:s}]}]}",
                     "cors", 0,
                     "service", "coding", "system", "http://terminology.hl7.org/CodeSystem/restful-security-service",
                     "code", "SMART-on-FHIR", "display", "SMART-on-FHIR", "text", "SMART Backend Services",
                     "description", apr_pstrcat(p, "SMART Backend Services (client_credentials with a private_key_jwt "
                     "assertion, RS384 or ES384): get a token at ", base_url, "/auth/token and send it as "
                     "Authorization: Bearer. Scopes: system/*.read, system/<Type>.read (v1) or "
                     "system/<Type>.rs (v2). Groups (and their members' data) are visible only to the "
                     "Consumers entitled to them; others answer 404. Discovery: ", base_url,
                     "/.well-known/smart-configuration.", NULL),
                     "extension", "url", "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                     "extension", "url", "token", "valueUri", apr_pstrcat(p, base_url, "/auth/token", NULL));
}

json_t *atr_capability_statement(const char *base_url, apr_pool_t *p)
{
    json_t *cs, *resources, *rest;
    int i;

    cs = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:[s]}",
                   "resourceType", "CapabilityStatement",
                   "status", "active",
                   "date", "2026-11-24",
                   "publisher", "mod_atr",
                   "kind", "instance",
                   "fhirVersion", ATR_FHIR_VERSION,
                   "instantiates", ATR_PRODUCER_CS,
                   "software", "name", "mod_atr", "version", ATR_SOFTWARE_VERSION,
                   "implementation", "description", "Da Vinci ATR Producer (mod_atr)", "url", base_url,
                   "name", "ModAtrProducer",
                   "format", "json");
    resources = json_array();
    for (i = 0; atr_fhir_types[i]; i++) {
        const char *type = atr_fhir_types[i];
        if (!strcmp(type, "Group")) {
            json_array_append_new(resources, group_resource(base_url, p));
        }
        else {
            json_array_append_new(resources,
                json_pack("{s:s, s:[s], s:o, s:s, s:b}", "type", type,
                          "supportedProfile", atr_fhir_profile(type),
                          "interaction", interactions(),
                          "versioning", "versioned", "readHistory", 1));
        }
    }
    rest = json_pack("{s:s, s:o, s:o}", "mode", "server", "security", security(base_url, p),
                     "resource", resources);
    json_object_set_new(cs, "rest", json_pack("[o]", rest));
    return atr_json_pool_own(cs, p);
}
