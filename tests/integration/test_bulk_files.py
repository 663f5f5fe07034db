"""Bulk export files (issue 4, docs/bulk-export.md "Files"): 200 application/fhir+ndjson with
validators (BULK-FILE-01/02), the token and the owning client (BULK-FILE-03, EXP-09, D18),
byte ranges, gzip, and file splitting at ATRExportMaxFileSize."""
import gzip
import json
import re

import pytest

from harness.bulk import EXPORT, NDJSON, BulkClient, ndjson_lines, oo


@pytest.fixture(scope="module")
def done(bulk_clients, bulk_data):
    """A finished export of zkgrp-1 (all types) and its client: (client, Export); the job is
    kept for the whole module (not deleted after the first test) and deleted at its end."""
    c = bulk_clients(groups=(bulk_data.group,))
    e = c.run_export(bulk_data.group)
    BulkClient.untrack(e.url)
    yield c, e
    c.delete(e.url)


def _patient_url(export):
    return export.outputs("Patient")[0]["url"]


def test_file_download(done):
    """BULK-FILE-02: 200, application/fhir+ndjson, Content-Length, ETag, Last-Modified,
    Accept-Ranges: bytes; one compact resource per line, as many as the manifest counts."""
    c, e = done
    for item in e.manifest["output"]:
        r = c.download(item["url"], headers={"Accept": NDJSON})
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].split(";")[0].strip() == NDJSON
        assert int(r.headers["Content-Length"]) == len(r.content)
        assert r.headers.get("ETag"), r.headers
        assert r.headers.get("Last-Modified"), r.headers
        assert r.headers.get("Accept-Ranges") == "bytes", r.headers
        assert "Content-Encoding" not in r.headers
        lines = ndjson_lines(r.content)
        assert len(lines) == item["count"]
        for line in lines:
            assert json.loads(line)["resourceType"] == item["type"]
        # the same file twice: same bytes, same validator
        again = c.download(item["url"])
        assert again.content == r.content and again.headers["ETag"] == r.headers["ETag"]


def test_range_request_is_206(done):
    """BULK-FILE (docs): Range requests get 206 with exactly the bytes asked for."""
    c, e = done
    url = _patient_url(e)
    full = c.download(url).content
    n = len(full)
    assert n > 2000
    for rng, part, first, last in (("bytes=0-99", full[0:100], 0, 99),
                                   ("bytes=1000-1999", full[1000:2000], 1000, 1999),
                                   ("bytes=-50", full[-50:], n - 50, n - 1),
                                   ("bytes=%d-" % (n - 10), full[-10:], n - 10, n - 1)):
        r = c.download(url, headers={"Range": rng})
        assert r.status_code == 206, (rng, r.status_code)
        assert r.content == part, rng
        assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (first, last, n), r.headers
        assert int(r.headers["Content-Length"]) == len(part)
    r = c.download(url, headers={"Range": "bytes=%d-" % (n + 10)})
    assert r.status_code == 416, r.status_code


def test_gzip_when_accepted(done):
    """docs/bulk-export.md: Accept-Encoding: gzip (no Range) → Content-Encoding: gzip,
    Vary: Accept-Encoding; the decompressed bytes are the file."""
    c, e = done
    url = _patient_url(e)
    plain = c.download(url).content
    r = c.download(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip", r.headers
    assert "accept-encoding" in r.headers.get("Vary", "").lower(), r.headers
    assert r.headers["Content-Type"].split(";")[0].strip() == NDJSON
    raw = r.raw.read(decode_content=False)
    assert len(raw) < len(plain)
    assert gzip.decompress(raw) == plain


def test_no_token_is_401(done, httpd):
    """BULK-FILE-03, EXP-09 (requiresAccessToken): no or an invalid token → 401."""
    c, e = done
    url = _patient_url(e)
    r = c.download(url, token="")
    oo(r, 401)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="%s"' % httpd.base_url
    r = c.download(url, token="not.a.token")
    oo(r, 401)
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_other_client_is_404(done, bulk_clients, bulk_data):
    """BULK-ST-07, D18: another client, even one entitled to the same Group, gets 404."""
    c, e = done
    other = bulk_clients(groups=(bulk_data.group,))
    for item in e.manifest["output"]:
        oo(other.download(item["url"]), 404)


def test_files_not_in_the_manifest_are_404(done, httpd):
    """docs/bulk-export.md: a file not in the manifest → 404, and nothing outside the job's
    directory is reachable."""
    c, e = done
    base = httpd.base_url + "/export-files/" + e.job + "/"
    names = [o["url"].rsplit("/", 1)[1] for o in e.manifest["output"]]
    last = max(int(re.search(r"-(\d+)\.ndjson$", n).group(1)) for n in names if n.startswith("Patient-"))
    for name in ("Patient-%d.ndjson" % (last + 1), "Observation-1.ndjson", "Patient-0.ndjson",
                 "Patient-01.ndjson", ".Patient-1.ndjson.tmp", "Patient-1.ndjson.tmp",
                 "OperationOutcome-1.ndjson", "manifest.json", "", "Patient-1.ndjson/x"):
        r = c.download(base + name)
        assert r.status_code == 404, (name, r.status_code, r.text[:200])
        oo(r)
    # out of the job's directory: refused by httpd (encoded slashes, dot segments) or by us
    for name in ("..%2F..%2Fhttpd%2Fhttpd.conf", "%2E%2E/%2E%2E/httpd/httpd.conf",
                 "..%2F" + e.job + "%2FPatient-1.ndjson"):
        r = c.download(base + name)
        assert r.status_code in (400, 404), (name, r.status_code, r.text[:200])
        assert b"ServerRoot" not in r.content and b'"resourceType":"Patient"' not in r.content
    for url in (httpd.base_url + "/export-files/bk-no-such-job/Patient-1.ndjson",
                httpd.base_url + "/export-files/" + e.job,
                httpd.base_url + "/export-files/"):
        r = c.download(url)
        assert r.status_code == 404, (url, r.status_code)


def test_max_file_size_splits_files(httpd_config, bulk_clients, bulk_data):
    """docs/export.md: a new file starts when the next line would pass ATRExportMaxFileSize;
    the manifest lists the files in order, numbered from 1, each within the limit, and
    together they hold every resource once."""
    httpd_config("ATRExportMaxFileSize 20000")
    c = bulk_clients(groups=(bulk_data.group,))
    e = c.run_export(bulk_data.group, EXPORT)
    summary, _ = bulk_data.reference[bulk_data.group]
    for t in e.types():
        items = e.outputs(t)
        assert [o["url"].rsplit("/", 1)[1] for o in items] == \
            ["%s-%d.ndjson" % (t, i) for i in range(1, len(items) + 1)], items
        assert sum(o["count"] for o in items) == summary["counts"][t]
        ids = []
        for o in items:
            r = c.download(o["url"])
            assert r.status_code == 200
            assert len(r.content) <= 20000 or o["count"] == 1, (o, len(r.content))
            lines = ndjson_lines(r.content)
            assert len(lines) == o["count"]
            ids += [json.loads(x)["id"] for x in lines]
        assert len(ids) == len(set(ids)) == summary["counts"][t]
    assert len(e.outputs("Patient")) > 3
    assert len(e.outputs("Group")) == 1     # one line larger than the limit: a file of its own
