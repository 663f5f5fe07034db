"""Bulk export on a full disk (issue 4, docs/bulk-export.md "Status", docs/export.md "no partial
files"): ATRExportDir is a 200 kB tmpfs and the export (about 570 kB) cannot fit. The status
answers 500 with an OperationOutcome saying why (BULK-ST-04), never a manifest; no file is
left in the directory and no file URL is served."""
import json
import os
import pwd
import re
import subprocess

from harness.bulk import EXPORT, all_files, oo


def test_disk_full_fails_cleanly(httpd_config, httpd, workdir, bulk_clients, bulk_data,
                                 allow_errors):
    summary, _ = bulk_data.reference[bulk_data.group]
    assert sum(o["bytes"] for o in summary["output"]) > 400_000    # well over the 200 kB
    mnt = str(workdir / "export-full")
    os.makedirs(mnt, exist_ok=True)
    opts = "size=200k,mode=0755"
    if httpd.user:
        pw = pwd.getpwnam(httpd.user)
        opts += ",uid=%d,gid=%d" % (pw.pw_uid, pw.pw_gid)
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", mnt], check=True)
    try:
        httpd_config('ATRExportDir "%s"' % mnt)
        c = bulk_clients(groups=(bulk_data.group,))
        e = c.accepted(c.kickoff(bulk_data.group, EXPORT))
        allow_errors(r"No space left on device: .*export %s of Group/\S+ failed" % re.escape(e.job))
        r = c.poll(e, timeout=120)
        body = oo(r, 500)
        issue = body["issue"][0]
        assert issue["code"] == "exception", body
        assert re.search(r"(?i)space|disk|full", json.dumps(body)), body
        assert "output" not in body and "transactionTime" not in r.text
        assert all_files(mnt) == [], all_files(mnt)
        for t in ("Group", "Patient", "Coverage"):
            oo(c.download(httpd.base_url + "/export-files/%s/%s-1.ndjson" % (e.job, t)), 404)
        r = c.status(e.url)                     # a failed job stays failed
        oo(r, 500)
    finally:
        httpd.restart("")                       # nothing of httpd's left on the tmpfs
        subprocess.run(["umount", mnt], check=True)
        os.rmdir(mnt)

