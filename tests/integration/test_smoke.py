"""Smoke tests: the server answers, serves an IG example to a Consumer with a token, refuses
it without one, and reports unknown ids properly."""


def _json(resp):
    assert resp.headers.get('Content-Type', '').startswith('application/fhir+json'), \
        resp.headers.get('Content-Type')
    return resp.json()


def test_metadata_is_a_capability_statement(anon):
    r = anon.get('metadata')
    assert r.status_code == 200
    body = _json(r)
    assert body['resourceType'] == 'CapabilityStatement'
    assert body['fhirVersion'] == '4.0.1'
    assert body['kind'] == 'instance'


def test_group_fullexample_read(fhir, store):
    r = fhir.get('Group/fullexample')
    assert r.status_code == 200
    body = _json(r)
    assert body['resourceType'] == 'Group'
    assert body['id'] == 'fullexample'
    members = [m['entity']['reference'] for m in body['member']]
    assert members == ['Patient/1', 'Patient/2', 'Patient/3']
    assert body['meta']['versionId']
    assert r.headers.get('ETag', '').startswith('W/"')


def test_group_read_without_token_is_401(anon):
    r = anon.get('Group/fullexample')
    assert r.status_code == 401
    assert r.headers.get('WWW-Authenticate', '').startswith('Bearer')
    body = _json(r)
    assert body['resourceType'] == 'OperationOutcome'
    assert body['issue'][0]['code'] == 'login'


def test_unknown_group_is_404_operation_outcome(fhir):
    r = fhir.get('Group/no-such-group')
    assert r.status_code == 404
    body = _json(r)
    assert body['resourceType'] == 'OperationOutcome'
    assert body['issue'] and body['issue'][0]['severity'] in ('error', 'fatal')


def test_largest_demo_group_is_served(fhir, store):
    r = fhir.get('Group/' + store.largest_group, params={'_summary': 'true'})
    assert r.status_code == 200
    body = _json(r)
    assert body['id'] == store.largest_group
    assert 'member' not in body


def test_slapd_has_the_consumer_schema(slapd):
    dn = slapd.add_consumer('smoke-client', atrClientStatus='active',
                            atrScope=['system/Group.read'], atrNpi=['1234567893'],
                            atrContractId=['http://example.org/contract|C-1'],
                            atrGroupId=['fullexample'], displayName='Smoke Clinic')
    conn = slapd.connect()
    try:
        found = conn.search_s(slapd.clients_dn, 2, '(atrNpi=1234567893)', ['atrGroupId'])
    finally:
        conn.unbind_s()
    assert [(d, a) for d, a in found] == [(dn, {'atrGroupId': [b'fullexample']})]
