"""The token endpoint (SMART Backend Services, SMART-TOK-01..11, D28-D31) against a real
httpd, a real slapd registry and a loopback JWKS server: good RS384/ES384 assertions with
keys at a URL and inline, key rotation and the JWKS cache, every refusal of an assertion,
parameter errors, scope mediation, and the response headers."""
import json
import socket
import time
import uuid

import jwt
import pytest
import requests

from harness.consumers import JWT_BEARER, forge, new_key, public_jwk, public_pem



class OneChild:
    """Token requests of one consumer over one keep-alive connection, so they reach one
    httpd child and its per-process JWKS cache (fetches can then be counted)."""

    def __init__(self, consumer):
        self.c = consumer
        self.session = requests.Session()

    def token_response(self, assertion=None, scope='system/*.read'):
        data = {'grant_type': 'client_credentials', 'client_assertion_type': JWT_BEARER,
                'client_assertion': assertion or self.c.assertion(), 'scope': scope}
        return self.session.post(self.c.factory.token_url, data=data, timeout=30)

    def close(self):
        self.session.close()


def closed_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def assert_oauth_error(r, status, error, assertion=None):
    assert r.status_code == status, r.text
    assert r.headers['Content-Type'].startswith('application/json')
    assert r.headers.get('Cache-Control') == 'no-store'
    assert r.headers.get('Pragma') == 'no-cache'
    body = r.json()
    assert body['error'] == error, body
    assert isinstance(body.get('error_description'), str) and body['error_description']
    if assertion:
        # never echoed, not even in part
        for part in assertion.split('.')[1:]:
            if len(part) >= 20:
                assert part[:20] not in r.text
    return body


def claims_of(c, **extra):
    now = int(time.time())
    body = {'iss': c.client_id, 'sub': c.client_id, 'aud': c.factory.token_url,
            'exp': now + 240, 'jti': uuid.uuid4().hex}
    body.update(extra)
    return body


# ------------------------------------------------------------------ success

@pytest.mark.parametrize('alg', ['ES384', 'RS384'])
@pytest.mark.parametrize('jwks', ['url', 'inline', 'both'])
def test_good_assertion_gets_a_token(consumers, httpd, alg, jwks):
    c = consumers.make(alg=alg, jwks=jwks)
    r = c.token_response()
    assert r.status_code == 200, r.text
    assert r.headers['Content-Type'].startswith('application/json')
    assert r.headers['Cache-Control'] == 'no-store'
    assert r.headers['Pragma'] == 'no-cache'
    body = r.json()
    assert set(body) == {'access_token', 'token_type', 'expires_in', 'scope'}
    assert body['token_type'].lower() == 'bearer'
    assert isinstance(body['expires_in'], int) and 0 < body['expires_in'] <= 300
    assert body['scope'] == 'system/*.read'
    claims = jwt.decode(body['access_token'], httpd.token_key, algorithms=['HS256'],
                        audience=httpd.base_url, issuer=httpd.base_url)
    assert claims['sub'] == c.client_id
    assert claims['scope'] == 'system/*.read'
    assert claims['exp'] - claims['iat'] == body['expires_in']
    assert 'refresh_token' not in body


def test_token_is_not_logged(consumers, httpd):
    c = consumers.make()
    pos = httpd.log_position()
    assertion = c.assertion()
    r = c.token_response(assertion=assertion)
    assert r.status_code == 200
    log = ''.join(e.text for e in httpd.read_log(pos))
    assert c.client_id in log
    assert r.json()['access_token'] not in log
    assert assertion.split('.')[2] not in log


def test_typ_missing_accepted_and_aud_array(consumers):
    c = consumers.make()
    _r = c.token_response(assertion=c.assertion(header={'typ': None}))
    assert _r.status_code == 200, _r.text
    a = c.assertion(claims={'aud': ['https://elsewhere.example/token', consumers.token_url]})
    _r = c.token_response(assertion=a)
    assert _r.status_code == 200, _r.text


def test_registered_jku_accepted(consumers):
    c = consumers.make(alg='RS384')
    r = c.token_response(assertion=c.assertion(header={'jku': c.jwks_url}))
    assert r.status_code == 200, r.text


def test_client_id_parameter_must_match(consumers):
    c = consumers.make()
    _r = c.token_response(client_id=c.client_id)
    assert _r.status_code == 200, _r.text
    assert_oauth_error(c.token_response(client_id='someone-else'), 401, 'invalid_client')


# ------------------------------------------------------------------ refused assertions

def test_bad_signature(consumers):
    c = consumers.make()
    a = c.assertion(key=new_key('ES384'))
    assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)


def test_unknown_client(consumers):
    c = consumers.make()
    a = c.assertion(claims={'iss': 'no-such-client', 'sub': 'no-such-client'})
    body = assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)
    assert 'unknown client' in body['error_description']


def test_disabled_client(consumers):
    c = consumers.make(status='disabled')
    body = assert_oauth_error(c.token_response(), 401, 'invalid_client')
    assert 'disabled' in body['error_description']
    d = consumers.make()
    _r = d.token_response()
    assert _r.status_code == 200, _r.text
    consumers.set_status(d.client_id, 'disabled')
    time.sleep(1.2)   # the registry cache TTL of the test config
    assert_oauth_error(d.token_response(), 401, 'invalid_client')
    consumers.set_status(d.client_id, 'active')
    time.sleep(1.2)
    _r = d.token_response()
    assert _r.status_code == 200, _r.text


def test_deleted_client(consumers):
    c = consumers.make()
    _r = c.token_response()
    assert _r.status_code == 200, _r.text
    consumers.delete(c.client_id)
    time.sleep(1.2)
    assert_oauth_error(c.token_response(), 401, 'invalid_client')


@pytest.mark.parametrize('what,kw', [
    ('wrong aud', {'aud': 'http://127.0.0.1:1/fhir/auth/token'}),
    ('aud with a trailing slash', 'SLASH'),
    ('iss != sub', {'claims': {'sub': 'somebody-else'}}),
    ('expired', {'exp_in': -120}),
    ('exp too far', {'exp_in': 600}),
    ('exp not an integer', 'EXPSTR'),
    ('exp missing', {'claims': {'exp': None}}),
    ('jti missing', {'claims': {'jti': None}}),
    ('nbf in the future', 'NBF'),
    ('iat in the future', 'IAT'),
    ('typ not JWT', {'header': {'typ': 'JOSE+JSON'}}),
    ('kid missing', {'header': {'kid': None}}),
    ('unknown kid', {'header': {'kid': 'not-a-kid'}}),
    ('jku not registered', {'header': {'jku': 'http://127.0.0.1:1/evil.json'}}),
])
def test_refused_assertion(consumers, what, kw):
    c = consumers.make()
    now = int(time.time())
    if kw == 'SLASH':
        kw = {'aud': consumers.token_url + '/'}
    elif kw == 'EXPSTR':
        kw = {'claims': {'exp': str(now + 200)}}
    elif kw == 'NBF':
        kw = {'claims': {'nbf': now + 200}}
    elif kw == 'IAT':
        kw = {'claims': {'iat': now + 200}}
    a = c.assertion(**kw)
    assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)


def test_expired_within_skew_accepted(consumers):
    c = consumers.make()
    _r = c.token_response(assertion=c.assertion(exp_in=-20))
    assert _r.status_code == 200, _r.text


def test_replayed_jti(consumers):
    c = consumers.make()
    a = c.assertion()
    _r = c.token_response(assertion=a)
    assert _r.status_code == 200, _r.text
    body = assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)
    assert 'replay' in body['error_description'] or 'jti' in body['error_description']
    # the same jti from another client is that client's business
    d = consumers.make()
    jti = uuid.uuid4().hex
    _r = c.token_response(assertion=c.assertion(jti=jti))
    assert _r.status_code == 200, _r.text
    _r = d.token_response(assertion=d.assertion(jti=jti))
    assert _r.status_code == 200, _r.text
    assert_oauth_error(d.token_response(assertion=d.assertion(jti=jti)), 401, 'invalid_client')


def test_replay_seen_by_every_process(consumers, store):
    c = consumers.make()
    a = c.assertion()
    _r = c.token_response(assertion=a)
    assert _r.status_code == 200, _r.text
    # new connections, so other children get the requests too
    codes = [requests.post(consumers.token_url, timeout=30, headers={'Connection': 'close'},
                           data={'grant_type': 'client_credentials',
                                 'client_assertion_type': JWT_BEARER,
                                 'client_assertion': a, 'scope': 'system/*.read'}).status_code
             for _ in range(6)]
    assert codes == [401] * 6
    rows = store.sql("SELECT count(*) FROM atr_jti WHERE client_id = '%s'" % c.client_id)
    assert '1' in str(rows)


def test_alg_none(consumers):
    c = consumers.make()
    a = forge({'alg': 'none', 'typ': 'JWT', 'kid': c.kid}, claims_of(c))
    assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)


@pytest.mark.parametrize('alg', ['ES384', 'RS384'])
def test_hmac_with_the_public_key(consumers, alg):
    c = consumers.make(alg=alg)
    for key in (public_pem(c.key), json.dumps(c.jwks['keys'][0]).encode()):
        for hs in ('HS256', 'HS384'):
            a = forge({'alg': hs, 'typ': 'JWT', 'kid': c.kid}, claims_of(c), hmac_key=key)
            assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)


def test_rs256_refused(consumers):
    c = consumers.make(alg='RS384')
    a = c.assertion(alg='RS256')
    assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)


def test_kty_must_fit_alg(consumers):
    """An RSA client's kid on an ES384 assertion signed by some EC key: no candidate key."""
    c = consumers.make(alg='RS384')
    a = c.assertion(alg='ES384', key=new_key('ES384'))
    assert_oauth_error(c.token_response(assertion=a), 401, 'invalid_client', a)


def test_not_a_jwt(consumers):
    c = consumers.make()
    for junk in ('x', 'a.b.c', 'a' * 5000, c.assertion() + '.extra'):
        assert_oauth_error(c.token_response(assertion=junk), 401, 'invalid_client')


# ------------------------------------------------------------------ JWKS URL and its cache

def test_jwks_cached_and_rotation(consumers, jwks_server):
    c = consumers.make(alg='ES384')
    one = OneChild(c)
    for _ in range(3):
        _r = one.token_response()
        assert _r.status_code == 200, _r.text
    assert jwks_server.hits(c.jwks_path) == 1
    # the client rotates: a new key with a new kid joins its JWKS
    new = new_key('ES384')
    jwks_server.set(c.jwks_path, {'keys': [public_jwk(c.key, c.kid, 'ES384'),
                                           public_jwk(new, 'rotated-1', 'ES384')]})
    a = c.assertion(key=new, header={'kid': 'rotated-1'})
    r = one.token_response(assertion=a)
    assert r.status_code == 200, r.text
    assert jwks_server.hits(c.jwks_path) == 2
    # the refreshed set is cached too
    _r = one.token_response(assertion=c.assertion(key=new, header={'kid': 'rotated-1'}))
    assert _r.status_code == 200, _r.text
    _r = one.token_response()
    assert _r.status_code == 200, _r.text
    assert jwks_server.hits(c.jwks_path) == 2
    # a second unknown kid within 30 s: no second forced refresh
    newer = new_key('ES384')
    jwks_server.set(c.jwks_path, {'keys': [public_jwk(newer, 'rotated-2', 'ES384')]})
    a = c.assertion(key=newer, header={'kid': 'rotated-2'})
    assert_oauth_error(one.token_response(assertion=a), 401, 'invalid_client', a)
    assert jwks_server.hits(c.jwks_path) == 2


def test_jwks_cache_control(consumers, jwks_server):
    c = consumers.make(alg='RS384')
    one = OneChild(c)
    jwks_server.set(c.jwks_path, c.jwks, headers={'Cache-Control': 'no-store'})
    for n in range(1, 4):
        _r = one.token_response()
        assert _r.status_code == 200, _r.text
        assert jwks_server.hits(c.jwks_path) == n
    d = consumers.make(alg='ES384')
    oned = OneChild(d)
    oned.session = one.session   # the same connection, so the same child
    jwks_server.set(d.jwks_path, d.jwks, headers={'Cache-Control': 'public, max-age=3'})
    _r = oned.token_response()
    assert _r.status_code == 200, _r.text
    _r = oned.token_response()
    assert _r.status_code == 200, _r.text
    assert jwks_server.hits(d.jwks_path) == 1
    time.sleep(3.5)
    _r = oned.token_response()
    assert _r.status_code == 200, _r.text
    assert jwks_server.hits(d.jwks_path) == 2


def test_jwks_url_down_with_cached_keys(consumers, jwks_server):
    c = consumers.make()
    one = OneChild(c)
    _r = one.token_response()
    assert _r.status_code == 200, _r.text
    jwks_server.set(c.jwks_path, {'error': 'down'}, status=503)
    _r = one.token_response()
    assert _r.status_code == 200, _r.text
    # an unknown kid forces a refresh, which fails: still refused, cached keys still work
    a = c.assertion(key=new_key('ES384'), header={'kid': 'unknown-kid'})
    assert_oauth_error(one.token_response(assertion=a), 401, 'invalid_client', a)
    _r = one.token_response()
    assert _r.status_code == 200, _r.text


def test_jwks_url_down_without_cached_keys(consumers, jwks_server):
    c = consumers.make()
    jwks_server.set(c.jwks_path, {'error': 'down'}, status=500)
    body = assert_oauth_error(c.token_response(), 401, 'invalid_client')
    assert 'keys could not be fetched' in body['error_description']
    jwks_server.set(c.jwks_path, None)   # 404
    assert_oauth_error(c.token_response(), 401, 'invalid_client')
    jwks_server.set(c.jwks_path, b'<html>not json</html>')
    body = assert_oauth_error(c.token_response(), 401, 'invalid_client')
    assert 'keys could not be fetched' in body['error_description']


def test_jwks_too_large_or_slow(consumers, jwks_server, httpd_config):
    httpd_config('ATRJWKSTimeout 1\nATRJWKSMaxBytes 4096\n')
    c = consumers.make()
    big = dict(c.jwks)
    big['padding'] = 'x' * 10000
    jwks_server.set(c.jwks_path, big)
    body = assert_oauth_error(c.token_response(), 401, 'invalid_client')
    assert 'larger' in body['error_description']
    d = consumers.make()
    jwks_server.set(d.jwks_path, d.jwks, delay=2.5)
    t0 = time.time()
    assert_oauth_error(d.token_response(), 401, 'invalid_client')
    assert time.time() - t0 < 2.4


def test_jwks_redirect_not_followed(consumers, jwks_server):
    c = consumers.make()
    target = '/jwks/redirect-target-%s.json' % c.client_id
    jwks_server.set(target, c.jwks)
    jwks_server.set(c.jwks_path, b'', status=302, headers={'Location': jwks_server.url(target)})
    assert_oauth_error(c.token_response(), 401, 'invalid_client')
    assert jwks_server.hits(target) == 0


def test_http_jwks_url_refused_without_loopback_switch(consumers, httpd_config):
    httpd_config('ATRJWKSAllowLoopbackHTTP Off\n')
    c = consumers.make()
    body = assert_oauth_error(c.token_response(), 401, 'invalid_client')
    assert 'https' in body['error_description']
    # inline keys do not need the URL
    d = consumers.make(jwks='inline')
    _r = d.token_response()
    assert _r.status_code == 200, _r.text


# ------------------------------------------------------------------ request errors

def test_get_is_405(consumers):
    r = requests.get(consumers.token_url, timeout=30)
    assert_oauth_error(r, 405, 'invalid_request')
    assert 'POST' in r.headers['Allow']


def test_bad_grant_type(consumers):
    c = consumers.make()
    for grant in ('password', 'authorization_code', 'client_credential'):
        assert_oauth_error(c.token_response(grant_type=grant), 400, 'unsupported_grant_type')


@pytest.mark.parametrize('missing', ['grant_type', 'client_assertion_type', 'client_assertion', 'scope'])
def test_missing_parameter(consumers, missing):
    c = consumers.make()
    assert_oauth_error(c.token_response(**{missing: None}), 400, 'invalid_request')
    assert_oauth_error(c.token_response(**{missing: ''}), 400, 'invalid_request')


def test_bad_assertion_type(consumers):
    c = consumers.make()
    r = c.token_response(client_assertion_type='urn:ietf:params:oauth:client-assertion-type:saml2-bearer')
    assert_oauth_error(r, 400, 'invalid_request')


def test_duplicate_parameter(consumers):
    c = consumers.make()
    for dup in ('scope', 'client_assertion', 'grant_type'):
        data = [('grant_type', 'client_credentials'), ('client_assertion_type', JWT_BEARER),
                ('client_assertion', c.assertion()), ('scope', 'system/*.read')]
        data.append((dup, dict(data)[dup]))
        r = requests.post(consumers.token_url, data=data, timeout=30)
        body = assert_oauth_error(r, 400, 'invalid_request')
        assert dup in body['error_description']


def test_wrong_content_type(consumers):
    c = consumers.make()
    data = {'grant_type': 'client_credentials', 'client_assertion_type': JWT_BEARER,
            'client_assertion': c.assertion(), 'scope': 'system/*.read'}
    assert_oauth_error(requests.post(consumers.token_url, json=data, timeout=30), 400, 'invalid_request')
    r = requests.post(consumers.token_url, timeout=30, files={'scope': (None, 'system/*.read')})
    assert_oauth_error(r, 400, 'invalid_request')
    r = requests.post(consumers.token_url, timeout=30, data='grant_type=client_credentials',
                      headers={'Content-Type': 'text/plain'})
    assert_oauth_error(r, 400, 'invalid_request')
    # charset parameter is fine
    r = requests.post(consumers.token_url, timeout=30,
                      headers={'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'},
                      data='&'.join('%s=%s' % (k, requests.utils.quote(v, safe='')) for k, v in data.items()))
    assert r.status_code == 200, r.text


def test_body_too_large(consumers):
    c = consumers.make()
    r = c.token_response(padding='x' * 20000)
    assert_oauth_error(r, 400, 'invalid_request')


def test_malformed_escapes(consumers):
    r = requests.post(consumers.token_url, timeout=30, data='grant_type=%zz&scope=%',
                      headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert_oauth_error(r, 400, 'invalid_request')


# ------------------------------------------------------------------ scopes

@pytest.mark.parametrize('allowed,requested,granted', [
    (('system/*.read',), 'system/*.read', 'system/*.read'),
    (('system/*.read',), 'system/Patient.read system/Group.read', 'system/Patient.read system/Group.read'),
    (('system/*.read',), 'system/*.rs', 'system/*.rs'),
    (('system/*.read',), 'system/Group.rs system/Coverage.r', 'system/Group.rs system/Coverage.r'),
    (('system/*.read',), 'system/Patient.read system/Group.write', 'system/Patient.read'),
    (('system/*.read',), 'system/Group.read patient/*.read openid bogus', 'system/Group.read'),
    (('system/Group.read', 'system/Patient.read'), 'system/*.read', None),
    (('system/*.read', 'system/Group.write'), 'system/Group.write system/Group.read',
     'system/Group.write system/Group.read'),
    (('system/Group.rs',), 'system/Group.read', 'system/Group.read'),
])
def test_scope_mediation(consumers, allowed, requested, granted):
    c = consumers.make(scopes=allowed)
    r = c.token_response(scope=requested)
    assert r.status_code == 200, r.text
    got = r.json()['scope'].split()
    if granted is None:
        # a wildcard request from a narrower client: granted the parts it may have
        assert got and all(s.startswith(('system/Group.', 'system/Patient.')) for s in got)
    else:
        assert got == granted.split()


@pytest.mark.parametrize('allowed,requested', [
    (('system/*.read',), 'system/Group.write'),
    (('system/*.read',), 'system/*.cud'),
    (('system/Group.read',), 'system/Patient.read'),
    (('system/*.read',), 'patient/*.read user/*.read'),
    (('system/*.read',), 'system/Group.dus'),
    (('system/*.read',), 'system/Patient.rs?identifier=123'),
])
def test_nothing_grantable(consumers, allowed, requested):
    c = consumers.make(scopes=allowed)
    assert_oauth_error(c.token_response(scope=requested), 400, 'invalid_scope')


# ------------------------------------------------------------------ availability

def test_registry_down_is_503(consumers, httpd_config, allow_errors):
    allow_errors(r'ATR005\d\d', r'(?i)ldap|registry')
    c = consumers.make(jwks='inline')
    httpd_config('ATRRegistryURL "ldap://127.0.0.1:%d"\nATRRegistryRetries 0\nATRRegistryTimeout 1\n'
                 % closed_port())
    r = c.token_response()
    assert_oauth_error(r, 503, 'temporarily_unavailable')
