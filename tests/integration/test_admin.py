"""The admin web form (admin-cgi, issue 6) in real headless Chromium against the real httpd
(mod_cgid, mod_authnz_ldap), the CGI, slapd and an SQLite store.

Module fixtures: a store and a slapd of its own (export jobs of another httpd on a shared
store would write files elsewhere; the Consumers registered here must not show up in other
tests' directory searches), with the accounts and ACLs of a real deployment (the CGI writes
as ``cn=atr-admin``, mod_atr reads as ``cn=mod_atr``, httpd's sign-in searches as
``cn=httpd-auth``; harness/browser.py ``AdminSlapd``), staff accounts in it (``alice`` is in
the admin group, ``bob`` is not), an httpd serving /fhir and /atr-admin, and one Chromium
signed in as alice.
Screenshots of every page visited: ``<workdir>/admin-artifacts/*.png`` (the workdir is kept
when a test fails, or always with ATR_KEEP_TEST_DIR=1).
"""
import html
import json
import os
import pwd
import re
import subprocess
import time
import uuid

import ldap
import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from harness import Httpd, Store
from harness.browser import ADMIN_CGI, AdminSite, AdminSlapd, Browser, add_staff
from harness.consumers import Consumer, Consumers, new_key, public_jwk
from harness.examples import ATRCTL

ADMIN, ADMIN_PW = 'alice', 'alice-pw-1'
OTHER, OTHER_PW = 'bob', 'bob-pw-1'
INJECT = '<script>alert("x")</script>'
NPI_SYSTEM = 'http://hl7.org/fhir/sid/us-npi'
TIN_SYSTEM = 'urn:oid:2.16.840.1.113883.4.4'


@pytest.fixture(scope='module')
def admin_store(workdir):
    s = Store(str(workdir / 'admin-store'), owner='www-data' if os.geteuid() == 0 else None)
    s.init()
    files, s.largest_group, _ = s.demo_data(os.path.join(s.directory, 'demo'), 60, 11, contracts=3)
    s.load(*files)
    with open(os.path.join(s.directory, 'demo', 'Group.ndjson'), encoding='utf-8') as f:
        s.groups = {g['id']: g for g in (json.loads(line) for line in f if line.strip())}
    return s


@pytest.fixture(scope='module')
def slapd(workdir):
    """This module's own directory (shadows the session fixture of conftest.py)."""
    d = workdir / 'admin-slapd'
    d.mkdir()
    server = AdminSlapd(str(d))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def site(workdir, slapd, admin_store):
    group_dn = add_staff(slapd, {ADMIN: (ADMIN_PW, True), OTHER: (OTHER_PW, False)})
    return AdminSite(str(workdir / 'admin-site'), slapd, admin_store, group_dn)


@pytest.fixture(scope='module')
def admin_httpd(workdir, admin_store, slapd, site):
    # mod_atr binds as its read-only account, as in production.
    server = Httpd(str(workdir / 'admin-httpd'), admin_store, slapd=slapd.reader_view())
    site.install(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def browser(workdir, admin_httpd, site):
    b = Browser(site.base_url, ADMIN, ADMIN_PW, str(workdir / 'admin-artifacts'))
    yield b
    b.quit()


@pytest.fixture(scope='module')
def staff(site, admin_httpd):
    """requests.Session signed in as the admin (for what a browser would not send)."""
    s = requests.Session()
    s.auth = (ADMIN, ADMIN_PW)
    return s


def csrf_of(session, url):
    r = session.get(url, timeout=30)
    assert r.status_code == 200, r.text
    m = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert m, 'no CSRF field in ' + url
    return m.group(1), r.text


def ldap_entry(slapd, client_id):
    conn = slapd.connect()
    try:
        res = conn.search_s('atrClientId=%s,%s' % (client_id, slapd.clients_dn), ldap.SCOPE_BASE,
                            attrlist=['*', 'modifiersName', 'modifyTimestamp'])
    except ldap.NO_SUCH_OBJECT:
        return None
    finally:
        conn.unbind_s()
    return {k: [v.decode() for v in vals] for k, vals in res[0][1].items()}


def shown_time(generalized):
    """How the pages show a GeneralizedTime: 20261125011500Z -> 2026-11-25 01:15:00 UTC."""
    g = generalized
    return '%s-%s-%s %s:%s:%s UTC' % (g[0:4], g[4:6], g[6:8], g[8:10], g[10:12], g[12:14])


def ident(group, system):
    return next(i['value'] for i in group['identifier'] if i.get('system') == system)


def new_client_form(browser):
    browser.go('/new')
    return browser.find('#client_id').get_attribute('value')


def check_scope(browser, scope):
    for box in browser.find_all('#scopes input[type=checkbox]'):
        if box.get_attribute('value') == scope and not box.is_selected():
            box.click()


def no_alert(browser):
    try:
        browser.driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


# ---- sign-in (httpd) ------------------------------------------------------------------------

def test_admin_signed_in_sees_consumer_list(browser, site):
    browser.go('/')
    browser.shot('consumer-list')
    assert browser.title == 'Consumers - ATR Consumers'
    assert browser.text('#signed-in-user') == ADMIN
    assert browser.find('label[for=q]').text.startswith('Search by client id')


@pytest.mark.allow_errors(r'AH01617: user alice: authentication failure')
def test_no_credentials_or_wrong_password_is_401(site, admin_httpd):
    r = requests.get(site.base_url + '/', timeout=30)
    assert r.status_code == 401
    assert r.headers['WWW-Authenticate'] == 'Basic realm="ATR Consumer administration"'
    r = requests.get(site.base_url + '/', auth=(ADMIN, 'wrong'), timeout=30)
    assert r.status_code == 401


@pytest.mark.allow_errors(r'AH0163\d: .*user bob')
def test_non_admin_is_refused_by_httpd(site, admin_httpd):
    before = site.audit_lines()
    for method, path in (('GET', '/'), ('GET', '/new'), ('POST', '/new')):
        r = requests.request(method, site.base_url + path, auth=(OTHER, OTHER_PW), timeout=30,
                             data={'client_id': 'x'} if method == 'POST' else None)
        # A valid account outside the admin group: httpd answers 403 (Require ldap-group,
        # AuthzSendForbiddenOnFailure On) before the CGI runs: nothing of the form is served.
        assert r.status_code == 403, r.status_code
        assert 'Forbidden' in r.text
        assert 'signed-in-user' not in r.text and 'csrf' not in r.text
    assert site.audit_lines() == before


def test_pages_carry_strict_headers(staff, site):
    r = staff.get(site.base_url + '/', timeout=30)
    assert r.status_code == 200
    csp = r.headers['Content-Security-Policy']
    assert "default-src 'none'" in csp and "script-src" not in csp and "'unsafe-inline'" not in csp
    assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers['X-Content-Type-Options'] == 'nosniff'
    assert r.headers['Cache-Control'] == 'no-store'
    assert '<script' not in r.text.lower() and ' style=' not in r.text and '<style' not in r.text
    css = staff.get(site.base_url + '/style.css', timeout=30)
    assert css.status_code == 200 and css.headers['Content-Type'].startswith('text/css')


# ---- the whole story: register, link, token + export, disable -------------------------------

def test_register_link_token_export_disable(browser, site, slapd, admin_store, admin_httpd,
                                            jwks_server):
    key = new_key('ES384')
    kid = 'adm-' + uuid.uuid4().hex[:8]
    jwks_path = '/admin-jwks/%s.json' % kid
    jwks_server.set(jwks_path, {'keys': [public_jwk(key, kid, 'ES384')]})
    group_id = admin_store.largest_group
    group = admin_store.groups[group_id]
    npi = ident(group, NPI_SYSTEM)

    # Register (the id is generated by the form).
    client_id = new_client_form(browser)
    assert re.fullmatch(r'atr-[0-9a-f]{20}', client_id)
    browser.fill('name', 'Riverside Clinic IT')
    browser.fill('contact', 'it@riverside.example')
    browser.fill('jwks_url', jwks_server.url(jwks_path))
    check_scope(browser, 'system/*.read')
    browser.fill('npi', '1234567893')
    browser.fill('tin', '123456789')
    browser.shot('register-filled')
    browser.click('#save')
    browser.shot('registered')
    assert browser.url.endswith('/client/%s?done=added' % client_id)
    assert browser.text('#done') == 'The Consumer was registered.'
    assert browser.text('#d-status') == 'active'
    rows = [r.text for r in browser.find_all('table.keys tbody tr')]
    assert rows == ['%s EC ES384' % kid]          # the URL's keys by kid / kty / alg
    entry = ldap_entry(slapd, client_id)
    assert entry['atrJwksUrl'] == [jwks_server.url(jwks_path)]
    assert entry['atrScope'] == ['system/*.read'] and entry['atrClientStatus'] == ['active']
    assert entry['atrNpi'] == ['1234567893'] and entry['atrTin'] == ['123456789']
    # Who registered it: the signed-in staff member, written with the entry itself; the
    # directory's own record names the CGI's service account.
    assert entry['atrChangedBy'] == [ADMIN]
    assert re.fullmatch(r'\d{14}Z', entry['atrChangedAt'][0])
    assert browser.text('#d-changed') == '%s by %s' % (shown_time(entry['atrChangedAt'][0]), ADMIN)
    assert browser.text('#d-written').endswith('by %s (directory)' % slapd.admin_dn)
    assert entry['modifiersName'] == [slapd.admin_dn]
    assert any('ATR00910: registered client %s' % client_id in line and 'user="alice"' in line
               for line in site.audit_lines())

    # Link a Group found by its NPI: period, status and member count are shown.
    browser.click('#link-groups')
    browser.fill('gq', npi)
    browser.click('#group-search')
    browser.shot('group-search')
    row = browser.find('#found-groups tbody tr')
    cells = [c.text for c in row.find_elements(By.TAG_NAME, 'td')]
    period = next(e['valuePeriod'] for e in group['extension'] if e['url'].endswith('contractValidityPeriod'))
    status = next(e['valueCode'] for e in group['extension'] if e['url'].endswith('attributionListStatus'))
    assert cells[:5] == [group_id, group['name'], '%s – %s' % (period['start'], period['end']),
                         status, str(group['quantity'])]
    browser.click_element(row.find_element(By.CSS_SELECTOR, 'button.link'))
    browser.shot('group-linked')
    assert browser.text('#done') == 'The Group was linked.'
    assert ldap_entry(slapd, client_id)['atrGroupId'] == [group_id]
    assert any('linked Group %s to client %s' % (group_id, client_id) in line for line in site.audit_lines())

    # Outside the browser, the new Consumer gets a token and exports its Group.
    consumer = Consumer(Consumers(slapd, admin_httpd, jwks_server), client_id, 'ES384', key, kid,
                        jwks_path)
    token = consumer.token('system/*.read')
    auth = {'Authorization': 'Bearer ' + token}
    r = admin_httpd.get('/Group/%s/$davinci-data-export' % group_id,
                        headers=dict(auth, Prefer='respond-async', Accept='application/fhir+json'))
    assert r.status_code == 202, r.text
    status_url = r.headers['Content-Location']
    deadline = time.monotonic() + 120
    while True:
        r = admin_httpd.get(status_url, headers=auth)
        if r.status_code not in (202, 429) or time.monotonic() > deadline:
            break
        time.sleep(float(r.headers.get('Retry-After', '1')))
    assert r.status_code == 200, r.text
    manifest = r.json()
    types = {o['type'] for o in manifest['output']}
    assert 'Group' in types and 'Patient' in types
    group_file = next(o['url'] for o in manifest['output'] if o['type'] == 'Group')
    r = admin_httpd.get(group_file, headers=auth)
    assert r.status_code == 200
    assert json.loads(r.text.splitlines()[0])['id'] == group_id

    # Disable in the browser: the next token request fails (within the registry cache TTL,
    # 1 s in tests).
    browser.go('/client/' + client_id)
    browser.click('#toggle-status')
    browser.shot('disabled')
    assert browser.text('#done').startswith('The Consumer is disabled')
    assert browser.text('#d-status') == 'disabled'
    assert ldap_entry(slapd, client_id)['atrClientStatus'] == ['disabled']
    deadline = time.monotonic() + 30
    while True:
        r = consumer.token_response('system/*.read')
        if r.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.status_code in (400, 401), r.text
    assert r.json()['error'] == 'invalid_client'
    # Unlink, enable: the list shows it active again without Groups.
    browser.go('/client/' + client_id)
    browser.click('#linked-groups button.unlink')
    assert browser.text('#done') == 'The Group was unlinked.'
    assert 'atrGroupId' not in ldap_entry(slapd, client_id)
    browser.click('#toggle-status')
    assert browser.text('#d-status') == 'active'
    browser.go('/?q=' + client_id)
    browser.shot('list-after-changes')
    cells = [c.text for c in browser.find_all('#consumers tbody tr td')]
    assert cells[:6] == [client_id, 'Riverside Clinic IT', 'active', '1234567893', '123456789', '']


def test_pasted_jwks_keys_are_shown(browser, slapd):
    key = new_key('RS384')
    jwks = {'keys': [public_jwk(key, 'rsa-1', 'RS384')]}
    client_id = new_client_form(browser)
    browser.fill('jwks', json.dumps(jwks))
    check_scope(browser, 'system/Group.read')
    browser.click('#save')
    browser.shot('registered-inline-jwks')
    assert [r.text for r in browser.find_all('table.keys tbody tr')] == ['rsa-1 RSA RS384']
    assert json.loads(ldap_entry(slapd, client_id)['atrJwks'][0]) == jwks


# ---- validation ------------------------------------------------------------------------------

def test_every_invalid_field_is_reported_and_the_form_stays_filled(browser, slapd):
    client_id = new_client_form(browser)
    browser.fill('name', 'Kept Name')
    browser.fill('jwks_url', 'ftp://keys.example/jwks.json')
    browser.fill('jwks', '{"keys": "nope"}')
    browser.fill('npi', '1234567890')      # check digit wrong (1234567893 is right)
    browser.fill('tin', '12-345678')
    browser.fill('contract', 'no-bar-here')
    browser.click('#save')
    browser.shot('validation-errors')
    errors = [li.text for li in browser.find_all('#errors li')]
    assert any(e.startswith('JWKS URL:') and 'not https' in e for e in errors), errors
    assert any(e.startswith('inline JWKS:') for e in errors), errors
    assert any(e.startswith("NPI: '1234567890'") and 'check digit' in e for e in errors), errors
    assert any(e.startswith("TIN: '12-345678'") for e in errors), errors
    assert any(e.startswith("contract: 'no-bar-here'") for e in errors), errors
    assert 'scope: choose at least one scope' in errors
    # The form comes back filled in, with the same generated id.
    assert browser.find('#client_id').get_attribute('value') == client_id
    assert browser.find('#name').get_attribute('value') == 'Kept Name'
    assert browser.find('#npi').get_attribute('value') == '1234567890'
    assert browser.find('#contract').get_attribute('value') == 'no-bar-here'
    assert ldap_entry(slapd, client_id) is None


def test_unreachable_jwks_url_is_reported(browser, jwks_server, slapd):
    client_id = new_client_form(browser)
    browser.fill('jwks_url', jwks_server.url('/admin-jwks/missing.json'))
    check_scope(browser, 'system/*.read')
    browser.click('#save')
    errors = [li.text for li in browser.find_all('#errors li')]
    assert len(errors) == 1 and errors[0].startswith('JWKS URL:'), errors
    assert ldap_entry(slapd, client_id) is None


# ---- edit, delete ----------------------------------------------------------------------------

def test_edit_then_delete_with_confirmation(browser, staff, site, slapd):
    key = new_key('ES384')
    client_id = new_client_form(browser)
    browser.fill('jwks', json.dumps({'keys': [public_jwk(key, 'e1', 'ES384')]}))
    check_scope(browser, 'system/*.read')
    browser.click('#save')
    browser.click('#edit')
    browser.shot('edit-form')
    browser.fill('name', 'Renamed Org')
    browser.fill('contract', 'http://payer.example/contracts|C-9')
    browser.click('#save')
    assert browser.text('#done') == 'Changes saved.'
    assert browser.text('#d-name') == 'Renamed Org'
    entry = ldap_entry(slapd, client_id)
    assert entry['displayName'] == ['Renamed Org']
    assert entry['atrContractId'] == ['http://payer.example/contracts|C-9']
    assert entry['atrChangedBy'] == [ADMIN]
    assert browser.text('#d-changed') == '%s by %s' % (shown_time(entry['atrChangedAt'][0]), ADMIN)
    # Delete: a confirmation page first; without the box ticked nothing is deleted.
    browser.click('#delete')
    browser.shot('delete-confirmation')
    token, _ = csrf_of(staff, site.base_url + '/client/%s/delete' % client_id)
    r = staff.post(site.base_url + '/client/%s/delete' % client_id, data={'csrf': token}, timeout=30)
    assert r.status_code == 400
    assert ldap_entry(slapd, client_id) is not None
    browser.click('#confirm')
    browser.click('#confirm-delete')
    browser.shot('deleted')
    assert browser.text('#done') == 'The Consumer was deleted.'
    assert ldap_entry(slapd, client_id) is None
    assert any('ATR00913: deleted client %s' % client_id in line and 'user="alice"' in line
               for line in site.audit_lines())


# ---- security --------------------------------------------------------------------------------

def test_post_without_or_with_a_bad_csrf_token_is_refused(staff, site, slapd):
    token, page = csrf_of(staff, site.base_url + '/new')
    client_id = re.search(r'id="client_id" name="client_id" value="([^"]+)"', page).group(1)
    form = {'client_id': client_id, 'jwks_url': 'https://keys.example/jwks.json',
            'scope': 'system/*.read'}
    for bad in (None, '', 'garbage', '1.' + '0' * 64, token[:-1] + ('0' if token[-1] != '0' else '1')):
        data = dict(form)
        if bad is not None:
            data['csrf'] = bad
        r = staff.post(site.base_url + '/new', data=data, timeout=30)
        assert r.status_code == 403, (bad, r.status_code)
        assert 'no valid CSRF token' in r.text
    assert ldap_entry(slapd, client_id) is None
    assert any('ATR00906' in line and 'user="alice"' in line for line in site.audit_lines())
    # The same on the other forms.
    for path, data in (('/client/%s/status' % client_id, {'status': 'disabled'}),
                       ('/client/%s/delete' % client_id, {'confirm': 'yes'}),
                       ('/client/%s/link' % client_id, {'group': 'grp-1'})):
        r = staff.post(site.base_url + path, data=data, timeout=30)
        assert r.status_code == 403


def test_injected_script_comes_back_escaped_in_every_field(browser, staff, site, slapd):
    # Refused values are echoed back in the form and the error messages ...
    client_id = new_client_form(browser)
    for field in ('name', 'contact', 'description', 'jwks_url', 'jwks', 'npi', 'tin', 'contract'):
        browser.fill(field, INJECT)
    browser.click('#save')
    browser.shot('injection-refused')
    assert no_alert(browser)
    assert browser.find_all('#errors li')
    for field in ('name', 'contact', 'description', 'jwks_url', 'jwks', 'npi', 'tin', 'contract'):
        assert browser.find('#' + field).get_attribute('value') == INJECT, field
    assert not browser.find_all('main script')
    # ... and in raw HTML the markup is escaped wherever it appears.
    token, _ = csrf_of(staff, site.base_url + '/new')
    data = {'csrf': token, 'client_id': client_id, 'scope': 'system/*.read'}
    data.update({f: INJECT for f in ('name', 'contact', 'description', 'jwks_url', 'jwks', 'npi',
                                     'tin', 'contract')})
    r = staff.post(site.base_url + '/new', data=data, timeout=30)
    assert r.status_code == 400
    assert '<script' not in r.text.lower()
    assert html.escape(INJECT, quote=True).replace('&#x27;', '&#39;') in r.text
    # Accepted values (name, description, a contract id) are stored, then shown escaped.
    key = new_key('ES384')
    browser.go('/new')
    client_id = browser.find('#client_id').get_attribute('value')
    browser.fill('name', INJECT)
    browser.fill('description', INJECT + ' & "quotes"')
    browser.fill('contract', 'urn:x|' + INJECT.replace(' ', ''))
    browser.fill('jwks', json.dumps({'keys': [public_jwk(key, INJECT.replace(' ', ''), 'ES384')]}))
    check_scope(browser, 'system/*.read')
    browser.click('#save')
    browser.shot('injection-stored')
    assert no_alert(browser)
    assert browser.text('#d-name') == INJECT
    assert browser.text('#d-description') == INJECT + ' & "quotes"'
    assert browser.text('table.keys td.kid') == INJECT.replace(' ', '')
    for path in ('/client/' + client_id, '/?q=' + client_id, '/client/%s/edit' % client_id,
                 '/client/%s/delete' % client_id, '/?q=' + requests.utils.quote(INJECT),
                 '/client/%s/groups?q=%s' % (client_id, requests.utils.quote(INJECT))):
        r = staff.get(site.base_url + path, timeout=30)
        assert r.status_code == 200, path
        assert '<script' not in r.text.lower(), path
        assert '&lt;script&gt;' in r.text, path
    browser.go('/?q=' + client_id)
    assert no_alert(browser)
    assert browser.find_all('#consumers tbody tr td')[1].text == INJECT


@pytest.mark.parametrize('text', ['*', '*)(atrClientId=*', ')(|(objectClass=*)', '\\2a',
                                  '(objectClass=*', '\\', 'x*', '%', '_'])
def test_ldap_filter_metacharacters_in_search_are_harmless(staff, site, slapd, text):
    # At least two Consumers exist whose ids contain no metacharacter.
    for _ in range(2):
        token, page = csrf_of(staff, site.base_url + '/new')
        cid = re.search(r'name="client_id" value="([^"]+)"', page).group(1)
        key = new_key('ES384')
        r = staff.post(site.base_url + '/new', timeout=30, allow_redirects=False, data={
            'csrf': token, 'client_id': cid, 'scope': 'system/*.read',
            'jwks': json.dumps({'keys': [public_jwk(key, 'k', 'ES384')]})})
        assert r.status_code == 303, r.text
    r = staff.get(site.base_url + '/', params={'q': text}, timeout=30)
    assert r.status_code == 200
    assert 'id="no-results"' in r.text          # taken literally: nothing matches
    assert 'id="consumers"' not in r.text
    # Group search in the store: also literal.
    r = staff.get(site.base_url + '/client/%s/groups' % cid, params={'q': text}, timeout=30)
    assert r.status_code == 200
    assert 'id="no-results"' in r.text and 'id="found-groups"' not in r.text


def test_group_search_by_tin_and_name(browser, staff, site, admin_store):
    token, page = csrf_of(staff, site.base_url + '/new')
    cid = re.search(r'name="client_id" value="([^"]+)"', page).group(1)
    key = new_key('ES384')
    r = staff.post(site.base_url + '/new', timeout=30, allow_redirects=False, data={
        'csrf': token, 'client_id': cid, 'scope': 'system/*.read',
        'jwks': json.dumps({'keys': [public_jwk(key, 'k', 'ES384')]})})
    assert r.status_code == 303
    gid, group = sorted(admin_store.groups.items())[0]
    browser.go('/client/%s/groups' % cid)
    browser.fill('gq', ident(group, TIN_SYSTEM))
    browser.click('#group-search')
    assert [r.text for r in browser.find_all('#found-groups td.gid')] == [gid]
    word = group['name'].split()[-2].lower()    # part of the name, other case
    browser.fill('gq', word)
    browser.click('#group-search')
    browser.shot('group-search-by-name')
    found = [r.text for r in browser.find_all('#found-groups td.gid')]
    assert gid in found
    assert all(word in admin_store.groups[g]['name'].lower() for g in found)


def test_oversized_form_is_refused(staff, site):
    token, _ = csrf_of(staff, site.base_url + '/new')
    r = staff.post(site.base_url + '/new', timeout=30,
                   data={'csrf': token, 'description': 'x' * 300000})
    assert r.status_code == 413


def test_cgi_without_remote_user_fails_closed(site):
    # httpd misconfigured (no authentication on /atr-admin): the program itself refuses.
    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'SCRIPT_NAME': '/atr-admin',
           'ATR_ADMIN_CONF': site.conf_path, 'PATH': '/usr/bin:/bin'}
    p = subprocess.run([ADMIN_CGI], env=env, capture_output=True, timeout=30)
    assert p.returncode == 0
    assert p.stdout.startswith(b'Status: 403 Forbidden\r\n')
    assert b'Sign-in is required.' in p.stdout and b'csrf' not in p.stdout
    assert b'ATR00907' in p.stderr


# ---- who changed it last: atrctl and the form write atrChangedBy / atrChangedAt -------------

def atrctl_client(slapd, tmp_path, *args):
    """``atrctl client ARGS`` bound as the admin service account of this directory."""
    pw = tmp_path / 'admin-ldap.pw'
    pw.write_text(slapd.admin_pw + '\n')
    os.chmod(pw, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith('ATR_LDAP_')}
    env.update({'ATR_LDAP_URI': slapd.ldap_uri, 'ATR_LDAP_BASE': slapd.clients_dn,
                'ATR_LDAP_BIND_DN': slapd.admin_dn, 'ATR_LDAP_PASSWORD_FILE': str(pw)})
    return subprocess.run([ATRCTL, 'client', *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_atrctl_changes_record_the_unix_user_and_the_form_records_the_admin(browser, slapd,
                                                                           tmp_path):
    me = 'atrctl:' + pwd.getpwuid(os.geteuid()).pw_name
    cid = 'adm-ctl-' + uuid.uuid4().hex[:10]
    key = new_key('ES384')
    jwks = tmp_path / 'jwks.json'
    jwks.write_text(json.dumps({'keys': [public_jwk(key, 'c1', 'ES384')]}))
    p = atrctl_client(slapd, tmp_path, 'add', cid, '--jwks-file', str(jwks),
                      '--scope', 'system/*.read', '--name', 'Via atrctl')
    assert p.returncode == 0, p.stderr
    entry = ldap_entry(slapd, cid)
    assert entry['atrChangedBy'] == [me]
    assert re.fullmatch(r'\d{14}Z', entry['atrChangedAt'][0])
    assert entry['modifiersName'] == [slapd.admin_dn]
    p = atrctl_client(slapd, tmp_path, 'show', cid)
    assert p.returncode == 0, p.stderr
    assert 'changed_by: ' + me in p.stdout.splitlines()
    assert 'changed_at: ' + entry['atrChangedAt'][0] in p.stdout.splitlines()
    assert json.loads(atrctl_client(slapd, tmp_path, 'show', cid, '--json').stdout)['changed_by'] == me

    # Every atrctl change sets both again (a modify, not only the add).
    conn = slapd.connect()
    try:
        conn.modify_s('atrClientId=%s,%s' % (cid, slapd.clients_dn),
                      [(ldap.MOD_REPLACE, 'atrChangedBy', [b'someone-else']),
                       (ldap.MOD_REPLACE, 'atrChangedAt', [b'20000101000000Z'])])
    finally:
        conn.unbind_s()
    p = atrctl_client(slapd, tmp_path, 'disable', cid)
    assert p.returncode == 0, p.stderr
    entry = ldap_entry(slapd, cid)
    assert entry['atrChangedBy'] == [me] and entry['atrChangedAt'][0] > '20000101000000Z'
    assert entry['atrClientStatus'] == ['disabled']

    # The page and the list show the atrctl user; an edit in the browser replaces it with the
    # signed-in admin, in the same modify as the edit.
    browser.go('/client/' + cid)
    assert browser.text('#d-changed') == '%s by %s' % (shown_time(entry['atrChangedAt'][0]), me)
    browser.go('/?q=' + cid)
    assert browser.find_all('#consumers tbody tr td')[6].text == '%s by %s' % (
        shown_time(entry['atrChangedAt'][0]), me)
    browser.go('/client/%s/edit' % cid)
    browser.fill('name', 'Edited in the browser')
    browser.click('#save')
    browser.shot('changed-by-admin-after-atrctl')
    assert browser.text('#done') == 'Changes saved.'
    entry = ldap_entry(slapd, cid)
    assert entry['displayName'] == ['Edited in the browser'] and entry['atrChangedBy'] == [ADMIN]
    assert browser.text('#d-changed') == '%s by %s' % (shown_time(entry['atrChangedAt'][0]), ADMIN)
    browser.go('/?q=' + cid)
    assert browser.find_all('#consumers tbody tr td')[6].text.endswith(' by ' + ADMIN)


def test_entry_without_change_record_is_shown(browser, slapd, tmp_path):
    # Written by another tool (here python-ldap as the root DN): no atrChangedBy/At.
    cid = 'adm-raw-' + uuid.uuid4().hex[:10]
    slapd.add_consumer(cid, atrClientStatus='active', atrJwksUrl='https://keys.example/j.json',
                       atrScope='system/*.read', displayName='Raw entry')
    browser.go('/client/' + cid)
    browser.shot('change-not-recorded')
    assert browser.text('#d-name') == 'Raw entry'
    assert browser.text('#d-changed') == 'not recorded'
    assert browser.text('#d-written').endswith('by %s (directory)' % slapd.root_dn)
    p = atrctl_client(slapd, tmp_path, 'show', cid)
    assert p.returncode == 0, p.stderr
    assert not any(line.startswith('changed_') for line in p.stdout.splitlines())


# ---- least privilege: each account can do its job and nothing else ---------------------------

def test_directory_accounts_have_least_privilege(slapd, site):
    staff_dn = 'ou=staff,' + slapd.suffix
    group_dn = 'cn=atr-admins,ou=groups,' + slapd.suffix
    cid = 'adm-acl-' + uuid.uuid4().hex[:10]
    dn = 'atrClientId=%s,%s' % (cid, slapd.clients_dn)
    entry = [('objectClass', [b'atrConsumer']), ('atrClientId', [cid.encode()]),
             ('atrClientStatus', [b'active'])]

    def as_(who):
        return slapd.connect_as(*{'admin': (slapd.admin_dn, slapd.admin_pw),
                                  'reader': (slapd.reader_dn, slapd.reader_pw),
                                  'auth': (slapd.auth_dn, slapd.auth_pw)}[who])

    def clients(conn):
        return [d for d, _ in conn.search_s(slapd.clients_dn, ldap.SCOPE_ONELEVEL, '(objectClass=*)',
                                            ['1.1'])]

    # The admin CGI's account: adds, modifies, deletes Consumers; sees nothing else.
    conn = as_('admin')
    try:
        conn.add_s(dn, entry)
        conn.modify_s(dn, [(ldap.MOD_REPLACE, 'atrClientStatus', [b'disabled'])])
        assert dn in clients(conn)
        with pytest.raises(ldap.NO_SUCH_OBJECT):
            conn.search_s(staff_dn, ldap.SCOPE_SUBTREE, '(objectClass=*)')
        # (slapd answers "no such object" where the account may not even know it exists)
        with pytest.raises((ldap.INSUFFICIENT_ACCESS, ldap.NO_SUCH_OBJECT)):
            conn.modify_s(group_dn, [(ldap.MOD_ADD, 'member', [slapd.admin_dn.encode()])])
    finally:
        conn.unbind_s()
    # mod_atr's reader: reads Consumers, cannot change or add them, sees no staff.
    conn = as_('reader')
    try:
        assert dn in clients(conn)
        with pytest.raises(ldap.INSUFFICIENT_ACCESS):
            conn.modify_s(dn, [(ldap.MOD_REPLACE, 'atrClientStatus', [b'active'])])
        with pytest.raises(ldap.INSUFFICIENT_ACCESS):
            conn.add_s('atrClientId=x-%s,%s' % (cid, slapd.clients_dn), entry[:1] + [
                ('atrClientId', [('x-' + cid).encode()])])
        with pytest.raises(ldap.INSUFFICIENT_ACCESS):
            conn.delete_s(dn)
        with pytest.raises(ldap.NO_SUCH_OBJECT):
            conn.search_s(staff_dn, ldap.SCOPE_SUBTREE, '(objectClass=*)')
    finally:
        conn.unbind_s()
    # httpd's sign-in account: finds staff and checks group membership, never sees a
    # password or a Consumer, writes nothing.
    conn = as_('auth')
    try:
        found = conn.search_s(staff_dn, ldap.SCOPE_ONELEVEL, '(uid=%s)' % ADMIN, ['*'])
        assert len(found) == 1 and 'userPassword' not in found[0][1]
        assert conn.compare_s(group_dn, 'member', found[0][0].encode())
        with pytest.raises(ldap.NO_SUCH_OBJECT):
            conn.search_s(slapd.clients_dn, ldap.SCOPE_ONELEVEL, '(objectClass=*)')
        with pytest.raises(ldap.INSUFFICIENT_ACCESS):
            conn.modify_s(group_dn, [(ldap.MOD_ADD, 'member', [slapd.auth_dn.encode()])])
    finally:
        conn.unbind_s()
    # Anonymous: nothing at all.
    conn = ldap.initialize(slapd.ldap_uri)
    try:
        with pytest.raises(ldap.NO_SUCH_OBJECT):
            conn.search_s(slapd.clients_dn, ldap.SCOPE_ONELEVEL, '(objectClass=*)')
    finally:
        conn.unbind_s()
    conn = as_('admin')
    try:
        conn.delete_s(dn)
    finally:
        conn.unbind_s()
