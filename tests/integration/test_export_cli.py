"""`atrctl export`: the Member Attribution List of a Group as NDJSON files (issue 4, the
writer that bulk export runs): every line is what the FHIR read of that resource returns
(EXP-07, BULK-FILE-02/04), the content is exactly what the Group references, errors are
clear, and memory stays bounded for a large Group."""
import json
import re
import subprocess

import pytest

from harness.examples import ATRCTL

MEMBERS = 2000
BIG_MEMBERS = 200_000
PREFIX = "xe"
# demo ids (grp-1, pat-17, ...) and their references get a prefix, so this dataset does not
# replace the session's demo resources
DEMO_ID = re.compile(r'(?<=["/])(cov|grp|loc|pat|prac|role|rp|org)-(\d+)(?=")')


def renamed(text):
    text = DEMO_ID.sub(lambda m: f"{PREFIX}{m.group(1)}-{m.group(2)}", text)
    return (text.replace('"id":"payer"', f'"id":"{PREFIX}payer"')
                .replace('"Organization/payer"', f'"Organization/{PREFIX}payer"'))


def demo(out, members, seed, contracts):
    p = subprocess.run([ATRCTL, "demo-data", "--members", str(members), "--contracts", str(contracts), "--seed", str(seed),
                        "--out", str(out)], capture_output=True, text=True, timeout=900, check=True)
    m = re.search(r"largest group: (\S+) \((\d+) members\)", p.stdout)
    assert m, p.stdout
    return m.group(1), int(m.group(2))


@pytest.fixture(scope="module")
def demo_group(store, entitle, tmp_path_factory):
    src = tmp_path_factory.mktemp("exp-demo")
    dst = tmp_path_factory.mktemp("exp-demo-renamed")
    gid, members = demo(src, MEMBERS, 23, 2)
    files = []
    for f in sorted(src.glob("*.ndjson")):
        (dst / f.name).write_text(renamed(f.read_text(encoding="utf-8")), encoding="utf-8")
        files.append(dst / f.name)
    store.atrctl("load", *files, timeout=900)
    gid = PREFIX + gid
    entitle(gid)
    return gid, members


def export(store, out, *args, check=True):
    p = store.atrctl("export", "--out", out, *args, check=False)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    return p


def distinct_members(store, gid):
    return int(store.sql("SELECT COUNT(DISTINCT m.entity_ref) FROM atr_current c JOIN atr_group_member m"
                         f" ON m.group_id = c.id AND m.version = c.version WHERE c.rtype = 'Group' AND c.id = '{gid}'"))


def lines(path):
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def test_export_matches_fhir_reads(store, fhir, demo_group, tmp_path):
    """EXP-07, BULK-FILE-02, BULK-FILE-04: each file holds one type, one compact resource per
    line, byte for byte what the FHIR read of the current version returns; the Group line
    carries every member; Patients/Coverage are exactly the members' references."""
    gid, members = demo_group
    out = tmp_path / "out"
    summary = export(store, out, "--group", gid)
    files = {f["url"]: f for f in summary["output"]}
    assert sorted(p.name for p in out.iterdir()) == sorted(f.split("/")[-1] for f in files)
    assert summary["error"] == [] and summary["missing"] == {}
    seen = {}
    for url, f in files.items():
        path = out / url.split("/")[-1]
        assert path.name.startswith(f["type"] + "-")
        got = lines(path)
        assert len(got) == f["count"]
        for line in got:
            res = json.loads(line)
            assert res["resourceType"] == f["type"]
            key = (res["resourceType"], res["id"])
            assert key not in seen, f"{key} exported twice"
            seen[key] = line
    group = json.loads(seen[("Group", gid)])
    assert len(group["member"]) == members
    patients = {m["entity"]["reference"] for m in group["member"]}
    coverages = {e["valueReference"]["reference"] for m in group["member"] for e in m.get("extension", [])
                 if e["url"].endswith("ext-coverageReference")}
    providers = {e["valueReference"]["reference"] for m in group["member"] for e in m.get("extension", [])
                 if e["url"].endswith("ext-attributedProvider")}
    exported = {f"{t}/{i}" for t, i in seen}
    assert {r for r in exported if r.startswith("Patient/")} == patients
    assert {r for r in exported if r.startswith("Coverage/")} == coverages
    assert providers <= exported
    assert summary["counts"]["Patient"] == len(patients) == distinct_members(store, gid)
    # every line against the FHIR read of the same resource (the Group read streams members)
    for (rtype, rid), line in seen.items():
        r = fhir.get(f"/{rtype}/{rid}")
        assert r.status_code == 200, (rtype, rid, r.text[:200])
        assert r.content.strip() == line, (rtype, rid)


def test_export_since_patient_and_split(store, demo_group, tmp_path):
    """EXP-12/D15 (_since: Group line only when nothing changed), EXP-08/D14 (no empty
    files), EXP-06 (patient filter; a non-member goes to the error file), file splitting."""
    gid, _ = demo_group
    s = export(store, tmp_path / "since", "--group", gid, "--since", "2999-01-01T00:00:00Z")
    assert [f["type"] for f in s["output"]] == ["Group"]
    assert sorted(p.name for p in (tmp_path / "since").iterdir()) == ["Group-1.ndjson"]

    member = store.sql("SELECT m.entity_ref FROM atr_current c JOIN atr_group_member m ON m.group_id = c.id"
                       f" AND m.version = c.version WHERE c.rtype = 'Group' AND c.id = '{gid}' AND m.seq = 1").strip()
    s = export(store, tmp_path / "pat", "--group", gid, "--type", "Patient,Coverage",
               "--patient", member, "--patient", "Patient/not-a-member")
    assert s["counts"]["Patient"] == 1 and s["counts"]["Coverage"] >= 1
    assert "Patient/" + json.loads(lines(tmp_path / "pat" / "Patient-1.ndjson")[0])["id"] == member
    err = [json.loads(x) for x in lines(tmp_path / "pat" / "OperationOutcome-1.ndjson")]
    assert len(err) == 1 and err[0]["resourceType"] == "OperationOutcome"
    assert "Patient/not-a-member" in err[0]["issue"][0]["diagnostics"]
    assert s["error"][0]["count"] == 1 and s["notMembers"] == 1

    s = export(store, tmp_path / "split", "--group", gid, "--type", "Patient", "--max-file-size", "100000")
    names = sorted(p.name for p in (tmp_path / "split").iterdir())
    assert len(names) > 2 and all(re.fullmatch(r"Patient-\d+\.ndjson", n) for n in names)
    assert sum(len(lines(tmp_path / "split" / n)) for n in names) == distinct_members(store, gid)
    assert all(f["bytes"] <= 100000 for f in s["output"])


def test_export_refusals(store, demo_group, tmp_path):
    """Clear errors: usage (bad type, bad instant, bad patient) exit 2; unknown Group exit 1,
    and nothing is left in the output directory."""
    gid, _ = demo_group
    for args in (["--type", "Observation"], ["--since", "yesterday"], ["--until", "2024-13-01T00:00:00Z"],
                 ["--patient", "pat-1"], ["--max-file-size", "0"], ["--bogus", "1"]):
        p = export(store, tmp_path / "bad", "--group", gid, *args, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert "atrctl export:" in p.stderr
    p = export(store, tmp_path / "none", "--group", "no-such-group", check=False)
    assert p.returncode == 1
    assert "Group/no-such-group is not in the store" in p.stderr
    assert list((tmp_path / "none").iterdir()) == []


def test_export_large_group_bounded_memory(tmp_path, store, bulk_big_group):
    """Issue 4 (never hold a whole Group in memory): a 200,000-member Group exports with a
    peak RSS under 100 MB, complete (EXP-07). The Group is the session's bulk_big_group (in
    the session's store, SQLite or PostgreSQL)."""
    gid, members = bulk_big_group.group, bulk_big_group.members
    out = tmp_path / "out"
    p = subprocess.run(["/usr/bin/time", "-v", ATRCTL, "--db", store.spec, "export", "--group", gid,
                        "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    s = json.loads(p.stdout)
    print(f"200k-member export: {s['total']} resources in {s['seconds']:.1f} s, peak RSS {rss_kb} kB")
    assert s["counts"]["Group"] == 1
    assert s["counts"]["Patient"] == s["counts"]["Coverage"] >= BIG_MEMBERS // 2
    group_line = (out / "Group-1.ndjson").read_bytes()
    assert group_line.count(b'"entity":') == members
    assert rss_kb < 100 * 1024, f"peak RSS {rss_kb} kB"
