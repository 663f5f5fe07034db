"""The Consumer registry on two LDAP servers: failover, failing closed, coming back (issue 7).

Module fixtures: a slapd provider (syncprov) and a replica of it (syncrepl refreshAndPersist;
harness/slapd_repl.py, configured as docs/registry.md "Replicas and failover" shows), and an
httpd of its own whose ``ATRRegistryURL`` lists the provider first, then the replica, with
``ATRRegistryCacheTTL 0`` (every request reads the directory, so no cache hides a failover),
``ATRRegistryTimeout 1`` and ``ATRRegistryRetries 1``. A URI that did not answer is tried
after the others for 30 s (``ATRRegistryHoldDown``'s default), so each test gets a freshly started
httpd.

Every test starts with both servers running and the replica holding every Consumer the
provider has. Consumers are registered on the provider only (python-ldap or ``atrctl client
add``); what the replica has, it got by replication.
"""
import json
import os
import subprocess
import time
import uuid

import pytest
import requests

from harness import Httpd
from harness.consumers import Consumer, Consumers, new_key, public_jwk
from harness.examples import ATRCTL
from harness.slapd_repl import Directories, provider_and_replica

GROUP = 'fullexample'          # an IG example Group in the session store
OTHER_GROUP = 'davincipatientlistexample'
SCOPE = 'system/*.read'
FAILOVER_DIRECTIVES = 'ATRRegistryCacheTTL 0\nATRRegistryTimeout 1\nATRRegistryRetries 1\n'

# What a test that takes every registry server away may log at level error: the directory
# unreachable after all retries (atr_registry.c), and the 503 answers of the FHIR
# authorization (ATR00605) and the token endpoint (ATR00532).
UNREACHABLE_ERRORS = (r'ATR00403: LDAP directory unreachable', r'ATR00605: the Consumer registry is '
                      r'not reachable', r'ATR00532: token request not answered')


@pytest.fixture(scope='module')
def directories(workdir):
    provider, replica = provider_and_replica(str(workdir / 'ldap-failover'))
    yield provider, replica
    replica.stop()
    provider.stop()


@pytest.fixture(scope='module')
def provider(directories):
    return directories[0]


@pytest.fixture(scope='module')
def replica(directories):
    return directories[1]


@pytest.fixture(scope='module')
def fo_httpd(workdir, store, directories):
    server = Httpd(str(workdir / 'failover-httpd'), store, slapd=Directories(*directories))
    server.start(FAILOVER_DIRECTIVES)
    yield server
    server.stop()


@pytest.fixture(scope='module')
def fo_consumers(provider, fo_httpd, jwks_server):
    """Consumers registered on the provider, asking fo_httpd for tokens."""
    return Consumers(provider, fo_httpd, jwks_server)


@pytest.fixture(scope='module')
def consumer(fo_consumers):
    return fo_consumers.make(scopes=[SCOPE], groups=[GROUP], jwks='inline')


@pytest.fixture(autouse=True)
def both_up(provider, replica, fo_httpd):
    """Each test starts with both servers answering, the replica caught up, and httpd's
    children new (no pooled connection, no URI held down by an earlier test)."""
    for server in (provider, replica):
        server.cont()
        server.resume()
    wanted = set(provider.search_clients())
    replica.wait_for(lambda clients: wanted <= set(clients), 'every Consumer of the provider')
    fo_httpd.restart(FAILOVER_DIRECTIVES)
    yield


def log_text(server, since):
    return '\n'.join(e.text for e in server.read_log(since))


def read_group(consumer, token, group=GROUP):
    return consumer.get('/Group/' + group, token=token)


def assert_group(r, group=GROUP):
    assert r.status_code == 200, r.text
    assert r.headers['Content-Type'].startswith('application/fhir+json')
    body = r.json()
    assert body['resourceType'] == 'Group'
    assert body['id'] == group


def assert_token(r, scope=SCOPE):
    """SMART-TOK-10: a token response."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert body['token_type'].lower() == 'bearer'
    assert body['scope'] == scope
    assert body['access_token']
    return body['access_token']


def assert_fhir_503(r):
    """Fail closed: 503 with an OperationOutcome, never the resource."""
    assert r.status_code == 503, r.text
    assert r.headers['Content-Type'].startswith('application/fhir+json')
    body = r.json()
    assert body['resourceType'] == 'OperationOutcome'
    assert body['issue'][0]['severity'] in ('error', 'fatal')
    assert body['issue'][0]['code'] == 'transient'


def assert_token_503(r):
    """The token endpoint fails closed too (RFC 6749 error JSON, SMART-TOK-08)."""
    assert r.status_code == 503, r.text
    assert r.headers['Content-Type'].startswith('application/json')
    assert r.headers['Cache-Control'] == 'no-store'
    body = r.json()
    assert body['error'] == 'temporarily_unavailable'
    assert 'access_token' not in body


def atrctl_client(provider, tmp_path, *args, uris=None):
    pw = tmp_path / 'ldap.pw'
    pw.write_text(provider.root_pw + '\n')
    os.chmod(pw, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith('ATR_LDAP_')}
    env.update({'ATR_LDAP_URI': uris or provider.ldap_uri, 'ATR_LDAP_BASE': provider.clients_dn,
                'ATR_LDAP_BIND_DN': provider.root_dn, 'ATR_LDAP_PASSWORD_FILE': str(pw)})
    return subprocess.run([ATRCTL, 'client', *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_config_lists_both_servers(fo_httpd, provider, replica):
    """The httpd under test really has the two URIs, provider first."""
    with open(fo_httpd.conf_path, encoding='utf-8') as f:
        conf = f.read()
    assert 'ATRRegistryURL "%s %s"' % (provider.ldap_uri, replica.ldap_uri) in conf
    assert provider.ldap_uri != replica.ldap_uri


def test_both_up_token_and_group_read(consumer):
    token = assert_token(consumer.token_response(scope=SCOPE))
    assert_group(read_group(consumer, token))
    # Entitlement still comes from the entry: a Group not linked to the client is 404.
    r = read_group(consumer, token, OTHER_GROUP)
    assert r.status_code == 404, r.text
    assert r.json()['resourceType'] == 'OperationOutcome'


def test_replica_is_read_only_copy(provider, replica, fo_consumers):
    """Sanity of the set-up: an entry added on the provider reaches the replica by syncrepl,
    with the same attributes."""
    c = fo_consumers.make(scopes=[SCOPE], groups=[GROUP, OTHER_GROUP], jwks='inline')
    got = replica.wait_for(lambda clients: c.client_id in clients, c.client_id)
    assert got[c.client_id] == provider.search_clients()[c.client_id]
    assert sorted(got[c.client_id]['atrGroupId']) == sorted([GROUP, OTHER_GROUP])


def test_first_server_stopped_requests_keep_working(provider, replica, consumer, fo_httpd):
    token = assert_token(consumer.token_response(scope=SCOPE))
    assert_group(read_group(consumer, token))
    since = fo_httpd.log_position()
    provider.halt()
    assert not provider.running and replica.running
    # A token issued before, checked against the registry on every request (cache TTL 0).
    for _ in range(6):
        assert_group(read_group(consumer, token))
    # New tokens: the assertion's client is looked up in the replica.
    token2 = assert_token(consumer.token_response(scope=SCOPE))
    assert_group(read_group(consumer, token2))
    r = consumer.get('/Group', token=token2, params={'_id': GROUP})
    assert r.status_code == 200, r.text
    assert [e['resource']['id'] for e in r.json().get('entry', [])] == [GROUP]
    # The log names the server that did not answer (ATR00401) and the one that took over
    # (ATR01000); nothing at level error.
    log = log_text(fo_httpd, since)
    assert 'ATR00401: LDAP %s' % provider.ldap_uri in log
    assert 'ATR01000: LDAP failover: connected to %s' % replica.ldap_uri in log
    assert 'ATR00403' not in log


def test_both_stopped_fail_closed_then_first_back(provider, replica, consumer, fo_httpd,
                                                  allow_errors):
    allow_errors(*UNREACHABLE_ERRORS)
    token = assert_token(consumer.token_response(scope=SCOPE))
    assert_group(read_group(consumer, token))
    since = fo_httpd.log_position()
    provider.halt()
    replica.halt()
    for _ in range(3):
        assert_fhir_503(read_group(consumer, token))
    assert_token_503(consumer.token_response(scope=SCOPE))
    log = log_text(fo_httpd, since)
    assert 'ATR00403: LDAP directory unreachable' in log
    assert provider.ldap_uri in log and replica.ldap_uri in log

    # The first server comes back: everything works again, the replica still down.
    provider.resume()
    for _ in range(3):
        assert_group(read_group(consumer, token))
    assert_group(read_group(consumer, assert_token(consumer.token_response(scope=SCOPE))))


def test_only_second_down_is_not_noticed(provider, replica, consumer, fo_httpd):
    """The replica down while the provider answers: requests work, and the replica is never
    tried (no warning about it)."""
    token = assert_token(consumer.token_response(scope=SCOPE))
    since = fo_httpd.log_position()
    replica.halt()
    for _ in range(3):
        assert_group(read_group(consumer, token))
    assert_token(consumer.token_response(scope=SCOPE))
    assert replica.ldap_uri not in log_text(fo_httpd, since)


def test_first_server_hung_requests_keep_working(provider, replica, consumer, fo_httpd):
    """A first server that accepts connections but never answers (SIGSTOP): the timeout
    (ATRRegistryTimeout 1) moves every request on to the replica."""
    token = assert_token(consumer.token_response(scope=SCOPE))
    since = fo_httpd.log_position()
    provider.pause()
    for _ in range(3):
        assert_group(read_group(consumer, token))
    assert_group(read_group(consumer, assert_token(consumer.token_response(scope=SCOPE))))
    log = log_text(fo_httpd, since)
    assert 'ATR01000: LDAP failover: connected to %s' % replica.ldap_uri in log
    provider.cont()


def test_client_added_with_atrctl_on_provider_served_by_replica(provider, replica, fo_consumers,
                                                                 fo_httpd, tmp_path):
    """A Consumer registered with `atrctl client add` against the provider gets a token and
    reads its Group while only the replica is up: it got there by syncrepl."""
    client_id = 'fo-' + uuid.uuid4().hex[:12]
    key = new_key('ES384')
    kid = 'k-' + uuid.uuid4().hex[:8]
    jwks_file = tmp_path / 'jwks.json'
    jwks_file.write_text(json.dumps({'keys': [public_jwk(key, kid, 'ES384')]}))
    p = atrctl_client(provider, tmp_path, 'add', client_id, '--jwks-file', str(jwks_file),
                      '--scope', SCOPE, '--group', GROUP, '--name', 'Failover clinic')
    assert p.returncode == 0, p.stderr
    replica.wait_for(lambda clients: client_id in clients, client_id)
    provider.halt()
    c = Consumer(fo_consumers, client_id, 'ES384', key, kid, None)
    token = assert_token(c.token_response(scope=SCOPE))
    assert_group(read_group(c, token))

    # Disabled on the provider while it is back, then the provider gone again: the replica
    # has the change, the client's token stops working (401), no new token.
    provider.resume()
    p = atrctl_client(provider, tmp_path, 'disable', client_id)
    assert p.returncode == 0, p.stderr
    replica.wait_for(lambda clients: clients[client_id].get('atrClientStatus') == ['disabled'],
                     client_id + ' disabled')
    provider.halt()
    r = read_group(c, token)
    assert r.status_code == 401, r.text
    assert r.json()['resourceType'] == 'OperationOutcome'
    r = c.token_response(scope=SCOPE)
    assert r.status_code == 401, r.text
    assert r.json()['error'] == 'invalid_client'


# One child process: its connection pool is the only one, so what a test leaves in it is what
# the next request gets.
ONE_CHILD = ('StartServers 1\nServerLimit 1\nMaxRequestWorkers 25\nMinSpareThreads 1\n'
             'MaxSpareThreads 25\n')
WRITE = 'system/*.read system/Group.write'


def post_group(consumer, token):
    return consumer.request('POST', '/Group', token=token,
                            data=json.dumps({'resourceType': 'Group', 'name': 'Failover list'}),
                            headers={'Content-Type': 'application/fhir+json',
                                     'Accept': 'application/fhir+json'})


def test_post_group_links_on_the_provider_after_a_failover(provider, replica, fo_consumers,
                                                           fo_httpd, allow_errors):
    """POST Group (CRE-01) links the new Group to its creator in LDAP: a write, which only the
    provider takes. With the provider down it fails closed (503, nothing created); right after
    the provider is back it works although the connection httpd pooled during the failover
    leads to the replica (which answers writes with a referral)."""
    allow_errors(r'ATR01002: LDAP modify of .* read-only replica', r'ATR00844: linking Group/')
    fo_httpd.restart(FAILOVER_DIRECTIVES + ONE_CHILD)
    w = fo_consumers.make(scopes=WRITE.split(), jwks='inline')
    replica.wait_for(lambda clients: w.client_id in clients, w.client_id)
    token = w.token(scope=WRITE)
    provider.halt()
    r = w.get('/Group', token=token, params={'_id': GROUP})   # fails over; pools the replica
    assert r.status_code == 200, r.text

    r = post_group(w, token)
    assert_fhir_503(r)
    assert 'Location' not in r.headers

    provider.resume()
    r = post_group(w, token)
    assert r.status_code == 201, r.text
    gid = r.json()['id']
    assert r.json()['resourceType'] == 'Group'
    assert gid in provider.search_clients()[w.client_id]['atrGroupId']
    replica.wait_for(lambda clients: gid in clients[w.client_id].get('atrGroupId', []),
                     'the link to Group/' + gid)
    assert_group(w.get('/Group/' + gid, token=token), gid)


def test_atrctl_writes_need_the_provider(provider, replica, tmp_path):
    """The replica is read-only: with the provider down, `atrctl client add` listing both
    servers fails (exit 1) and nothing is written anywhere."""
    provider.halt()
    client_id = 'fo-' + uuid.uuid4().hex[:12]
    p = atrctl_client(provider, tmp_path, 'add', client_id, '--jwks-url',
                      'https://consumer.example/jwks.json', '--scope', SCOPE,
                      uris='%s %s' % (provider.ldap_uri, replica.ldap_uri))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert 'read-only replica' in p.stderr, p.stderr
    assert p.stdout == ''
    assert client_id not in replica.search_clients()
    provider.resume()
    assert client_id not in provider.search_clients()


@pytest.mark.parametrize('hold_down', [2, None])
def test_hold_down_sets_when_the_provider_is_used_again(provider, replica, consumer, fo_httpd,
                                                        hold_down):
    """ATRRegistryHoldDown: after a failover, an httpd child keeps its connection to the replica
    while the provider is held down, and closes it (ATR01001) once the hold-down is over, so
    that its next connection goes to the provider again. 3 s after the provider is back that
    has happened with ATRRegistryHoldDown 2, and not with the default 30 s. The reads share one
    keep-alive connection, so one child serves them all."""
    fo_httpd.restart(FAILOVER_DIRECTIVES + ONE_CHILD + 'KeepAliveTimeout 30\n'
                     + ('ATRRegistryHoldDown %d\n' % hold_down if hold_down is not None else ''))
    token = assert_token(consumer.token_response(scope=SCOPE))
    session = requests.Session()

    def read():
        return session.get(fo_httpd.url('/Group/' + GROUP), timeout=60,
                           headers={'Authorization': 'Bearer ' + token})

    assert_group(read())
    since = fo_httpd.log_position()
    provider.halt()
    assert_group(read())    # fails over; the child pools its connection to the replica
    provider.resume()
    time.sleep(3)
    for _ in range(3):
        assert_group(read())
    session.close()
    log = log_text(fo_httpd, since)
    assert 'ATR01000: LDAP failover: connected to %s' % replica.ldap_uri in log
    closed = 'ATR01001: LDAP connection to %s closed' % replica.ldap_uri in log
    assert closed == (hold_down == 2), log


@pytest.mark.parametrize('value', ['3601', '-1', 'soon', '2.5', '1e3'])
def test_invalid_hold_down_fails_the_config_test(workdir, store, directories, value):
    """ATRRegistryHoldDown takes whole seconds from 0 to 3600; anything else stops httpd at the
    configuration test with the directive's name."""
    h = Httpd(str(workdir / 'hold-down-config'), store, slapd=Directories(*directories))
    rc, out = h.config_test('ATRRegistryHoldDown %s\n' % value)
    assert rc != 0, out
    assert 'ATRRegistryHoldDown:' in out and 'is not an integer from 0 to 3600' in out, out
    assert 'Syntax OK' not in out


def test_hold_down_bounds_pass_the_config_test(workdir, store, directories):
    h = Httpd(str(workdir / 'hold-down-config'), store, slapd=Directories(*directories))
    for value in ('0', '3600', '30'):
        rc, out = h.config_test('ATRRegistryHoldDown %s\n' % value)
        assert rc == 0, (value, out)
        assert 'Syntax OK' in out, out
