"""A 200,000-member Group is read with constant memory: httpd's resident memory grows by less
than 50 MB while the whole Group streams out (issue 2; members are rows, never one blob)."""
import json
import re
import subprocess
import threading
import time

import pytest

from harness.examples import ATRCTL

MEMBERS = 200_000


@pytest.fixture(scope="module")
def big_group(store, entitle, tmp_path_factory):
    out = tmp_path_factory.mktemp("big")
    p = subprocess.run([ATRCTL, "demo-data", "--members", str(MEMBERS), "--contracts", "1", "--seed", "11",
                        "--out", str(out)], capture_output=True, text=True, timeout=900, check=True)
    gid = re.search(r"largest group: (\S+) \((\d+) members\)", p.stdout)
    assert gid, p.stdout
    # the default consumer must be entitled to it (entitle() waits out the registry cache)
    entitle(gid.group(1))
    # only the Group line: its 200k+ member rows are what matters here
    store.atrctl("load", str(out / "Group.ndjson"), timeout=900)
    return gid.group(1), int(gid.group(2))


def test_large_group_read_streams_in_constant_memory(fhir, httpd, big_group):
    gid, members = big_group
    assert members >= MEMBERS
    fhir.get("/metadata")  # warm every child
    base_rss = httpd.rss_kb()
    peak = [base_rss]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], httpd.rss_kb())
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    try:
        r = fhir.get(f"/Group/{gid}", stream=True)
        assert r.status_code == 200
        body = b"".join(r.iter_content(1 << 20))
    finally:
        done.set()
        t.join()
    g = json.loads(body)
    assert g["id"] == gid
    entries = g["member"]
    assert len(entries) == members
    assert len({m["entity"]["reference"] for m in entries}) == MEMBERS
    growth_mb = (peak[0] - base_rss) / 1024
    print(f"httpd RSS {base_rss} kB before, peak {peak[0]} kB during the read")
    assert growth_mb < 50, f"httpd RSS grew by {growth_mb:.1f} MB"


def test_large_group_summary_is_small(fhir, big_group):
    gid, members = big_group
    r = fhir.get(f"/Group/{gid}", params={"_summary": "true"})
    assert r.status_code == 200
    assert len(r.content) < 10_000
    assert r.json()["quantity"] == members
