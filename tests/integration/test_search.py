"""Group search: CS-GRP-01, SP-01..SP-10, FHIR-03."""
import http.client
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.examples import ig_example

NPI = "http://hl7.org/fhir/sid/us-npi"
TIN = "urn:oid:2.16.840.1.113883.4.4"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CTR = "http://example.org/test/contract"
CHAR = "http://hl7.org/fhir/us/davinci-atr/CodeSystem/davinci-group-characteristic-codes"


def group(gid, name, idents, characteristic=None):
    g = ig_example("Group-fullexample.json")
    g["id"] = gid
    g["name"] = name
    g["identifier"] = idents
    if characteristic:
        g["characteristic"] = characteristic
    return g


def ident(system, value, code=None):
    i = {"system": system, "value": value}
    if code:
        i["type"] = {"coding": [{"system": V2, "code": code}]}
    return i


@pytest.fixture(scope="module")
def search_groups(atrctl, tmp_path_factory):
    groups = [
        group("srch-a", "Álpha Clinic List", [ident(NPI, "1000000001", "NPI"), ident(TIN, "900000001", "TAX"),
                                               ident(CTR, "C-1")],
              [{"code": {"coding": [{"system": CHAR, "code": "attributed-to"}]},
                "valueReference": {"reference": "Organization/2"}, "exclude": False}]),
        group("srch-b", "Beta Health", [ident(NPI, "1000000002", "NPI"), ident(TIN, "900000001", "TAX"),
                                        ident(CTR, "C-2")]),
        # STU1 style: type-coded identifiers with an arbitrary system (S5)
        group("srch-c", "alpha care partners", [ident("https://sitenv.org", "1000000003", "NPI"),
                                                ident("https://sitenv.org", "900000003", "TAX")]),
        group("srch-d", "Gamma 100% _list_", [{"value": "NOSYS-1"}]),
    ]
    f = tmp_path_factory.mktemp("search") / "groups.ndjson"
    f.write_text("".join(json.dumps(g) + "\n" for g in groups))
    atrctl("load", str(f))
    return groups


def ids(bundle):
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def search(fhir, **params):
    r = fhir.get("/Group", params=params)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["resourceType"] == "Bundle" and b["type"] == "searchset"
    return b


def test_searchset_shape(fhir, search_groups):
    """FHIR-03: total, self link, absolute fullUrl, search.mode match."""
    b = search(fhir, identifier=f"{NPI}|1000000001")
    assert b["total"] == 1
    assert [l["relation"] for l in b["link"]][0] == "self"
    e = b["entry"][0]
    assert e["fullUrl"] == f"{fhir.base_url}/Group/srch-a"
    assert e["search"]["mode"] == "match"
    assert len(e["resource"]["member"]) == 3


def test_identifier_system_value(fhir, search_groups):
    """SP-01/SP-02: STU2 NPI discovery, with _summary=true (no members)."""
    b = search(fhir, identifier=f"{NPI}|1000000002", _summary="true")
    assert ids(b) == ["srch-b"]
    assert "member" not in b["entry"][0]["resource"]


def test_identifier_tin_matches_all_groups_with_it(fhir, search_groups):
    """SP-02: TIN discovery returns every Group carrying that TIN."""
    assert ids(search(fhir, identifier=f"{TIN}|900000001")) == ["srch-a", "srch-b"]


def test_ig_example_npi_discovery_stu2(fhir):
    """SP-02 with the IG's own example Group."""
    assert "fullexample" in ids(search(fhir, identifier=f"{NPI}|9941339108", _summary="true"))


def test_identifier_value_only(fhir, search_groups):
    assert ids(search(fhir, identifier="1000000003")) == ["srch-c"]


def test_identifier_no_system(fhir, search_groups):
    """|value matches identifiers without a system only."""
    assert ids(search(fhir, identifier="|NOSYS-1")) == ["srch-d"]
    assert ids(search(fhir, identifier="|1000000001")) == []


def test_identifier_system_only(fhir, search_groups):
    assert ids(search(fhir, identifier=f"{CTR}|")) == ["srch-a", "srch-b"]


def test_identifier_or_and(fhir, search_groups):
    """SP-01: comma = OR, repeated = AND."""
    assert ids(search(fhir, identifier=f"{CTR}|C-1,{CTR}|C-2")) == ["srch-a", "srch-b"]
    r = fhir.get("/Group", params=[("identifier", f"{TIN}|900000001"), ("identifier", f"{CTR}|C-2")])
    assert ids(r.json()) == ["srch-b"]


def test_identifier_of_type_stu1(fhir, search_groups):
    """SP-03: STU1 discovery by type-coded NPI and TAX, alone and together (AND)."""
    assert ids(search(fhir, **{"identifier:of-type": f"{V2}|NPI|1000000003"})) == ["srch-c"]
    r = fhir.get("/Group", params=[("identifier:of-type", f"{V2}|NPI|1000000003"),
                                   ("identifier:of-type", f"{V2}|TAX|900000003")])
    assert ids(r.json()) == ["srch-c"]
    r = fhir.get("/Group", params=[("identifier:of-type", f"{V2}|NPI|1000000003"),
                                   ("identifier:of-type", f"{V2}|TAX|900000001")])
    assert ids(r.json()) == []
    # D8: STU2-style Groups that also carry the type match the STU1 query
    assert "fullexample" in ids(search(fhir, **{"identifier:of-type": f"{V2}|NPI|9941339108"}))


def test_identifier_of_type_needs_three_parts(fhir):
    """SP-03: missing parts → 400 OperationOutcome."""
    for bad in (f"{V2}|NPI", "NPI", f"{V2}||1", f"|NPI|1"):
        r = fhir.get("/Group", params={"identifier:of-type": bad})
        assert r.status_code == 400, bad
        assert r.json()["resourceType"] == "OperationOutcome"


def test_contract_discovery(fhir, search_groups):
    """SP-04: discovery by contract identifier."""
    assert ids(search(fhir, identifier=f"{CTR}|C-1", _summary="true")) == ["srch-a"]


def test_name_default_is_accent_and_case_insensitive_prefix(fhir, search_groups):
    """SP-07 (D4)."""
    assert ids(search(fhir, name="alpha")) == ["srch-a", "srch-c"]
    assert ids(search(fhir, name="ALP")) == ["srch-a", "srch-c"]
    assert ids(search(fhir, name="clinic")) == []


def test_name_exact_and_contains(fhir, search_groups):
    assert ids(search(fhir, **{"name:exact": "Beta Health"})) == ["srch-b"]
    assert ids(search(fhir, **{"name:exact": "beta health"})) == []
    assert ids(search(fhir, **{"name:contains": "clinic"})) == ["srch-a"]


def test_name_like_metacharacters_are_literal(fhir, search_groups):
    assert ids(search(fhir, **{"name:contains": "100%"})) == ["srch-d"]
    assert ids(search(fhir, **{"name:contains": "_list_"})) == ["srch-d"]
    assert ids(search(fhir, **{"name:contains": "%"})) == ["srch-d"]
    assert "srch-a" not in ids(search(fhir, **{"name:contains": "a_p"}))


def test_characteristic(fhir, search_groups):
    """SP-05."""
    assert "srch-a" in ids(search(fhir, characteristic=f"{CHAR}|attributed-to"))
    assert "srch-b" not in ids(search(fhir, characteristic="attributed-to"))


def test_characteristic_value_reference(fhir, search_groups):
    """SP-06 (D3): code$Reference."""
    assert ids(search(fhir, **{"characteristic-value": "attributed-to$Organization/2"})) == ["srch-a"]
    assert ids(search(fhir, **{"characteristic-value": f"{CHAR}|attributed-to$Organization/2"})) == ["srch-a"]
    assert ids(search(fhir, **{"characteristic-value": "attributed-to$Organization/999"})) == []


def test_characteristic_value_needs_dollar(fhir):
    r = fhir.get("/Group", params={"characteristic-value": "attributed-to"})
    assert r.status_code == 400


def test_id(fhir, search_groups):
    assert ids(search(fhir, _id="srch-b")) == ["srch-b"]
    assert ids(search(fhir, _id="srch-a,srch-b")) == ["srch-a", "srch-b"]


def test_summary_count(fhir, search_groups):
    """SP-10: _summary=count → total only."""
    b = search(fhir, identifier=f"{TIN}|900000001", _summary="count")
    assert b["total"] == 2
    assert "entry" not in b


def test_summary_true_keeps_atr_extensions(fhir, search_groups):
    """SP-10 + D6."""
    b = search(fhir, identifier=f"{NPI}|1000000001", _summary="true")
    g = b["entry"][0]["resource"]
    assert "member" not in g
    assert any(e["url"].endswith("ext-contractValidityPeriod") for e in g["extension"])
    assert "SUBSETTED" in [t["code"] for t in g["meta"]["tag"]]


def test_paging_with_next_links(fhir, search_groups):
    """SP-09, FHIR-03: _count pages, next links walk every match exactly once."""
    seen = []
    b = search(fhir, _count="2", _summary="true")
    total = b["total"]
    pages = 0
    while True:
        seen += [e["resource"]["id"] for e in b.get("entry", [])]
        nxt = [l["url"] for l in b["link"] if l["relation"] == "next"]
        pages += 1
        if not nxt:
            break
        assert nxt[0].startswith(fhir.base_url + "/Group?")
        b = fhir.get(nxt[0]).json()
        assert pages < 100
    assert len(seen) == total == len(set(seen))
    assert pages == (total + 1) // 2


def test_unknown_parameter_ignored_and_not_in_self(fhir, search_groups):
    """SP-09: unknown params ignored and left out of the self link."""
    b = search(fhir, identifier=f"{NPI}|1000000001", foo="bar")
    assert ids(b) == ["srch-a"]
    self_url = [l["url"] for l in b["link"] if l["relation"] == "self"][0]
    q = parse_qs(urlsplit(self_url).query)
    assert "foo" not in q and "identifier" in q


def test_unknown_parameter_strict_is_400(fhir):
    r = fhir.get("/Group", params={"foo": "bar"}, headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("params", [{"_count": "x"}, {"_count": "-1"}, {"_summary": "maybe"},
                                    {"_elements": "a b"}, {"name:sounds-like": "x"},
                                    {"identifier:below": "x"}])
def test_bad_parameter_values_are_400(fhir, params):
    r = fhir.get("/Group", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_post_search(fhir, search_groups):
    """CS-GRP-01: POST _search with a form body, combined with the query string."""
    r = fhir.post("/Group/_search", data={"identifier": f"{TIN}|900000001"},
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert ids(r.json()) == ["srch-a", "srch-b"]
    r = fhir.post("/Group/_search?identifier=" + f"{CTR}|C-2", data={"identifier": f"{TIN}|900000001"})
    assert ids(r.json()) == ["srch-b"]


def test_post_search_wrong_content_type_is_415(fhir):
    r = fhir.post("/Group/_search", data=json.dumps({"identifier": "x"}),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    assert r.json()["resourceType"] == "OperationOutcome"


def test_post_search_huge_body_is_refused(fhir):
    r = fhir.post("/Group/_search", data="identifier=" + "a" * (2 * 1024 * 1024),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert r.json()["resourceType"] == "OperationOutcome"


def test_empty_parameter_value_is_ignored(fhir, search_groups):
    """R4 search: a parameter without a value is ignored."""
    assert search(fhir, identifier="", _summary="count")["total"] == search(fhir, _summary="count")["total"]


@pytest.mark.parametrize("query", ["identifier=%zz", "identifier=%4", "name=a%00b"])
def test_bad_percent_encoding_is_400(fhir, query):
    # http.client sends the query as written (requests would re-quote it); the Bearer
    # header is the one the fhir client sends, so the query is what gets refused
    auth = fhir.get("/Group", params={"_summary": "count"}).request.headers["Authorization"]
    conn = http.client.HTTPConnection("127.0.0.1", fhir.port, timeout=30)
    conn.request("GET", "/fhir/Group?" + query, headers={"Authorization": auth})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 400
    assert json.loads(body)["resourceType"] == "OperationOutcome"
