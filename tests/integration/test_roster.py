"""`atrctl roster apply`: monthly rosters become Group versions (DM-05, DM-13, DM-15, DM-16,
DM-17, TERM-01), checked through the FHIR API (read, vread, _history); DM-02 and bad rows are
refused with line numbers and leave the store exactly as it was; --dry-run writes nothing."""
import json

import pytest

CONTRACT_SYSTEM = "http://example.org/roster-contract"
HEADER = "member_id,payer_id,contract_id,plan_id,provider,period_start,period_end,coverage\n"
EXT = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/"
NPI = "http://hl7.org/fhir/sid/us-npi"
TIN = "urn:oid:2.16.840.1.113883.4.4"


def _first_ident(store, rtype, system):
    """(id, identifier value) of the first current resource of rtype with an identifier of system."""
    out = store.sql(f"SELECT r.id, r.body FROM atr_current c JOIN atr_resource r ON r.rtype = c.rtype "
                    f"AND r.id = c.id AND r.version = c.version WHERE c.rtype = '{rtype}' "
                    f"AND c.deleted = 0 ORDER BY c.id LIMIT 20")
    for line in out.splitlines():
        rid, body = line.split("|", 1)
        for ident in json.loads(body).get("identifier", []):
            if ident.get("system") == system:
                return rid, ident["value"]
    raise AssertionError(f"no {rtype} with a {system} identifier in the demo data")


@pytest.fixture(scope="module")
def roster(store, atrctl, entitle, tmp_path_factory):
    d = tmp_path_factory.mktemp("roster")
    grp = {"resourceType": "Group", "id": "roster-grp", "name": "Roster test",
           "identifier": [{"system": CONTRACT_SYSTEM, "value": "RC-1"}],
           "type": "person", "actual": True}
    f = d / "grp.ndjson"
    f.write_text(json.dumps(grp) + "\n")
    atrctl("load", str(f))
    entitle("roster-grp")
    prac, npi = _first_ident(store, "Practitioner", NPI)
    org, tin = _first_ident(store, "Organization", TIN)

    class Roster:
        pass
    r = Roster()
    r.dir, r.prac, r.npi, r.org, r.tin = d, prac, npi, org, tin
    r.n = 0

    def write(rows):
        r.n += 1
        p = d / f"roster-{r.n}.csv"
        p.write_text(HEADER + "".join(row + "\n" for row in rows))
        return str(p)

    def apply(rows, *extra, check=True):
        return store.atrctl("roster", "apply", "--contract", f"{CONTRACT_SYSTEM}|RC-1", *extra,
                            write(rows), check=check)
    r.apply = apply
    return r


def _entries(group):
    """{(entity, provider): (changeType, inactive, period, coverage)} of a Group's members."""
    out = {}
    for m in group.get("member", []):
        ext = {e["url"]: e for e in m.get("extension", [])}
        key = (m["entity"]["reference"], ext[EXT + "ext-attributedProvider"]["valueReference"]["reference"])
        cov = ext.get(EXT + "ext-coverageReference")
        out[key] = (ext[EXT + "ext-changeType"]["valueCode"], m.get("inactive", False), m.get("period"),
                    cov["valueReference"]["reference"] if cov else None)
    return out


def _state(store):
    """What a roster apply may touch, for 'left exactly as it was' checks."""
    return store.sql("SELECT rtype, id, version, last_updated, deleted, length(body) FROM atr_resource "
                     "WHERE rtype = 'Group' ORDER BY 1, 2, 3; SELECT * FROM atr_current WHERE rtype = 'Group' "
                     "ORDER BY 1, 2; SELECT group_id, version, COUNT(*) FROM atr_group_member GROUP BY 1, 2 "
                     "ORDER BY 1, 2; SELECT COUNT(*) FROM atr_roster_row; SELECT COUNT(*) FROM atr_roster_ident")


@pytest.fixture(scope="module")
def three_months(roster):
    """Three monthly rosters applied in a row (versions 2, 3, 4 of Group/roster-grp)."""
    pr, org = f"Practitioner/{roster.prac}", f"Organization/{roster.org}"
    m1 = roster.apply([
        f"M000000001,EXHP,RC-1,PLAN-A,{roster.npi},2025-01-01,2025-12-31,Coverage/cov-1",
        f"M000000002,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-06-30,Coverage/cov-2",
        f"Patient/pat-2,EXHP,RC-1,PLAN-A,{roster.tin},2025-07-01,2025-12-31,Coverage/cov-2",
    ])
    m2 = roster.apply([
        f"M000000001,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-12-31,Coverage/cov-1",
        f"M000000002,EXHP,RC-1,PLAN-A,{roster.npi},2025-01-01,2025-05-31,Coverage/cov-2",
        f"M000000003,EXHP,RC-1,PLAN-A,{org},2025-02-01,,Coverage/cov-3",
    ])
    m3 = roster.apply([
        f"M000000001,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-12-31,Coverage/cov-4",
        f"M000000002,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-05-31,Coverage/cov-2",
    ])
    return pr, org, (m1, m2, m3)


def test_three_monthly_rosters_version_by_version(fhir, three_months):
    """DM-05 (a new version per change, vread of each), DM-13 (one entry per member x
    provider), DM-15 (dropped + inactive), DM-16 (new), DM-17 (changed / nochange), TERM-01."""
    pr, org, (m1, m2, m3) = three_months
    assert "3 new, 0 changed, 0 nochange, 0 dropped" in m1.stdout
    assert "version 2 written" in m1.stdout
    assert "1 new, 1 changed, 1 nochange, 1 dropped" in m2.stdout
    assert "0 new, 1 changed, 1 nochange, 1 dropped" in m3.stdout

    cur = fhir.get("/Group/roster-grp")
    assert cur.status_code == 200
    g = cur.json()
    assert g["meta"]["versionId"] == "4"
    assert g["name"] == "Roster test"           # the Group's own content is kept

    v2 = _entries(fhir.get("/Group/roster-grp/_history/2").json())
    assert v2 == {
        ("Patient/pat-1", pr): ("new", False, {"start": "2025-01-01", "end": "2025-12-31"}, "Coverage/cov-1"),
        ("Patient/pat-2", pr): ("new", False, {"start": "2025-01-01", "end": "2025-06-30"}, "Coverage/cov-2"),
        ("Patient/pat-2", org): ("new", False, {"start": "2025-07-01", "end": "2025-12-31"}, "Coverage/cov-2"),
    }
    v3 = _entries(fhir.get("/Group/roster-grp/_history/3").json())
    assert {k: v[:2] for k, v in v3.items()} == {
        ("Patient/pat-1", pr): ("nochange", False),
        ("Patient/pat-2", pr): ("changed", False),
        ("Patient/pat-3", org): ("new", False),
        ("Patient/pat-2", org): ("dropped", True),
    }
    assert v3[("Patient/pat-3", org)][2] == {"start": "2025-02-01"}
    v4 = _entries(g)
    assert {k: v[:2] for k, v in v4.items()} == {
        ("Patient/pat-1", pr): ("changed", False),
        ("Patient/pat-2", pr): ("nochange", False),
        ("Patient/pat-3", org): ("dropped", True),
    }                                           # pat-2 x org, dropped in v3, is not carried again
    assert v4[("Patient/pat-1", pr)][3] == "Coverage/cov-4"

    hist = fhir.get("/Group/roster-grp/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in hist["entry"]] == ["4", "3", "2", "1"]
    assert _entries(hist["entry"][1]["resource"]) == v3


def test_dry_run_writes_nothing(fhir, store, roster, three_months):
    """--dry-run prints counts per changeType and the first changes, writes nothing (DM-05)."""
    pr = three_months[0]
    before = _state(store)
    p = roster.apply([f"M000000004,EXHP,RC-1,PLAN-A,{pr},2025-03-01,,"], "--dry-run")
    assert "1 new, 0 changed, 0 nochange, 2 dropped" in p.stdout
    assert "line 2: new Patient/pat-4" in p.stdout
    assert "dry run: nothing written" in p.stdout
    assert _state(store) == before
    assert fhir.get("/Group/roster-grp").json()["meta"]["versionId"] == "4"


def test_bad_roster_leaves_store_as_it_was(fhir, store, roster, three_months):
    """Bad rows (unknown member/provider, bad dates, DM-02 repeats, columns, quoting) are all
    reported with their line numbers; nothing is written (DM-02, DM-05)."""
    pr = three_months[0]
    before = _state(store)
    p = roster.apply([
        f"M000000001,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-12-31,Coverage/cov-1",
        f"NO-SUCH-MEMBER,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-12-31,",
        "M000000002,EXHP,RC-1,PLAN-A,Practitioner/no-such-prac,2025-01-01,2025-12-31,",
        f"M000000003,EXHP,RC-1,PLAN-A,{pr},2025-02-30,,",
        f"M000000003,EXHP,RC-1,PLAN-A,{pr},2025-06-01,2025-01-31,",
        f"M000000001,EXHP,RC-1,PLAN-A,{pr},2025-01-01,2025-12-31,Coverage/cov-1",
        "M000000005,EXHP,RC-1",
        f"M000000005,\"EX\"HP,RC-1,PLAN-A,{pr},2025-01-01,,",
    ], check=False)
    assert p.returncode == 1
    for text in ("line 3: unknown member (member identifier NO-SUCH-MEMBER)",
                 "line 4: unknown provider Practitioner/no-such-prac",
                 "line 5: period_start \"2025-02-30\"",
                 "line 6: period_end 2025-01-31 is before",
                 "line 7: same member and provider as line 2",
                 "line 8: 3 columns",
                 "line 9: characters after a closing quote",
                 "7 bad rows: nothing was written"):
        assert text in p.stderr, text
    assert _state(store) == before
    assert fhir.get("/Group/roster-grp").json()["meta"]["versionId"] == "4"


def test_group_must_exist(store, roster):
    """The roster replaces the membership of an existing Group only (DM-01)."""
    f = roster.dir / "empty.csv"
    f.write_text(HEADER)
    p = store.atrctl("roster", "apply", "--group", "no-such-group", str(f), check=False)
    assert p.returncode == 1 and "does not exist" in p.stderr
    p = store.atrctl("roster", "apply", "--contract", f"{CONTRACT_SYSTEM}|NOPE", str(f), check=False)
    assert p.returncode == 1 and "no Group has the identifier" in p.stderr
    p = store.atrctl("roster", "apply", str(f), check=False)
    assert p.returncode == 2
