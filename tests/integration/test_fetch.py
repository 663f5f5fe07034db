"""`atrctl fetch` and `atrctl keygen` (issue 8): the Consumer side, run against our own
Producer (real httpd, slapd, store) and against "another server" -- a proxy in front of ours
with other URL shapes, no $davinci-data-export and STU1-only Group search -- so that only
standard SMART Backend Services / Bulk Data behaviour is relied on (SMART-DISC-01/02,
SMART-TOK-01..03, SP-02, BULK-KO-07, BULK-ST-01..05, BULK-FILE-01/02, EXP-01, EXP-13)."""
import base64
import hashlib
import http.server
import json
import os
import pathlib
import pty
import re
import select
import signal
import stat
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from harness.consumers import pem
from harness.examples import ATRCTL
from harness.ports import free_port

GROUP = "grp-1"
CONTRACT_SYSTEM = "http://example.org/payer/contract"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
STATE = ".atrctl-fetch.json"


# ---------------------------------------------------------------- helpers

def clean_env():
    env = dict(os.environ)
    for k in ("ATR_BASE_URL", "ATR_CLIENT_ID", "ATR_CLIENT_KEY", "ATR_CLIENT_KID", "ATR_DB"):
        env.pop(k, None)
    return env


class Fetcher:
    """Runs `atrctl fetch` as one registered Consumer (its key written as a PEM file)."""

    def __init__(self, consumer, base, key_file):
        self.consumer = consumer
        self.base = base
        self.key_file = str(key_file)

    def args(self, *extra, base=None, kid=True):
        a = [ATRCTL, "fetch", "--base", base or self.base, "--client-id", self.consumer.client_id,
             "--key", self.key_file]
        if kid:
            a += ["--kid", self.consumer.kid]
        return a + [str(x) for x in extra]

    def run(self, *extra, base=None, timeout=300):
        return subprocess.run(self.args(*extra, base=base), capture_output=True, text=True,
                              timeout=timeout, env=clean_env())


def make_fetcher(consumers, httpd, tmp_path_factory, **kw):
    c = consumers.make(jwks="inline", **kw)
    d = tmp_path_factory.mktemp("key")
    key = d / "key.pem"
    key.write_bytes(pem(c.key))
    key.chmod(0o600)
    return Fetcher(c, httpd.base_url, key)


def summary(result):
    assert result.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def lines_by_type(directory, names):
    out = {}
    for name in names:
        typ = name.rsplit("-", 1)[0]
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            out.setdefault(typ, []).extend(f.read().splitlines())
    return out


def store_export(store, group, tmp_path):
    """What the store holds for the Group, written by the same writer the bulk export runs."""
    d = tmp_path / ("store-" + group)
    r = store.atrctl("export", "--group", group, "--out", d)
    s = json.loads(r.stdout)
    return lines_by_type(d, [os.path.basename(f["url"]) for f in s["output"]])


def assert_same_as_store(out_dir, store, group, tmp_path):
    """manifest.json names local files with the manifest's counts; the files hold exactly the
    store's attribution list of the Group."""
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["requiresAccessToken"] is True
    assert re.match(r"\d{4}-\d\d-\d\dT", manifest["transactionTime"])
    names = [o["url"] for o in manifest["output"]]
    for o in manifest["output"]:
        assert "/" not in o["url"], o
        with open(out_dir / o["url"], encoding="utf-8") as f:
            assert len(f.read().splitlines()) == o["count"], o
    fetched = lines_by_type(out_dir, names)
    expected = store_export(store, group, tmp_path)
    assert sorted(fetched) == sorted(expected)
    for typ, lines in expected.items():
        assert sorted(fetched[typ]) == sorted(lines), typ
    group_line = json.loads(fetched["Group"][0])
    assert group_line["id"] == group
    assert not list(out_dir.glob("*.part"))
    assert not (out_dir / STATE).exists()
    return manifest


def access_lines(httpd, since):
    with open(httpd.access_log, "rb") as f:
        f.seek(since)
        return f.read().decode("utf-8", "replace").splitlines()


def access_pos(httpd):
    try:
        return os.path.getsize(httpd.access_log)
    except FileNotFoundError:
        return 0


def group_identifiers(fetcher):
    r = fetcher.consumer.get("/Group/%s" % GROUP, params={"_summary": "true"})
    assert r.status_code == 200, r.text
    ids = {}
    for i in r.json()["identifier"]:
        ids[i.get("system")] = i["value"]
    return ids


@pytest.fixture(scope="module")
def fetcher(consumers, httpd, tmp_path_factory):
    """A Consumer linked to grp-1 and to the IG example Group fullexample."""
    return make_fetcher(consumers, httpd, tmp_path_factory, groups=(GROUP, "fullexample"))


# ---------------------------------------------------------------- "another server"

class OtherProducer:
    """A Producer in front of ours with its own URL shapes (status at /jobs/<x>, files at
    /dl/<x>), no $davinci-data-export (404), and Group search by identifier:of-type only (the
    STU2 identifier=system|value form is 400 not-supported). Its discovery document is ours,
    so tokens come from our token endpoint. Faults on demand: 429 on the first kick-off and
    the first poll, a failed export (500), a file that loses its last line."""

    def __init__(self, upstream, throttle=True, fail_export=False, truncate=None,
                 reject_first_file=False, cut_first_file=None, never_done=False):
        self.upstream = upstream
        self.port = free_port()
        self.root = "http://127.0.0.1:%d" % self.port
        self.base = self.root + "/r4"
        self.throttle = throttle
        self.fail_export = fail_export
        self.truncate = truncate
        self.reject_first_file = reject_first_file
        self.cut_first_file = cut_first_file     # "drop" or "stall" after half of the first file
        self.never_done = never_done               # status answers 202 forever
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.seen = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def count(self, kind):
        with self._lock:
            return sum(1 for k in self.seen if k == kind)

    @staticmethod
    def send(h, status, body=b"", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def oo(code, text):
        return {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": code, "diagnostics": text}]}

    def forward(self, h, url):
        hdrs = {k: h.headers[k] for k in ("Authorization", "Accept", "Prefer", "Range") if h.headers.get(k)}
        hdrs["Accept-Encoding"] = "identity"
        return requests.get(url, headers=hdrs, timeout=60, allow_redirects=False)

    def note(self, kind):
        with self._lock:
            self.seen.append(kind)
            return sum(1 for k in self.seen if k == kind)

    def handle(self, h):
        path, _, query = h.path.partition("?")
        keep = ("Content-Type", "Retry-After", "X-Progress", "Content-Range", "Expires")
        if path == "/r4/.well-known/smart-configuration":
            self.note("discovery")
            r = self.forward(h, self.upstream + "/.well-known/smart-configuration")
            return self.send(h, r.status_code, r.content, {"Content-Type": "application/json"})
        if path == "/r4/Group":
            params = urllib.parse.parse_qs(query)
            if "identifier" in params:
                self.note("search-stu2")
                return self.send(h, 400, self.oo("not-supported", "use identifier:of-type"),
                                 {"Content-Type": "application/fhir+json"})
            self.note("search-stu1")
            r = self.forward(h, self.upstream + "/Group?" + query)
            return self.send(h, r.status_code, r.content, {"Content-Type": "application/fhir+json"})
        m = re.fullmatch(r"/r4/Group/([^/]+)/(\$[a-z-]+)", urllib.parse.unquote(path))
        if m and m.group(2) == "$davinci-data-export":
            self.note("kickoff-davinci")
            return self.send(h, 404, self.oo("not-found", "unknown operation"),
                             {"Content-Type": "application/fhir+json"})
        if m and m.group(2) == "$export":
            if self.note("kickoff-export") == 1 and self.throttle:
                return self.send(h, 429, self.oo("throttled", "busy"), {"Retry-After": "1"})
            r = self.forward(h, "%s/Group/%s/$export%s" % (self.upstream, m.group(1),
                                                           "?" + query if query else ""))
            hdrs = {k: r.headers[k] for k in keep if k in r.headers}
            if r.status_code == 202:
                hdrs["Content-Location"] = self.root + "/jobs/" + urllib.parse.quote(
                    r.headers["Content-Location"], safe="")
            return self.send(h, r.status_code, r.content, hdrs)
        if path.startswith("/jobs/"):
            n = self.note("poll")
            if n == 1 and self.throttle:
                return self.send(h, 429, self.oo("throttled", "too soon"), {"Retry-After": "1"})
            if self.never_done:
                return self.send(h, 202, b"", {"Retry-After": "1", "X-Progress": "still working"})
            if self.fail_export:
                return self.send(h, 500, self.oo("exception", "the export failed: disk full"),
                                 {"Content-Type": "application/fhir+json"})
            r = self.forward(h, urllib.parse.unquote(path[len("/jobs/"):]))
            hdrs = {k: r.headers[k] for k in keep if k in r.headers}
            body = r.content
            if r.status_code == 200:
                m = r.json()
                for item in m["output"] + m["error"]:
                    item["url"] = self.root + "/dl/" + urllib.parse.quote(item["url"], safe="")
                body = json.dumps(m).encode()
            return self.send(h, r.status_code, body, hdrs)
        if path.startswith("/dl/"):
            url = urllib.parse.unquote(path[len("/dl/"):])
            if self.note("file") == 1 and self.reject_first_file:
                self.note("file-401")
                return self.send(h, 401, {"error": "invalid_token"},
                                 {"WWW-Authenticate": 'Bearer error="invalid_token"',
                                  "Content-Type": "application/json"})
            if h.headers.get("Range"):
                self.note("file-range")
            r = self.forward(h, url)
            body = r.content
            if r.status_code == 206:
                self.note("file-206")
            if self.cut_first_file and r.status_code == 200 and self.count("cut") == 0:
                self.note("cut")
                h.send_response(200)
                h.send_header("Content-Type", r.headers.get("Content-Type", "application/fhir+ndjson"))
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body[:len(body) // 2])
                h.wfile.flush()
                if self.cut_first_file == "stall":
                    self.stalled.set()
                    self.release.wait(120)
                h.close_connection = True
                return None
            if self.truncate and url.endswith("/" + self.truncate) and r.status_code == 200:
                body = b"".join(body.splitlines(keepends=True)[:-1])
            hdrs = {k: r.headers[k] for k in keep if k in r.headers}
            return self.send(h, r.status_code, body, hdrs)
        self.note("other")
        return self.send(h, 404, self.oo("not-found", "no such path"))


@pytest.fixture
def other(httpd):
    made = []

    def make(**kw):
        p = OtherProducer(httpd.base_url, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


# ---------------------------------------------------------------- keygen

def thumbprint(jwk):
    req = {k: jwk[k] for k in (("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n"))}
    digest = hashlib.sha256(json.dumps(req, sort_keys=True, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_keygen_writes_key_and_registrable_jwks(alg, tmp_path):
    out = tmp_path / "keys"
    r = subprocess.run([ATRCTL, "keygen", "--alg", alg, "--out", out], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    kid = r.stdout.strip()
    key_file, jwks_file = out / "private-key.pem", out / "jwks.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwks = json.loads(jwks_file.read_text())
    assert len(jwks["keys"]) == 1
    jwk = jwks["keys"][0]
    assert jwk["kid"] == kid == thumbprint(jwk)
    assert jwk["alg"] == alg and jwk["use"] == "sig"
    assert "d" not in jwk and "p" not in jwk          # public only
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if alg == "ES384":
        assert jwk["kty"] == "EC" and jwk["crv"] == "P-384" and key.curve.name == "secp384r1"
    else:
        assert jwk["kty"] == "RSA" and key.key_size == 2048
    # never replaces a key silently
    again = subprocess.run([ATRCTL, "keygen", "--alg", alg, "--out", out], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 1 and "--force" in again.stderr
    assert json.loads(jwks_file.read_text()) == jwks
    forced = subprocess.run([ATRCTL, "keygen", "--alg", alg, "--out", out, "--force"],
                            capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0 and forced.stdout.strip() != kid


def test_keygen_usage_errors(tmp_path):
    for args in (["--alg", "HS256", "--out", tmp_path / "a"], ["--alg", "ES384"],
                 ["--alg", "RS384", "--bits", "1024", "--out", tmp_path / "b"],
                 ["--alg", "ES384", "--bits", "4096", "--out", tmp_path / "c"]):
        r = subprocess.run([ATRCTL, "keygen"] + [str(a) for a in args], capture_output=True, text=True)
        assert r.returncode == 2, args
        assert "usage: atrctl keygen" in r.stderr


def test_keygen_key_registered_fetches_with_default_kid(slapd, httpd, store, tmp_path):
    """A keygen key registered as it is (inline JWKS) works with fetch's default kid (the
    thumbprint): the whole flow needs nothing but the two files."""
    out = tmp_path / "keys"
    kid = subprocess.run([ATRCTL, "keygen", "--alg", "RS384", "--out", out], capture_output=True,
                         text=True, timeout=120, check=True).stdout.strip()
    client = "fetch-keygen-" + kid[:8].lower().replace("_", "x").replace("-", "x")
    slapd.add_consumer(client, atrClientStatus="active", atrScope=["system/*.read"],
                       atrJwks=(out / "jwks.json").read_text(), atrGroupId=[GROUP])
    dest = tmp_path / "out"
    r = subprocess.run([ATRCTL, "fetch", "--base", httpd.base_url, "--client-id", client, "--key",
                        out / "private-key.pem", "--alg", "RS384", "--group", GROUP, "--out", dest],
                       capture_output=True, text=True, timeout=300, env=clean_env())
    s = summary(r)
    assert s["groups"][0]["group"] == "Group/" + GROUP
    assert s["groups"][0]["operation"] == "$davinci-data-export"
    assert_same_as_store(dest, store, GROUP, tmp_path)


# ---------------------------------------------------------------- the whole flow

def test_fetch_by_npi_writes_the_store_export(fetcher, httpd, store, tmp_path):
    npi = group_identifiers(fetcher)[NPI_SYSTEM]
    pos = access_pos(httpd)
    out = tmp_path / "out"
    r = fetcher.run("--npi", npi, "--out", out)
    s = summary(r)
    assert r.stderr == ""                      # no progress bar when stderr is not a terminal
    assert [g["group"] for g in s["groups"]] == ["Group/" + GROUP]
    g = s["groups"][0]
    assert g["operation"] == "$davinci-data-export" and g["dir"] == str(out)
    manifest = assert_same_as_store(out, store, GROUP, tmp_path)
    assert [f["file"] for f in g["files"]] == [o["url"] for o in manifest["output"] + manifest["error"]]
    log = access_lines(httpd, pos)
    assert any('"GET /fhir/.well-known/smart-configuration ' in x for x in log)
    assert any('"POST /fhir/auth/token ' in x and '" 200 ' in x for x in log)
    assert any(("GET /fhir/Group?identifier=" + urllib.parse.quote(NPI_SYSTEM + "|" + npi, safe="")) in x
               for x in log), log
    assert any("/$davinci-data-export" in x and '" 202 ' in x for x in log)
    files = [x for x in log if "/export-files/" in x]
    assert len(files) == len(manifest["output"]) + len(manifest["error"])
    assert all('" 200 ' in x for x in files)


def test_fetch_again_into_the_same_directory_replaces_the_files(fetcher, store, tmp_path):
    """A later fetch into the same DIR is a new export: files of the earlier one (here one
    damaged on purpose) are replaced, never taken as already downloaded."""
    out = tmp_path / "out"
    summary(fetcher.run("--group", GROUP, "--out", out))
    (out / "Patient-1.ndjson").write_text("damaged\n")
    s = summary(fetcher.run("--group", GROUP, "--out", out))
    assert not any(f["resumed"] for f in s["groups"][0]["files"])
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_fetch_by_tin_with_types_and_since(fetcher, store, tmp_path):
    tin = group_identifiers(fetcher)[TIN_SYSTEM]
    out = tmp_path / "out"
    s = summary(fetcher.run("--tin", tin, "--type", "Group,Patient,Coverage", "--since",
                            "2000-01-01T00:00:00+00:00", "--out", out))
    types = {f["type"] for f in s["groups"][0]["files"] if not f["error"]}
    assert types == {"Group", "Patient", "Coverage"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert "_type=Group" in manifest["request"] and "_since=2000-01-01T00%3A00%3A00%2B00%3A00" in manifest["request"]
    expected = store_export(store, GROUP, tmp_path)
    fetched = lines_by_type(out, [o["url"] for o in manifest["output"]])
    for typ in types:
        assert sorted(fetched[typ]) == sorted(expected[typ])


def test_fetch_by_contract_entitled_through_contract(consumers, httpd, store, tmp_path, tmp_path_factory):
    """A Consumer entitled to grp-1 only through its contract id finds it by contract."""
    contract = CONTRACT_SYSTEM + "|CTR-1"
    f = make_fetcher(consumers, httpd, tmp_path_factory, contracts=(contract,))
    # other suites may load more Groups of this contract (renamed demo data): all are found
    r = f.consumer.get("/Group", params={"identifier": contract, "_summary": "true", "_count": "100"})
    assert r.status_code == 200
    expected = sorted("Group/" + e["resource"]["id"] for e in r.json().get("entry", []))
    assert "Group/" + GROUP in expected
    out = tmp_path / "out"
    s = summary(f.run("--contract", contract, "--type", "Group,Patient,Coverage", "--out", out))
    assert sorted(g["group"] for g in s["groups"]) == expected
    d = out if len(expected) == 1 else out / GROUP
    manifest = json.loads((d / "manifest.json").read_text())
    fetched = lines_by_type(d, [o["url"] for o in manifest["output"]])
    ours = store_export(store, GROUP, tmp_path)
    assert sorted(fetched) == ["Coverage", "Group", "Patient"]
    for typ in fetched:
        assert sorted(fetched[typ]) == sorted(ours[typ])


def test_fetch_selected_patients_posts_parameters(fetcher, httpd, store, tmp_path):
    """--patient: the kick-off is a POST of a Parameters resource (Bulk Data: patient only in
    a POST body, as valueReference); the files hold those members only, and a reference that
    is not a member is reported in the error files."""
    expected = store_export(store, GROUP, tmp_path)
    pats = sorted(json.loads(line)["id"] for line in expected["Patient"])[:2]
    out = tmp_path / "out"
    pos = access_pos(httpd)
    summary(fetcher.run("--group", GROUP, "--patient", "Patient/" + pats[0], "--patient", pats[1],
                        "--patient", "Patient/not-a-member", "--out", out))
    manifest = json.loads((out / "manifest.json").read_text())
    fetched = lines_by_type(out, [o["url"] for o in manifest["output"]])
    assert sorted(json.loads(line)["id"] for line in fetched["Patient"]) == pats
    errors = lines_by_type(out, [o["url"] for o in manifest["error"]])
    assert any("Patient/not-a-member" in line for line in errors["OperationOutcome"]), errors
    log = access_lines(httpd, pos)
    assert any(('"POST /fhir/Group/%s/$davinci-data-export ' % GROUP) in x and '" 202 ' in x
               for x in log), log
    # the state file tells this request from a GET one: a plain fetch into DIR starts anew
    s = summary(fetcher.run("--group", GROUP, "--out", out))
    assert not any(f["resumed"] for f in s["groups"][0]["files"])
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_fetch_criteria_must_all_match(fetcher, tmp_path):
    ids = group_identifiers(fetcher)
    r = fetcher.run("--npi", ids[NPI_SYSTEM], "--contract", CONTRACT_SYSTEM + "|NO-SUCH", "--out",
                    tmp_path / "o")
    assert r.returncode == 5, r.stderr
    assert "no Group" in r.stderr and "contract " + CONTRACT_SYSTEM + "|NO-SUCH" in r.stderr
    assert not (tmp_path / "o").exists()


def test_fetch_several_groups_go_to_subdirectories(fetcher, store, tmp_path):
    out = tmp_path / "out"
    s = summary(fetcher.run("--group", GROUP, "--group", "Group/fullexample", "--out", out))
    assert [g["group"] for g in s["groups"]] == ["Group/" + GROUP, "Group/fullexample"]
    for gid in (GROUP, "fullexample"):
        assert_same_as_store(out / gid, store, gid, tmp_path)


def test_fetch_from_another_server_stu1_search_export_fallback_and_429(fetcher, other, store, tmp_path):
    """Only standard behaviour: token endpoint from discovery, status URL from
    Content-Location, files from the manifest (other shapes than ours); identifier:of-type
    when identifier= is refused; $export when $davinci-data-export is unknown; Retry-After
    on 429 at kick-off and at the status URL."""
    npi = group_identifiers(fetcher)[NPI_SYSTEM]
    srv = other()
    out = tmp_path / "out"
    s = summary(fetcher.run("--npi", npi, "--out", out, base=srv.base))
    assert s["groups"][0]["operation"] == "$export"
    assert srv.count("search-stu2") == 1 and srv.count("search-stu1") == 1
    assert srv.count("kickoff-davinci") == 1 and srv.count("kickoff-export") == 2
    assert srv.count("poll") >= 2
    manifest = assert_same_as_store(out, store, GROUP, tmp_path)
    assert srv.count("file") == len(manifest["output"]) + len(manifest["error"])
    assert s["tokens"] == 1


# ---------------------------------------------------------------- resume and token renewal

def test_interrupted_download_is_resumed(fetcher, other, httpd, store, tmp_path):
    """A run killed in the middle of a download (the server stalls after half of the first
    file): the next run starts no new export, keeps the part and continues it with a Range
    request (206 from our server), and the result is whole."""
    srv = other(throttle=False, cut_first_file="stall")
    out = tmp_path / "out"
    proc = subprocess.Popen(fetcher.args("--group", GROUP, "--out", out, "--parallel", "1", base=srv.base),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    part = None
    try:
        assert srv.stalled.wait(120), "the download never started"
        deadline = time.time() + 60
        while time.time() < deadline and part is None:
            part = next((p for p in out.glob("*.part") if p.stat().st_size > 0), None)
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
        srv.release.set()
    assert part is not None, "no partial download appeared"
    size = part.stat().st_size
    name = part.name[:-len(".part")]
    assert (out / STATE).exists()
    assert not (out / "manifest.json").exists() and not (out / name).exists()
    assert srv.count("kickoff-export") == 1

    pos = access_pos(httpd)
    s = summary(fetcher.run("--group", GROUP, "--out", out, base=srv.base))
    resumed = [f for f in s["groups"][0]["files"] if f["file"] == name]
    assert resumed and resumed[0]["resumed"] is True and resumed[0]["bytes"] > size
    assert srv.count("kickoff-export") == 1 and srv.count("kickoff-davinci") == 1   # the same job
    assert srv.count("file-range") == 1 and srv.count("file-206") == 1
    assert any("/export-files/" in x and "/%s " % name in x and '" 206 ' in x for x in access_lines(httpd, pos))
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_dropped_connection_resumed_in_the_same_run(fetcher, other, store, tmp_path):
    """The server closes the connection after half of a file: fetch continues the file with
    a Range request at once and succeeds."""
    srv = other(throttle=False, cut_first_file="drop")
    out = tmp_path / "out"
    s = summary(fetcher.run("--group", GROUP, "--out", out, "--parallel", "2", base=srv.base))
    # with 2 downloads at once, either of the first two may be the one cut
    assert len([f for f in s["groups"][0]["files"] if f["resumed"]]) == 1
    assert srv.count("file-range") == 1 and srv.count("file-206") == 1
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_max_wait_then_resume_polling_then_restart(fetcher, other, store, tmp_path):
    """--max-wait gives up (exit 6) but keeps the job; the next run polls that same job; with
    --restart a new export is started."""
    srv = other(throttle=False, never_done=True)
    out = tmp_path / "out"
    r = fetcher.run("--group", GROUP, "--out", out, "--max-wait", "2", base=srv.base)
    assert r.returncode == 6, r.stderr
    assert "not done after 2 s (--max-wait)" in r.stderr and "run again to resume" in r.stderr
    assert json.loads((out / STATE).read_text())["statusUrl"].startswith(srv.root + "/jobs/")
    assert srv.count("kickoff-export") == 1
    r = fetcher.run("--group", GROUP, "--out", out, "--max-wait", "2", base=srv.base)
    assert r.returncode == 6, r.stderr
    assert srv.count("kickoff-export") == 1                    # the same job, polled again
    srv.never_done = False
    summary(fetcher.run("--group", GROUP, "--out", out, "--restart", base=srv.base))
    assert srv.count("kickoff-export") == 2                    # --restart: a new job
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_token_renewed_mid_export(fetcher, httpd, httpd_config, store, tmp_path):
    """Tokens live 2 s and the status says come back in 3 s: the token of the kick-off has
    expired by the first poll, so fetch gets a new one and the export completes."""
    httpd_config("ATRTokenLifetime 2\nATRExportPollInterval 3")
    pos = access_pos(httpd)
    out = tmp_path / "out"
    s = summary(fetcher.run("--group", GROUP, "--out", out))
    assert s["tokens"] >= 2
    log = access_lines(httpd, pos)
    assert len([x for x in log if '"POST /fhir/auth/token ' in x and '" 200 ' in x]) == s["tokens"]
    assert any("/export-status/" in x and '" 200 ' in x for x in log)
    assert not any('" 401 ' in x for x in log)          # renewed before it expired
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_rejected_token_is_renewed_once(fetcher, other, store, tmp_path):
    """A server that refuses a token before its expiry (e.g. its token key changed): a 401
    on a file download gets one new token and the download goes on."""
    srv = other(throttle=False, reject_first_file=True)
    out = tmp_path / "out"
    s = summary(fetcher.run("--group", GROUP, "--out", out, base=srv.base))
    assert s["tokens"] == 2
    assert srv.count("file-401") == 1
    assert_same_as_store(out, store, GROUP, tmp_path)


def test_progress_bar_only_on_a_terminal(fetcher, tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen(fetcher.args("--group", GROUP, "--out", tmp_path / "out"),
                            stdout=subprocess.PIPE, stderr=slave, env=clean_env())
    os.close(slave)
    seen = b""
    while True:
        r, _, _ = select.select([master], [], [], 120)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0, seen
    assert json.loads(out)["groups"][0]["group"] == "Group/" + GROUP
    text = seen.decode("utf-8", "replace")
    assert "\r" in text and "Group/%s: [" % GROUP in text and "files" in text
    assert text.endswith("\r\x1b[K")        # the bar is cleared at the end


def test_verbose_log_names_steps_never_secrets(fetcher, tmp_path):
    """-vv logs every step with its tag, and never a token, an assertion or the key."""
    a = fetcher.args("--group", GROUP, "--out", tmp_path / "out")
    a.insert(1, "-vv")
    r = subprocess.run(a, capture_output=True, text=True, timeout=300, env=clean_env())
    assert r.returncode == 0, r.stderr
    for tag in ("ATR00801", "ATR00802", "ATR00805", "ATR00810", "ATR00812"):
        assert tag in r.stderr, tag
    assert "eyJ" not in r.stderr and "eyJ" not in r.stdout          # no JWS of any kind
    assert "PRIVATE KEY" not in r.stderr


# ---------------------------------------------------------------- errors

def test_usage_errors(fetcher, tmp_path):
    cases = [
        (["--out", tmp_path], "name the Group"),
        (["--group", GROUP], "--out is required"),
        (["--npi", "123", "--out", tmp_path], "--npi '123': 10 digits"),
        (["--tin", "12345678X", "--out", tmp_path], "9 digits"),
        (["--contract", "CTR-1", "--out", tmp_path], "SYSTEM|VALUE"),
        (["--group", "a b", "--out", tmp_path], "not a Group id"),
        (["--group", GROUP, "--since", "yesterday", "--out", tmp_path], "not a FHIR instant"),
        (["--group", GROUP, "--type", "Patient,Banana", "--out", tmp_path], "ATR resource types"),
        (["--group", GROUP, "--parallel", "0", "--out", tmp_path], "--parallel"),
        (["--group", GROUP, "--patient", "Patient/a b", "--out", tmp_path], "--patient 'Patient/a b': Patient/ID"),
        (["--group", GROUP, "--alg", "RS384", "--out", tmp_path], "does not fit the key"),
        (["--group", GROUP, "--out", tmp_path, "--bogus"], "unknown argument --bogus"),
    ]
    for extra, msg in cases:
        r = fetcher.run(*extra)
        assert r.returncode == 2, (extra, r.stderr)
        assert msg in r.stderr, (extra, r.stderr)
        assert r.stdout == ""
    r = subprocess.run([ATRCTL, "fetch", "--group", GROUP, "--out", str(tmp_path)], capture_output=True,
                       text=True, env=clean_env())
    assert r.returncode == 2 and "--base is required" in r.stderr


def test_plain_http_to_another_host_is_refused(fetcher, tmp_path):
    r = fetcher.run("--group", GROUP, "--out", tmp_path / "o", base="http://payer.example/fhir")
    assert r.returncode == 2 and "plain http" in r.stderr


def test_missing_key_file(fetcher, tmp_path):
    a = fetcher.args("--group", GROUP, "--out", tmp_path / "o")
    a[a.index("--key") + 1] = str(tmp_path / "nope.pem")
    r = subprocess.run(a, capture_output=True, text=True, env=clean_env())
    assert r.returncode == 1 and "cannot open key file" in r.stderr


def test_discovery_failure(fetcher, httpd, tmp_path):
    base = httpd.base_url.rsplit("/", 1)[0] + "/nothing-here"
    r = fetcher.run("--group", GROUP, "--out", tmp_path / "o", base=base)
    assert r.returncode == 3, r.stderr
    assert "SMART discovery" in r.stderr and "smart-configuration" in r.stderr and "HTTP 404" in r.stderr


def test_network_failure(fetcher, tmp_path):
    base = "http://127.0.0.1:%d/fhir" % free_port()
    r = fetcher.run("--group", GROUP, "--out", tmp_path / "o", base=base)
    assert r.returncode == 8, r.stderr
    assert "Couldn't connect" in r.stderr or "connect" in r.stderr.lower()


def test_token_error_json_unknown_client(fetcher, tmp_path):
    a = fetcher.args("--group", GROUP, "--out", tmp_path / "o")
    a[a.index("--client-id") + 1] = "no-such-client"
    r = subprocess.run(a, capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 4, r.stderr
    assert "refused client no-such-client" in r.stderr and "HTTP 401, invalid_client" in r.stderr


def test_token_error_wrong_key(fetcher, consumers, tmp_path):
    stranger = consumers.make(jwks="inline")          # registered, but not this key
    key = tmp_path / "k.pem"
    key.write_bytes(pem(stranger.key))
    a = fetcher.args("--group", GROUP, "--out", tmp_path / "o")
    a[a.index("--key") + 1] = str(key)
    r = subprocess.run(a, capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 4 and "invalid_client" in r.stderr


def test_no_group_found(fetcher, tmp_path):
    r = fetcher.run("--npi", "1234567893", "--out", tmp_path / "o")
    assert r.returncode == 5, r.stderr
    assert "no Group" in r.stderr and "NPI 1234567893" in r.stderr


def test_group_not_entitled_operation_outcome(fetcher, tmp_path):
    """A Group this client may not see: both kick-offs are 404 with an OperationOutcome,
    which the message quotes."""
    r = fetcher.run("--group", "davincipatientlistexample", "--out", tmp_path / "o")
    assert r.returncode == 6, r.stderr
    assert "$davinci-data-export" in r.stderr and "$export" in r.stderr
    assert "HTTP 404, OperationOutcome error/" in r.stderr


def test_export_failure_reported(fetcher, other, tmp_path):
    srv = other(throttle=False, fail_export=True)
    out = tmp_path / "o"
    r = fetcher.run("--group", GROUP, "--out", out, base=srv.base)
    assert r.returncode == 6, r.stderr
    assert "HTTP 500, OperationOutcome error/exception: the export failed: disk full" in r.stderr
    assert (out / STATE).exists() and "run again to resume" in r.stderr


def test_line_count_mismatch_fails_verification(fetcher, other, tmp_path):
    srv = other(throttle=False, truncate="Patient-1.ndjson")
    out = tmp_path / "o"
    r = fetcher.run("--group", GROUP, "--out", out, base=srv.base)
    assert r.returncode == 7, r.stderr
    assert re.search(r"Patient-1\.ndjson \(.*\): \d+ lines, but the manifest says \d+", r.stderr)
    assert not (out / "Patient-1.ndjson").exists()      # never under its final name
    assert not (out / "manifest.json").exists()
