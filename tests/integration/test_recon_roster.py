"""Roster apply checks coverage references against the store (DM-08): a roster naming a
Coverage the Producer does not have is refused with the line number, nothing written."""
import json

import pytest

HEADER = "member_id,payer_id,contract_id,plan_id,provider,period_start,period_end,coverage\n"


@pytest.fixture(scope="module")
def cov_group(store, atrctl, tmp_path_factory):
    d = tmp_path_factory.mktemp("recon-roster")
    f = d / "grp.ndjson"
    f.write_text(json.dumps({"resourceType": "Group", "id": "recon-ros-grp", "type": "person", "actual": True,
                             "identifier": [{"system": "http://example.org/recon-contract", "value": "RR-1"}]})
                 + "\n")
    atrctl("load", str(f))
    return d


def _versions(store):
    return store.sql("SELECT version FROM atr_resource WHERE rtype = 'Group' AND id = 'recon-ros-grp'")


def test_unknown_coverage_is_a_bad_row(store, cov_group):
    before = _versions(store)
    roster = cov_group / "bad-cov.csv"
    roster.write_text(HEADER
                      + "Patient/pat-1,EXHP,RR-1,PLAN-A,Practitioner/prac-1,2026-01-01,,Coverage/cov-1\n"
                      + "Patient/pat-2,EXHP,RR-1,PLAN-A,Practitioner/prac-1,2026-01-01,,Coverage/no-such-cov\n"
                      + "Patient/pat-3,EXHP,RR-1,PLAN-A,Practitioner/prac-1,2026-01-01,,\n")
    r = store.atrctl("roster", "apply", "--group", "recon-ros-grp", str(roster), check=False)
    assert r.returncode != 0
    assert "line 3: unknown coverage Coverage/no-such-cov" in r.stdout + r.stderr
    assert "line 2" not in r.stdout + r.stderr and "line 4" not in r.stdout + r.stderr
    assert _versions(store) == before


def test_known_coverage_applies(store, cov_group):
    roster = cov_group / "good-cov.csv"
    roster.write_text(HEADER
                      + "Patient/pat-1,EXHP,RR-1,PLAN-A,Practitioner/prac-1,2026-01-01,,Coverage/cov-1\n")
    r = store.atrctl("roster", "apply", "--group", "recon-ros-grp", str(roster))
    assert "1 new" in r.stdout
    assert _versions(store).split() == ["1", "2"]
