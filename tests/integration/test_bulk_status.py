"""Bulk export status and manifest (issue 4, docs/bulk-export.md "Status"): a whole export
compared line by line with what the store holds (EXP-07, BULK-FILE-02/04), the manifest's
fields (BULK-ST-05, EXP-09), 202 progress (BULK-ST-02), throttling (BULK-ST-03), who may poll
(BULK-ST-07, D18, SCOPE-04), jobs that outlive the server process, and expiry."""
import datetime
import email.utils
import json
import os
import re
import time

import pytest

from harness.bulk import (ATR_TYPES, DAVINCI, EXPORT, file_digests, job_entries, oo,
                          retry_after, wait_until)

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _instant(text):
    assert INSTANT.match(text), text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _http_date(text):
    return email.utils.parsedate_to_datetime(text)


@pytest.fixture
def client(bulk_clients, bulk_data):
    return bulk_clients(groups=(bulk_data.group, bulk_data.group2))


# ---------------------------------------------------------------- the whole export

@pytest.mark.parametrize("op", [DAVINCI, EXPORT])
def test_export_is_what_the_fhir_reads_return(client, bulk_data, op):
    """EXP-07, BULK-FILE-02/04, BULK-ST-05: every line of every file is the resource's current
    version exactly as the FHIR read returns it, once; every member Patient exactly once; the
    Group line is the Group read; the manifest counts are the line counts; nothing else."""
    g = bulk_data.group
    e = client.run_export(g, op)
    seen = {}
    for item in e.manifest["output"]:
        assert item["type"] in ATR_TYPES, item
        lines = client.file_lines(item["url"])
        assert len(lines) == item["count"], item
        for line in lines:
            res = json.loads(line)
            assert res["resourceType"] == item["type"], (item, line[:200])
            key = (res["resourceType"], res["id"])
            assert key not in seen, "%s/%s exported twice" % key
            seen[key] = line
    group = json.loads(seen[("Group", g)])
    assert [k for k in seen if k[0] == "Group"] == [("Group", g)]
    members = {m["entity"]["reference"] for m in group["member"]}
    assert {"%s/%s" % k for k in seen if k[0] == "Patient"} == members
    assert len(group["member"]) == group["quantity"]
    for (rtype, rid), line in seen.items():
        r = client.read(rtype, rid)
        assert r.status_code == 200, (rtype, rid, r.status_code)
        assert r.content.strip() == line, (rtype, rid)
    # the same as `atrctl export` of the Group (the writer, run by the worker)
    summary, digests = bulk_data.reference[g]
    assert {t: n for t, n in summary["counts"].items() if n} == \
        {t: sum(o["count"] for o in e.outputs(t)) for t in e.types()}
    assert file_digests(client, e.manifest) == digests
    assert e.manifest["error"] == []


def test_manifest_fields(client, bulk_data, httpd):
    """BULK-ST-05, EXP-09: 200, Content-Type application/json, Expires at the end of the
    retention (default 1 day), transactionTime = kick-off time, request = the kick-off URL,
    requiresAccessToken true, output items {type, url (absolute), count}, error []."""
    g = bulk_data.group
    query = "_type=Group,Patient,Coverage&_outputFormat=application/fhir+ndjson"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    e = client.run_export(g, DAVINCI, query=query)
    after = datetime.datetime.now(datetime.timezone.utc)
    r = e.final
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    m = e.manifest
    assert {"transactionTime", "request", "requiresAccessToken", "output", "error"} <= set(m)
    tt = _instant(m["transactionTime"])
    assert before - datetime.timedelta(seconds=1) <= tt <= after, (before, tt, after)
    assert m["request"] == client.kickoff_url(g, DAVINCI, query)
    assert m["requiresAccessToken"] is True
    assert m["error"] == []
    url_re = re.compile(re.escape(httpd.base_url) + r"/export-files/" + re.escape(e.job)
                        + r"/(Group|Patient|Coverage)-(\d+)\.ndjson")
    assert sorted(o["type"] for o in m["output"]) == ["Coverage", "Group", "Patient"]
    for o in m["output"]:
        assert set(o) >= {"type", "url", "count"}, o
        u = url_re.fullmatch(o["url"])
        assert u and u.group(1) == o["type"], o
        assert isinstance(o["count"], int) and o["count"] > 0
    # Expires: the end of the retention (ATRExportRetention default 86400 s after finishing)
    date = _http_date(r.headers["Date"])
    expires = _http_date(r.headers["Expires"])
    assert datetime.timedelta(seconds=86400 - 120) <= expires - date <= datetime.timedelta(seconds=86401)
    # the finished job answers the same manifest every time
    again = client.status(e.url)
    assert again.status_code == 200 and again.json() == m


def test_empty_types_get_no_output_and_error_is_empty(client, bulk_data):
    """EXP-08/D14: a type with nothing to export has no output item; error is [] (BULK-ST-05)."""
    e = client.run_export(bulk_data.group, DAVINCI,
                          query="_type=Group,Patient,Coverage&_since=2999-01-01T00:00:00Z")
    assert e.types() == ["Group"]
    assert e.manifest["error"] == []


# ---------------------------------------------------------------- in progress

def test_queued_job_answers_202_and_completes_after_restart(httpd_config, httpd, client,
                                                            bulk_data):
    """BULK-ST-02: a queued job → 202, X-Progress: queued, Retry-After: the poll interval.
    Jobs live in the store: queued while no worker takes jobs (ATRExportMaxJobs 0), the same
    status URL gives the manifest once httpd runs with workers again."""
    httpd_config("ATRExportMaxJobs 0")
    e = client.accepted(client.kickoff(bulk_data.group, query="_type=Group,Patient,Coverage"))
    for _ in range(2):
        r = client.status(e.url)
        assert r.status_code == 202, r.text
        assert r.headers["X-Progress"] == "queued"
        assert r.headers["Retry-After"] == "1"      # ATRExportPollInterval 1 (test default)
    httpd.restart("")                               # the test default: workers run
    r = client.poll(e)
    assert r.status_code == 200, r.text
    assert sorted(o["type"] for o in e.manifest["output"]) == ["Coverage", "Group", "Patient"]


def test_progress_header_while_running(bulk_clients, bulk_big_group):
    """BULK-ST-02: every 202 carries X-Progress (`queued` or `<n> resources written`, under 100
    characters) and Retry-After."""
    c = bulk_clients(groups=(bulk_big_group.group,))
    e = c.run_export(bulk_big_group.group, EXPORT, timeout=600)
    progress = [p for s, p, _ in e.polls if s == 202]
    assert progress, e.polls
    for s, p, ra in e.polls:
        if s == 202:
            assert p and len(p) < 100 and re.fullmatch(r"queued|\d+ resources written", p), p
            assert ra and ra.isdigit(), ra
    written = [int(p.split()[0]) for p in progress if p != "queued"]
    assert written == sorted(written), written


def test_polling_too_fast_is_429(httpd_config, client, bulk_data):
    """BULK-ST-03: a poll sooner than half the poll interval → 429, Retry-After, OperationOutcome
    throttled; after waiting, polling is answered again."""
    httpd_config("ATRExportMaxJobs 0\nATRExportPollInterval 4")
    e = client.accepted(client.kickoff(bulk_data.group))
    r = client.status(e.url, pace=False)
    assert r.status_code == 202, r.text
    assert r.headers["Retry-After"] == "4"
    r = client.status(e.url, pace=False)
    body = oo(r, 429)
    assert body["issue"][0]["code"] == "throttled", body
    assert 0 < retry_after(r) <= 4
    time.sleep(retry_after(r))
    r = client.status(e.url, pace=False)
    assert r.status_code == 202, r.text


# ---------------------------------------------------------------- who may poll

def test_other_client_unknown_and_no_token(client, bulk_clients, bulk_data):
    """BULK-ST-07, D18: another client's job (even one entitled to the same Group) and an
    unknown job → 404 OperationOutcome; no token → 401."""
    e = client.run_export(bulk_data.group, query="_type=Group,Patient,Coverage")
    other = bulk_clients(groups=(bulk_data.group,))
    oo(other.status(e.url), 404)
    for job in ("bk-no-such-job", e.job + "x", e.job[:-1]):
        oo(client.status(client.httpd.url("/export-status/" + job)), 404)
    r = client.status(e.url, token="")
    oo(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.status(e.url).status_code == 200     # still there for its owner


def test_status_needs_scope_on_every_exported_type(client, bulk_data):
    """BULK-ST-07, SCOPE-04: the polling token must still read every exported type (403)."""
    e = client.run_export(bulk_data.group, query="_type=Group,Patient,Coverage")
    for scope in ("system/Group.read", "system/Group.read system/Patient.read"):
        r = client.status(e.url, scope=scope)
        body = oo(r, 403)
        assert body["issue"][0]["code"] == "forbidden"
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    r = client.status(e.url, scope="system/Group.read system/Patient.read system/Coverage.read")
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- expiry

def test_expired_job_and_files_are_gone(httpd_config, httpd, client, bulk_data):
    """BULK-ST-05 Expires, BULK-FILE-05: ATRExportRetention 2 → the manifest's Expires is at
    most 2 s after it was served; once expired the status and files are 404 and the files are
    removed from ATRExportDir."""
    httpd_config("ATRExportRetention 2")
    e = client.run_export(bulk_data.group, query="_type=Group,Patient,Coverage")
    r = e.final
    assert _http_date(r.headers["Expires"]) - _http_date(r.headers["Date"]) <= \
        datetime.timedelta(seconds=3)
    urls = [o["url"] for o in e.manifest["output"]]
    assert job_entries(httpd.export_dir, e.job), os.listdir(httpd.export_dir)

    def gone():
        s = client.status(e.url)
        assert s.status_code in (200, 404), s.text
        return [s] if s.status_code == 404 else None     # (a 404 Response is falsy)

    oo(wait_until(gone, timeout=60, interval=0, what="job expiry")[0], 404)   # paced: 1 s
    for u in urls:
        oo(client.download(u), 404)
    wait_until(lambda: not job_entries(httpd.export_dir, e.job), timeout=30,
               what="files of the expired job removed")


def test_download_in_progress_survives_expiry(httpd_config, httpd, bulk_clients, bulk_big_group):
    """BULK-FILE-05, docs/bulk-export.md: a file being downloaded when its job expires is
    unlinked, but the download in progress completes with every byte."""
    httpd_config("ATRExportRetention 2")
    g = bulk_big_group.group
    c = bulk_clients(groups=(g,))
    e = c.run_export(g, EXPORT, query="_type=Patient", timeout=600)
    (item,) = e.outputs("Patient")
    r = c.download(item["url"], stream=True)
    assert r.status_code == 200
    length = int(r.headers["Content-Length"])
    chunks = r.iter_content(1 << 16)
    got = [next(chunks)]

    def expired():
        s = c.status(e.url)
        return [s] if s.status_code == 404 else None

    wait_until(expired, timeout=25, interval=0, what="job expiry")
    wait_until(lambda: not job_entries(httpd.export_dir, e.job), timeout=25,
               what="the expired job's files unlinked")
    got.extend(chunks)
    body = b"".join(got)
    assert len(body) == length
    assert body.endswith(b"\n") and body.count(b"\n") == item["count"]
