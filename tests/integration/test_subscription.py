"""ATR list-change Subscriptions (SUB-01..03): POST/PUT/GET Subscription for the atr-list-change
topic (rest-hook, id-only, filter Group/<id>), refused for Groups the client may not see
(SUB-02: 401); an id-only notification (Backport 1.1.0 history Bundle) reaches a loopback
rest-hook endpoint when a new Group version is written -- by a reconciliation operation or by
atrctl load -- with retries after failed deliveries."""
import http.server
import json
import threading
import time

import pytest

TOPIC = "http://hl7.org/fhir/us/davinci-atr/SubscriptionTopic/atr-list-change"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
SCOPES = "system/*.read system/Group.write system/Subscription.write"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
WAIT = 30          # seconds an expected notification may take (retries included)


class Hook:
    """A loopback rest-hook endpoint: records every POST; fail(n) answers 500 to the next n."""

    def __init__(self):
        self.received = []
        self.failures_left = 0
        self.lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with hook.lock:
                    fail = hook.failures_left > 0
                    if fail:
                        hook.failures_left -= 1
                    hook.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body), "failed": fail})
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def fail(self, n):
        with self.lock:
            self.failures_left = n

    def wait_for(self, path, count):
        """The requests to path once there are count of them (fails after WAIT seconds)."""
        deadline = time.time() + WAIT
        while time.time() < deadline:
            with self.lock:
                got = [x for x in self.received if x["path"] == path]
            if len(got) >= count:
                return got
            time.sleep(0.2)
        raise AssertionError("%d notification(s) to %s expected, got %d" % (count, path, len(got)))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hook():
    h = Hook()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def sub_httpd(httpd):
    """The session's httpd with http rest-hook endpoints on loopback allowed."""
    httpd.restart("ATRSubscriptionAllowLoopbackHTTP On\n")
    yield httpd
    httpd.restart("")


class Client:
    def __init__(self, consumer, scope):
        self.consumer = consumer
        self.id = consumer.client_id
        self.token = consumer.token(scope)

    def request(self, method, path, body=None, headers=None):
        h = dict(FHIR_JSON if body is not None else {})
        h.update(headers or {})
        data = json.dumps(body) if body is not None and not isinstance(body, str) else body
        return self.consumer.request(method, path, token=self.token, data=data, headers=h)


def subscription(group_id, endpoint, **over):
    s = {"resourceType": "Subscription", "status": "requested", "reason": "list changes",
         "criteria": TOPIC,
         "_criteria": {"extension": [{"url": BACKPORT + "backport-filter-criteria",
                                      "valueString": f"Group/{group_id}"}]},
         "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                     "header": ["Authorization: Bearer hook-secret"],
                     "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                                 "valueCode": "id-only"}]}}}
    s.update(over)
    return s


@pytest.fixture(scope="module")
def sub_client(consumers, sub_httpd):
    return Client(consumers.make(scopes=SCOPES.split(), jwks="inline"), SCOPES)


@pytest.fixture(scope="module")
def members(store, tmp_path_factory):
    f = tmp_path_factory.mktemp("sub") / "people.ndjson"
    f.write_text("".join(json.dumps(x) + "\n" for x in (
        {"resourceType": "Patient", "id": "sub-p1"}, {"resourceType": "Patient", "id": "sub-p2"},
        {"resourceType": "Practitioner", "id": "sub-prac"})))
    store.atrctl("load", str(f))


def add_member(client, gid, patient):
    r = client.request("POST", f"/Group/{gid}/$member-add", {"resourceType": "Parameters", "parameter": [
        {"name": "patientReference", "valueReference": {"reference": f"Patient/{patient}"}},
        {"name": "providerReference", "valueReference": {"reference": "Practitioner/sub-prac"}}]})
    assert r.status_code == 200, r.text
    return r.json()["meta"]["versionId"]


def check_notification(n, base, sub_id, gid, version, number):
    b = n["body"]
    assert n["headers"]["Content-Type"] == "application/fhir+json"
    assert n["headers"]["Authorization"] == "Bearer hook-secret"      # channel.header is sent
    assert b["resourceType"] == "Bundle" and b["type"] == "history"
    status = b["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    params = {p["name"]: p for p in status["parameter"]}
    assert params["subscription"]["valueReference"]["reference"] == f"{base}/Subscription/{sub_id}"
    assert params["topic"]["valueCanonical"] == TOPIC
    assert params["type"]["valueCode"] == "event-notification"
    assert params["status"]["valueCode"] == "active"
    assert params["events-since-subscription-start"]["valueString"] == str(number)
    parts = {p["name"]: p for p in params["notification-event"]["part"]}
    assert parts["event-number"]["valueString"] == str(number)
    focus = f"{base}/Group/{gid}/_history/{version}"
    assert parts["focus"]["valueReference"]["reference"] == focus
    assert b["entry"][1]["fullUrl"] == focus and "resource" not in b["entry"][1]     # id-only


def test_notification_reaches_the_rest_hook_with_retries(sub_client, hook, members, sub_httpd):
    """SUB-01, SUB-03: create, notify on $member-add; a failing endpoint gets the notification
    again until it answers 2xx."""
    c = sub_client
    r = c.request("POST", "/Group", {"resourceType": "Group", "name": "Subscribed list"})
    assert r.status_code == 201
    gid = r.json()["id"]
    r = c.request("POST", "/Subscription", subscription(gid, hook.url("/hook-a")))
    assert r.status_code == 201, r.text
    s = r.json()
    sid = s["id"]
    assert s["status"] == "active" and r.headers["Location"] == f"{sub_httpd.base_url}/Subscription/{sid}"
    got = c.request("GET", f"/Subscription/{sid}")
    assert got.status_code == 200 and got.json()["status"] == "active"

    v = add_member(c, gid, "sub-p1")
    n = hook.wait_for("/hook-a", 1)
    check_notification(n[0], sub_httpd.base_url, sid, gid, v, 1)

    hook.fail(2)
    v = add_member(c, gid, "sub-p2")
    n = hook.wait_for("/hook-a", 4)
    assert [x["failed"] for x in n] == [False, True, True, False]
    for x in n[1:]:
        check_notification(x, sub_httpd.base_url, sid, gid, v, 2)


def test_notification_for_a_version_loaded_by_atrctl(consumers, hook, store, sub_httpd, tmp_path):
    """A new Group version written outside the FHIR API (atrctl load) is notified too."""
    gid = "sub-loaded"
    f = tmp_path / "g.ndjson"
    f.write_text(json.dumps({"resourceType": "Group", "id": gid, "type": "person", "actual": True,
                             "name": "v1"}) + "\n")
    store.atrctl("load", str(f))
    c = Client(consumers.make(scopes=SCOPES.split(), groups=[gid], jwks="inline"), SCOPES)
    r = c.request("PUT", "/Subscription/sub-by-put", subscription(gid, hook.url("/hook-b")))
    assert r.status_code == 201, r.text
    r = c.request("PUT", "/Subscription/sub-by-put", subscription(gid, hook.url("/hook-c")))
    assert r.status_code == 200, r.text               # updated: now notifies /hook-c
    f.write_text(json.dumps({"resourceType": "Group", "id": gid, "type": "person", "actual": True,
                             "name": "v2"}) + "\n")
    store.atrctl("load", str(f))
    n = hook.wait_for("/hook-c", 1)
    check_notification(n[0], sub_httpd.base_url, "sub-by-put", gid, 2, 1)
    assert not [x for x in hook.received if x["path"] == "/hook-b"]


def test_subscription_refusals(sub_client, consumers, hook, sub_httpd):
    """SUB-02: a Group the client may not see (or that does not exist) is 401; bad
    Subscriptions are 400; the Subscription scope is needed (403); another client's
    Subscription is not found."""
    c = sub_client
    gid = c.request("POST", "/Group", {"resourceType": "Group"}).json()["id"]
    for other in ("grp-1", "no-such-group"):
        r = c.request("POST", "/Subscription", subscription(other, hook.url("/x")))
        assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    bad = [
        subscription(gid, hook.url("/x"), criteria="http://example.org/other-topic"),
        subscription(gid, hook.url("/x"), _criteria={}),
        subscription(gid, "http://example.org/hook"),                  # http, not loopback
        subscription(gid, "ftp://127.0.0.1/hook"),
        {"resourceType": "Patient"},
    ]
    s = subscription(gid, hook.url("/x"))
    s["channel"]["type"] = "email"
    bad.append(s)
    s = subscription(gid, hook.url("/x"))
    s["channel"]["_payload"]["extension"][0]["valueCode"] = "full-resource"
    bad.append(s)
    for body in bad:
        r = c.request("POST", "/Subscription", body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["issue"][0]["code"] == "invalid"
    ro = Client(consumers.make(scopes=["system/*.read"], jwks="inline"), "system/*.read")
    r = ro.request("POST", "/Subscription", subscription(gid, hook.url("/x")))
    assert r.status_code == 403 and "insufficient_scope" in r.headers["WWW-Authenticate"]
    sid = c.request("POST", "/Subscription", subscription(gid, hook.url("/x"))).json()["id"]
    other = Client(consumers.make(scopes=SCOPES.split(), jwks="inline"), SCOPES)
    assert other.request("GET", f"/Subscription/{sid}").status_code == 404
    r = c.request("DELETE", f"/Subscription/{sid}")
    assert r.status_code == 405 and r.json()["resourceType"] == "OperationOutcome"
