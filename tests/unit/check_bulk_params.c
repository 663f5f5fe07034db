/* Bulk export kick-off parameters (atr_bulk_params): GET query and POST Parameters forms,
 * strict and Prefer: handling=lenient, $davinci-data-export vs $export, and the job-row JSON.
 * Requirement ids (shared/spec/REQUIREMENTS.md §5, §6.1) are in the test names or comments. */
#include <string.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "check_atr.h"
#include "atr_bulk_params.h"
#include "atr_fhir.h"
#include "atr_search.h"

#define DAVINCI ATR_BULK_OP_DAVINCI
#define EXPORT ATR_BULK_OP_EXPORT
#define STRICT 0
#define LENIENT 1
#define ALL_TYPES "Group,Patient,Coverage,RelatedPerson,Practitioner,PractitionerRole,Organization,Location"

static apr_pool_t *pool;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

/* ---------------------------------------------------------------- helpers */

static apr_array_header_t *query_of(const char *query)
{
    apr_array_header_t *params;
    const char *err = NULL;
    ck_assert_int_eq(atr_query_parse(&params, query, &err, pool), APR_SUCCESS);
    return params;
}

/* JSON written with ' for " (readable in C). */
static const char *dq(const char *s)
{
    char *r = apr_pstrdup(pool, s), *c;
    for (c = r; *c; c++) {
        if (*c == '\'') *c = '"';
    }
    return r;
}

/* A Parameters body around the given parameter entries. */
static const char *params_body(const char *entries)
{
    return dq(apr_pstrcat(pool, "{'resourceType':'Parameters','parameter':[", entries, "]}", NULL));
}

static atr_bulk_params_t *accepted(atr_bulk_op_e op, const char *query, const char *body, int lenient)
{
    atr_bulk_params_t *bp = NULL;
    atr_bulk_error_t err;
    apr_status_t rv = atr_bulk_params_parse(&bp, &err, op, query_of(query), body, lenient, pool);
    ck_assert_msg(rv == APR_SUCCESS, "'%s' %s refused: %d %s %s", query ? query : "",
                  body ? body : "", err.status, err.code, err.text);
    ck_assert_ptr_nonnull(bp);
    ck_assert_ptr_nonnull(bp->types);
    ck_assert_ptr_nonnull(bp->issues);
    return bp;
}

static atr_bulk_error_t refused(atr_bulk_op_e op, const char *query, const char *body, int lenient)
{
    atr_bulk_params_t *bp = NULL;
    atr_bulk_error_t err;
    apr_status_t rv = atr_bulk_params_parse(&bp, &err, op, query_of(query), body, lenient, pool);
    ck_assert_msg(rv == APR_EINVAL, "'%s' %s accepted", query ? query : "", body ? body : "");
    ck_assert_ptr_null(bp);
    ck_assert_int_eq(err.status, 400);
    ck_assert_ptr_nonnull(err.code);
    ck_assert_ptr_nonnull(err.text);
    return err;
}

/* Refused with that IssueType code and a text containing every given word. */
static void refused_with(atr_bulk_op_e op, const char *query, const char *body, int lenient,
                         const char *code, const char *word1, const char *word2)
{
    atr_bulk_error_t err = refused(op, query, body, lenient);
    ck_assert_msg(!strcmp(err.code, code), "'%s' %s: code %s, expected %s (%s)", query ? query : "",
                  body ? body : "", err.code, code, err.text);
    ck_assert_msg(!word1 || strstr(err.text, word1), "'%s' not in '%s'", word1, err.text);
    ck_assert_msg(!word2 || strstr(err.text, word2), "'%s' not in '%s'", word2, err.text);
}

static const char *types_of(const atr_bulk_params_t *bp)
{
    return apr_array_pstrcat(pool, bp->types, ',');
}

static const char *patients_of(const atr_bulk_params_t *bp)
{
    return bp->patients ? apr_array_pstrcat(pool, bp->patients, ',') : NULL;
}

static const atr_export_issue_t *issue(const atr_bulk_params_t *bp, int i)
{
    ck_assert_int_gt(bp->issues->nelts, i);
    return &APR_ARRAY_IDX(bp->issues, i, atr_export_issue_t);
}

/* A lenient note: warning, that code, a text naming every given word. */
static void issue_is(const atr_bulk_params_t *bp, int i, const char *code, const char *word1,
                     const char *word2)
{
    const atr_export_issue_t *is = issue(bp, i);
    ck_assert_str_eq(is->severity, "warning");
    ck_assert_str_eq(is->code, code);
    ck_assert_msg(strstr(is->text, word1), "'%s' not in '%s'", word1, is->text);
    ck_assert_msg(!word2 || strstr(is->text, word2), "'%s' not in '%s'", word2, is->text);
}

/* ---------------------------------------------------------------- _type (GET) */

/* EXP-04: _type absent exports all ATR types; for both operations, GET and an empty POST. */
START_TEST(type_absent_means_all)
{
    static const atr_bulk_op_e ops[] = { DAVINCI, EXPORT };
    int i;
    for (i = 0; i < 2; i++) {
        atr_bulk_params_t *bp = accepted(ops[i], NULL, NULL, STRICT);
        ck_assert_str_eq(types_of(bp), ALL_TYPES);
        ck_assert_ptr_null(bp->since);
        ck_assert_ptr_null(bp->until);
        ck_assert_ptr_null(bp->patients);
        ck_assert_int_eq(bp->issues->nelts, 0);
        bp = accepted(ops[i], "_format=json", dq("{'resourceType':'Parameters'}"), STRICT);
        ck_assert_str_eq(types_of(bp), ALL_TYPES);
        bp = accepted(ops[i], NULL, dq("{'resourceType':'Parameters','parameter':[]}"), LENIENT);
        ck_assert_str_eq(types_of(bp), ALL_TYPES);
        ck_assert_int_eq(bp->issues->nelts, 0);
    }
}
END_TEST

/* EXP-03, BULK-KO-06: the listed types only, in atr_fhir_types order, each once. */
START_TEST(type_order_and_duplicates)
{
    atr_bulk_params_t *bp = accepted(EXPORT, "_type=Location,Coverage,Patient,Location,Group,Patient",
                                     NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage,Location");
    bp = accepted(EXPORT, "_type=Organization", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Organization");
    bp = accepted(DAVINCI, "_type=PractitionerRole,Coverage,Practitioner,Patient,Group", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage,Practitioner,PractitionerRole");
    ck_assert_int_eq(bp->issues->nelts, 0);
    bp = accepted(EXPORT, "_type=" ALL_TYPES, NULL, STRICT);
    ck_assert_str_eq(types_of(bp), ALL_TYPES);
}
END_TEST

/* BULK-KO-03: _type=A&_type=B is _type=A,B. */
START_TEST(type_repeated_lists)
{
    atr_bulk_params_t *bp = accepted(DAVINCI, "_type=Location&_type=Patient,Coverage&_type=Group,Patient",
                                     NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage,Location");
    bp = accepted(EXPORT, "_type=RelatedPerson&_type=Patient", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Patient,RelatedPerson");
    /* Repeated in a body too. */
    bp = accepted(EXPORT, NULL, params_body("{'name':'_type','valueString':'Coverage'},"
                                            "{'name':'_type','valueString':'Patient,Group'}"), STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage");
}
END_TEST

/* EXP-05 (D13): resourceTypes is an alias of _type, and the two add up. */
START_TEST(type_alias_resource_types)
{
    atr_bulk_params_t *bp = accepted(DAVINCI, "resourceTypes=Group,Patient,Coverage,Location", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage,Location");
    bp = accepted(DAVINCI, "_type=Group&resourceTypes=Patient,Coverage", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage");
    bp = accepted(EXPORT, NULL, params_body("{'name':'resourceTypes','valueString':'Patient'}"), STRICT);
    ck_assert_str_eq(types_of(bp), "Patient");
    /* The alias's own name is what a refusal talks about. */
    refused_with(DAVINCI, "resourceTypes=Patient,Coverage", NULL, STRICT, "required", "resourceTypes", "Group");
}
END_TEST

/* EXP-05: the spec page's example, typo included: GRoup is not Group (case-sensitive). */
START_TEST(type_spec_example_GRoup)
{
    static const char example[] = "resourceTypes=GRoup,Patient,Coverage,RelatedPerson,Practitioner,"
                                  "PractitionerRole,Organization,Location&exportType=hl7.fhir.us.davinci-atr";
    atr_bulk_params_t *bp;

    refused_with(DAVINCI, example, NULL, STRICT, "not-supported", "'GRoup'", "resourceTypes");
    refused_with(EXPORT, example, NULL, STRICT, "not-supported", "'GRoup'", NULL);

    /* Lenient $davinci-data-export: GRoup ignored, then Group added as a minimum type (D12). */
    bp = accepted(DAVINCI, example, NULL, LENIENT);
    ck_assert_str_eq(types_of(bp), ALL_TYPES);
    ck_assert_int_eq(bp->issues->nelts, 2);
    issue_is(bp, 0, "not-supported", "'GRoup'", "ignored");
    issue_is(bp, 1, "informational", "Group", "added");
    ck_assert_ptr_null(strstr(issue(bp, 1)->text, "Patient"));

    /* Lenient $export: GRoup ignored, nothing added. */
    bp = accepted(EXPORT, example, NULL, LENIENT);
    ck_assert_str_eq(types_of(bp), "Patient,Coverage,RelatedPerson,Practitioner,PractitionerRole,"
                                   "Organization,Location");
    ck_assert_int_eq(bp->issues->nelts, 1);
    issue_is(bp, 0, "not-supported", "resourceTypes", "GRoup");
}
END_TEST

/* BULK-KO-06: an unknown type is 400 not-supported; lenient ignores it (once per type). */
START_TEST(type_unknown_strict_and_lenient)
{
    atr_bulk_params_t *bp;

    refused_with(EXPORT, "_type=Patient,Observation", NULL, STRICT, "not-supported", "Observation", "_type");
    refused_with(EXPORT, "_type=patient", NULL, STRICT, "not-supported", "'patient'", NULL);
    refused_with(EXPORT, "_type=Patient,%20Coverage", NULL, STRICT, "not-supported", "' Coverage'", NULL);

    bp = accepted(EXPORT, "_type=Patient,Observation&_type=Observation,Encounter", NULL, LENIENT);
    ck_assert_str_eq(types_of(bp), "Patient");
    ck_assert_int_eq(bp->issues->nelts, 2);
    issue_is(bp, 0, "not-supported", "'Observation'", "ignored");
    issue_is(bp, 1, "not-supported", "'Encounter'", "ignored");

    /* Nothing left: $export has no type to export, even leniently... */
    refused_with(EXPORT, "_type=Observation", NULL, LENIENT, "not-supported", "_type", NULL);
    /* ...while $davinci-data-export still has its minimum (EXP-04, D12). */
    bp = accepted(DAVINCI, "_type=Observation", NULL, LENIENT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage");
    ck_assert_int_eq(bp->issues->nelts, 2);
    issue_is(bp, 0, "not-supported", "Observation", NULL);
    issue_is(bp, 1, "informational", "Group, Patient, Coverage", "added");
}
END_TEST

/* An empty _type, or an empty item in its list, is malformed: 400 invalid even leniently. */
START_TEST(type_empty_is_invalid)
{
    static const char *const bad[] = { "_type=", "_type", "_type=Group,,Patient", "_type=Group,",
                                       ",Group", "resourceTypes=", NULL };
    int i, lenient;
    for (lenient = 0; lenient <= 1; lenient++) {
        for (i = 0; bad[i]; i++) {
            const char *q = bad[i][0] == ',' ? apr_pstrcat(pool, "_type=", bad[i], NULL) : bad[i];
            refused_with(EXPORT, q, NULL, lenient, "invalid", strchr(q, '_') ? "_type" : "resourceTypes", NULL);
            refused_with(DAVINCI, q, NULL, lenient, "invalid", NULL, NULL);
        }
        refused_with(EXPORT, NULL, params_body("{'name':'_type','valueString':''}"), lenient, "invalid",
                     "_type", "empty");
    }
}
END_TEST

/* EXP-04: $davinci-data-export needs Group, Patient and Coverage; $export does not.
 * D12: lenient adds the missing ones and says so. */
START_TEST(type_minimum_davinci_vs_export)
{
    atr_bulk_params_t *bp;
    atr_bulk_error_t err;

    err = refused(DAVINCI, "_type=Patient,Coverage", NULL, STRICT);
    ck_assert_str_eq(err.code, "required");
    ck_assert_ptr_nonnull(strstr(err.text, "missing: Group"));
    ck_assert_ptr_nonnull(strstr(err.text, "_type"));
    refused_with(DAVINCI, "_type=Location", NULL, STRICT, "required", "Group, Patient, Coverage", NULL);
    refused_with(DAVINCI, NULL, params_body("{'name':'_type','valueString':'Group,Patient'}"), STRICT,
                 "required", "missing: Coverage", NULL);

    bp = accepted(EXPORT, "_type=Patient,Coverage", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Patient,Coverage");
    ck_assert_int_eq(bp->issues->nelts, 0);
    bp = accepted(EXPORT, "_type=Location", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), "Location");

    bp = accepted(DAVINCI, "_type=Patient,Location", NULL, LENIENT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage,Location");
    ck_assert_int_eq(bp->issues->nelts, 1);
    issue_is(bp, 0, "informational", "Group, Coverage", "added");
    ck_assert_ptr_nonnull(strstr(issue(bp, 0)->text, "_type"));

    bp = accepted(DAVINCI, "_type=Group,Patient,Coverage", NULL, LENIENT);
    ck_assert_int_eq(bp->issues->nelts, 0);
}
END_TEST

/* ---------------------------------------------------------------- _since, _until */

/* BULK-KO-05, EXP-12: FHIR instants, kept as given. */
START_TEST(since_until_instants)
{
    atr_bulk_params_t *bp = accepted(DAVINCI, "_since=2024-01-01T00:00:00Z&_until=2024-02-01T12:30:00.123%2B05:30",
                                     NULL, STRICT);
    ck_assert_str_eq(bp->since, "2024-01-01T00:00:00Z");
    ck_assert_str_eq(bp->until, "2024-02-01T12:30:00.123+05:30");
    ck_assert_str_eq(types_of(bp), ALL_TYPES);

    bp = accepted(EXPORT, "_until=2024-01-01T00:00:00-05:00", NULL, STRICT);
    ck_assert_ptr_null(bp->since);
    ck_assert_str_eq(bp->until, "2024-01-01T00:00:00-05:00");

    /* An unescaped '+' arrives as a space: read as the '+' it was. */
    bp = accepted(EXPORT, "_since=2024-01-01T00:00:00+01:00", NULL, STRICT);
    ck_assert_str_eq(bp->since, "2024-01-01T00:00:00+01:00");

    /* Equal bounds are "not before". Zones count: 01:00+01:00 is 00:00Z. */
    accepted(EXPORT, "_since=2024-01-01T00:00:00Z&_until=2024-01-01T00:00:00Z", NULL, STRICT);
    accepted(EXPORT, "_since=2024-01-01T00:00:00Z&_until=2024-01-01T01:00:00%2B01:00", NULL, STRICT);

    bp = accepted(EXPORT, NULL, params_body("{'name':'_since','valueInstant':'2023-05-06T07:08:09.5Z'},"
                                            "{'name':'_until','valueDateTime':'2023-05-07T00:00:00Z'}"), STRICT);
    ck_assert_str_eq(bp->since, "2023-05-06T07:08:09.5Z");
    ck_assert_str_eq(bp->until, "2023-05-07T00:00:00Z");
}
END_TEST

/* BULK-KO-05: malformed instants are 400 invalid, lenient or not. */
START_TEST(since_until_malformed)
{
    static const char *const bad[] = {
        "_since=yesterday", "_since=2024-01-01", "_since=2024-01-01T00:00Z", "_since=2024-01-01T00:00:00",
        "_since=2024-13-01T00:00:00Z", "_since=", "_until=2024-02-30T00:00:00Z", "_until=now",
        "_since=2024-01-01T00:00:00Z&_since=2024-01-02T00:00:00Z", NULL
    };
    int i, lenient;
    for (lenient = 0; lenient <= 1; lenient++) {
        for (i = 0; bad[i]; i++) {
            refused_with(i % 2 ? DAVINCI : EXPORT, bad[i], NULL, lenient, "invalid",
                         strncmp(bad[i], "_since", 6) ? "_until" : "_since", NULL);
        }
        refused_with(EXPORT, NULL, params_body("{'name':'_since','valueInstant':'2024'}"), lenient,
                     "invalid", "_since", "'2024'");
    }
    refused_with(EXPORT, "_since=yesterday", NULL, STRICT, "invalid", "'yesterday'", "instant");
    refused_with(EXPORT, "_since=2024-01-01T00:00:00Z&_since=2024-01-01T00:00:00Z", NULL, STRICT,
                 "invalid", "more than once", NULL);
}
END_TEST

START_TEST(until_before_since)
{
    refused_with(DAVINCI, "_since=2024-02-01T00:00:00Z&_until=2024-01-31T23:59:59.999Z", NULL, STRICT,
                 "invalid", "_until", "before _since");
    refused_with(EXPORT, "_until=2024-01-01T00:30:00%2B01:00&_since=2024-01-01T00:00:00Z", NULL, LENIENT,
                 "invalid", "_until", NULL);
    refused_with(EXPORT, NULL, params_body("{'name':'_since','valueInstant':'2024-01-02T00:00:00Z'},"
                                           "{'name':'_until','valueInstant':'2024-01-01T00:00:00Z'}"),
                 STRICT, "invalid", "before", NULL);
}
END_TEST

/* ---------------------------------------------------------------- _outputFormat, exportType */

/* BULK-KO-04: the three ndjson spellings, one kick-off each; anything else is 400. */
START_TEST(output_format)
{
    static const char *const good[] = {
        "_outputFormat=application%2Ffhir%2Bndjson", "_outputFormat=application/ndjson", "_outputFormat=ndjson",
        "_outputFormat=application/fhir+ndjson", "_outputFormat=Application/FHIR%2BNDJSON", NULL
    };
    int i, lenient;
    for (i = 0; good[i]; i++) {
        accepted(DAVINCI, good[i], NULL, STRICT);
        accepted(EXPORT, good[i], NULL, STRICT);
    }
    accepted(EXPORT, NULL, params_body("{'name':'_outputFormat','valueString':'application/fhir+ndjson'}"), STRICT);
    accepted(EXPORT, NULL, params_body("{'name':'_outputFormat','valueCode':'ndjson'}"), STRICT);
    for (lenient = 0; lenient <= 1; lenient++) {
        refused_with(EXPORT, "_outputFormat=text/csv", NULL, lenient, "not-supported", "_outputFormat", "text/csv");
        refused_with(DAVINCI, "_outputFormat=", NULL, lenient, "not-supported", "_outputFormat", NULL);
        refused_with(EXPORT, NULL, params_body("{'name':'_outputFormat','valueString':'application/fhir+json'}"),
                     lenient, "not-supported", "application/fhir+json", NULL);
    }
    refused_with(EXPORT, "_outputFormat=ndjson&_outputFormat=ndjson", NULL, STRICT, "invalid",
                 "more than once", NULL);
}
END_TEST

/* EXP-02 (D11): exportType absent or hl7.fhir.us.davinci-atr; anything else 400 not-supported,
 * also under lenient. EXP-13: $export takes the same. */
START_TEST(export_type)
{
    int lenient;
    atr_bulk_params_t *bp = accepted(DAVINCI, "exportType=hl7.fhir.us.davinci-atr", NULL, STRICT);
    ck_assert_str_eq(types_of(bp), ALL_TYPES);
    accepted(EXPORT, "exportType=hl7.fhir.us.davinci-atr", NULL, STRICT);
    accepted(DAVINCI, NULL, params_body("{'name':'exportType','valueCanonical':'hl7.fhir.us.davinci-atr'}"), STRICT);
    accepted(DAVINCI, NULL, params_body("{'name':'exportType','valueUri':'hl7.fhir.us.davinci-atr'}"), STRICT);
    for (lenient = 0; lenient <= 1; lenient++) {
        refused_with(DAVINCI, "exportType=hl7.fhir.us.davinci-pdex%23payertopayer", NULL, lenient,
                     "not-supported", "exportType", "davinci-pdex#payertopayer");
        refused_with(EXPORT, "exportType=HL7.FHIR.US.DAVINCI-ATR", NULL, lenient, "not-supported", NULL, NULL);
        refused_with(DAVINCI, "exportType=", NULL, lenient, "not-supported", "exportType", NULL);
    }
    refused_with(DAVINCI, "exportType=hl7.fhir.us.davinci-atr&exportType=hl7.fhir.us.davinci-atr", NULL,
                 STRICT, "invalid", "more than once", NULL);
}
END_TEST

/* ---------------------------------------------------------------- patient */

/* EXP-06, BULK-KO-01: patient only in a POST body; in order, exact duplicates dropped. */
START_TEST(patient_in_body)
{
    atr_bulk_params_t *bp = accepted(DAVINCI, NULL, params_body(
        "{'name':'patient','valueReference':{'reference':'Patient/p2'}},"
        "{'name':'patient','valueReference':{'reference':'Patient/p1','display':'One'}},"
        "{'name':'patient','valueReference':{'reference':'Patient/p2'}},"
        "{'name':'patient','valueReference':{'reference':'Patient/p-3.x'}}"), STRICT);
    ck_assert_str_eq(patients_of(bp), "Patient/p2,Patient/p1,Patient/p-3.x");
    ck_assert_int_eq(bp->issues->nelts, 0);
    bp = accepted(EXPORT, NULL, params_body("{'name':'patient','valueReference':{'reference':'Patient/1'}}"), STRICT);
    ck_assert_str_eq(patients_of(bp), "Patient/1");
}
END_TEST

/* EXP-06: in a GET (or in the query of a POST): 400 not-supported; lenient ignores it. */
START_TEST(patient_in_query)
{
    atr_bulk_params_t *bp;

    refused_with(DAVINCI, "patient=Patient/1", NULL, STRICT, "not-supported", "patient", "POST");
    refused_with(EXPORT, "patient=Patient/1", params_body("{'name':'_type','valueString':'Patient'}"), STRICT,
                 "not-supported", "patient", NULL);
    bp = accepted(DAVINCI, "patient=Patient/1&patient=Patient/2&_type=Group,Patient,Coverage", NULL, LENIENT);
    ck_assert_ptr_null(bp->patients);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage");
    ck_assert_int_eq(bp->issues->nelts, 1);
    issue_is(bp, 0, "not-supported", "patient", "ignored");
}
END_TEST

/* Only a relative Patient/<id> reference; other shapes are malformed: 400 invalid, lenient too. */
START_TEST(patient_malformed)
{
    static const char *const bad[] = {
        "{'name':'patient','valueReference':{'reference':'Patient/a b'}}",
        "{'name':'patient','valueReference':{'reference':'https://payer.example/fhir/Patient/1'}}",
        "{'name':'patient','valueReference':{'reference':'Group/1'}}",
        "{'name':'patient','valueReference':{'reference':'Patient/'}}",
        "{'name':'patient','valueReference':{'reference':'Patient/1/_history/2'}}",
        "{'name':'patient','valueReference':{'reference':'patient/1'}}",
        "{'name':'patient','valueReference':{'reference':'Patient/" "01234567890123456789012345678901234567890123456789012345678901234" "'}}",
        "{'name':'patient','valueReference':{'identifier':{'system':'urn:x','value':'1'}}}",
        "{'name':'patient','valueReference':{'reference':7}}",
        "{'name':'patient','valueReference':'Patient/1'}",
        "{'name':'patient','valueString':'Patient/1'}",
        "{'name':'patient','resource':{'resourceType':'Patient','id':'1'}}",
        NULL
    };
    int i, lenient;
    for (lenient = 0; lenient <= 1; lenient++) {
        for (i = 0; bad[i]; i++) {
            refused_with(DAVINCI, NULL, params_body(bad[i]), lenient, "invalid", "patient", NULL);
        }
    }
    refused_with(DAVINCI, NULL, params_body("{'name':'patient','valueReference':{'reference':'Group/1'}}"),
                 STRICT, "invalid", "'Group/1'", "Patient/<id>");
}
END_TEST

/* ---------------------------------------------------------------- other parameters */

/* EXP-14: _typeFilter, _elements, includeAssociatedData and unknown parameters: 400
 * not-supported, or ignored with one note per parameter under lenient. _format is not ours. */
START_TEST(unsupported_parameters)
{
    static const char *const names[] = { "_typeFilter", "_elements", "includeAssociatedData", "foo",
                                         "organizeOutputBy", "_type:exact", NULL };
    atr_bulk_params_t *bp;
    int i;

    for (i = 0; names[i]; i++) {
        const char *q = apr_pstrcat(pool, names[i], "=x", NULL);
        refused_with(DAVINCI, q, NULL, STRICT, "not-supported", names[i], NULL);
        refused_with(EXPORT, q, NULL, STRICT, "not-supported", names[i], NULL);
        bp = accepted(DAVINCI, q, NULL, LENIENT);
        ck_assert_str_eq(types_of(bp), ALL_TYPES);
        ck_assert_int_eq(bp->issues->nelts, 1);
        issue_is(bp, 0, "not-supported", names[i], "ignored");
    }
    bp = accepted(EXPORT, "_typeFilter=Patient%3Fgender%3Dmale&_elements=id&_typeFilter=Coverage%3Fstatus%3Dactive"
                  "&_type=Patient", NULL, LENIENT);
    ck_assert_str_eq(types_of(bp), "Patient");
    ck_assert_int_eq(bp->issues->nelts, 2);
    issue_is(bp, 0, "not-supported", "_typeFilter", NULL);
    issue_is(bp, 1, "not-supported", "_elements", NULL);

    bp = accepted(EXPORT, "_format=application/fhir%2Bjson&_format=json", NULL, STRICT);
    ck_assert_int_eq(bp->issues->nelts, 0);

    /* In a body: any value shape, still not supported. */
    refused_with(DAVINCI, NULL, params_body("{'name':'includeAssociatedData','valueCode':'LatestProvenanceResources'}"),
                 STRICT, "not-supported", "includeAssociatedData", NULL);
    bp = accepted(DAVINCI, NULL, params_body(
        "{'name':'includeAssociatedData','valueCode':'LatestProvenanceResources'},"
        "{'name':'_typeFilter','valueString':'Coverage?status=active'},"
        "{'name':'custom','part':[{'name':'a','valueBoolean':true}]},"
        "{'name':'_format','valueInteger':3}"), LENIENT);
    ck_assert_int_eq(bp->issues->nelts, 4);
    issue_is(bp, 0, "not-supported", "includeAssociatedData", "ignored");
    issue_is(bp, 1, "not-supported", "_typeFilter", NULL);
    issue_is(bp, 2, "not-supported", "custom", NULL);
    issue_is(bp, 3, "not-supported", "_format", NULL);
}
END_TEST

/* ---------------------------------------------------------------- POST bodies */

/* BULK-KO-01: every parameter in a Parameters body, any primitive string value[x]. */
START_TEST(post_full_body)
{
    atr_bulk_params_t *bp = accepted(DAVINCI, "_format=json", params_body(
        "{'name':'exportType','valueCanonical':'hl7.fhir.us.davinci-atr'},"
        "{'name':'_type','valueString':'Group,Patient,Coverage'},"
        "{'name':'resourceTypes','valueCode':'Location'},"
        "{'name':'_since','valueInstant':'2024-01-01T00:00:00+01:00','_valueInstant':{'id':'x'}},"
        "{'name':'_until','valueString':'2025-01-01T00:00:00Z','id':'u','extension':[]},"
        "{'name':'_outputFormat','valueString':'application/fhir+ndjson'},"
        "{'name':'patient','valueReference':{'reference':'Patient/a'}},"
        "{'name':'patient','valueReference':{'reference':'Patient/b'}}"), STRICT);
    ck_assert_str_eq(types_of(bp), "Group,Patient,Coverage,Location");
    ck_assert_str_eq(bp->since, "2024-01-01T00:00:00+01:00");   /* a body's '+' is a '+' */
    ck_assert_str_eq(bp->until, "2025-01-01T00:00:00Z");
    ck_assert_str_eq(patients_of(bp), "Patient/a,Patient/b");
    ck_assert_int_eq(bp->issues->nelts, 0);

    /* Query and body together, different parameters. */
    bp = accepted(DAVINCI, "_type=Group,Patient,Coverage&_since=2024-01-01T00:00:00Z",
                  params_body("{'name':'patient','valueReference':{'reference':'Patient/a'}}"), STRICT);
    ck_assert_str_eq(bp->since, "2024-01-01T00:00:00Z");
    ck_assert_str_eq(patients_of(bp), "Patient/a");
}
END_TEST

/* A parameter in the query and in the body is an error, aliases included. */
START_TEST(post_parameter_in_both_places)
{
    int lenient;
    for (lenient = 0; lenient <= 1; lenient++) {
        refused_with(EXPORT, "_since=2024-01-01T00:00:00Z",
                     params_body("{'name':'_since','valueInstant':'2024-01-01T00:00:00Z'}"), lenient,
                     "invalid", "_since", "both");
        refused_with(DAVINCI, "_type=Group",
                     params_body("{'name':'resourceTypes','valueString':'Patient,Coverage'}"), lenient,
                     "invalid", "_type", "resourceTypes");
        refused_with(DAVINCI, "_typeFilter=x",
                     params_body("{'name':'_typeFilter','valueString':'y'}"), lenient, "invalid", "_typeFilter", NULL);
    }
}
END_TEST

/* Bodies that are not a usable Parameters resource: 400 invalid with a sentence saying what. */
START_TEST(post_bad_bodies)
{
    static const struct { const char *body, *word; } bad[] = {
        { "", "not JSON" },
        { "{", "not JSON" },
        { "resourceType=Parameters", "not JSON" },
        { "{'resourceType':'Parameters','resourceType':'Parameters'}", "not JSON" },
        { "[]", "not a FHIR Parameters" },
        { "'Parameters'", "The body is not" },
        { "{'parameter':[]}", "no resourceType" },
        { "{'resourceType':'Patient','id':'1'}", "Patient, not a FHIR Parameters" },
        { "{'resourceType':'parameters'}", "parameters, not" },
        { "{'resourceType':'Parameters','parameter':{}}", "not a JSON array" },
        { "{'resourceType':'Parameters','parameter':['_type']}", "parameter[0] is not a JSON object" },
        { "{'resourceType':'Parameters','parameter':[{'valueString':'Group'}]}", "parameter[0] has no name" },
        { "{'resourceType':'Parameters','parameter':[{'name':'','valueString':'Group'}]}", "has no name" },
        { "{'resourceType':'Parameters','parameter':[{'name':5,'valueString':'Group'}]}", "has no name" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueString':'Group'},{'name':'_since'}]}",
          "parameter[1] (_since) has no value" },
        { "{'resourceType':'Parameters','parameter':[{'name':'foo'}]}", "(foo) has no value" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueString':'Group','valueCode':'Patient'}]}",
          "more than one value" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueString':'Group','part':[]}]}",
          "more than one value" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_since','valueBoolean':true}]}", "valueBoolean" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueInteger':1}]}", "valueInteger" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueString':7}]}", "string value" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueReference':{'reference':'Group/1'}}]}",
          "valueReference" },
        { "{'resourceType':'Parameters','parameter':[{'name':'exportType','part':[{'name':'x','valueString':'y'}]}]}",
          "part" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_outputFormat','valuestring':'ndjson'}]}",
          "valuestring" },
        { "{'resourceType':'Parameters','parameter':[{'name':'_type','valueString':'Group','typo':1}]}",
          "unknown element 'typo'" },
        { NULL, NULL }
    };
    int i, lenient;
    for (lenient = 0; lenient <= 1; lenient++) {
        for (i = 0; bad[i].body; i++) {
            refused_with(i % 2 ? DAVINCI : EXPORT, NULL, dq(bad[i].body), lenient, "invalid", bad[i].word, NULL);
        }
    }
    /* A modifier we do not understand is never ignored. */
    refused_with(EXPORT, NULL, params_body("{'name':'_type','valueString':'Group','modifierExtension':[{'url':'u'}]}"),
                 LENIENT, "not-supported", "modifierExtension", NULL);
}
END_TEST

/* ---------------------------------------------------------------- job row JSON */

START_TEST(json_exact_form)
{
    atr_bulk_params_t *bp = accepted(EXPORT, "_type=Patient", NULL, STRICT);
    ck_assert_str_eq(atr_bulk_params_to_json(bp, pool), dq("{'types':['Patient'],'issues':[]}"));

    bp = accepted(DAVINCI, "_type=Patient,Coverage&_since=2024-01-01T00:00:00Z&_until=2024-02-01T00:00:00Z"
                  "&_elements=id", params_body("{'name':'patient','valueReference':{'reference':'Patient/a'}}"),
                  LENIENT);
    ck_assert_str_eq(atr_bulk_params_to_json(bp, pool), apr_pstrcat(pool, dq(
        "{'types':['Group','Patient','Coverage'],'since':'2024-01-01T00:00:00Z','until':'2024-02-01T00:00:00Z',"
        "'patients':['Patient/a'],'issues':[{'severity':'warning','code':'not-supported','text':'"),
        issue(bp, 0)->text, dq("'},{'severity':'warning','code':'informational','text':'"),
        issue(bp, 1)->text, dq("'}]}"), NULL));
}
END_TEST

static void same_params(const atr_bulk_params_t *a, const atr_bulk_params_t *b)
{
    int i;
    ck_assert_str_eq(types_of(a), types_of(b));
    ck_assert_pstr_eq(a->since, b->since);
    ck_assert_pstr_eq(a->until, b->until);
    ck_assert_pstr_eq(patients_of(a), patients_of(b));
    ck_assert_int_eq(a->issues->nelts, b->issues->nelts);
    for (i = 0; i < a->issues->nelts; i++) {
        ck_assert_str_eq(issue(a, i)->severity, issue(b, i)->severity);
        ck_assert_str_eq(issue(a, i)->code, issue(b, i)->code);
        ck_assert_str_eq(issue(a, i)->text, issue(b, i)->text);
    }
}

START_TEST(json_round_trip)
{
    atr_bulk_params_t *cases[4], *back;
    int i;

    cases[0] = accepted(DAVINCI, NULL, NULL, STRICT);
    cases[1] = accepted(EXPORT, "_type=Location,Patient&_until=2024-01-01T00:00:00.5-03:00", NULL, STRICT);
    cases[2] = accepted(DAVINCI, "resourceTypes=GRoup,Patient&_typeFilter=a&patient=Patient/x&"
                        "_since=2020-02-29T23:59:59Z", NULL, LENIENT);
    cases[3] = accepted(DAVINCI, NULL, params_body(
        "{'name':'patient','valueReference':{'reference':'Patient/b'}},"
        "{'name':'patient','valueReference':{'reference':'Patient/a'}},"
        "{'name':'_type','valueString':'Gr\\u00e9up\\\"/,Group,Patient,Coverage'},"
        "{'name':'foo','valueString':'x'}"), LENIENT);
    ck_assert_int_eq(cases[3]->issues->nelts, 2);
    ck_assert_ptr_nonnull(strstr(issue(cases[3], 0)->text, "'Gr\xc3\xa9up\"/'"));
    ck_assert_int_eq(cases[2]->issues->nelts, 4);
    for (i = 0; i < 4; i++) {
        const char *json = atr_bulk_params_to_json(cases[i], pool);
        ck_assert_ptr_nonnull(json);
        ck_assert_int_eq(atr_bulk_params_from_json(&back, json, pool), APR_SUCCESS);
        same_params(cases[i], back);
        ck_assert_str_eq(atr_bulk_params_to_json(back, pool), json);
    }
}
END_TEST

/* from_json takes what to_json wrote and nothing else. */
START_TEST(json_rejects_other_text)
{
    static const char *const bad[] = {
        "", "{", "[]", "null", "{}",
        "{'types':['Patient']}",                                    /* no issues */
        "{'issues':[]}",                                            /* no types */
        "{'types':[],'issues':[]}",
        "{'types':['Observation'],'issues':[]}",
        "{'types':['patient'],'issues':[]}",
        "{'types':['Patient','Group'],'issues':[]}",                /* out of order */
        "{'types':['Group','Group'],'issues':[]}",
        "{'types':[1],'issues':[]}",
        "{'types':'Group','issues':[]}",
        "{'types':['Group'],'issues':{}}",
        "{'types':['Group'],'since':'yesterday','issues':[]}",
        "{'types':['Group'],'since':null,'issues':[]}",
        "{'types':['Group'],'until':20240101,'issues':[]}",
        "{'types':['Group'],'since':'2024-01-02T00:00:00Z','until':'2024-01-01T00:00:00Z','issues':[]}",
        "{'types':['Group'],'patients':[],'issues':[]}",
        "{'types':['Group'],'patients':['Patient/a','Patient/a'],'issues':[]}",
        "{'types':['Group'],'patients':['Group/a'],'issues':[]}",
        "{'types':['Group'],'patients':'Patient/a','issues':[]}",
        "{'types':['Group'],'issues':[{'severity':'warning','code':'not-supported'}]}",
        "{'types':['Group'],'issues':[{'severity':'loud','code':'not-supported','text':'t'}]}",
        "{'types':['Group'],'issues':[{'severity':'warning','code':'','text':'t'}]}",
        "{'types':['Group'],'issues':[{'severity':'warning','code':'x','text':'t','extra':1}]}",
        "{'types':['Group'],'issues':['warning']}",
        "{'types':['Group'],'issues':[],'extra':true}",
        "{'issues':[],'types':['Group']}",                          /* another order */
        "{'types':['Group'],'until':'2024-01-01T00:00:00Z','since':'2023-01-01T00:00:00Z','issues':[]}",
        "{ 'types':['Group'],'issues':[]}",                         /* whitespace */
        "{'types':['Group'],'issues':[]}\n",
        "{'types':['Gr\\u006fup'],'issues':[]}",                    /* an escape we do not write */
        NULL
    };
    static atr_bulk_params_t dummy;
    atr_bulk_params_t *bp;
    int i;

    ck_assert_int_eq(atr_bulk_params_from_json(&bp, dq("{'types':['Group'],'issues':[]}"), pool), APR_SUCCESS);
    ck_assert_str_eq(types_of(bp), "Group");
    for (i = 0; bad[i]; i++) {
        bp = &dummy;
        ck_assert_msg(atr_bulk_params_from_json(&bp, dq(bad[i]), pool) == APR_EINVAL, "accepted: %s", bad[i]);
        ck_assert_ptr_null(bp);
    }
    ck_assert_int_eq(atr_bulk_params_from_json(&bp, NULL, pool), APR_EINVAL);
}
END_TEST

Suite *bulk_params_suite(void)
{
    Suite *s = suite_create("bulk_params");
    TCase *tc = tcase_create("types");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, type_absent_means_all);
    tcase_add_test(tc, type_order_and_duplicates);
    tcase_add_test(tc, type_repeated_lists);
    tcase_add_test(tc, type_alias_resource_types);
    tcase_add_test(tc, type_spec_example_GRoup);
    tcase_add_test(tc, type_unknown_strict_and_lenient);
    tcase_add_test(tc, type_empty_is_invalid);
    tcase_add_test(tc, type_minimum_davinci_vs_export);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, since_until_instants);
    tcase_add_test(tc, since_until_malformed);
    tcase_add_test(tc, until_before_since);
    tcase_add_test(tc, output_format);
    tcase_add_test(tc, export_type);
    tcase_add_test(tc, patient_in_body);
    tcase_add_test(tc, patient_in_query);
    tcase_add_test(tc, patient_malformed);
    tcase_add_test(tc, unsupported_parameters);
    suite_add_tcase(s, tc);

    tc = tcase_create("post");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, post_full_body);
    tcase_add_test(tc, post_parameter_in_both_places);
    tcase_add_test(tc, post_bad_bodies);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_exact_form);
    tcase_add_test(tc, json_round_trip);
    tcase_add_test(tc, json_rejects_other_text);
    suite_add_tcase(s, tc);
    return s;
}
