"""Resource server: Bearer tokens, scopes and Group entitlement on every FHIR endpoint
(SEC-01..03, SCOPE-04, CS-GRP-08, D1), and failing closed when the registry is down."""
import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from harness import AtrSlapd

SD = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/"
CTR = "http://example.org/authz/contract"
GROUPS = ("authz-g1", "authz-g2", "authz-g3")


def member(patient, coverage):
    return {"entity": {"reference": "Patient/" + patient},
            "extension": [{"url": SD + "ext-changeType", "valueCode": "new"},
                          {"url": SD + "ext-coverageReference",
                           "valueReference": {"reference": "Coverage/" + coverage}},
                          {"url": SD + "ext-attributedProvider",
                           "valueReference": {"reference": "Practitioner/authz-pr"}}],
            "inactive": False}


def group(n, name_suffix=""):
    return {"resourceType": "Group", "id": "authz-g%d" % n, "type": "person", "actual": True,
            "name": "Authz list %d%s" % (n, name_suffix),
            "identifier": [{"system": CTR, "value": "AZ-%d" % n}],
            "member": [member("authz-p%d" % n, "authz-c%d" % n)]}


@pytest.fixture(scope="module")
def authz_data(atrctl, tmp_path_factory):
    """Three Groups (two versions each), one member each with Patient, Coverage (one named by
    the member's coverage reference, one only by its beneficiary) and RelatedPerson."""
    res = [{"resourceType": "Practitioner", "id": "authz-pr", "name": [{"family": "Welby"}]}]
    for n in (1, 2, 3):
        res += [
            {"resourceType": "Patient", "id": "authz-p%d" % n, "name": [{"family": "P%d" % n}]},
            {"resourceType": "Coverage", "id": "authz-c%d" % n, "status": "active",
             "beneficiary": {"reference": "Patient/authz-p%d" % n},
             "payor": [{"reference": "Organization/authz-payer"}]},
            {"resourceType": "Coverage", "id": "authz-cb%d" % n, "status": "active",
             "beneficiary": {"reference": "Patient/authz-p%d" % n},
             "payor": [{"reference": "Organization/authz-payer"}]},
            {"resourceType": "RelatedPerson", "id": "authz-rp%d" % n,
             "patient": {"reference": "Patient/authz-p%d" % n}},
            group(n),
        ]
    d = tmp_path_factory.mktemp("authz")
    f1 = d / "v1.ndjson"
    f1.write_text("".join(json.dumps(r) + "\n" for r in res))
    atrctl("load", str(f1))
    f2 = d / "v2.ndjson"
    f2.write_text("".join(json.dumps(group(n, " (v2)")) + "\n" for n in (1, 2, 3)))
    atrctl("load", str(f2))
    return res


@pytest.fixture(scope="module")
def clients(consumers, authz_data):
    """Linked by id to g1 / by contract id to g2 / to nothing."""
    return {
        "by_id": consumers.make(groups=("authz-g1",)),
        "by_contract": consumers.make(contracts=(CTR + "|AZ-2",)),
        "neither": consumers.make(),
    }


ENTITLED = {"by_id": {"authz-g1"}, "by_contract": {"authz-g2"}, "neither": set()}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_token(httpd, client_id, scope="system/*.read", exp_in=300, key=None):
    """An access token as mod_atr issues them (HS256 under the server's token key)."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"iss": httpd.base_url, "sub": client_id, "aud": httpd.base_url,
                                "scope": scope, "iat": now, "exp": now + exp_in,
                                "jti": uuid.uuid4().hex}).encode())
    signing_input = header + "." + claims
    sig = hmac.new(key or httpd.token_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def oo_code(r):
    assert r.headers["Content-Type"].startswith("application/fhir+json"), r.headers
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]["code"]


def realm(anon):
    return 'Bearer realm="%s"' % anon.base_url


# ---------------------------------------------------------------- authentication (SEC-01..03)

def test_public_endpoints_need_no_token(anon):
    assert anon.get("/metadata").status_code == 200
    r = anon.get("/.well-known/smart-configuration")
    assert r.status_code == 200
    assert "token_endpoint" in r.json()


def test_metadata_declares_smart_security(anon):
    sec = anon.get("/metadata").json()["rest"][0]["security"]
    assert sec["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert sec["service"][0]["coding"][0]["system"] == \
        "http://terminology.hl7.org/CodeSystem/restful-security-service"
    uris = sec["extension"][0]
    assert uris["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris["extension"][0] == {"url": "token", "valueUri": anon.base_url + "/auth/token"}


@pytest.mark.parametrize("path", ["/Group", "/Group/authz-g1", "/Group/authz-g1/_history",
                                  "/Group/authz-g1/_history/1", "/Patient/authz-p1",
                                  "/Practitioner/authz-pr", "/Group/nope", "/NotAType/1",
                                  "/Group/authz-g1/$davinci-data-export"])
def test_no_token_is_401_login(anon, authz_data, path):
    r = anon.get(path)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == realm(anon)
    assert oo_code(r) == "login"
    assert "Welby" not in r.text and "Authz list" not in r.text    # no data


def test_no_token_on_post_search_is_401(anon):
    r = anon.post("/Group/_search", data={"identifier": CTR + "|AZ-1"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == realm(anon)


@pytest.mark.parametrize("auth", ["Basic dXNlcjpwdw==", "Bearer", "Bearer    "])
def test_other_schemes_and_empty_bearer(anon, auth):
    r = anon.get("/Group", headers={"Authorization": auth})
    assert r.status_code == 401
    if auth.startswith("Basic"):
        assert r.headers["WWW-Authenticate"] == realm(anon)
    else:
        assert r.headers["WWW-Authenticate"].startswith(realm(anon) + ', error="invalid_token"')
    assert oo_code(r) == "login"


@pytest.mark.parametrize("token,desc", [
    ("garbage", "malformed token"),
    ("a.b.c", "malformed token"),
    ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "unsupported token algorithm"),
])
def test_garbage_token_is_401_invalid_token(anon, token, desc):
    r = anon.get("/Group", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == \
        realm(anon) + ', error="invalid_token", error_description="%s"' % desc
    assert oo_code(r) == "login"
    assert token not in r.text


def test_token_signed_with_another_key_is_401(anon, clients):
    tok = forge_token(anon, clients["by_id"].client_id, key=b"x" * 32)
    r = anon.get("/Group/authz-g1", headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == \
        realm(anon) + ', error="invalid_token", error_description="bad signature"'


def test_expired_token_is_401(anon, clients):
    tok = forge_token(anon, clients["by_id"].client_id, exp_in=-5)
    r = anon.get("/Group/authz-g1", headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == \
        realm(anon) + ', error="invalid_token", error_description="token expired"'
    assert oo_code(r) == "login"


def test_token_expires_with_its_lifetime(anon, clients, httpd_config):
    # exp is whole seconds, so a token lives between lifetime-1 and lifetime seconds: 3 s
    # leaves room for a busy machine between issuing and the first use.
    httpd_config("ATRTokenLifetime 3")
    c = clients["by_id"]
    tok = c.token()
    r = c.get("/Group/authz-g1", token=tok)
    assert r.status_code == 200
    time.sleep(4.2)
    r = c.get("/Group/authz-g1", token=tok)
    assert r.status_code == 401
    assert 'error_description="token expired"' in r.headers["WWW-Authenticate"]


def test_token_of_unregistered_client_is_401(anon):
    tok = forge_token(anon, "never-registered-client")
    r = anon.get("/Practitioner/authz-pr", headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == realm(anon) + \
        ', error="invalid_token", error_description="the client is not registered"'


def test_disabled_client_token_stops_working_within_ttl(consumers, authz_data):
    c = consumers.make(groups=("authz-g1",))
    tok = c.token()
    assert c.get("/Group/authz-g1", token=tok).status_code == 200
    consumers.set_status(c.client_id, "disabled")
    time.sleep(1.3)          # the test config's registry cache TTL is 1 s
    r = c.get("/Group/authz-g1", token=tok)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == realm(consumers.httpd) + \
        ', error="invalid_token", error_description="the client is disabled"'
    assert oo_code(r) == "login"
    consumers.set_status(c.client_id, "active")
    time.sleep(1.3)
    assert c.get("/Group/authz-g1", token=tok).status_code == 200
    consumers.delete(c.client_id)
    time.sleep(1.3)
    r = c.get("/Group/authz-g1", token=tok)
    assert r.status_code == 401
    assert 'error_description="the client is not registered"' in r.headers["WWW-Authenticate"]


# ---------------------------------------------------------------- scopes (SCOPE-04)

def test_insufficient_scope_is_403(consumers, authz_data):
    c = consumers.make(scopes=("system/Patient.read",), groups=GROUPS)
    tok = c.token(scope="system/Patient.read")
    for path in ("/Group/authz-g1", "/Group", "/Group/authz-g1/_history", "/Group/authz-g1/_history/1",
                 "/Coverage/authz-c1"):
        r = c.get(path, token=tok)
        assert r.status_code == 403, path
        assert r.headers["WWW-Authenticate"].startswith(
            realm(consumers.httpd) + ', error="insufficient_scope"'), r.headers
        assert oo_code(r) == "forbidden"
    r = c.request("POST", "/Group/_search", token=tok, data={"identifier": CTR + "|AZ-1"})
    assert r.status_code == 403
    # the scope it has works (its member is entitled through the linked Groups)
    assert c.get("/Patient/authz-p1", token=tok).status_code == 200


def test_narrowed_registry_scopes_apply_to_existing_tokens(consumers, authz_data):
    """SCOPE-04 with the registry as the authority: an operator who narrows a client's scopes
    does not wait for its tokens (granted system/*.read) to expire (registry cache TTL 1 s)."""
    c = consumers.make(scopes=("system/*.read",), groups=("authz-g1",))
    tok = c.token(scope="system/*.read")
    assert c.get("/Group/authz-g1", token=tok).status_code == 200
    consumers.modify(c.client_id, atrScope=["system/Patient.read"])
    time.sleep(1.3)
    r = c.get("/Group/authz-g1", token=tok)
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert c.get("/Patient/authz-p1", token=tok).status_code == 200


def test_v2_scopes_read_without_search(consumers, authz_data):
    c = consumers.make(scopes=("system/Group.r", "system/Group.s"), groups=("authz-g1",))
    tok_r = c.token(scope="system/Group.r")
    assert c.get("/Group/authz-g1", token=tok_r).status_code == 200
    assert c.get("/Group/authz-g1/_history/1", token=tok_r).status_code == 200
    assert c.get("/Group", token=tok_r).status_code == 403
    tok_s = c.token(scope="system/Group.s")
    assert c.get("/Group", token=tok_s).status_code == 200
    assert c.get("/Group/authz-g1", token=tok_s).status_code == 403


# ---------------------------------------------------------------- entitlement matrix (CS-GRP-08, D1)

def same_as_missing(r, gid, missing):
    """A non-entitled Group's answer is a missing Group's answer, id for id."""
    assert r.status_code == missing.status_code == 404
    assert r.headers["Content-Type"] == missing.headers["Content-Type"]
    assert r.text == missing.text.replace("authz-missing", gid)


@pytest.mark.parametrize("who", ["by_id", "by_contract", "neither"])
@pytest.mark.parametrize("gid", GROUPS)
def test_entitlement_matrix_instance(clients, who, gid):
    c = clients[who]
    entitled = gid in ENTITLED[who]
    for suffix in ("", "/_history/1", "/_history/2", "/_history"):
        r = c.get("/Group/" + gid + suffix)
        if entitled:
            assert r.status_code == 200, (who, gid, suffix, r.text)
            body = r.json()
            if suffix == "/_history":
                assert body["type"] == "history" and len(body["entry"]) == 2
            else:
                assert body["id"] == gid
        else:
            same_as_missing(r, gid, c.get("/Group/authz-missing" + suffix))


@pytest.mark.parametrize("who", ["by_id", "by_contract", "neither"])
@pytest.mark.parametrize("gid", GROUPS)
def test_entitlement_matrix_search_by_identifier(clients, who, gid):
    c = clients[who]
    ident = CTR + "|AZ-" + gid[-1]
    for r in (c.get("/Group", params={"identifier": ident}),
              c.request("POST", "/Group/_search", data={"identifier": ident}),
              c.get("/Group", params={"identifier": ident, "_summary": "true"})):
        assert r.status_code == 200, r.text
        b = r.json()
        want = [gid] if gid in ENTITLED[who] else []
        assert b["total"] == len(want)
        assert sorted(e["resource"]["id"] for e in b.get("entry", [])) == want


@pytest.mark.parametrize("who", ["by_id", "by_contract", "neither"])
def test_entitlement_matrix_search_all_and_count(clients, who):
    c = clients[who]
    b = c.get("/Group").json()
    assert sorted(e["resource"]["id"] for e in b.get("entry", [])) == sorted(ENTITLED[who])
    assert b["total"] == len(ENTITLED[who])
    b = c.get("/Group", params={"_summary": "count"}).json()
    assert b["total"] == len(ENTITLED[who]) and "entry" not in b
    b = c.get("/Group", params={"identifier": CTR + "|AZ-1," + CTR + "|AZ-2," + CTR + "|AZ-3"}).json()
    assert b["total"] == len(ENTITLED[who])


def test_search_paging_counts_entitled_only(consumers, authz_data):
    c = consumers.make(groups=("authz-g1", "authz-g3"))
    b = c.get("/Group", params={"_count": "1"}).json()
    assert b["total"] == 2
    assert [e["resource"]["id"] for e in b["entry"]] == ["authz-g1"]
    nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
    assert nxt
    b2 = c.get(nxt[0][len(consumers.httpd.base_url):]).json()
    assert [e["resource"]["id"] for e in b2["entry"]] == ["authz-g3"]
    assert not [link for link in b2["link"] if link["relation"] == "next"]


@pytest.mark.parametrize("who,n,visible", [
    ("by_id", 1, True), ("by_id", 2, False), ("by_id", 3, False),
    ("by_contract", 2, True), ("by_contract", 1, False),
    ("neither", 1, False), ("neither", 2, False),
])
def test_member_data_visibility(clients, who, n, visible):
    c = clients[who]
    for path in ("/Patient/authz-p%d" % n, "/Coverage/authz-c%d" % n, "/Coverage/authz-cb%d" % n,
                 "/RelatedPerson/authz-rp%d" % n, "/Patient/authz-p%d/_history" % n,
                 "/Patient/authz-p%d/_history/1" % n):
        r = c.get(path)
        if visible:
            assert r.status_code == 200, (path, r.text)
        else:
            assert r.status_code == 404, (path, r.text)
            assert oo_code(r) == "not-found"


def test_directory_data_visible_to_any_client(clients):
    for who in clients:
        r = clients[who].get("/Practitioner/authz-pr")
        assert r.status_code == 200
        assert r.json()["id"] == "authz-pr"


def test_unknown_client_id_never_leaks_in_logs(anon, clients):
    tok = clients["by_id"].cached_token()
    clients["by_id"].get("/Group/authz-g1")
    with open(anon.error_log, encoding="utf-8", errors="replace") as f:
        assert tok not in f.read()
    with open(anon.access_log, encoding="utf-8", errors="replace") as f:
        assert tok not in f.read()


# ---------------------------------------------------------------- registry down: fail closed

def test_registry_down_is_503_then_recovers(workdir, httpd, httpd_config, allow_errors, authz_data):
    allow_errors(r"ATR00605", r"(?i)ldap|registry|directory")
    own = AtrSlapd(str(workdir))
    own.start()
    try:
        own.add_consumer("down-client", atrClientStatus="active", atrScope=["system/*.read"],
                         atrGroupId=["authz-g1"])
        httpd_config("ATRRegistryURL %s\nATRRegistryTimeout 1\nATRRegistryRetries 0" % own.ldap_uri)
        tok = forge_token(httpd, "down-client")
        hdr = {"Authorization": "Bearer " + tok}
        assert httpd.get("/Group/authz-g1", headers=hdr).status_code == 200

        own._proc.terminate()       # slapdtest's stop() would also remove its data
        own.wait()
        time.sleep(1.3)             # past the registry cache TTL
        for path in ("/Group/authz-g1", "/Group", "/Practitioner/authz-pr", "/Patient/authz-p1"):
            r = httpd.get(path, headers=hdr)
            assert r.status_code == 503, (path, r.text)
            assert oo_code(r) == "transient"
            assert "authz-g1" not in r.text and "Welby" not in r.text
        # public endpoints do not need the registry
        assert httpd.get("/metadata").status_code == 200

        own._start_slapd()
        deadline = time.time() + 15
        status = None
        while time.time() < deadline:
            status = httpd.get("/Group/authz-g1", headers=hdr).status_code
            if status == 200:
                break
            time.sleep(0.3)
        assert status == 200
    finally:
        own.stop()
