"""Several httpd nodes on one PostgreSQL store (issue 7): two httpd instances on different
ports, the session's PostgreSQL database, one shared export directory, the session's slapd,
one token key (ATRTokenKeyFile) and one public base URL (ATRBaseURL, what a load balancer in
front of them would be). A client may reach either node for any request:

* an access token issued by node 1 is accepted by node 2 (SMART-TOK: the token is checked
  with the shared key, nothing is remembered per node);
* a client assertion used on node 1 is refused as a replay on node 2 (SMART-TOK-04: the jti
  record is a row in the shared store);
* a bulk export kicked off on node 1 is polled and downloaded on node 2 (docs/bulk-export.md:
  jobs live in the store, files in the shared directory);
* the node running an export is killed (-9, parent and children: the node goes down) and the
  other node claims the job once its heartbeat is stale and finishes it; the manifest is
  exactly `atrctl export` of the Group;
* $member-add on one Group through both nodes at once: every change is the next version, none
  is lost (DM-05; the writers take turns on the Group's row);
* both nodes run on this one host, so each has its own ``ATRNodeName`` (docs/directives.md):
  a job's row names the node that claimed it, and ``ATRExportMaxJobs`` (1 here) is counted
  per node, so the two nodes run two exports at once; an invalid name fails ``httpd -t``.

Runs in the PostgreSQL pass of script/test only (ATR_TEST_STORE=pgsql): SQLite is the
single-node store."""
import concurrent.futures
import json
import os
import re
import signal

import pytest
import requests

from harness import Httpd
from harness.bulk import (EXPORT, BulkClient, CLAIM_RE, file_digests, job_entries, wait_until)
from harness.consumers import JWT_BEARER
from harness.ports import free_port

EXT = 'http://hl7.org/fhir/us/davinci-atr/StructureDefinition/'
NPI = 'http://hl7.org/fhir/sid/us-npi'
WRITE = 'system/*.read system/Group.write'
# ATRNodeName of node 1 and node 2: both run on this host, so the host name (the default)
# would make them one node for the export job limit and the claims
NODE_NAMES = ('mn-node-1', 'mn-node-2')


class Via:
    """A node as a client of the load balancer sees it: ``base_url`` is the public URL (both
    nodes' ATRBaseURL), requests go to this node's own port."""

    def __init__(self, node, public):
        self.node = node
        self.base_url = public

    def url(self, path=''):
        if path.startswith(self.base_url):
            path = path[len(self.base_url):]
        return self.node.url(path)


class NodeClient(BulkClient):
    """A BulkClient talking to one node, its tokens from the token endpoint of ``token_node``
    (assertion aud: the public token URL)."""

    def __init__(self, via, consumer, token_via, scope='system/*.read'):
        super().__init__(via, consumer, scope=scope)
        self.token_via = token_via

    def token(self, scope=None):
        scope = scope or self.scope
        tok = self._tokens.get(scope)
        if not tok:
            tok = token_from(self.token_via, self.consumer, scope)
            self._tokens[scope] = tok
        return tok


def token_response(via, consumer, scope, assertion=None):
    assertion = assertion or consumer.assertion(aud=via.base_url + '/auth/token')
    return requests.post(via.url('/auth/token'), timeout=30,
                         headers={'Connection': 'close'},
                         data={'grant_type': 'client_credentials',
                               'client_assertion_type': JWT_BEARER,
                               'client_assertion': assertion, 'scope': scope})


def token_from(via, consumer, scope='system/*.read'):
    r = token_response(via, consumer, scope)
    assert r.status_code == 200, r.text
    return r.json()['access_token']


@pytest.fixture(scope='module')
def nodes(workdir, store, slapd, httpd):
    """(node1, node2, public base URL): two more httpd on the session's store and slapd,
    sharing ``<workdir>/export-shared`` and one token key, each with its own ATRNodeName
    (NODE_NAMES) and ATRExportMaxJobs 1. Module-scoped; a test that kills a
    node leaves it to be restarted by ``live_nodes``.
    The session's httpd shares the store too, so it is a third node: for this module it runs
    no exports (ATRExportMaxJobs 0), so that every job here is run by node 1 or node 2."""
    httpd.restart('ATRExportMaxJobs 0')
    public = 'http://127.0.0.1:%d/fhir' % free_port()    # the "load balancer": nobody listens
    shared = str(workdir / 'export-shared')
    os.makedirs(shared, exist_ok=True)
    extra = 'ATRBaseURL %s\nATRExportMaxJobs 1\n' % public
    n1 = Httpd(str(workdir / 'node-1'), store, slapd=slapd, export_dir=shared)
    n2 = Httpd(str(workdir / 'node-2'), store, slapd=slapd, export_dir=shared,
               token_key=n1.token_key)
    n1.start(extra + 'ATRNodeName %s\n' % NODE_NAMES[0])
    try:
        n2.start(extra + 'ATRNodeName %s\n' % NODE_NAMES[1])
    except Exception:
        n1.stop()
        raise
    yield n1, n2, public
    for n in (n1, n2):
        n.stop()
    httpd.restart('')


@pytest.fixture
def live_nodes(nodes):
    """The nodes, each restarted first if an earlier test killed it."""
    for n in nodes[:2]:
        if not n.pid():
            n.start(n.extra)
    return nodes


def test_token_from_node1_is_accepted_by_node2(live_nodes, consumers, bulk_data):
    """One token key: an access token node 1 issued is valid on node 2 (and on node 1)."""
    n1, n2, public = live_nodes
    c = consumers.make(groups=(bulk_data.group,), jwks='inline')
    tok = token_from(Via(n1, public), c)
    for node in (n2, n1):
        r = requests.get(node.url('/Group/%s?_summary=true' % bulk_data.group), timeout=30,
                         headers={'Authorization': 'Bearer ' + tok})
        assert r.status_code == 200, (node.port, r.text[:300])
        assert r.json()['id'] == bulk_data.group
    # and a token node 2 issued, on node 1
    tok2 = token_from(Via(n2, public), c)
    r = requests.get(n1.url('/Group/%s?_summary=true' % bulk_data.group), timeout=30,
                     headers={'Authorization': 'Bearer ' + tok2})
    assert r.status_code == 200, r.text[:300]


def test_replayed_assertion_is_refused_by_the_other_node(live_nodes, consumers, store):
    """SMART-TOK-04 across nodes: an assertion accepted by node 1 is a replay on node 2 (401
    invalid_client), on every child of node 2, and again on node 1."""
    n1, n2, public = live_nodes
    c = consumers.make(jwks='inline')
    a = c.assertion(aud=public + '/auth/token')
    r = token_response(Via(n1, public), c, 'system/*.read', assertion=a)
    assert r.status_code == 200, r.text
    for node in (n2, n2, n2, n1):
        r = token_response(Via(node, public), c, 'system/*.read', assertion=a)
        assert r.status_code == 401, (node.port, r.text)
        body = r.json()
        assert body['error'] == 'invalid_client', body
        assert 'replay' in body['error_description'] or 'jti' in body['error_description']
        assert a.split('.')[1][:20] not in r.text
    assert store.sql("SELECT count(*) FROM atr_jti WHERE client_id = '%s'"
                     % c.client_id).strip() == '1'


def _export_client(consumers, via_kick, via_token, group):
    c = consumers.make(groups=(group,), jwks='inline')
    return c, NodeClient(via_kick, c, via_token)


def test_kickoff_on_node1_poll_and_download_on_node2(live_nodes, consumers, bulk_data):
    """The status URL and file URLs are the public base's; node 2 answers the status of a job
    kicked off on node 1 and serves its files, which are exactly `atrctl export` of the Group."""
    n1, n2, public = live_nodes
    g = bulk_data.group
    c, on1 = _export_client(consumers, Via(n1, public), Via(n1, public), g)
    on2 = NodeClient(Via(n2, public), c, Via(n2, public))
    e = on1.accepted(on1.kickoff(g, EXPORT))
    assert e.url.startswith(public + '/export-status/')
    r = on2.poll(e, timeout=180)
    assert r.status_code == 200, r.text[:500]
    summary, digests = bulk_data.reference[g]
    for o in e.manifest['output']:
        assert o['url'].startswith(public + '/export-files/'), o
    assert file_digests(on2, e.manifest) == digests
    assert {o['type'] for o in e.manifest['output']} == \
        {t for t, n in summary['counts'].items() if n}
    # deleted through node 2: gone on node 1 too
    assert on2.delete(e.url).status_code == 202
    BulkClient.untrack(e.url)
    r = on1.status(e.url)
    assert r.status_code == 404, r.text[:300]


def _job_node(store, job):
    return store.sql("SELECT node FROM atr_export_job WHERE id = '%s'" % job).strip()


def _claimed_by(nodes, job, since):
    """{node index: [pids]} of the claim lines for ``job`` in each node's log."""
    out = {}
    for i, (node, pos) in enumerate(zip(nodes, since)):
        for entry in node.read_log(pos):
            m = re.search(CLAIM_RE, entry.text)
            if m and m.group(1) == job:
                out.setdefault(i, []).append(int(m.group(2)))
    return out


def _kill_node(node):
    """kill -9 of httpd's parent and every child: the node is gone, mid-whatever."""
    pids = [node.pid()] + node.child_pids()
    for pid in pids:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    wait_until(lambda: not any(os.path.exists('/proc/%d' % p) and _alive(p) for p in pids if p),
               timeout=30, what='node killed')
    Httpd.running.remove(node)


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def test_node_killed_mid_export_the_other_finishes(live_nodes, consumers, bulk_big_group,
                                                   store):
    """Kick-off on node 1; whichever node claims the job is killed mid-export (-9, the whole
    httpd); the other node claims it once the heartbeat is older than ATRExportStaleAfter (3 s
    in the tests), starts over and completes it: the manifest and files are exactly `atrctl
    export` of the 200,000-member Group, one attempt's files in the shared directory, no
    scratch rows left."""
    n1, n2, public = live_nodes
    big = bulk_big_group
    nodes = (n1, n2)
    pos = [n.log_position() for n in nodes]
    c, on1 = _export_client(consumers, Via(n1, public), Via(n1, public), big.group)
    e = on1.accepted(on1.kickoff(big.group, EXPORT))
    wait_until(lambda: _claimed_by(nodes, e.job, pos), timeout=60, interval=0.02,
               what='first claim')
    first = next(iter(_claimed_by(nodes, e.job, pos)))
    victim, survivor = nodes[first], nodes[1 - first]
    assert _job_node(store, e.job) == NODE_NAMES[first]
    # mid-export: the job runs (some progress written), it is not finished
    wait_until(lambda: store.sql("SELECT progress FROM atr_export_job WHERE id = '%s'"
                                 % e.job).strip() not in ('', '0'),
               timeout=60, interval=0.02, what='export progress')
    assert store.sql("SELECT state FROM atr_export_job WHERE id = '%s'" % e.job).strip() \
        == 'running'
    _kill_node(victim)
    on_survivor = NodeClient(Via(survivor, public), c, Via(survivor, public))
    r = on_survivor.poll(e, timeout=600)
    assert r.status_code == 200, r.text[:500]
    claims = _claimed_by(nodes, e.job, pos)
    assert len(claims.get(first, [])) == 1 and len(claims.get(1 - first, [])) == 1, claims
    counts = {}
    for o in e.manifest['output']:
        counts[o['type']] = counts.get(o['type'], 0) + o['count']
    assert counts == {t: n for t, n in big.summary['counts'].items() if n}
    assert e.manifest['error'] == []
    assert file_digests(on_survivor, e.manifest) == big.digests
    root = survivor.export_dir
    files = [p for p in job_entries(root, e.job) if os.path.isfile(os.path.join(root, p))]
    assert len({os.path.dirname(p) for p in files}) == 1, files    # the dead attempt's gone
    assert store.sql("SELECT COUNT(*) FROM atr_export_ref").strip() == '0'
    assert _job_node(store, e.job) == NODE_NAMES[1 - first]    # the claim that finished it
    assert on_survivor.delete(e.url).status_code == 202
    BulkClient.untrack(e.url)


@pytest.fixture(scope='module')
def mn_people(store, tmp_path_factory):
    """Patients mn-p1..mn-p12 (with Coverage) and Practitioner mn-prac (NPI 1000000881)."""
    lines = []
    for n in range(1, 13):
        lines.append({'resourceType': 'Patient', 'id': 'mn-p%d' % n,
                      'name': [{'family': 'Multinode%d' % n}]})
        lines.append({'resourceType': 'Coverage', 'id': 'mn-cov-%d' % n, 'status': 'active',
                      'beneficiary': {'reference': 'Patient/mn-p%d' % n},
                      'payor': [{'reference': 'Organization/1'}]})
    lines.append({'resourceType': 'Practitioner', 'id': 'mn-prac',
                  'identifier': [{'system': NPI, 'value': '1000000881'}]})
    f = tmp_path_factory.mktemp('multinode') / 'people.ndjson'
    f.write_text(''.join(json.dumps(x) + '\n' for x in lines))
    store.atrctl('load', str(f))
    return ['Patient/mn-p%d' % n for n in range(1, 13)]


def test_member_add_through_both_nodes_at_once_loses_nothing(live_nodes, consumers, mn_people,
                                                            store):
    """DM-05 under concurrency: 12 $member-add on one draft Group, 6 through each node, sent at
    once (two threads). Every one answers 200 with a new version; the versions are 2..13 with
    no gap, each holding one more member than the one before; the last holds all 12."""
    n1, n2, public = live_nodes
    c = consumers.make(scopes=WRITE.split(), jwks='inline')
    tok = token_from(Via(n1, public), c, WRITE)
    h = {'Authorization': 'Bearer ' + tok, 'Content-Type': 'application/fhir+json'}
    r = requests.post(n1.url('/Group'), timeout=30, headers=h,
                      data=json.dumps({'resourceType': 'Group', 'name': 'Multi-node list'}))
    assert r.status_code == 201, r.text
    gid = r.json()['id']

    def add(node, patient):
        body = {'resourceType': 'Parameters', 'parameter': [
            {'name': 'patientReference', 'valueReference': {'reference': patient}},
            {'name': 'providerReference', 'valueReference': {'reference': 'Practitioner/mn-prac'}}]}
        return requests.post(node.url('/Group/%s/$member-add' % gid), timeout=60, headers=h,
                             data=json.dumps(body))

    def run(node, patients):
        return [add(node, p) for p in patients]

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        f1 = ex.submit(run, n1, mn_people[0::2])
        f2 = ex.submit(run, n2, mn_people[1::2])
        answers = f1.result() + f2.result()
    for a in answers:
        assert a.status_code == 200, a.text[:500]
    versions = sorted(int(a.json()['meta']['versionId']) for a in answers)
    assert versions == list(range(2, 14)), versions
    rows = store.sql("SELECT version, COUNT(*) FROM atr_group_member WHERE group_id = '%s'"
                     " GROUP BY version ORDER BY version" % gid).split()
    assert rows == ['%d|%d' % (v, v - 1) for v in range(2, 14)], rows
    r = requests.get(n2.url('/Group/%s' % gid), timeout=30, headers=h)
    assert r.status_code == 200
    g = r.json()
    assert g['meta']['versionId'] == '13'
    assert sorted(m['entity']['reference'] for m in g['member']) == sorted(mn_people)


def test_each_node_runs_its_own_allowance(live_nodes, consumers, bulk_big_group, store):
    """ATRExportMaxJobs 1 on each node, two kick-offs of the 200,000-member Group (two clients,
    BULK-KO-09 allows one each): with its own ATRNodeName each node counts only its own
    running job, so both run at once, one per node, each row and claim line naming its node.
    (Under one shared name, the host name, the second would wait for the first.)"""
    n1, n2, public = live_nodes
    big = bulk_big_group
    nodes = (n1, n2)
    pos = [n.log_position() for n in nodes]
    exports = []
    for _ in range(2):
        c, on1 = _export_client(consumers, Via(n1, public), Via(n1, public), big.group)
        exports.append((on1, on1.accepted(on1.kickoff(big.group, EXPORT))))
    jobs = [e.job for _, e in exports]
    in_list = ', '.join("'%s'" % j for j in jobs)

    want = ['running|%s' % n for n in NODE_NAMES]

    def both_running():
        rows = sorted(store.sql("SELECT state, node FROM atr_export_job WHERE id IN (%s)"
                                % in_list).split())
        return rows == want

    wait_until(both_running, timeout=120, interval=0.05, what='both exports running, one per node')
    for job in jobs:
        i = NODE_NAMES.index(_job_node(store, job))
        claims = _claimed_by(nodes, job, pos)
        assert i in claims, claims
        lines = [en.text for en in nodes[i].read_log(pos[i])
                 if re.search(CLAIM_RE, en.text) and job in en.text]
        assert any('on node %s ' % NODE_NAMES[i] in t for t in lines), lines
    for client, e in exports:
        assert client.delete(e.url).status_code == 202
        BulkClient.untrack(e.url)
    # the deleted runs notice at their next heartbeat and drop their scratch rows
    wait_until(lambda: store.sql("SELECT COUNT(*) FROM atr_export_ref").strip() == '0',
               timeout=300, what='scratch rows of the deleted exports removed')


@pytest.mark.parametrize('value, says', [
    ('""', 'ATRNodeName takes one argument'),     # httpd's own check of an empty argument
    ('"two words"', "ATRNodeName: 'two words' is not a node name"),
    ('"tab\there"', 'is not a node name'),
    ('n' * 65, "ATRNodeName: '%s' is not a node name (1 to 64 visible ASCII" % ('n' * 65)),
    ('n\u00e9ud', 'is not a node name'),
])
def test_invalid_node_name_fails_the_config_test(workdir, store, slapd, value, says):
    """ATRNodeName must be 1 to 64 visible ASCII characters: anything else stops httpd at the
    configuration test with the directive's name, not later in the store."""
    h = Httpd(str(workdir / 'node-name-config'), store, slapd=slapd)
    rc, out = h.config_test('ATRNodeName %s\n' % value)
    assert rc != 0, out
    assert says in out, out
    assert 'Syntax OK' not in out


def test_valid_node_name_passes_the_config_test(workdir, store, slapd):
    h = Httpd(str(workdir / 'node-name-config'), store, slapd=slapd)
    for value in ('n' * 64, 'atr-node_1.payer.example', '"node:2"'):
        rc, out = h.config_test('ATRNodeName %s\n' % value)
        assert rc == 0, (value, out)
        assert 'Syntax OK' in out, out
