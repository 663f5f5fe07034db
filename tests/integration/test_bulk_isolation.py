"""Bulk export isolation (issue 4): jobs belong to the client that started them (BULK-ST-07,
D18), clients exporting the same Group at once get separate jobs and files, an export holds
only the Group's own members (BULK-KO-11), and a client that is disabled after its kick-off
cannot fetch anything (SEC-02)."""
import json
import threading
import time

from harness.bulk import DAVINCI, EXPORT, oo


def _patients(client, export):
    return {json.loads(line)["id"] for o in export.outputs("Patient")
            for line in client.file_lines(o["url"])}


def test_two_clients_same_group_get_separate_jobs(bulk_clients, bulk_data, httpd):
    """BULK-KO-09 is per client: two clients export the same Group at the same time; each gets
    its own job and files, each manifest lists only its own job's URLs, and neither can poll,
    download or delete the other's (404)."""
    g = bulk_data.group
    a = bulk_clients(groups=(g,))
    b = bulk_clients(groups=(g,))
    results = {}

    def run(name, client, op):
        try:
            results[name] = client.run_export(g, op)
        except BaseException as exc:   # reported below
            results[name] = exc

    threads = [threading.Thread(target=run, args=("a", a, DAVINCI)),
               threading.Thread(target=run, args=("b", b, EXPORT))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ea, eb = results["a"], results["b"]
    assert not isinstance(ea, BaseException), ea
    assert not isinstance(eb, BaseException), eb
    assert ea.job != eb.job
    for e in (ea, eb):
        for o in e.manifest["output"]:
            assert o["url"].startswith(httpd.base_url + "/export-files/" + e.job + "/"), o
    assert _patients(a, ea) == _patients(b, eb)
    for owner, other, e in ((a, b, ea), (b, a, eb)):
        oo(other.status(e.url), 404)
        for o in e.manifest["output"]:
            oo(other.download(o["url"]), 404)
        oo(other.delete(e.url), 404)
        assert owner.status(e.url).status_code == 200


def test_export_holds_only_the_groups_members(bulk_clients, bulk_data):
    """BULK-KO-11, EXP-07: the export of zkgrp-1 has its members' Patients and none of
    zkgrp-2's, although the client may read both Groups."""
    c = bulk_clients(groups=(bulk_data.group, bulk_data.group2))
    e1 = c.run_export(bulk_data.group, EXPORT, query="_type=Patient")
    e2 = c.run_export(bulk_data.group2, EXPORT, query="_type=Patient")
    p1, p2 = _patients(c, e1), _patients(c, e2)
    assert p1 and p2 and not (p1 & p2)
    assert all(int(p[len("zkpat-"):]) % 2 == 1 for p in p1)
    assert all(int(p[len("zkpat-"):]) % 2 == 0 for p in p2)


def test_disabled_client_gets_nothing(bulk_clients, bulk_data, consumers):
    """SEC-02, EXP-09: a client disabled after its export finished: status, files and DELETE
    → 401 (its tokens are no longer valid); enabled again, it gets its manifest back."""
    c = bulk_clients(groups=(bulk_data.group,))
    e = c.run_export(bulk_data.group, query="_type=Group,Patient,Coverage")
    token = c.token()
    consumers.set_status(c.client_id, "disabled")
    try:
        time.sleep(1.2)    # ATRRegistryCacheTTL 1
        oo(c.status(e.url, token=token), 401)
        for o in e.manifest["output"]:
            oo(c.download(o["url"], token=token), 401)
        oo(c.delete(e.url, token=token), 401)
    finally:
        consumers.set_status(c.client_id, "active")
    time.sleep(1.2)
    r = c.status(e.url, token=token)
    assert r.status_code == 200 and r.json() == e.manifest
