"""Formats and methods: CS-RES-07, FHIR-01/02, 405/406/415."""
import pytest


@pytest.mark.parametrize("accept", ["application/fhir+json", "application/json", "*/*",
                                    "application/*", "text/html, application/fhir+json;q=0.9"])
def test_json_accepts(fhir, accept):
    r = fhir.get("/Patient/1", headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/fhir+json")


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml", "text/html"])
def test_non_json_accept_is_406(fhir, accept):
    r = fhir.get("/Patient/1", headers={"Accept": accept})
    assert r.status_code == 406
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("fmt,status", [("json", 200), ("application/fhir+json", 200),
                                        ("application/json", 200), ("xml", 406),
                                        ("application/fhir+xml", 406)])
def test_format_parameter(fhir, fmt, status):
    assert fhir.get("/Patient/1", params={"_format": fmt}).status_code == status


@pytest.mark.parametrize("method,path", [("DELETE", "/Patient/1"), ("PUT", "/Group/fullexample"),
                                         ("POST", "/Patient/1"), ("DELETE", "/Group"),
                                         ("PATCH", "/Group/fullexample/_history")])
def test_wrong_method_is_405_with_allow(fhir, method, path):
    r = fhir.request(method, path, data="{}", headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 405, r.text
    assert "GET" in r.headers["Allow"]
    assert r.json()["resourceType"] == "OperationOutcome"


def test_search_on_other_types_is_refused(fhir):
    r = fhir.get("/Patient")
    assert r.status_code == 400
    assert r.json()["issue"][0]["code"] == "not-supported"


def test_unknown_path_is_404(fhir):
    r = fhir.get("/Group/fullexample/_history/1/extra")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
