"""SMART discovery (SMART-DISC-01..04, D26) and the authorize endpoint: the document is
anonymous JSON whatever the Accept header, its URLs are absolute and work, and every scope
it lists is one the token endpoint actually grants."""
import pytest
import requests

WELL_KNOWN = '/.well-known/smart-configuration'
V1_TYPES = ('Group', 'Patient', 'Coverage', 'RelatedPerson', 'Practitioner', 'PractitionerRole',
            'Organization', 'Location')


def discovery(anon, **kw):
    return requests.get(anon.base_url + WELL_KNOWN, timeout=30, **kw)


@pytest.mark.parametrize('accept', [None, 'application/json', 'application/fhir+json', 'text/html',
                                    'application/xml'])
def test_anonymous_json_whatever_accept(anon, accept):
    r = discovery(anon, headers={'Accept': accept} if accept else {})
    assert r.status_code == 200, r.text
    assert r.headers['Content-Type'].split(';')[0].strip() == 'application/json'
    assert isinstance(r.json(), dict)


def test_contents(anon, consumers):
    doc = discovery(anon).json()
    assert doc['token_endpoint'] == anon.base_url + '/auth/token' == consumers.token_url
    assert doc['authorization_endpoint'] == anon.base_url + '/auth/authorize'
    assert doc['token_endpoint_auth_methods_supported'] == ['private_key_jwt']
    assert set(doc['token_endpoint_auth_signing_alg_values_supported']) == {'RS384', 'ES384'}
    assert doc['grant_types_supported'] == ['client_credentials']
    assert {'client-confidential-asymmetric', 'permission-v1', 'permission-v2'} <= set(doc['capabilities'])
    assert doc['code_challenge_methods_supported'] == ['S256']
    scopes = set(doc['scopes_supported'])
    assert {'system/*.read', 'system/*.rs'} <= scopes
    assert {'system/%s.read' % t for t in V1_TYPES} <= scopes        # SCOPE-02
    for url in (doc['token_endpoint'], doc['authorization_endpoint']):
        assert url.startswith('http://') or url.startswith('https://')
    # only with sso-openid-connect
    assert 'issuer' not in doc and 'jwks_uri' not in doc
    assert 'plain' not in doc['code_challenge_methods_supported']


def test_base_url_directive_used(anon, httpd_config):
    httpd_config('<Location /fhir>\n    ATRBaseURL https://payer.example/fhir\n</Location>\n')
    doc = discovery(anon).json()
    assert doc['token_endpoint'] == 'https://payer.example/fhir/auth/token'
    assert doc['authorization_endpoint'] == 'https://payer.example/fhir/auth/authorize'


def test_every_listed_scope_is_granted(anon, consumers):
    """SMART-DISC-04: a client allowed everything gets each listed scope as written."""
    doc = discovery(anon).json()
    c = consumers.make(scopes=('system/*.*',))
    for scope in doc['scopes_supported']:
        r = c.token_response(scope=scope)
        assert r.status_code == 200, (scope, r.text)
        assert r.json()['scope'] == scope


def test_methods(anon):
    r = requests.post(anon.base_url + WELL_KNOWN, data='x=1', timeout=30)
    assert r.status_code == 405
    assert 'GET' in r.headers['Allow']
    assert requests.head(anon.base_url + WELL_KNOWN, timeout=30).status_code == 200


@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_authorize_answers_an_oauth_error(anon, method):
    r = requests.request(method, anon.base_url + '/auth/authorize?response_type=code&client_id=x',
                         timeout=30, allow_redirects=False)
    assert r.status_code == 400
    assert r.headers['Content-Type'].startswith('application/json')
    assert r.headers['Cache-Control'] == 'no-store'
    body = r.json()
    assert body['error'] == 'unsupported_response_type'
    assert body['error_description']


def test_metadata_stays_anonymous(anon):
    r = requests.get(anon.base_url + '/metadata', timeout=30)
    assert r.status_code == 200
