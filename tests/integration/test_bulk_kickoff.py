"""Bulk export kick-off (issue 4, docs/bulk-export.md "Kick-off"): `$davinci-data-export`
(EXP-01) and `$export` (EXP-13) by GET and POST (BULK-KO-01), every parameter and its
refusals (BULK-KO-03..06, EXP-02..06, EXP-12, EXP-14, D11..D16), the headers (BULK-KO-02,
D16), authorization (BULK-KO-10, SCOPE-04, EXP-10, D1, D17) and one export per client and
Group at a time (BULK-KO-09)."""
import json
import time

import pytest

from harness.bulk import ATR_TYPES, DAVINCI, EXPORT, NDJSON, oo, parameters, retry_after

SD = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/"
LENIENT = {"Prefer": "respond-async, handling=lenient"}
MIN_TYPES = {"Group", "Patient", "Coverage"}


def _member(patient, coverage):
    return {"entity": {"reference": "Patient/" + patient},
            "extension": [{"url": SD + "ext-changeType", "valueCode": "new"},
                          {"url": SD + "ext-coverageReference",
                           "valueReference": {"reference": "Coverage/" + coverage}}]}


def _load(atrctl, path, resources):
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    atrctl("load", str(path))


@pytest.fixture(scope="module")
def since_group(atrctl, tmp_path_factory):
    """Group `bks-g` with two members whose Patient and Coverage were loaded > 1 s apart, and
    the Group itself loaded last: the lastUpdated instants `_since`/`_until` cut between."""
    d = tmp_path_factory.mktemp("bulk-since")
    for n in (1, 2):
        _load(atrctl, d / ("p%d.ndjson" % n), [
            {"resourceType": "Patient", "id": "bks-p%d" % n, "name": [{"family": "Since%d" % n}]},
            {"resourceType": "Coverage", "id": "bks-c%d" % n, "status": "active",
             "beneficiary": {"reference": "Patient/bks-p%d" % n}}])
        time.sleep(1.1)
    _load(atrctl, d / "g.ndjson", [
        {"resourceType": "Group", "id": "bks-g", "type": "person", "actual": True,
         "name": "Since list", "member": [_member("bks-p1", "bks-c1"), _member("bks-p2", "bks-c2")]}])
    return "bks-g"


@pytest.fixture(scope="module")
def gone_group(atrctl, tmp_path_factory):
    """Group `bkgone-g`, loaded and then deleted (`atrctl delete`)."""
    d = tmp_path_factory.mktemp("bulk-gone")
    _load(atrctl, d / "g.ndjson", [
        {"resourceType": "Group", "id": "bkgone-g", "type": "person", "actual": True,
         "name": "Gone list", "member": [_member("zkpat-1", "zkcov-1")]}])
    atrctl("delete", "Group/bkgone-g")
    return "bkgone-g"


@pytest.fixture
def client(bulk_clients, bulk_data):
    """A fresh Consumer (so no other test's job makes a kick-off 429) entitled to the bk
    Groups, the `_since` Group and the deleted Group, with system/*.read."""
    return bulk_clients(groups=(bulk_data.group, bulk_data.group2, "bks-g", "bkgone-g"))


def refused(r, status, code=None, mentions=()):
    """An error answer (BULK-KO-08): status, an OperationOutcome with an error issue, its
    code, and diagnostics naming what was wrong."""
    body = oo(r, status)
    issue = body["issue"][0]
    assert issue["severity"] in ("error", "fatal"), body
    if code:
        assert issue["code"] == code, body
    text = json.dumps(body)
    for word in mentions:
        assert word in text, (word, body)
    return body


def error_outcomes(client, export):
    """Every OperationOutcome of the manifest's error files (each line one)."""
    out = []
    for item in export.manifest["error"]:
        assert item["type"] == "OperationOutcome", item
        for line in client.file_lines(item["url"]):
            res = json.loads(line)
            assert res["resourceType"] == "OperationOutcome", res
            out.append(res)
    return out


def counts(export):
    c = {}
    for o in export.manifest["output"]:
        c[o["type"]] = c.get(o["type"], 0) + o["count"]
    return c


def ids_of(client, export, rtype):
    return sorted(json.loads(line)["id"] for o in export.outputs(rtype)
                  for line in client.file_lines(o["url"]))


# ---------------------------------------------------------------- accepted kick-offs

@pytest.mark.parametrize("op", [DAVINCI, EXPORT])
def test_kickoff_is_202_with_absolute_status_url(client, bulk_data, op):
    """BULK-KO-07, EXP-01, EXP-13: 202, Content-Location an absolute status URL, an
    information OperationOutcome."""
    r = client.kickoff(bulk_data.group, op)
    e = client.accepted(r)
    body = oo(r)
    assert body["issue"][0]["severity"] == "information", body
    assert e.job


@pytest.mark.parametrize("op,query,types", [
    (DAVINCI, None, set(ATR_TYPES)),
    (EXPORT, None, set(ATR_TYPES)),
    (DAVINCI, "_type=Group,Patient,Coverage", MIN_TYPES),
    (DAVINCI, "_type=Group,Patient&_type=Coverage", MIN_TYPES),
    (DAVINCI, "_type=Group&_type=Patient&_type=Coverage&_type=Patient", MIN_TYPES),
    (DAVINCI, "resourceTypes=Group,Patient,Coverage", MIN_TYPES),
    (DAVINCI, "resourceTypes=Group,Patient&resourceTypes=Coverage,Location",
     MIN_TYPES | {"Location"}),
    (DAVINCI, "_type=Group,Patient,Coverage,RelatedPerson,Practitioner,PractitionerRole,"
              "Organization,Location", set(ATR_TYPES)),
    (EXPORT, "_type=Patient", {"Patient"}),
    (EXPORT, "_type=Organization", {"Organization"}),
    (EXPORT, "_type=Patient,Practitioner,PractitionerRole,Organization,Location,Coverage,"
             "RelatedPerson", set(ATR_TYPES) - {"Group"}),
], ids=lambda v: v if isinstance(v, str) else None)
def test_type_selects_what_is_exported(client, bulk_data, op, query, types):
    """BULK-KO-06/EXP-03 (only the listed types; absent: all 8), BULK-KO-03 (repeated lists
    are one list), D13/EXP-05 (resourceTypes alias), EXP-13 ($export: no minimum types);
    counts as `atrctl export` of the same Group (references followed through types not
    exported, e.g. Organization via the Coverages)."""
    summary, _ = bulk_data.reference[bulk_data.group]
    e = client.run_export(bulk_data.group, op, query=query)
    assert set(e.types()) == types
    got = counts(e)
    assert got == {t: summary["counts"][t] for t in types}
    assert e.manifest["error"] == []


def test_post_parameters_select_types(client, bulk_data):
    """BULK-KO-01 (POST with a Parameters body, one parameter per value), BULK-KO-03."""
    body = parameters(("_type", "Group,Patient"), ("_type", "Coverage"),
                      ("_outputFormat", "application/fhir+ndjson"))
    e = client.run_export(bulk_data.group, body=body)
    assert set(e.types()) == MIN_TYPES
    # the request of a POST is the kick-off URL without the body (BULK-ST-05)
    assert e.manifest["request"] == client.kickoff_url(bulk_data.group)


# ---------------------------------------------------------------- _type refusals

@pytest.mark.parametrize("op,query,bad", [
    (DAVINCI, "_type=Group,Patient,Coverage,Observation", "Observation"),
    (DAVINCI, "_type=GRoup,Patient,Coverage", "GRoup"),
    (DAVINCI, "resourceTypes=GRoup,Patient,Coverage", "GRoup"),
    (DAVINCI, "_type=Group,patient,Coverage", "patient"),
    (DAVINCI, "_type=Group,Patient&_type=Coverage,Claim", "Claim"),
    (EXPORT, "_type=Observation", "Observation"),
])
def test_unknown_type_is_400_not_supported(client, bulk_data, op, query, bad):
    """BULK-KO-06, EXP-05 (case-sensitive names; the spec example's `GRoup` is unknown)."""
    refused(client.kickoff(bulk_data.group, op, query=query), 400, "not-supported", [bad])


@pytest.mark.parametrize("query", ["_type=Patient,Coverage", "_type=Group,Patient",
                                   "_type=Group,Coverage,Organization",
                                   "resourceTypes=Patient"])
def test_davinci_requires_group_patient_coverage(client, bulk_data, query):
    """EXP-04: `$davinci-data-export` with `_type` lacking Group, Patient or Coverage → 400."""
    refused(client.kickoff(bulk_data.group, DAVINCI, query=query), 400)


def test_export_has_no_minimum_types(client, bulk_data):
    """EXP-13: `$export?_type=Patient,Coverage` is accepted (the minimum is ATR 2.x only)."""
    e = client.run_export(bulk_data.group, EXPORT, query="_type=Patient,Coverage")
    assert set(e.types()) == {"Patient", "Coverage"}


# ---------------------------------------------------------------- unsupported parameters

UNSUPPORTED = [
    ("_typeFilter", "Patient?active=true"),
    ("_elements", "id"),
    ("includeAssociatedData", "LatestProvenanceResources"),
    ("organizeOutputBy", "Patient"),
    ("foo", "bar"),
]


@pytest.mark.parametrize("name,value", UNSUPPORTED)
def test_unsupported_parameter_is_400(client, bulk_data, name, value):
    """EXP-14, D12: `_typeFilter`, `_elements`, `includeAssociatedData` and anything else
    we do not support → 400 not-supported, naming the parameter."""
    refused(client.kickoff(bulk_data.group, query=[(name, value)]), 400, "not-supported", [name])


def test_patient_in_get_is_400(client, bulk_data):
    """EXP-06, Bulk 2.0: `patient` is for POST only."""
    refused(client.kickoff(bulk_data.group, query=[("patient", "Patient/zkpat-1")]), 400,
            mentions=["patient"])


@pytest.mark.parametrize("query,word,types", [
    ("_type=Group,Patient,Coverage,GRoup", "GRoup", MIN_TYPES),
    ("_type=Group,Patient,Coverage&_type=Observation", "Observation", MIN_TYPES),
    ("_type=Patient", "Coverage", MIN_TYPES),
    ("_type=Group,Patient,Coverage&patient=Patient/zkpat-1", "patient", MIN_TYPES),
    ("_type=Group,Patient,Coverage&_typeFilter=Patient%3Factive%3Dtrue", "_typeFilter", MIN_TYPES),
    ("_type=Group,Patient,Coverage&_elements=id", "_elements", MIN_TYPES),
    ("_type=Group,Patient,Coverage&includeAssociatedData=LatestProvenanceResources",
     "includeAssociatedData", MIN_TYPES),
    ("_type=Group,Patient,Coverage&foo=bar", "foo", MIN_TYPES),
], ids=["unknown-type", "unknown-type-repeated", "minimum-types-added", "patient-in-get",
        "_typeFilter", "_elements", "includeAssociatedData", "unknown-parameter"])
def test_lenient_ignores_and_reports_in_error_file(client, bulk_data, query, word, types):
    """D12, EXP-04/05, EXP-14, BULK-ST-06: under `Prefer: handling=lenient` what is not
    supported is ignored (missing minimum types are added) and an OperationOutcome saying so
    is in the manifest's error file; the export is otherwise complete."""
    summary, _ = bulk_data.reference[bulk_data.group]
    e = client.run_export(bulk_data.group, query=query, headers=LENIENT)
    assert set(e.types()) == types
    assert counts(e) == {t: summary["counts"][t] for t in types}    # patient ignored: all
    outcomes = error_outcomes(client, e)
    assert outcomes, e.manifest
    assert any(word in json.dumps(o) for o in outcomes), outcomes
    assert sum(i["count"] for i in e.manifest["error"]) == len(outcomes)


def test_lenient_adds_every_missing_minimum_type(client, bulk_data):
    """D12: `_type=Organization` leniently becomes Group, Patient, Coverage, Organization,
    and the error file says which types were added."""
    e = client.run_export(bulk_data.group, query="_type=Organization", headers=LENIENT)
    assert set(e.types()) == MIN_TYPES | {"Organization"}
    text = json.dumps(error_outcomes(client, e))
    for t in ("Group", "Patient", "Coverage"):
        assert t in text, text


def test_lenient_does_not_excuse_malformed_values(client, bulk_data):
    """Malformed values are always 400, lenient or not."""
    refused(client.kickoff(bulk_data.group, query=[("_since", "yesterday")], headers=LENIENT),
            400, "invalid", ["_since"])


# ---------------------------------------------------------------- _since / _until

def _updated(client, rtype, rid):
    r = client.read(rtype, rid)
    assert r.status_code == 200, r.text
    return r.json()["meta"]["lastUpdated"]


def test_since_until_filter_on_last_updated(client, since_group):
    """BULK-KO-05, EXP-12: a resource is exported when `_since < lastUpdated <= _until`; the
    Group line is always written (D15)."""
    # the instants as the store gave them (a load may stamp its resources a little apart)
    t1 = max(_updated(client, "Patient", "bks-p1"), _updated(client, "Coverage", "bks-c1"))
    t2 = max(_updated(client, "Patient", "bks-p2"), _updated(client, "Coverage", "bks-c2"))
    tg = _updated(client, "Group", since_group)
    assert len({t1, t2, tg}) == 3, (t1, t2, tg)
    group_read = client.read("Group", since_group).content.strip()
    cases = [
        ([("_since", t1)], ["bks-p2"], ["bks-c2"]),
        ([("_until", t1)], ["bks-p1"], ["bks-c1"]),
        ([("_since", t1), ("_until", t2)], ["bks-p2"], ["bks-c2"]),
        ([("_since", "2000-01-01T00:00:00Z")], ["bks-p1", "bks-p2"], ["bks-c1", "bks-c2"]),
        ([("_since", tg)], [], []),
        ([("_until", "2000-01-01T00:00:00.000+00:00")], [], []),
    ]
    for query, patients, coverages in cases:
        e = client.run_export(since_group, query=[("_type", "Group,Patient,Coverage")] + query)
        assert ids_of(client, e, "Patient") == patients, query
        assert ids_of(client, e, "Coverage") == coverages, query
        group = e.outputs("Group")
        assert len(group) == 1 and group[0]["count"] == 1, (query, e.manifest)   # D15
        assert client.file_lines(group[0]["url"]) == [group_read], query
        if not patients:
            assert e.types() == ["Group"], query   # D14: no empty outputs


@pytest.mark.parametrize("name", ["_since", "_until"])
@pytest.mark.parametrize("value", ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123Z",
                                   "2024-01-01T00:00:00+02:00", "2024-06-30T23:59:59.9-05:00"])
def test_valid_instants_are_accepted(client, bulk_data, name, value):
    """BULK-KO-05: FHIR instants with Z or an offset, with or without fractions."""
    client.accepted(client.kickoff(bulk_data.group, query=[(name, value)]))


@pytest.mark.parametrize("name", ["_since", "_until"])
@pytest.mark.parametrize("value", ["yesterday", "2024-01-01", "2024-01-01T00:00:00",
                                   "2024-13-01T00:00:00Z", "2024-01-01T25:00:00Z",
                                   "2024-01-01T00:00Z", "2024-01-01 00:00:00Z", ""])
def test_malformed_instant_is_400_invalid(client, bulk_data, name, value):
    """BULK-KO-05: anything but a FHIR instant → 400 invalid naming the parameter."""
    refused(client.kickoff(bulk_data.group, query=[(name, value)]), 400, "invalid", [name])


def test_until_before_since_is_400(client, bulk_data):
    """atr_bulk_params.h: `_until` not before `_since`."""
    refused(client.kickoff(bulk_data.group, query=[("_since", "2024-02-01T00:00:00Z"),
                                                   ("_until", "2024-01-01T00:00:00Z")]),
            400, "invalid", ["_until"])


# ---------------------------------------------------------------- _outputFormat, exportType

@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_output_formats_accepted(client, bulk_data, fmt):
    """BULK-KO-04: the three NDJSON spellings are accepted; files are application/fhir+ndjson."""
    e = client.run_export(bulk_data.group, query=[("_type", "Group,Patient,Coverage"),
                                                  ("_outputFormat", fmt)])
    r = client.download(e.outputs("Patient")[0]["url"])
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == NDJSON


@pytest.mark.parametrize("fmt", ["application/json", "application/fhir+json", "text/csv",
                                 "ndjson2", ""])
def test_other_output_format_is_400(client, bulk_data, fmt):
    """BULK-KO-04: anything else → 400 naming `_outputFormat`."""
    refused(client.kickoff(bulk_data.group, query=[("_outputFormat", fmt)]), 400,
            mentions=["_outputFormat"])


def test_export_type_atr_accepted(client, bulk_data):
    """EXP-02, D11: `exportType=hl7.fhir.us.davinci-atr` (and absent) is the ATR export."""
    e = client.run_export(bulk_data.group, query=[("exportType", "hl7.fhir.us.davinci-atr"),
                                                  ("_type", "Group,Patient,Coverage")])
    assert set(e.types()) == MIN_TYPES


@pytest.mark.parametrize("value", ["hl7.fhir.us.davinci-pdex#payertopayer",
                                   "http://hl7.org/fhir/us/davinci-atr", "HL7.FHIR.US.DAVINCI-ATR"])
def test_other_export_type_is_400_not_supported(client, bulk_data, value):
    """EXP-02, D11, S11 (compared as an opaque string)."""
    refused(client.kickoff(bulk_data.group, query=[("exportType", value)]), 400,
            "not-supported", ["exportType"])


# ---------------------------------------------------------------- patient (POST)

def test_patient_post_exports_only_those_members(client, bulk_data):
    """EXP-06: POSTed `patient` references → only those members and what they reference; a
    reference that is not a member (another Group's member, an unknown Patient) is ignored
    and gets an OperationOutcome in the error file; the Group line is still the whole Group."""
    g = bulk_data.group
    body = parameters(("_type", "Group,Patient,Coverage"), ("patient", "Patient/zkpat-1"),
                      ("patient", "Patient/zkpat-3"), ("patient", "Patient/zkpat-2"),
                      ("patient", "Patient/bk-no-such"))
    e = client.run_export(g, body=body)
    assert ids_of(client, e, "Patient") == ["zkpat-1", "zkpat-3"]
    assert ids_of(client, e, "Coverage") == ["zkcov-1", "zkcov-3"]
    assert client.file_lines(e.outputs("Group")[0]["url"]) == [client.read("Group", g).content.strip()]
    outcomes = error_outcomes(client, e)
    assert len(outcomes) == 2, outcomes
    text = [json.dumps(o) for o in outcomes]
    for ref in ("Patient/zkpat-2", "Patient/bk-no-such"):
        assert sum(ref in t for t in text) == 1, (ref, text)
    for o in outcomes:
        assert o["issue"][0]["code"] == "not-found", o
    assert e.manifest["request"] == client.kickoff_url(g)


@pytest.mark.parametrize("ref", ["zkpat-1", "Practitioner/zkprac-1", "Patient/", ""])
def test_malformed_patient_reference_is_400(client, bulk_data, ref):
    """atr_bulk_params.h: a `patient` that is not `Patient/<id>` → 400 invalid."""
    refused(client.kickoff(bulk_data.group, body=parameters(("patient", ref))), 400, "invalid",
            ["patient"])


@pytest.mark.parametrize("body,code", [
    ("not json", "invalid"),
    ('{"resourceType":"Patient","id":"x"}', "invalid"),
    ('[{"resourceType":"Parameters"}]', "invalid"),
    ('{"resourceType":"Parameters","parameter":[{"name":"_type"}]}', None),
])
def test_post_body_not_parameters_is_400(client, bulk_data, body, code):
    """BULK-KO-01: the POST body must be a FHIR Parameters resource with a value per
    parameter (400 invalid)."""
    refused(client.kickoff(bulk_data.group, body=body,
                           headers={"Content-Type": "application/fhir+json"}), 400, code)


def test_post_other_content_type_is_refused(client, bulk_data):
    """BULK-KO-01: a POST kick-off is application/fhir+json (a form or text is refused with an
    OperationOutcome, 400 or 415)."""
    for ctype, body in (("application/x-www-form-urlencoded", "_type=Group,Patient,Coverage"),
                        ("text/plain", json.dumps(parameters(("_type", "Group,Patient,Coverage"))))):
        r = client.kickoff(bulk_data.group, body=body, headers={"Content-Type": ctype})
        assert r.status_code in (400, 415), (ctype, r.status_code, r.text)
        oo(r)


def test_parameter_in_query_and_body_is_400(client, bulk_data):
    """docs/bulk-export.md: a parameter may not appear both in the query and in the body."""
    r = client.kickoff(bulk_data.group, query="_type=Group,Patient,Coverage",
                       body=parameters(("_type", "Group,Patient,Coverage")))
    refused(r, 400, mentions=["_type"])


# ---------------------------------------------------------------- headers (D16)

@pytest.mark.parametrize("headers", [
    {"Accept": None}, {"Accept": "application/fhir+json"}, {"Accept": "application/json"},
    {"Accept": "*/*"}, {"Prefer": None}, {"Prefer": "respond-async"},
    {"Prefer": "respond-async, handling=strict"}, {"Accept": None, "Prefer": None},
], ids=lambda h: ",".join("%s=%s" % kv for kv in h.items()))
def test_accepted_headers(client, bulk_data, headers):
    """BULK-KO-02, D16: Accept absent, FHIR JSON, JSON or */*; Prefer absent or with
    respond-async → 202."""
    e = client.accepted(client.kickoff(bulk_data.group, headers=headers))
    assert client.delete(e.url).status_code == 202


@pytest.mark.parametrize("headers", [
    {"Accept": "application/fhir+xml"}, {"Accept": "text/html"},
    {"Accept": "application/fhir+ndjson"},
    {"Prefer": "handling=lenient"}, {"Prefer": "return=representation"},
    {"Prefer": "respond-sync"},
], ids=lambda h: ",".join("%s=%s" % kv for kv in h.items()))
def test_refused_headers_are_400(client, bulk_data, headers):
    """BULK-KO-02, D16: Prefer without respond-async, or an Accept that excludes FHIR JSON →
    400 with an OperationOutcome, and no job."""
    r = client.kickoff(bulk_data.group, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text)
    assert "Content-Location" not in r.headers
    oo(r)


# ---------------------------------------------------------------- authorization

@pytest.mark.parametrize("op", [DAVINCI, EXPORT])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_token_is_401(client, bulk_data, op, method, httpd):
    """BULK-KO-10, D17, SEC-02: no token → 401, WWW-Authenticate: Bearer realm, OperationOutcome
    login; an invalid token → 401 invalid_token."""
    body = parameters(("_type", "Group,Patient,Coverage")) if method == "POST" else None
    r = client.kickoff(bulk_data.group, op, body=body, token="")
    assert refused(r, 401, "login")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="%s"' % httpd.base_url
    r = client.kickoff(bulk_data.group, op, body=body, token="not.a.token")
    refused(r, 401, "login")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_scope_must_cover_every_exported_type(bulk_clients, bulk_data):
    """SCOPE-04, EXP-10: read scope on every exported type, else 403 insufficient_scope."""
    g = bulk_data.group
    c = bulk_clients(groups=(g,), scopes=("system/Group.read", "system/Patient.read"))
    for op, query in ((DAVINCI, "_type=Group,Patient,Coverage"), (EXPORT, None),
                      (EXPORT, "_type=Group,Patient,Organization")):
        r = c.kickoff(g, op, query=query)
        refused(r, 403, "forbidden")
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"], r.headers
    e = c.run_export(g, EXPORT, query="_type=Group,Patient")   # covered: accepted
    assert set(e.types()) == {"Group", "Patient"}

    # v2 scopes (SCOPE-03): .rs on the three minimum types covers them
    v2 = bulk_clients(groups=(g,), scopes=("system/Group.rs", "system/Patient.rs",
                                           "system/Coverage.rs"))
    refused(v2.kickoff(g, query="_type=Group,Patient,Coverage,Location"), 403, "forbidden")
    v2.accepted(v2.kickoff(g, query="_type=Group,Patient,Coverage"))

    # a token asked with fewer scopes than the client may have counts, not the registry
    full = bulk_clients(groups=(g,))
    r = full.kickoff(g, query="_type=Group,Patient,Coverage",
                     scope="system/Group.read system/Patient.read")
    refused(r, 403, "forbidden")


def test_group_not_entitled_is_404_like_unknown(bulk_clients, bulk_data):
    """EXP-10, D1, CS-GRP-08: a Group the client is not entitled to answers exactly as one that
    does not exist (404)."""
    c = bulk_clients(groups=(bulk_data.group2,))
    for op in (DAVINCI, EXPORT):
        hidden = refused(c.kickoff(bulk_data.group, op), 404)
        unknown = refused(c.kickoff("bk-no-such-group", op), 404)
        assert hidden["issue"][0]["code"] == unknown["issue"][0]["code"]
        assert json.dumps(hidden).replace(bulk_data.group, "X") == \
            json.dumps(unknown).replace("bk-no-such-group", "X")


def test_group_entitled_by_contract(bulk_clients, bulk_data):
    """CS-GRP-08: entitlement through a contract id works for kick-off like an id link."""
    c = bulk_clients(contracts=("http://example.org/payer/contract|zk-CTR-1",))
    c.accepted(c.kickoff(bulk_data.group))


def test_deleted_group_is_410(client, gone_group):
    """A deleted Group the client is entitled to: 410 Gone (as its read)."""
    assert client.read("Group", gone_group).status_code == 410
    for op in (DAVINCI, EXPORT):
        refused(client.kickoff(gone_group, op), 410)


# ---------------------------------------------------------------- one export at a time

def test_second_kickoff_while_queued_is_429(httpd_config, bulk_clients, bulk_data):
    """BULK-KO-09: while a client's export of a Group is queued (no worker claims jobs:
    ATRExportMaxJobs 0), another kick-off of that Group by that client → 429 + Retry-After;
    another Group or another client is not blocked; after DELETE a kick-off is accepted."""
    httpd_config("ATRExportMaxJobs 0")
    g, g2 = bulk_data.group, bulk_data.group2
    a = bulk_clients(groups=(g, g2))
    b = bulk_clients(groups=(g,))
    first = a.accepted(a.kickoff(g))
    for op, query in ((DAVINCI, None), (EXPORT, "_type=Patient"), (DAVINCI, "_since=2024-01-01T00:00:00Z")):
        r = a.kickoff(g, op, query=query)
        body = oo(r, 429)
        assert retry_after(r) > 0, r.headers
        assert body["issue"][0]["severity"] in ("error", "fatal")
        assert "Content-Location" not in r.headers
    # POST counts just the same
    r = a.kickoff(g, body=parameters(("_type", "Group,Patient,Coverage")))
    oo(r, 429)
    a.accepted(a.kickoff(g2))                  # same client, other Group
    b.accepted(b.kickoff(g))                   # other client, same Group
    assert a.delete(first.url).status_code == 202
    a.accepted(a.kickoff(g))                   # the deleted job no longer blocks
