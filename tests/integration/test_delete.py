"""Deleted resources: read → 410 Gone with an OperationOutcome (CS-GRP-02), history shows the
DELETE (FHIR-04), a deleted Group leaves search results, and loading it again restores it.
Deletion is operator-side (`atrctl delete`), all references in one transaction.
Patient data is visible only through a Group the client is entitled to: the deleted Patient
is a member of 'gone-keep' (a live Group linked to the default consumer)."""
import json

import pytest

from harness.examples import ig_example

NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture(scope="module")
def gone(atrctl, entitle, tmp_path_factory):
    pat = ig_example("Patient-1.json")
    pat["id"] = "gone-pat"
    grp = ig_example("Group-fullexample.json")
    grp["id"] = "gone-grp"
    grp["identifier"] = [{"system": NPI, "value": "1999999990"}]
    keep = ig_example("Group-fullexample.json")
    keep["id"] = "gone-keep"
    keep["identifier"] = [{"system": NPI, "value": "1999999991"}]
    keep["member"] = [{"entity": {"reference": "Patient/gone-pat"}}]
    entitle("gone-grp", "gone-keep")
    d = tmp_path_factory.mktemp("gone")
    k = d / "keep.ndjson"
    k.write_text(json.dumps(keep) + "\n")
    atrctl("load", str(k))
    f = d / "gone.ndjson"
    f.write_text(json.dumps(pat) + "\n" + json.dumps(grp) + "\n")
    atrctl("load", str(f))
    p = atrctl("delete", "Patient/gone-pat", "Group/gone-grp")
    assert "2 deleted" in p.stdout
    return f


def test_read_deleted_is_410(fhir, gone):
    for path in ("/Patient/gone-pat", "/Group/gone-grp"):
        r = fhir.get(path)
        assert r.status_code == 410, path
        oo = r.json()
        assert oo["resourceType"] == "OperationOutcome"
        assert oo["issue"][0]["code"] == "deleted"


def test_vread_before_and_after_delete(fhir, gone):
    r = fhir.get("/Patient/gone-pat/_history/1")
    assert r.status_code == 200
    assert r.json()["id"] == "gone-pat"
    assert fhir.get("/Patient/gone-pat/_history/2").status_code == 410


def test_history_shows_delete(fhir, gone):
    b = fhir.get("/Group/gone-grp/_history").json()
    first, last = b["entry"][0], b["entry"][-1]
    assert first["request"]["method"] == "DELETE"
    assert first["response"]["status"].startswith("204")
    assert "resource" not in first
    assert last["resource"]["meta"]["versionId"] == "1"


def test_deleted_group_leaves_search(fhir, gone):
    b = fhir.get("/Group", params={"identifier": f"{NPI}|1999999990"}).json()
    assert b["total"] == 0
    b = fhir.get("/Group", params={"_id": "gone-grp"}).json()
    assert b["total"] == 0


def test_delete_again_changes_nothing(atrctl, gone):
    p = atrctl("delete", "Patient/gone-pat")
    assert "already deleted" in p.stdout


def test_unknown_reference_deletes_nothing(fhir, atrctl, store):
    p = store.atrctl("delete", "Patient/2", "Patient/no-such-patient", check=False)
    assert p.returncode == 1
    assert "no-such-patient" in p.stderr
    assert fhir.get("/Patient/2").status_code == 200


@pytest.mark.parametrize("arg", ["Patient", "Observation/1", "Patient/bad id", "/1"])
def test_bad_reference_is_usage_error(store, arg):
    p = store.atrctl("delete", arg, check=False)
    assert p.returncode == 2
    assert "TYPE/ID" in p.stderr


def test_reload_restores(fhir, atrctl, gone):
    atrctl("load", str(gone))
    r = fhir.get("/Group/gone-grp")
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "3"
    assert fhir.get("/Group", params={"identifier": f"{NPI}|1999999990"}).json()["total"] == 1
