"""atrctl against a real store of its own (SQLite, or a PostgreSQL database in the pgsql pass):
db init/check, load (NDJSON and Bundle), errors with line numbers that leave the store exactly
as it was, demo-data determinism."""
import hashlib
import json
import subprocess

import pytest

from harness.examples import ATRCTL, ig_example, SHARED


def run(*args, check=True):
    p = subprocess.run([ATRCTL, *args], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def db(scratch_store):
    s = scratch_store()
    run("--db", s.spec, "db", "init")
    return s


def dump(store):
    """{table: [row as a list of column texts]}: the store's content, for comparisons."""
    return {t: [line.split("|") for line in store.sql(f"SELECT * FROM {t} ORDER BY 1, 2").splitlines()]
            for t in ("atr_resource", "atr_current", "atr_group_member", "atr_group_index",
                      "atr_group_identifier", "atr_group_characteristic")}


def test_db_init_and_check(db):
    p = run("--db", db.spec, "db", "check")
    assert p.stdout == "schema version 2 OK\n"


def test_db_init_twice_is_refused(db):
    p = run("--db", db.spec, "db", "init", check=False)
    assert p.returncode == 1
    assert "already" in p.stderr.lower()


def test_unknown_schema_version_refused(db):
    db.sql("UPDATE atr_schema_version SET version = 99", write=True)
    p = run("--db", db.spec, "load", str(SHARED / "spec/atr/2.1.0/examples/Patient-1.json"), check=False)
    assert p.returncode == 1
    assert "99" in p.stderr
    assert dump(db)["atr_resource"] == []


def test_no_schema_refused(scratch_store):
    p = run("--db", scratch_store().spec, "db", "check", check=False)
    assert p.returncode == 1
    assert "db init" in p.stderr


def test_bad_db_spec_is_usage_or_failure(tmp_path):
    p = run("--db", "nosuchdriver:/x", "db", "check", check=False)
    assert p.returncode in (1, 2)
    assert "nosuchdriver" in p.stderr


def test_load_bundle_and_ndjson(db, tmp_path):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": ig_example("Patient-2.json")}, {"resource": ig_example("Coverage-2.json")}]}
    bf = tmp_path / "b.json"
    bf.write_text(json.dumps(bundle, indent=2))
    nf = tmp_path / "n.ndjson"
    nf.write_text(json.dumps(ig_example("Patient-1.json")) + "\n\n" + json.dumps(ig_example("Group-fullexample.json")) + "\n")
    p = run("--db", db.spec, "load", str(bf), str(nf))
    assert "2 created" in p.stdout or "2 resources" in p.stdout
    rows = dump(db)
    assert {(r[0], r[1]) for r in rows["atr_current"]} == {("Patient", "2"), ("Coverage", "2"), ("Patient", "1"), ("Group", "fullexample")}
    assert len(rows["atr_group_member"]) == 3


@pytest.mark.parametrize("bad_line,needle", [
    ('{"resourceType": "Patient", "id": "ok2"', "column"),
    ('{"resourceType": "Observation", "id": "x"}', "Observation"),
    ('{"resourceType": "Patient"}', "id"),
    ('{"resourceType": "Patient", "id": "bad id!"}', "id"),
    ('[1, 2, 3]', "object"),
    ('{"resourceType": "Group", "id": "g", "member": [{"period": {}}]}', "entity"),
])
def test_bad_line_reported_and_nothing_kept(db, tmp_path, bad_line, needle):
    """A bad line: FILE:LINE message, exit 1, and nothing of that file is kept."""
    run("--db", db.spec, "load", str(SHARED / "spec/atr/2.1.0/examples/Patient-3.json"))
    before = dump(db)
    f = tmp_path / "bad.ndjson"
    f.write_text(json.dumps(ig_example("Patient-1.json")) + "\n" + json.dumps(ig_example("Coverage-1.json")) + "\n" + bad_line + "\n")
    p = run("--db", db.spec, "load", str(f), check=False)
    assert p.returncode == 1
    assert f"{f}:3" in p.stderr
    assert needle.lower() in p.stderr.lower()
    assert dump(db) == before


def test_load_subscription_is_refused(db):
    """Only the 8 ATR types are stored."""
    p = run("--db", db.spec, "load",
            str(SHARED / "spec/atr/2.1.0/examples/Subscription-atr-list-change-subscription-example.json"), check=False)
    assert p.returncode == 1
    assert "Subscription" in p.stderr


def test_reload_changed_content_creates_version(db, tmp_path):
    pat = ig_example("Patient-1.json")
    f = tmp_path / "p.ndjson"
    f.write_text(json.dumps(pat) + "\n")
    run("--db", db.spec, "load", str(f))
    run("--db", db.spec, "load", str(f))
    pat["gender"] = "other"
    f.write_text(json.dumps(pat) + "\n")
    run("--db", db.spec, "load", str(f))
    cur = [r for r in dump(db)["atr_current"] if r[1] == "1"][0]
    assert cur[2] == "2"


def test_missing_file_is_clear(db, tmp_path):
    p = run("--db", db.spec, "load", str(tmp_path / "nope.ndjson"), check=False)
    assert p.returncode == 1
    assert "nope.ndjson" in p.stderr


def test_usage_errors(tmp_path):
    assert run("frobnicate", check=False).returncode == 2
    assert run("demo-data", "--members", "abc", "--out", str(tmp_path), check=False).returncode == 2
    assert run("demo-data", "--members", "0", "--out", str(tmp_path), check=False).returncode == 2


def _digest(d):
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_demo_data_is_deterministic_and_loads(tmp_path, db):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    p = run("demo-data", "--members", "500", "--seed", "3", "--out", str(a))
    run("demo-data", "--members", "500", "--seed", "3", "--out", str(b))
    run("demo-data", "--members", "500", "--seed", "4", "--out", str(c))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    assert "largest group:" in p.stdout
    names = {f.name for f in a.iterdir()}
    assert names == {f"{t}.ndjson" for t in ("Group", "Patient", "Coverage", "RelatedPerson", "Practitioner",
                                             "PractitionerRole", "Organization", "Location")}
    run("--db", db.spec, "load", *sorted(str(f) for f in a.iterdir()))
    rows = dump(db)
    assert sum(1 for r in rows["atr_current"] if r[0] == "Patient") == 500


def _model_load(model, resources):
    """The versions one write per resource gives (atr_store_put): {(type, id): (version, content)};
    returns (created, updated, unchanged)."""
    created = updated = unchanged = 0
    for r in resources:
        key, content = (r["resourceType"], r["id"]), json.dumps(r, sort_keys=True)
        version, old = model.get(key, (0, None))
        if old == content:
            unchanged += 1
        else:
            model[key] = (version + 1, content)
            if version:
                updated += 1
            else:
                created += 1
    return created, updated, unchanged


def test_load_in_batches_gives_the_versions_of_one_write_each(db, tmp_path):
    """On PostgreSQL a file goes to the store in batches of rows (one statement each); the
    result is that of one write per resource, as on SQLite: ids repeated within a file near
    and far apart (changed: a new version each time; the same content: unchanged), a Bundle
    naming one id twice, a Group with more members than one batch holds, its member rows in
    document order; and loading the same file again."""
    res = []
    for i in range(700):   # 300 ids: versions 1, 2, and 3 for the first 100
        res.append({"resourceType": "Patient", "id": f"bp{i % 300}", "gender": ["male", "female"][(i // 300) % 2]})
    res.append(dict(res[-1]))                                          # the same again at once
    res.append({"resourceType": "Patient", "id": "bp7", "gender": "other"})  # and far from its last one
    members = [{"entity": {"reference": f"Patient/bp{i % 300}"}, "period": {"start": "2024-01-01"}}
               for i in range(600)]
    group = {"resourceType": "Group", "id": "bg", "type": "person", "actual": True, "member": members}
    lines = [json.dumps(r) for r in res]
    lines.insert(350, json.dumps(group))
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"resourceType": "Coverage", "id": "bc", "status": "active"}},
                        {"resource": {"resourceType": "Coverage", "id": "bc", "status": "cancelled"}}]}
    lines.insert(500, json.dumps(bundle))
    f = tmp_path / "batches.ndjson"
    f.write_text("\n".join(lines) + "\n")
    loaded = res[:350] + [group] + res[350:]
    loaded = loaded[:500] + [e["resource"] for e in bundle["entry"]] + loaded[500:]

    model = {}
    created, updated, unchanged = _model_load(model, loaded)
    p = run("--db", db.spec, "load", str(f))
    assert f"{len(loaded)} resources ({created} created, {updated} updated, {unchanged} unchanged)" in p.stdout
    assert (created, updated, unchanged) == (302, 402, 1)
    rows = dump(db)
    assert {(r[0], r[1]): int(r[2]) for r in rows["atr_current"]} == {k: v[0] for k, v in model.items()}
    assert sorted((r[0], r[1], int(r[2])) for r in rows["atr_resource"]) == sorted(
        (t, i, v) for (t, i), (n, _) in model.items() for v in range(1, n + 1))
    stored = db.sql("SELECT seq, entity_ref FROM atr_group_member WHERE group_id = 'bg' AND version = 1 ORDER BY seq")
    assert [line.split("|") for line in stored.splitlines()] == [
        [str(i + 1), m["entity"]["reference"]] for i, m in enumerate(members)]

    p = run("--db", db.spec, "load", str(f))
    created, updated, unchanged = _model_load(model, loaded)
    assert f"{len(loaded)} resources ({created} created, {updated} updated, {unchanged} unchanged)" in p.stdout
    assert (created, updated) == (0, 604)
    again = dump(db)
    assert {(r[0], r[1]): int(r[2]) for r in again["atr_current"]} == {k: v[0] for k, v in model.items()}
    assert len(again["atr_resource"]) == len(rows["atr_resource"]) + updated


@pytest.mark.parametrize("bad_at", [3, 600])
def test_bad_line_after_whole_batches_keeps_nothing(db, tmp_path, bad_at):
    """A bad line after batches of this file were already sent (PostgreSQL): FILE:LINE, and the
    store is exactly as before the file (the batches are part of the file's one transaction).
    A bad member after more members than one batch holds is the same."""
    run("--db", db.spec, "load", str(SHARED / "spec/atr/2.1.0/examples/Patient-3.json"))
    before = dump(db)
    lines = [json.dumps({"resourceType": "Patient", "id": f"k{i}"}) for i in range(bad_at + 100)]
    members = [{"entity": {"reference": f"Patient/k{i}"}} for i in range(bad_at)] + [{"period": {}}]
    lines[bad_at - 2] = json.dumps({"resourceType": "Group", "id": "kg", "member": members})
    lines[bad_at - 1] = '{"resourceType": "Patient", "id": "bad id!"}'
    f = tmp_path / "bad.ndjson"
    f.write_text("\n".join(lines) + "\n")
    p = run("--db", db.spec, "load", str(f), check=False)
    assert p.returncode == 1
    assert f"{f}:{bad_at - 1}:" in p.stderr
    assert f"member[{bad_at}].entity.reference is missing" in p.stderr
    assert dump(db) == before
    lines[bad_at - 2] = json.dumps({"resourceType": "Group", "id": "kg", "member": members[:-1]})
    f.write_text("\n".join(lines) + "\n")
    p = run("--db", db.spec, "load", str(f), check=False)
    assert p.returncode == 1
    assert f"{f}:{bad_at}:" in p.stderr
    assert "not a valid FHIR id" in p.stderr
    assert dump(db) == before
