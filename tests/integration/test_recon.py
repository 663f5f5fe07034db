"""ATR 2.x reconciliation: POST Group (CRE-01, D25), $member-add (OP-ADD-01..04, D20..D22),
$member-remove (OP-REM-01..05), $confirm-attribution-list (OP-CONF-01/02, D23),
$attribution-status (OP-STAT-01/02, D24), write scope (D19), 405 for GET (OP-GEN-03, D7),
entitlement (404, D1); every change a new Group version readable by vread and _history (DM-05).

Groups are created by Consumers of this module (never the shared default consumer, whose
Group links other suites count)."""
import json
import time

import pytest

EXT = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/"
STATUS_EXT = EXT + "ext-attributionListStatus"
NPI = "http://hl7.org/fhir/sid/us-npi"
MEMBER_SYS = "http://example.org/payer/member-id"
WRITE = "system/*.read system/Group.write"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
ATR_OD = "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/"


class Client:
    """A Consumer with its own token, speaking FHIR JSON."""

    def __init__(self, consumer, scope):
        self.consumer = consumer
        self.id = consumer.client_id
        self.token = consumer.token(scope)

    def request(self, method, path, body=None, headers=None, **kw):
        h = dict(FHIR_JSON if body is not None else {})
        h.update(headers or {})
        data = json.dumps(body) if body is not None and not isinstance(body, str) else body
        return self.consumer.request(method, path, token=self.token, data=data, headers=h, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def op(self, gid, name, *params):
        return self.post(f"/Group/{gid}/${name}", {"resourceType": "Parameters", "parameter": list(params)})


def ident(system, value):
    return {"system": system, "value": value}


def p_member(value, system=MEMBER_SYS):
    return {"name": "memberId", "valueIdentifier": ident(system, value)}


def p_npi(value):
    return {"name": "providerNpi", "valueIdentifier": ident(NPI, value)}


def p_ref(name, ref):
    return {"name": name, "valueReference": {"reference": ref}}


def p_period(start, end=None):
    per = {"start": start}
    if end:
        per["end"] = end
    return {"name": "attributionPeriod", "valuePeriod": per}


def status_of(group):
    return next(e["valueCode"] for e in group["extension"] if e["url"] == STATUS_EXT)


def entries(group):
    """{(entity, provider): (changeType, inactive, period, coverage)}."""
    out = {}
    for m in group.get("member", []):
        ext = {e["url"]: e for e in m.get("extension", [])}
        cov = ext.get(EXT + "ext-coverageReference")
        key = (m["entity"]["reference"], ext[EXT + "ext-attributedProvider"]["valueReference"]["reference"])
        assert key not in out
        out[key] = (ext[EXT + "ext-changeType"]["valueCode"], m.get("inactive", False), m.get("period"),
                    cov["valueReference"]["reference"] if cov else None)
    return out


def assert_oo(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["code"] == code, oo
    return oo


@pytest.fixture(scope="module")
def writer(consumers):
    return Client(consumers.make(scopes=WRITE.split(), jwks="inline"), WRITE)


@pytest.fixture(scope="module")
def reader(consumers):
    return Client(consumers.make(scopes=["system/*.read"], jwks="inline"), "system/*.read")


@pytest.fixture(scope="module")
def people(store, tmp_path_factory):
    """Members and providers of this module's own (unique identifiers, whatever other suites
    load): Patient/rc-p1..6 (memberId RCM-1..6), each with Coverage/rc-cov-N; rc-p4 has
    RelatedPerson/rc-rp-4; two Patients share RCM-DUP; two Practitioners with NPIs."""
    lines = []
    for n in range(1, 7):
        lines.append({"resourceType": "Patient", "id": f"rc-p{n}",
                      "identifier": [ident(MEMBER_SYS, f"RCM-{n}")], "name": [{"family": f"Recon{n}"}]})
        lines.append({"resourceType": "Coverage", "id": f"rc-cov-{n}", "status": "active",
                      "beneficiary": {"reference": f"Patient/rc-p{n}"},
                      "payor": [{"reference": "Organization/1"}]})
    for n in (7, 8):
        lines.append({"resourceType": "Patient", "id": f"rc-p{n}", "identifier": [ident(MEMBER_SYS, "RCM-DUP")]})
    lines.append({"resourceType": "RelatedPerson", "id": "rc-rp-4", "patient": {"reference": "Patient/rc-p4"}})
    for n, npi in ((1, "1000000991"), (2, "1000000992")):
        lines.append({"resourceType": "Practitioner", "id": f"rc-prac-{n}",
                      "identifier": [ident(NPI, npi)], "name": [{"family": f"Prac{n}"}]})
    f = tmp_path_factory.mktemp("recon") / "people.ndjson"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    store.atrctl("load", str(f))

    class P:
        pass
    p = P()
    p.mb1 = "RCM-1"
    p.prac, p.npi = "rc-prac-1", "1000000991"
    p.prac2, p.npi2 = "rc-prac-2", "1000000992"
    p.cov2 = "Coverage/rc-cov-2"
    return p


def create(client, body=None):
    body = body or {"resourceType": "Group", "name": "Recon list"}
    r = client.post("/Group", body)
    assert r.status_code == 201, r.text
    return r


def test_capability_statement_lists_the_operations(anon):
    """§2.4: the four operations with their ATR canonicals; CRE-01: Group create."""
    cs = anon.get("/metadata").json()
    group = next(res for res in cs["rest"][0]["resource"] if res["type"] == "Group")
    ops = {o["name"]: o["definition"] for o in group["operation"]}
    for name in ("member-add", "member-remove", "confirm-attribution-list", "attribution-status"):
        assert ops[name] == ATR_OD + name
    assert ops["davinci-data-export"] == ATR_OD + "davinci-data-export"
    assert {"code": "create"} in group["interaction"]


def test_create_empty_list_defaults_to_draft_and_links_the_creator(writer, consumers, slapd, httpd):
    """CRE-01, D25: 201, server id, draft, meta; the creating client is linked (atrGroupId)."""
    r = create(writer, {"resourceType": "Group", "id": "client-chosen", "name": "New list",
                        "meta": {"versionId": "7"}})
    g = r.json()
    gid = g["id"]
    assert gid != "client-chosen" and len(gid) == 32
    assert r.headers["Location"] == f"{httpd.base_url}/Group/{gid}/_history/1"
    assert r.headers["ETag"] == 'W/"1"'
    assert g["meta"]["versionId"] == "1" and "lastUpdated" in g["meta"]
    assert status_of(g) == "draft"
    assert g["type"] == "person" and g["actual"] is True
    assert g.get("member", []) == []
    conn = slapd.connect()
    try:
        found = conn.search_s(consumers.dn(writer.id), 0, attrlist=["atrGroupId"])
    finally:
        conn.unbind_s()
    assert gid.encode() in found[0][1]["atrGroupId"]
    time.sleep(1.1)          # every process's registry cache (1 s in tests) sees the link
    got = writer.get(f"/Group/{gid}")
    assert got.status_code == 200 and got.json()["name"] == "New list"


def test_create_keeps_a_given_status(writer):
    g = create(writer, {"resourceType": "Group", "extension": [{"url": STATUS_EXT, "valueCode": "open"}]}).json()
    assert status_of(g) == "open"


@pytest.mark.parametrize("body,status,code", [
    ({"resourceType": "Patient"}, 400, "invalid"),
    ({"resourceType": "Group", "extension": [{"url": STATUS_EXT, "valueCode": "closed"}]}, 400, "invalid"),
    ({"resourceType": "Group", "type": "device"}, 400, "invalid"),
    ({"resourceType": "Group", "member": [{"entity": {"reference": "Patient/rc-p1"}}]}, 422, "business-rule"),
    ("{not json", 400, "invalid"),
    ("", 400, "required"),
])
def test_create_refusals(writer, body, status, code):
    assert_oo(writer.post("/Group", body), status, code)


def test_create_needs_create_scope_and_fhir_json(writer, reader):
    """D19 (create on Group); 415 for a body that is not FHIR JSON."""
    r = reader.post("/Group", {"resourceType": "Group"})
    assert_oo(r, 403, "forbidden")
    assert "insufficient_scope" in r.headers["WWW-Authenticate"]
    assert_oo(writer.post("/Group", "name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}),
              415, "not-supported")


def test_full_reconciliation_flow(writer, reader, people, store, httpd):
    """create -> $member-add (both forms) -> $member-remove (every combination) -> confirm ->
    $attribution-status; each change is the next version (DM-05), checked by vread/_history."""
    p = people
    pr, pr2 = f"Practitioner/{p.prac}", f"Practitioner/{p.prac2}"
    gid = create(writer).json()["id"]
    versions = {}

    # OP-ADD-01 memberId + providerNpi + attributionPeriod
    r = writer.op(gid, "member-add", p_member(p.mb1), p_npi(p.npi), p_period("2026-01-01", "2026-12-31"))
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["meta"]["versionId"] == "2" and r.headers["ETag"] == 'W/"2"'
    assert entries(g) == {("Patient/rc-p1", pr): ("new", False, {"start": "2026-01-01", "end": "2026-12-31"},
                                                  "Coverage/rc-cov-1")}
    versions[2] = entries(g)

    # OP-ADD-01 patientReference + providerReference (period: none given, no contract period -> today on)
    r = writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p2"), p_ref("providerReference", pr))
    assert r.status_code == 200, r.text
    e = entries(r.json())
    assert e[("Patient/rc-p2", pr)][:2] == ("new", False) and e[("Patient/rc-p2", pr)][3] == p.cov2
    assert e[("Patient/rc-p1", pr)][:2] == ("nochange", False)
    versions[3] = e

    # patientReference + providerReference + attributionPeriod; memberId + providerNpi (no period)
    r = writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p2"), p_ref("providerReference", pr2),
                  p_period("2026-03-01"))
    assert r.status_code == 200, r.text
    r = writer.op(gid, "member-add", p_member("RCM-3"), p_npi(p.npi2))
    assert r.status_code == 200, r.text
    r = writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p4"), p_ref("providerReference", pr),
                  p_period("2026-01-01"))
    assert r.status_code == 200, r.text
    e = entries(r.json())
    assert r.json()["meta"]["versionId"] == "6" and len(e) == 5
    versions[6] = e

    # already there: 422 duplicate, nothing written
    assert_oo(writer.op(gid, "member-add", p_member(p.mb1), p_npi(p.npi), p_period("2026-01-01", "2026-12-31")),
              422, "duplicate")
    # the same member x provider with another period: changed
    r = writer.op(gid, "member-add", p_member(p.mb1), p_npi(p.npi), p_period("2026-02-01", "2026-12-31"))
    assert r.status_code == 200, r.text
    e = entries(r.json())
    assert e[("Patient/rc-p1", pr)][:3] == ("changed", False, {"start": "2026-02-01", "end": "2026-12-31"})
    assert r.json()["meta"]["versionId"] == "7"

    # OP-REM-01 memberId + providerNpi; OP-REM-03: in draft the entry stays, inactive and dropped
    r = writer.op(gid, "member-remove", p_member(p.mb1), p_npi(p.npi))
    assert r.status_code == 200, r.text
    e = entries(r.json())
    assert e[("Patient/rc-p1", pr)][:2] == ("dropped", True)
    assert r.json()["meta"]["versionId"] == "8"
    # removing it again: nothing active to remove (OP-REM-05)
    assert_oo(writer.op(gid, "member-remove", p_member(p.mb1), p_npi(p.npi)), 422, "not-found")

    # patientReference + providerReference + coverageReference
    r = writer.op(gid, "member-remove", p_ref("patientReference", "Patient/rc-p2"), p_ref("providerReference", pr),
                  p_ref("coverageReference", p.cov2))
    assert r.status_code == 200, r.text
    e = entries(r.json())
    assert e[("Patient/rc-p2", pr)][:2] == ("dropped", True)
    assert e[("Patient/rc-p2", pr2)][:2] == ("nochange", False)
    assert e[("Patient/rc-p1", pr)][:2] == ("dropped", True)      # still kept while draft
    # patientReference + providerReference with a coverage it does not have: not found
    assert_oo(writer.op(gid, "member-remove", p_ref("patientReference", "Patient/rc-p2"),
                        p_ref("providerReference", pr2), p_ref("coverageReference", "Coverage/nope")),
              422, "not-found")
    # patientReference + providerReference
    r = writer.op(gid, "member-remove", p_ref("patientReference", "Patient/rc-p2"), p_ref("providerReference", pr2))
    assert r.status_code == 200 and entries(r.json())[("Patient/rc-p2", pr2)][:2] == ("dropped", True)
    # memberId alone: every attribution of that member
    r = writer.op(gid, "member-remove", p_member("RCM-3"))
    assert r.status_code == 200 and entries(r.json())[("Patient/rc-p3", f"Practitioner/{p.prac2}")][:2] == \
        ("dropped", True)
    # patientReference alone
    r = writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p3"), p_ref("providerReference", pr))
    assert r.status_code == 200
    # a dropped member x provider added again is new again
    assert entries(r.json())[("Patient/rc-p3", pr)][:2] == ("new", False)
    r = writer.op(gid, "member-remove", p_ref("patientReference", "Patient/rc-p3"))
    assert r.status_code == 200, r.text
    g = r.json()
    assert entries(g)[("Patient/rc-p3", pr)][:2] == ("dropped", True)
    before_confirm = int(g["meta"]["versionId"])
    assert before_confirm == 13

    # $attribution-status while draft (read scope is enough, D19)
    r = reader_status = writer.op(gid, "attribution-status", p_ref("patientReference", "Patient/rc-p4"))
    assert reader_status.status_code == 200, r.text

    # OP-CONF-01, D23: 201 + informational OperationOutcome; OP-CONF-02 final; OP-REM-04 inactive go
    r = writer.post(f"/Group/{gid}/$confirm-attribution-list")
    oo = assert_oo(r, 201, "informational")
    assert oo["issue"][0]["severity"] == "information"
    assert r.headers["Location"] == f"{httpd.base_url}/Group/{gid}/_history/{before_confirm + 1}"
    time.sleep(1.1)          # the creator's link reaches every process's registry cache
    g = writer.get(f"/Group/{gid}").json()
    assert status_of(g) == "final" and g["meta"]["versionId"] == str(before_confirm + 1)
    assert entries(g) == {("Patient/rc-p4", pr): ("nochange", False, {"start": "2026-01-01"},
                                                 "Coverage/rc-cov-4")}

    # OP-ADD-02, OP-REM-02, D20: a final list refuses changes
    assert_oo(writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p1"),
                        p_ref("providerReference", pr)), 422, "business-rule")
    assert_oo(writer.op(gid, "member-remove", p_ref("patientReference", "Patient/rc-p4")), 422, "business-rule")
    assert_oo(writer.post(f"/Group/{gid}/$confirm-attribution-list"), 422, "business-rule")

    # OP-STAT-01, D24: a collection Bundle, first the Group restricted to the member's entries
    for params in ([p_ref("patientReference", "Patient/rc-p4")],
                   [p_member("RCM-4")]):
        r = writer.op(gid, "attribution-status", *params)
        assert r.status_code == 200, r.text
        b = r.json()
        assert b["resourceType"] == "Bundle" and b["type"] == "collection"
        first = b["entry"][0]["resource"]
        assert first["resourceType"] == "Group" and first["id"] == gid
        assert b["entry"][0]["fullUrl"] == f"{httpd.base_url}/Group/{gid}"
        assert [m["entity"]["reference"] for m in first["member"]] == ["Patient/rc-p4"]
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} \
            in first["meta"]["tag"]
        refs = [f'{e["resource"]["resourceType"]}/{e["resource"]["id"]}' for e in b["entry"][1:]]
        assert refs[0] == "Patient/rc-p4"
        assert "Coverage/rc-cov-4" in refs and pr in refs and "RelatedPerson/rc-rp-4" in refs
        assert all(e["fullUrl"] == f'{httpd.base_url}/{e["resource"]["resourceType"]}/{e["resource"]["id"]}'
                   for e in b["entry"])
    # OP-STAT-02: not a member -> 404
    assert_oo(writer.op(gid, "attribution-status", p_ref("patientReference", "Patient/rc-p1")), 404, "not-found")
    assert_oo(writer.op(gid, "attribution-status", p_member("NO-SUCH-MEMBER")), 404, "not-found")

    # DM-05: every version is readable (vread) and listed in _history, newest first
    hist = writer.get(f"/Group/{gid}/_history").json()
    ids = [e["resource"]["meta"]["versionId"] for e in hist["entry"]]
    assert ids == [str(v) for v in range(before_confirm + 1, 0, -1)]
    for v, expect in versions.items():
        vr = writer.get(f"/Group/{gid}/_history/{v}")
        assert vr.status_code == 200 and vr.json()["meta"]["versionId"] == str(v)
        assert entries(vr.json()) == expect
    assert status_of(writer.get(f"/Group/{gid}/_history/{before_confirm}").json()) == "draft"


def test_open_list_removes_entries(writer, people):
    """OP-REM-04: in an open list a removed entry leaves the list; OP-ADD-02 (2.1.0): open lists
    take additions; confirming an open list makes it final."""
    pr = f"Practitioner/{people.prac}"
    gid = create(writer, {"resourceType": "Group", "extension": [{"url": STATUS_EXT, "valueCode": "open"}]}).json()["id"]
    r = writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p5"), p_ref("providerReference", pr),
                  p_period("2026-01-01"))
    assert r.status_code == 200, r.text
    r = writer.op(gid, "member-add", p_ref("patientReference", "Patient/rc-p6"), p_ref("providerReference", pr),
                  p_period("2026-01-01"))
    r = writer.op(gid, "member-remove", p_ref("patientReference", "Patient/rc-p5"))
    assert r.status_code == 200, r.text
    g = r.json()
    assert status_of(g) == "open" and g["meta"]["versionId"] == "4"
    assert entries(g) == {("Patient/rc-p6", pr): ("nochange", False, {"start": "2026-01-01"},
                                                  entries(g)[("Patient/rc-p6", pr)][3])}
    assert writer.post(f"/Group/{gid}/$confirm-attribution-list").status_code == 201


@pytest.fixture(scope="module")
def draft(writer):
    return create(writer).json()["id"]


@pytest.mark.parametrize("op", ["member-add", "member-remove", "confirm-attribution-list", "attribution-status"])
def test_get_is_405(writer, draft, op):
    """OP-GEN-03, D7: 405 + Allow: POST + OperationOutcome."""
    r = writer.get(f"/Group/{draft}/${op}")
    assert_oo(r, 405, "not-supported")
    assert r.headers["Allow"] == "POST"


@pytest.mark.parametrize("params,code", [
    ([], "required"),
    ([p_member("RCM-1")], "invalid"),                                   # add needs a provider
    ([p_member("RCM-1"), p_ref("providerReference", "Practitioner/x")], "invalid"),
    ([p_ref("patientReference", "Patient/rc-p1"), p_npi("1234567893")], "invalid"),
    ([p_ref("patientReference", "Patient/rc-p1"), p_ref("providerReference", "Practitioner/x"),
      p_ref("coverageReference", "Coverage/cov-1")], "not-supported"),        # not an add parameter
    ([p_ref("patientReference", "Patient/rc-p1"), p_ref("patientReference", "Patient/rc-p2"),
      p_ref("providerReference", "Practitioner/x")], "invalid"),             # repeated
    ([p_ref("patientReference", "Coverage/cov-1"), p_ref("providerReference", "Practitioner/x")], "invalid"),
    ([p_member("RCM-1"), {"name": "providerNpi", "valueIdentifier": ident(NPI, "12")}], "invalid"),
    ([p_ref("patientReference", "Patient/rc-p1"), p_ref("providerReference", "Practitioner/x"),
      p_period("2026-05-01", "2026-01-01")], "invalid"),
    ([{"name": "frobnicate", "valueString": "x"}], "not-supported"),
])
def test_member_add_parameter_combinations_refused(writer, draft, params, code):
    """OP-ADD-01: other combinations are 400 OperationOutcome."""
    assert_oo(writer.op(draft, "member-add", *params), 400, code)


@pytest.mark.parametrize("params", [
    [],
    [p_npi("1234567893")],
    [p_ref("providerReference", "Practitioner/x")],
    [p_member("M1"), p_ref("providerReference", "Practitioner/x")],
    [p_ref("patientReference", "Patient/rc-p1"), p_ref("coverageReference", "Coverage/cov-1")],
    [p_member("M1"), p_ref("patientReference", "Patient/rc-p1")],
])
def test_member_remove_parameter_combinations_refused(writer, draft, params):
    """OP-REM-01: only the five listed combinations."""
    r = writer.op(draft, "member-remove", *params)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_operation_bodies_refused(writer, draft):
    assert_oo(writer.post(f"/Group/{draft}/$member-add", {"resourceType": "Group"}), 400, "invalid")
    assert_oo(writer.post(f"/Group/{draft}/$member-add", "{oops"), 400, "invalid")
    assert_oo(writer.post(f"/Group/{draft}/$member-add", "x=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}), 415, "not-supported")
    assert_oo(writer.op(draft, "attribution-status", p_member("M1"), p_ref("patientReference", "Patient/rc-p1")),
              400, "invalid")
    assert_oo(writer.op(draft, "confirm-attribution-list", p_member("M1")), 400, "not-supported")


def test_unknown_member_or_provider_is_422(writer, draft, people):
    """OP-ADD-03, D21: 422 not-found."""
    pr = f"Practitioner/{people.prac}"
    for params in ([p_member("NOPE-1"), p_npi(people.npi)],
                   [p_member("RCM-1"), p_npi("1000000999")],
                   [p_ref("patientReference", "Patient/no-such"), p_ref("providerReference", pr)],
                   [p_ref("patientReference", "Patient/rc-p1"), p_ref("providerReference", "Organization/no-such")]):
        assert_oo(writer.op(draft, "member-add", *params), 422, "not-found")
    assert_oo(writer.op(draft, "member-remove", p_ref("patientReference", "Patient/rc-p9")), 422, "not-found")


def test_write_scope_and_entitlement(writer, reader, consumers, draft, people, anon):
    """D19: member-add/remove/confirm need Group write (403 insufficient_scope); a Group the
    client is not entitled to is 404 (D1), as is an unknown one; no token is 401."""
    pr = f"Practitioner/{people.prac}"
    add = [p_ref("patientReference", "Patient/rc-p1"), p_ref("providerReference", pr)]
    # a read-only client linked to the Group
    linked = consumers.make(scopes=["system/*.read"], groups=[draft], jwks="inline")
    ro = Client(linked, "system/*.read")
    for op, params in (("member-add", add), ("member-remove", add[:1]), ("confirm-attribution-list", [])):
        r = ro.op(draft, op, *params)
        assert_oo(r, 403, "forbidden")
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    # read is enough for $attribution-status (the member is not there: 404 from the operation)
    assert_oo(ro.op(draft, "attribution-status", p_ref("patientReference", "Patient/rc-p1")), 404, "not-found")
    # a writer not entitled to the Group, an unknown Group, an existing Group of others
    other = Client(consumers.make(scopes=WRITE.split(), jwks="inline"), WRITE)
    for gid in (draft, "no-such-group", "grp-1"):
        for op, params in (("member-add", add), ("member-remove", add[:1]), ("confirm-attribution-list", []),
                           ("attribution-status", add[:1])):
            assert_oo(other.op(gid, op, *params), 404, "not-found")
    # no token
    r = anon.post(f"/Group/{draft}/$member-add", data=json.dumps({"resourceType": "Parameters"}),
                  headers=FHIR_JSON)
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"


def test_final_list_loaded_by_the_payer_refuses_changes(fhir, people):
    """OP-ADD-02 on a payer list: Group/fullexample (IG example) is final."""
    pr = f"Practitioner/{people.prac}"
    r = fhir.post("/Group/fullexample/$member-add", headers=FHIR_JSON, data=json.dumps(
        {"resourceType": "Parameters", "parameter": [p_ref("patientReference", "Patient/rc-p1"),
                                                     p_ref("providerReference", pr)]}))
    assert_oo(r, 422, "business-rule")
