"""Server metadata: META-01..05, META-06 (anonymous)."""
ATR = "http://hl7.org/fhir/us/davinci-atr"
TYPES = ["Group", "Patient", "Coverage", "RelatedPerson", "Practitioner",
         "PractitionerRole", "Organization", "Location"]


def test_metadata_is_capability_statement(fhir):
    """META-01: 200, fhir+json, kind instance, fhirVersion 4.0.1, json format."""
    r = fhir.get("/metadata")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["kind"] == "instance"
    assert cs["fhirVersion"] == "4.0.1"
    assert "json" in cs["format"] or "application/fhir+json" in cs["format"]


def test_metadata_instantiates_atr_producer(fhir):
    """META-02: instantiates the ATR producer CapabilityStatement."""
    cs = fhir.get("/metadata").json()
    assert ATR + "/CapabilityStatement/atr-producer" in cs["instantiates"]


def test_metadata_lists_each_type_with_profile_and_interactions(fhir):
    """META-05: every ATR type with its supportedProfile and the interactions implemented."""
    cs = fhir.get("/metadata").json()
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert set(TYPES) <= set(resources)
    for t in TYPES:
        res = resources[t]
        profile = ATR + "/StructureDefinition/atr-" + t.lower()
        assert profile in res.get("supportedProfile", []), t
        codes = {i["code"] for i in res["interaction"]}
        assert {"read", "vread", "history-instance"} <= codes, t
    group = resources["Group"]
    assert "search-type" in {i["code"] for i in group["interaction"]}
    params = {p["name"] for p in group["searchParam"]}
    assert {"identifier", "characteristic", "characteristic-value", "name", "_id"} <= params


def test_metadata_needs_no_token(anon):
    """META-06: /metadata is anonymous."""
    r = anon.get("/metadata")
    assert r.status_code == 200


def test_metadata_wrong_method(fhir):
    r = fhir.request("DELETE", "/metadata")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]
    assert r.json()["resourceType"] == "OperationOutcome"
