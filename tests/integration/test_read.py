"""read / vread / history for the 8 ATR types: CS-GRP-02..04, CS-RES-01/02, FHIR-04..06, DM-05."""
import copy
import json

import pytest

from harness.examples import ig_example

TYPES_AND_IDS = [("Group", "fullexample"), ("Patient", "1"), ("Coverage", "1"),
                 ("RelatedPerson", "1"), ("Practitioner", "1"), ("PractitionerRole", "1"),
                 ("Organization", "2"), ("Location", "1")]


def assert_outcome(r, status, code=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"] and oo["issue"][0]["severity"] in ("error", "fatal")
    if code:
        assert oo["issue"][0]["code"] == code
    return oo


@pytest.mark.parametrize("rtype,rid", TYPES_AND_IDS)
def test_read_each_type(fhir, rtype, rid):
    """CS-GRP-02, CS-RES-01: 200, the resource, meta.versionId/lastUpdated, ETag, Last-Modified."""
    r = fhir.get(f"/{rtype}/{rid}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    res = r.json()
    assert res["resourceType"] == rtype and res["id"] == rid
    assert res["meta"]["versionId"]
    assert res["meta"]["lastUpdated"].endswith("Z")
    assert r.headers["ETag"] == f'W/"{res["meta"]["versionId"]}"'
    assert r.headers["Last-Modified"].endswith("GMT")


@pytest.mark.parametrize("rtype,rid", TYPES_AND_IDS)
def test_history_each_type(fhir, rtype, rid):
    """CS-GRP-04, CS-RES-02, FHIR-04: history Bundle with request/response."""
    r = fhir.get(f"/{rtype}/{rid}/_history")
    assert r.status_code == 200
    b = r.json()
    assert b["resourceType"] == "Bundle" and b["type"] == "history"
    e = b["entry"][0]
    assert e["resource"]["id"] == rid
    assert e["fullUrl"] == f"{fhir.base_url}/{rtype}/{rid}"
    assert e["request"]["method"] in ("POST", "PUT")
    assert e["response"]["status"].startswith("20")
    assert e["response"]["etag"] == f'W/"{e["resource"]["meta"]["versionId"]}"'
    assert e["response"]["lastModified"] == e["resource"]["meta"]["lastUpdated"]


def test_group_read_matches_ig_example(fhir):
    """The stored Group comes back as loaded: members in order, with their extensions."""
    src = ig_example("Group-fullexample.json")
    got = fhir.get("/Group/fullexample").json()
    assert got["member"] == src["member"]
    assert got["identifier"] == src["identifier"]
    assert got["extension"] == src["extension"]
    assert got["managingEntity"] == src["managingEntity"]


def test_unknown_id_is_404(fhir):
    assert_outcome(fhir.get("/Patient/does-not-exist"), 404, "not-found")
    assert_outcome(fhir.get("/Group/does-not-exist"), 404, "not-found")


def test_unknown_type_is_404(fhir):
    assert_outcome(fhir.get("/Observation/1"), 404, "not-supported")
    assert_outcome(fhir.get("/group/fullexample"), 404, "not-supported")


def test_bad_id_syntax_is_404(fhir):
    assert_outcome(fhir.get("/Patient/" + "x" * 65), 404)
    assert_outcome(fhir.get("/Patient/a_b"), 404)


def test_if_none_match_gives_304(fhir):
    """FHIR-05: a conditional read with the current ETag answers 304."""
    r = fhir.get("/Patient/1")
    r2 = fhir.get("/Patient/1", headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304
    assert r2.content == b""
    r3 = fhir.get("/Patient/1", headers={"If-None-Match": 'W/"999"'})
    assert r3.status_code == 200


@pytest.fixture(scope="module")
def versioned_group(atrctl, tmp_path_factory):
    """Group 'versioned' written three times: v1, v2 (renamed), v3 (a member dropped)."""
    src = ig_example("Group-fullexample.json")
    src["id"] = "versioned"
    d = tmp_path_factory.mktemp("versions")
    v1 = copy.deepcopy(src)
    v2 = copy.deepcopy(src)
    v2["name"] = "Renamed list"
    v3 = copy.deepcopy(v2)
    v3["member"] = v3["member"][:2]
    for n, v in enumerate((v1, v2, v3), 1):
        f = d / f"v{n}.ndjson"
        f.write_text(json.dumps(v) + "\n")
        atrctl("load", str(f))
    # loading the same content again does not create a version (DM-05 is about changes)
    atrctl("load", str(d / "v3.ndjson"))
    return v1, v2, v3


def test_new_version_on_change(fhir, versioned_group):
    """DM-05: each change is a new version; the read returns the latest."""
    g = fhir.get("/Group/versioned").json()
    assert g["meta"]["versionId"] == "3"
    assert g["name"] == "Renamed list"
    assert len(g["member"]) == 2


def test_vread_each_version(fhir, versioned_group):
    """CS-GRP-03: vread returns that version exactly."""
    for n, v in enumerate(versioned_group, 1):
        r = fhir.get(f"/Group/versioned/_history/{n}")
        assert r.status_code == 200
        g = r.json()
        assert g["meta"]["versionId"] == str(n)
        assert g["name"] == v["name"]
        assert g["member"] == v["member"]
        assert r.headers["ETag"] == f'W/"{n}"'


def test_vread_unknown_version_is_404(fhir, versioned_group):
    assert_outcome(fhir.get("/Group/versioned/_history/4"), 404, "not-found")
    assert_outcome(fhir.get("/Group/versioned/_history/0"), 404)
    assert_outcome(fhir.get("/Group/versioned/_history/abc"), 404)


def test_history_newest_first_with_count(fhir, versioned_group):
    """CS-GRP-04: newest first; _count limits; first version is a POST/201."""
    b = fhir.get("/Group/versioned/_history").json()
    versions = [e["resource"]["meta"]["versionId"] for e in b["entry"]]
    assert versions == ["3", "2", "1"]
    # version 1 was a create (201), later ones updates (200); loaded data has no client
    # method, so the server reports them as PUT (update-as-create)
    assert b["entry"][-1]["response"]["status"].startswith("201")
    assert b["entry"][0]["response"]["status"].startswith("200")
    assert b["entry"][0]["request"]["method"] == "PUT"
    assert b["entry"][0]["request"]["url"] == "Group/versioned"
    b2 = fhir.get("/Group/versioned/_history", params={"_count": "1"}).json()
    assert [e["resource"]["meta"]["versionId"] for e in b2["entry"]] == ["3"]


def test_history_since(fhir, versioned_group):
    b = fhir.get("/Group/versioned/_history").json()
    v2_time = [e for e in b["entry"] if e["resource"]["meta"]["versionId"] == "2"][0]["resource"]["meta"]["lastUpdated"]
    b2 = fhir.get("/Group/versioned/_history", params={"_since": v2_time}).json()
    assert [e["resource"]["meta"]["versionId"] for e in b2["entry"]] == ["3"]


def test_history_bad_since_is_400(fhir):
    assert_outcome(fhir.get("/Group/fullexample/_history", params={"_since": "yesterday"}), 400)


def test_read_summary_true_on_group(fhir):
    """SP-10 + D6: no member, ATR extensions kept, SUBSETTED tag."""
    g = fhir.get("/Group/fullexample", params={"_summary": "true"}).json()
    assert "member" not in g
    urls = [e["url"] for e in g["extension"]]
    assert any(u.endswith("ext-contractValidityPeriod") for u in urls)
    assert any(u.endswith("ext-attributionListStatus") for u in urls)
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED"} in [{k: t[k] for k in ("system", "code")} for t in g["meta"]["tag"]]
    assert g["identifier"]


def test_read_elements(fhir):
    """SP-09: _elements keeps only the named elements (+ id, meta) and tags SUBSETTED."""
    g = fhir.get("/Group/fullexample", params={"_elements": "name,identifier"}).json()
    assert set(g) <= {"resourceType", "id", "meta", "name", "identifier"}
    assert g["name"] == "Test Group 3"
    g2 = fhir.get("/Group/fullexample", params={"_elements": "member"}).json()
    assert len(g2["member"]) == 3
