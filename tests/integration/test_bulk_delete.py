"""Bulk export DELETE (issue 4, docs/bulk-export.md "Delete"): 202 and an OperationOutcome
(BULK-DEL-01, EXP-11); afterwards the status URL and the files are 404 with an
OperationOutcome (BULK-DEL-02) and the files are gone from ATRExportDir; only the client that
started the job may delete it (D18); a running job stops; errors carry an OperationOutcome
(BULK-DEL-03)."""
import os

from harness.bulk import (EXPORT, all_files, claims, job_entries, oo, wait_claim,
                          wait_until)


def _deleted(client, e, httpd):
    """BULK-DEL-02: poll → 404 OperationOutcome; every file URL → 404; nothing of the job is
    left in ATRExportDir."""
    oo(client.status(e.url), 404)
    for item in (e.manifest or {}).get("output", []):
        oo(client.download(item["url"]), 404)
    wait_until(lambda: not job_entries(httpd.export_dir, e.job), timeout=30,
               what="files of job %s removed" % e.job)


def test_delete_finished_job(bulk_clients, bulk_data, httpd):
    """BULK-DEL-01/02: DELETE of a finished job → 202 + OperationOutcome; then 404s, and its
    files are removed; a second DELETE → 404."""
    c = bulk_clients(groups=(bulk_data.group,))
    e = c.run_export(bulk_data.group)
    assert job_entries(httpd.export_dir, e.job), os.listdir(httpd.export_dir)
    r = c.delete(e.url)
    assert r.status_code == 202, r.text
    oo(r)
    assert oo(r)["issue"][0]["severity"] == "information"
    _deleted(c, e, httpd)
    oo(c.delete(e.url), 404)


def test_delete_queued_job(httpd_config, bulk_clients, bulk_data, httpd):
    """BULK-DEL-01: a job still queued (ATRExportMaxJobs 0) is deleted too: 202, then 404; it
    never runs when workers are back."""
    httpd_config("ATRExportMaxJobs 0")
    c = bulk_clients(groups=(bulk_data.group,))
    e = c.accepted(c.kickoff(bulk_data.group))
    assert c.status(e.url).status_code == 202
    oo(c.delete(e.url), 202)
    oo(c.status(e.url), 404)
    pos = httpd.log_position()
    httpd.restart("")
    # another export runs to completion on the restarted server, the deleted one never
    c2 = bulk_clients(groups=(bulk_data.group,))
    c2.run_export(bulk_data.group, EXPORT, query="_type=Patient")
    assert claims(httpd, e.job, pos) == [], "the deleted job was claimed"
    _deleted(c, e, httpd)


def test_delete_other_clients_job_is_404(bulk_clients, bulk_data, httpd):
    """D18, BULK-DEL-03: another client (entitled to the same Group) cannot delete the job
    (404 OperationOutcome), which stays intact for its owner; unknown jobs are 404 too."""
    c = bulk_clients(groups=(bulk_data.group,))
    other = bulk_clients(groups=(bulk_data.group,))
    e = c.run_export(bulk_data.group, query="_type=Group,Patient,Coverage")
    oo(other.delete(e.url), 404)
    oo(c.delete(httpd.url("/export-status/bk-no-such-job")), 404)
    r = c.delete(e.url, token="")
    oo(r, 401)
    r = c.status(e.url)
    assert r.status_code == 200 and r.json() == e.manifest
    for item in e.manifest["output"]:
        assert c.download(item["url"]).status_code == 200


def test_delete_running_job_stops_it(bulk_clients, bulk_big_group, httpd, store):
    """docs/bulk-export.md: a job deleted while running stops at its next heartbeat and removes
    its files: the status and file URLs are 404 at once, the job's directory disappears and
    stays away, it is not taken up again, and no scratch rows are left."""
    g = bulk_big_group.group
    c = bulk_clients(groups=(g,))
    pos = httpd.log_position()
    e = c.accepted(c.kickoff(g, EXPORT))
    wait_claim(httpd, e.job, pos)
    # the worker has started writing: its directory holds a file
    wait_until(lambda: any(job_entries(httpd.export_dir, e.job)), timeout=30,
               interval=0.02, what="job directory")
    r = c.delete(e.url)
    assert r.status_code == 202, r.text
    oo(c.status(e.url), 404)
    for t in ("Group", "Patient", "Coverage"):
        oo(c.download(httpd.base_url + "/export-files/%s/%s-1.ndjson" % (e.job, t)), 404)
    wait_until(lambda: not job_entries(httpd.export_dir, e.job), timeout=60,
               what="files of the deleted running job removed")
    # it stopped rather than ran on: a whole export of this Group takes seconds; after
    # another export of it has finished the deleted one has still left nothing behind
    c2 = bulk_clients(groups=(g,))
    c2.run_export(g, EXPORT, timeout=600)
    assert not job_entries(httpd.export_dir, e.job), all_files(httpd.export_dir)
    oo(c.status(e.url), 404)
    assert len(claims(httpd, e.job, pos)) == 1           # never taken up again
    assert store.sql("SELECT COUNT(*) FROM atr_export_ref").strip() == "0"


