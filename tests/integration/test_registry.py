"""`atrctl client` against a real slapd: the add/show/list/set/link/unlink/disable/enable/delete
round trip checked with python-ldap, validation errors that leave the directory unchanged,
filter metacharacters in searches, LDAP unreachable, and failover over several URIs."""
import json
import os
import socket
import subprocess
import uuid

import ldap
import ldap.filter
import pytest

from harness.examples import ATRCTL, SHARED

ES384_JWKS = SHARED / 'spec/smart/2.1.0/sample-jwks-ES384.public.json'
GOOD_NPI = '1987654310'   # other suites look up 1234567893: not used here
JWKS_URL = 'https://consumer.example/.well-known/jwks.json'


def closed_port():
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def ldapenv(slapd, tmp_path):
    pw = tmp_path / 'ldap.pw'
    pw.write_text(slapd.root_pw + '\n')
    os.chmod(pw, 0o600)
    return {'ATR_LDAP_URI': slapd.ldap_uri, 'ATR_LDAP_BASE': slapd.clients_dn,
            'ATR_LDAP_BIND_DN': slapd.root_dn, 'ATR_LDAP_PASSWORD_FILE': str(pw)}


@pytest.fixture
def client(ldapenv):
    """``client(*args, env=None)`` runs ``atrctl client ARGS`` with the LDAP settings in the
    environment (``env`` overrides); returns the CompletedProcess."""
    def run(*args, env=None):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith('ATR_LDAP_'):
                del e[k]
        e.update(ldapenv)
        e.update(env or {})
        return subprocess.run([ATRCTL, 'client', *args], capture_output=True, text=True,
                              timeout=60, env=e)
    return run


@pytest.fixture(autouse=True)
def _cleanup(slapd):
    """The session slapd is shared with other suites: remove every entry this test made."""
    yield
    conn = slapd.connect()
    try:
        for dn, _ in conn.search_s(slapd.clients_dn, ldap.SCOPE_ONELEVEL,
                                   '(|(atrClientId=reg-*)(description=%s))' % MARK, ['1.1']):
            conn.delete_s(dn)
    finally:
        conn.unbind_s()


MARK = 'made-by-test_registry'


def new_id():
    return 'reg-' + uuid.uuid4().hex[:12]


def entry(slapd, client_id):
    """The entry's attributes as {name: [str]}, or None."""
    conn = slapd.connect()
    try:
        res = conn.search_s(slapd.clients_dn, ldap.SCOPE_ONELEVEL,
                            '(atrClientId=%s)' % ldap.filter.escape_filter_chars(client_id))
    finally:
        conn.unbind_s()
    if not res:
        return None
    return {k: [v.decode() for v in vals] for k, vals in res[0][1].items()}


def snapshot(slapd):
    conn = slapd.connect()
    try:
        res = conn.search_s(slapd.clients_dn, ldap.SCOPE_ONELEVEL, '(objectClass=*)',
                            ['*', 'modifyTimestamp'])
    finally:
        conn.unbind_s()
    return sorted((dn, sorted((k, sorted(v)) for k, v in attrs.items())) for dn, attrs in res)



def test_round_trip(client, slapd):
    cid = new_id()
    p = client('add', cid, '--name', 'Acme Clinic', '--contact', 'it@acme.example',
               '--description', 'primary care', '--jwks-url', JWKS_URL,
               '--scope', 'system/Group.read', '--scope', 'system/*.rs',
               '--npi', GOOD_NPI, '--tin', '123456789',
               '--contract', 'http://payer.example/contracts|C-1', '--group', 'grp-1')
    assert p.returncode == 0, p.stderr
    e = entry(slapd, cid)
    assert e['atrClientStatus'] == ['active']
    assert e['atrJwksUrl'] == [JWKS_URL]
    assert sorted(e['atrScope']) == ['system/*.rs', 'system/Group.read']
    assert e['atrNpi'] == [GOOD_NPI] and e['atrTin'] == ['123456789']
    assert e['atrContractId'] == ['http://payer.example/contracts|C-1']
    assert e['atrGroupId'] == ['grp-1']
    assert e['displayName'] == ['Acme Clinic'] and e['mail'] == ['it@acme.example']

    p = client('show', cid)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert 'client_id: %s' % cid in lines
    assert 'status: active' in lines
    assert 'scope: system/Group.read' in lines and 'group: grp-1' in lines
    assert any(line.startswith('modified_by: ') for line in lines)

    p = client('show', cid, '--json')
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j['client_id'] == cid and j['status'] == 'active'
    assert j['npis'] == [GOOD_NPI] and j['groups'] == ['grp-1']

    p = client('list', '--json')
    assert p.returncode == 0, p.stderr
    ids = [c['client_id'] for c in json.loads(p.stdout)]
    assert cid in ids and ids == sorted(ids)
    p = client('list', '--search', cid[4:])
    assert p.returncode == 0 and cid in p.stdout

    # set: a list option replaces the list, other fields stay; '' clears a text.
    p = client('set', cid, '--scope', 'system/Group.rs', '--description', '',
               '--jwks-file', str(ES384_JWKS))
    assert p.returncode == 0, p.stderr
    e = entry(slapd, cid)
    assert e['atrScope'] == ['system/Group.rs']
    assert 'description' not in e
    assert e['atrNpi'] == [GOOD_NPI] and e['atrGroupId'] == ['grp-1']
    assert json.loads(e['atrJwks'][0]) == json.loads(ES384_JWKS.read_text())
    p = client('set', cid, '--clear-jwks-url')
    assert p.returncode == 0, p.stderr
    assert 'atrJwksUrl' not in entry(slapd, cid)

    p = client('link', cid, 'grp-2', 'grp-3', 'grp-1')
    assert p.returncode == 0, p.stderr
    assert sorted(entry(slapd, cid)['atrGroupId']) == ['grp-1', 'grp-2', 'grp-3']
    p = client('unlink', cid, 'grp-1', 'grp-3')
    assert p.returncode == 0, p.stderr
    assert entry(slapd, cid)['atrGroupId'] == ['grp-2']
    p = client('unlink', cid, 'grp-2')
    assert p.returncode == 0, p.stderr
    assert 'atrGroupId' not in entry(slapd, cid)

    p = client('disable', cid)
    assert p.returncode == 0, p.stderr
    assert entry(slapd, cid)['atrClientStatus'] == ['disabled']
    assert 'status: disabled' in client('show', cid).stdout
    p = client('enable', cid)
    assert p.returncode == 0, p.stderr
    assert entry(slapd, cid)['atrClientStatus'] == ['active']

    p = client('delete', cid)
    assert p.returncode == 2
    assert '--yes' in p.stderr
    assert entry(slapd, cid) is not None
    p = client('delete', cid, '--yes')
    assert p.returncode == 0, p.stderr
    assert entry(slapd, cid) is None
    p = client('show', cid)
    assert p.returncode == 1 and 'not found' in p.stderr
    p = client('delete', cid, '--yes')
    assert p.returncode == 1 and 'does not exist' in p.stderr


def test_add_generates_id(client, slapd):
    p = client('add', '--jwks-file', str(ES384_JWKS), '--scope', 'system/*.read', '--disabled',
               '--description', MARK)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    assert len(cid) == 36 and cid.count('-') == 4
    e = entry(slapd, cid)
    assert e['atrClientStatus'] == ['disabled']
    assert client('delete', cid, '--yes').returncode == 0


def test_add_existing_refused(client, slapd):
    cid = new_id()
    assert client('add', cid, '--jwks-url', JWKS_URL).returncode == 0
    before = snapshot(slapd)
    p = client('add', cid, '--jwks-url', JWKS_URL, '--name', 'other')
    assert p.returncode == 1 and 'already exists' in p.stderr
    assert snapshot(slapd) == before


def test_http_loopback_jwks_url(client, slapd):
    cid = new_id()
    url = 'http://127.0.0.1:19500/jwks.json'
    p = client('add', cid, '--jwks-url', url)
    assert p.returncode == 1 and 'JWKS URL' in p.stderr
    p = client('add', cid, '--jwks-url', url, '--allow-http-loopback')
    assert p.returncode == 0, p.stderr
    # Unchanged, it stays acceptable for later changes.
    assert client('link', cid, 'grp-1').returncode == 0
    assert entry(slapd, cid)['atrJwksUrl'] == [url]


@pytest.mark.parametrize('args, field', [
    (('--npi', '1234567890'), 'NPI'),
    (('--npi', '12345'), 'NPI'),
    (('--tin', '12345678'), 'TIN'),
    (('--tin', '12-3456789'), 'TIN'),
    (('--scope', 'patient/*.read'), 'scope'),
    (('--scope', 'system/Group.dus'), 'scope'),
    (('--contract', 'C-1'), 'contract'),
    (('--contract', '|C-1'), 'contract'),
    (('--group', 'bad group'), 'group'),
    (('--contact', 'nobody'), 'contact'),
    (('--jwks-url', 'http://consumer.example/jwks.json'), 'JWKS URL'),
])
def test_validation_errors_change_nothing(client, slapd, args, field):
    cid = new_id()
    base = ('--jwks-url', JWKS_URL) if '--jwks-url' not in args else ()
    before = snapshot(slapd)
    p = client('add', cid, *base, *args)
    assert p.returncode == 1, p.stdout
    assert field in p.stderr and 'nothing was written' in p.stderr
    assert snapshot(slapd) == before

    # The same on an existing entry with set.
    assert client('add', cid, '--jwks-url', JWKS_URL, '--npi', GOOD_NPI).returncode == 0
    before = snapshot(slapd)
    p = client('set', cid, *args)
    assert p.returncode == 1
    assert field in p.stderr
    assert snapshot(slapd) == before


def test_validation_other_errors(client, slapd, tmp_path):
    before = snapshot(slapd)
    p = client('add', 'bad id*')
    assert p.returncode == 1 and 'client_id' in p.stderr
    p = client('add', new_id())
    assert p.returncode == 1 and 'JWKS' in p.stderr
    bad = tmp_path / 'bad.json'
    bad.write_text('{"keys": []}')
    p = client('add', new_id(), '--jwks-file', str(bad))
    assert p.returncode == 1 and 'inline JWKS' in p.stderr
    p = client('add', new_id(), '--jwks-file', str(tmp_path / 'missing.json'))
    assert p.returncode == 1 and 'missing.json' in p.stderr
    assert snapshot(slapd) == before


def test_usage_errors(client):
    assert client().returncode == 2
    assert client('frobnicate').returncode == 2
    assert client('show').returncode == 2
    assert client('link', 'x').returncode == 2
    assert client('show', 'x', '--scope', 'system/*.read').returncode == 2
    assert client('list', '--bogus').returncode == 2
    p = client('list', env={'ATR_LDAP_URI': ''})
    assert p.returncode == 2 and 'ATR_LDAP_URI' in p.stderr
    assert client('-h').returncode == 0


def test_search_metacharacters_harmless(client, slapd):
    cid = new_id()
    assert client('add', cid, '--jwks-url', JWKS_URL, '--name', 'Star (*) Clinic').returncode == 0
    p = client('list', '--search', '*)(objectClass=*', '--json')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []
    p = client('list', '--search', '*', '--json')   # a literal star, not a wildcard
    assert p.returncode == 0, p.stderr
    assert [c['client_id'] for c in json.loads(p.stdout)] == [cid]
    p = client('list', '--search', '(*)', '--json')
    assert p.returncode == 0, p.stderr
    assert [c['client_id'] for c in json.loads(p.stdout)] == [cid]
    p = client('list', '--search', '\\', '--json')
    assert p.returncode == 0 and json.loads(p.stdout) == []
    p = client('show', '*')
    assert p.returncode == 1


def test_search_by_npi_tin_contract(client):
    cid = new_id()
    marker = uuid.uuid4().hex[:8]
    assert client('add', cid, '--jwks-url', JWKS_URL, '--npi', '1245319599', '--tin', '987654321',
                  '--contract', 'http://payer.example/c|K-%s' % marker).returncode == 0
    for text in ('1245319599', '987654321', marker):
        p = client('list', '--search', text, '--json')
        assert p.returncode == 0, p.stderr
        assert cid in [c['client_id'] for c in json.loads(p.stdout)], text


def test_ldap_down_clear_message(client):
    port = closed_port()
    uri = 'ldap://127.0.0.1:%d' % port
    p = client('show', 'anything', env={'ATR_LDAP_URI': uri})
    assert p.returncode == 1
    assert 'cannot reach the LDAP directory' in p.stderr and uri in p.stderr
    p = client('add', new_id(), '--jwks-url', JWKS_URL, '--ldap', uri)
    assert p.returncode == 1 and uri in p.stderr
    p = client('list', env={'ATR_LDAP_URI': uri})
    assert p.returncode == 1 and uri in p.stderr


def test_wrong_password(client, tmp_path):
    pw = tmp_path / 'wrong.pw'
    pw.write_text('not-the-password')
    p = client('list', env={'ATR_LDAP_PASSWORD_FILE': str(pw)})
    assert p.returncode == 1
    assert 'Invalid credentials' in p.stderr
    assert 'not-the-password' not in p.stderr


def test_failover(client, slapd):
    dead = 'ldap://127.0.0.1:%d' % closed_port()
    cid = new_id()
    p = client('add', cid, '--jwks-url', JWKS_URL, '--ldap', dead + ' ' + slapd.ldap_uri)
    assert p.returncode == 0, p.stderr
    p = client('show', cid, '--ldap', dead, '--ldap', slapd.ldap_uri)
    assert p.returncode == 0, p.stderr
    assert 'client_id: %s' % cid in p.stdout
    assert entry(slapd, cid) is not None
