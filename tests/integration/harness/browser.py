"""The admin web form (admin-cgi) in tests: its staff accounts in the test slapd, its config,
httpd serving it at /atr-admin/, and a real headless Chromium driven by Selenium.

* :class:`AdminSlapd` -- an :class:`AtrSlapd` with production-like accounts and ACLs (those of
  script/lib.sh): ``cn=atr-admin`` (the CGI's service account) writes ``ou=clients``,
  ``cn=mod_atr`` (mod_atr's reader) only reads it, ``cn=httpd-auth`` (httpd's sign-in
  searches) reads ``ou=staff`` and ``ou=groups`` but no password; nobody else sees anything.
  The root DN stays for the tests' own checks. ``reader_view()`` is what to give
  :class:`Httpd` so that mod_atr binds as its reader.
* :func:`add_staff` -- ``ou=staff`` users and the ``cn=atr-admins`` group (``groupOfNames``)
  in an :class:`AtrSlapd`; httpd signs staff in against them (``AuthBasicProvider ldap``,
  ``Require ldap-group``).
* :class:`AdminSite` -- writes the CGI's config (LDAP service account and password file, the
  store, a CSRF key, an audit log) and the httpd snippet (adapted from conf/atr-admin.conf)
  that replaces ``@ADMIN@`` in the template; ``install(httpd)`` before ``httpd.start()``.
* :class:`Browser` -- headless Chromium (Debian ``chromium`` + ``chromium-driver``) signed in
  as one staff member (a Basic ``Authorization`` header on every request, set through the
  DevTools protocol, since a headless browser has no login dialog). ``shot(name)`` keeps a
  full-page PNG of the current page as a test artifact in ``<artifact_dir>/NN-name.png``.
"""
import base64
import grp
import os
import pwd
import types

import ldap
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from .paths import Paths
from .slapd import AtrSlapd

CHROMIUM = os.environ.get('ATR_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('ATR_CHROMEDRIVER', '/usr/bin/chromedriver')
ADMIN_CGI = os.path.join(Paths.top, 'admin-cgi', 'atr-admin')

STAFF_OU = 'ou=staff'
GROUPS_OU = 'ou=groups'
ADMIN_GROUP_CN = 'atr-admins'


class AdminSlapd(AtrSlapd):
    """slapd with the service accounts and access rules of a real deployment.

    Attributes: ``admin_dn``/``admin_pw`` (writes ``ou=clients``), ``reader_dn``/``reader_pw``
    (reads it), ``auth_dn``/``auth_pw`` (reads ``ou=staff`` and ``ou=groups``).
    """

    def __init__(self, rundir_parent):
        super().__init__(rundir_parent)
        self.admin_dn = 'cn=atr-admin,' + self.suffix
        self.reader_dn = 'cn=mod_atr,' + self.suffix
        self.auth_dn = 'cn=httpd-auth,' + self.suffix
        self.admin_pw, self.reader_pw, self.auth_pw = (base64.b32encode(os.urandom(10)).decode()
                                                       for _ in range(3))

    def acl(self):
        """The olcAccess rules, in order (the same as script/lib.sh's slapd.conf)."""
        clients, staff, groups = self.clients_dn, 'ou=staff,' + self.suffix, 'ou=groups,' + self.suffix
        return [
            'to attrs=userPassword by anonymous auth by * none',
            'to dn.subtree="%s" by dn.exact="%s" write by dn.exact="%s" read by * none'
            % (clients, self.admin_dn, self.reader_dn),
            'to dn.subtree="%s" by dn.exact="%s" read by * none' % (staff, self.auth_dn),
            'to dn.subtree="%s" by dn.exact="%s" read by * none' % (groups, self.auth_dn),
            'to * by * none',
        ]

    def _write_config(self):
        # slapdtest loads its config entries (the database last), then the schemas. Rules
        # naming dc=... DNs only parse once the schemas are there: load the database entry,
        # with its olcAccess values, after them.
        head, db = self.gen_config().split('\ndn: olcDatabase=', 1)
        self.slapadd(head + '\n', ['-n0'])
        for schema in self.openldap_schema_files:
            path = schema if os.path.exists(schema) else os.path.join(self.SCHEMADIR, schema)
            self.slapadd(None, ['-n0', '-l', path])
        self.slapadd('dn: olcDatabase=' + db.rstrip('\n') + '\n'
                     + ''.join('olcAccess: {%d}%s\n' % (i, rule) for i, rule in enumerate(self.acl())),
                     ['-n0'])

    def start(self):
        super().start()
        lines = []
        for dn, pw, what in ((self.admin_dn, self.admin_pw, 'the admin CGI writes ou=clients'),
                             (self.reader_dn, self.reader_pw, 'mod_atr reads ou=clients'),
                             (self.auth_dn, self.auth_pw, 'httpd searches staff and groups')):
            lines += ['dn: ' + dn, 'objectClass: organizationalRole',
                      'objectClass: simpleSecurityObject', 'cn: ' + dn.split(',')[0][3:],
                      'description: ' + what, 'userPassword: ' + pw, '']
        self.ldapadd('\n'.join(lines))

    def connect_as(self, dn, pw):
        conn = ldap.initialize(self.ldap_uri)
        conn.protocol_version = 3
        conn.simple_bind_s(dn, pw)
        return conn

    def reader_view(self):
        """The directory as :class:`Httpd` should see it: mod_atr binds as its reader."""
        return types.SimpleNamespace(ldap_uri=self.ldap_uri, clients_dn=self.clients_dn,
                                     suffix=self.suffix, root_dn=self.reader_dn,
                                     root_pw=self.reader_pw)


def add_staff(slapd, users):
    """Add ``ou=staff`` and ``ou=groups`` below the suffix, one ``inetOrgPerson`` per
    ``users`` entry (``{login: (password, is_admin)}``) and the admin group holding the admins.
    Returns the admin group's DN."""
    staff_dn = '%s,%s' % (STAFF_OU, slapd.suffix)
    groups_dn = '%s,%s' % (GROUPS_OU, slapd.suffix)
    group_dn = 'cn=%s,%s' % (ADMIN_GROUP_CN, groups_dn)
    conn = slapd.connect()
    try:
        for dn, ou in ((staff_dn, b'staff'), (groups_dn, b'groups')):
            conn.add_s(dn, [('objectClass', [b'organizationalUnit']), ('ou', [ou])])
        admins = []
        for login, (password, is_admin) in users.items():
            dn = 'uid=%s,%s' % (ldap.dn.escape_dn_chars(login), staff_dn)
            conn.add_s(dn, [('objectClass', [b'inetOrgPerson']), ('uid', [login.encode()]),
                            ('cn', [login.encode()]), ('sn', [login.encode()]),
                            ('userPassword', [password.encode()])])
            if is_admin:
                admins.append(dn.encode())
        conn.add_s(group_dn, [('objectClass', [b'groupOfNames']), ('cn', [ADMIN_GROUP_CN.encode()]),
                              ('member', admins)])
    finally:
        conn.unbind_s()
    return group_dn


class AdminSite:
    """The CGI's files in ``directory`` and the httpd snippet serving it at ``/atr-admin``."""

    def __init__(self, directory, slapd, store, group_dn, allow_http_loopback=True):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.user = 'www-data' if os.geteuid() == 0 else None
        self.conf_path = os.path.join(directory, 'admin.conf')
        self.ldap_pw_file = os.path.join(directory, 'admin-ldap.secret')
        self.httpd_pw_file = os.path.join(directory, 'httpd-auth.secret')
        self.csrf_key_file = os.path.join(directory, 'admin-csrf.key')
        self.audit_log = os.path.join(directory, 'audit.log')
        self.httpd_snippet = os.path.join(directory, 'atr-admin-httpd.conf')
        # Least privilege as in production (AdminSlapd): the CGI binds as its service account
        # (write access to ou=clients only), httpd's sign-in searches as an account that can
        # read staff and groups only.
        self._write(self.ldap_pw_file, slapd.admin_pw.encode(), 0o600, self.user)
        self._write(self.csrf_key_file, os.urandom(32), 0o600, self.user)
        # httpd reads its search password at start-up as root (exec:/bin/cat).
        self._write(self.httpd_pw_file, slapd.auth_pw.encode(), 0o600, None)
        self._write(self.audit_log, b'', 0o600, self.user)
        lines = ['ldap_uri %s' % slapd.ldap_uri, 'ldap_base %s' % slapd.clients_dn,
                 'ldap_bind_dn %s' % slapd.admin_dn, 'ldap_password_file %s' % self.ldap_pw_file,
                 'store %s' % store.spec, 'csrf_key_file %s' % self.csrf_key_file,
                 'audit_log %s' % self.audit_log]
        if allow_http_loopback:
            lines.append('allow_http_loopback on')
        self._write(self.conf_path, ('\n'.join(lines) + '\n').encode(), 0o600, self.user)
        mods = Paths.apache_modules
        staff_dn = '%s,%s' % (STAFF_OU, slapd.suffix)
        snippet = '\n'.join([
            '# atr-admin for the tests: conf/atr-admin.conf with test DNs and paths',
            'LoadModule cgid_module "%s/mod_cgid.so"' % mods,
            'LoadModule alias_module "%s/mod_alias.so"' % mods,
            'LoadModule env_module "%s/mod_env.so"' % mods,
            'LoadModule auth_basic_module "%s/mod_auth_basic.so"' % mods,
            'LoadModule authn_core_module "%s/mod_authn_core.so"' % mods,
            'LoadModule ldap_module "%s/mod_ldap.so"' % mods,
            'LoadModule authnz_ldap_module "%s/mod_authnz_ldap.so"' % mods,
            'ScriptSock "%s/cgid.sock"' % directory,
            'ScriptAlias /atr-admin "%s"' % ADMIN_CGI,
            '<Location /atr-admin>',
            '    SetEnv ATR_ADMIN_CONF "%s"' % self.conf_path,
            '    AuthType Basic',
            '    AuthName "ATR Consumer administration"',
            '    AuthBasicProvider ldap',
            '    AuthLDAPURL "%s%s?uid?one?(objectClass=inetOrgPerson)"' % (slapd.ldap_uri.rstrip('/') + '/', staff_dn),
            '    AuthLDAPBindDN "%s"' % slapd.auth_dn,
            '    AuthLDAPBindPassword "exec:/bin/cat %s"' % self.httpd_pw_file,
            '    AuthLDAPGroupAttribute member',
            '    AuthLDAPGroupAttributeIsDN on',
            '    Require ldap-group %s' % group_dn,
            '    AuthzSendForbiddenOnFailure On',
            '    LimitRequestBody 1048576',
            '</Location>', ''])
        self._write(self.httpd_snippet, snippet.encode(), 0o644, None)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(directory, pw.pw_uid, pw.pw_gid)

    @staticmethod
    def _write(path, data, mode, owner):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        if owner:
            pw = pwd.getpwnam(owner)
            os.chown(path, pw.pw_uid, grp.getgrgid(pw.pw_gid).gr_gid)

    def install(self, httpd):
        """Make ``httpd`` serve the form (effective at its next start)."""
        httpd.admin_conf = 'Include "%s"' % self.httpd_snippet
        self.base_url = 'http://127.0.0.1:%d/atr-admin' % httpd.port

    def audit_lines(self):
        with open(self.audit_log, encoding='utf-8') as f:
            return f.read().splitlines()


class Browser:
    """Headless Chromium signed in as ``user`` (``password``) to ``base_url``."""

    def __init__(self, base_url, user, password, artifact_dir):
        self.base_url = base_url.rstrip('/')
        self.artifact_dir = artifact_dir
        os.makedirs(artifact_dir, exist_ok=True)
        self.shots = []
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                    '--window-size=1280,1000', '--no-first-run', '--disable-extensions',
                    '--user-data-dir=' + os.path.join(artifact_dir, '.chromium-profile')):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(60)
        self.driver.execute_cdp_cmd('Network.enable', {})
        auth = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
        self.driver.execute_cdp_cmd('Network.setExtraHTTPHeaders',
                                    {'headers': {'Authorization': 'Basic ' + auth}})

    def quit(self):
        self.driver.quit()

    def go(self, path=''):
        """Open ``base_url + path`` ('/', '/new', '/client/x', ...)."""
        self.driver.get(self.base_url + (path or '/'))
        return self

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css='body'):
        return self.find(css).text

    def fill(self, field_id, value):
        el = self.find('#' + field_id)
        el.clear()
        el.send_keys(value)
        return el

    def click(self, css):
        """Click; for a link or a button (a navigation) wait until the next page is loaded."""
        self.click_element(self.find(css))
        return self

    def click_element(self, el):
        navigates = el.tag_name.lower() in ('a', 'button')
        old = self.find('html') if navigates else None
        el.click()
        if navigates:
            WebDriverWait(self.driver, 60).until(EC.staleness_of(old))
            WebDriverWait(self.driver, 60).until(
                lambda d: d.execute_script('return document.readyState') == 'complete')
        return self

    @property
    def url(self):
        return self.driver.current_url

    @property
    def title(self):
        return self.driver.title

    def source(self):
        return self.driver.page_source

    def shot(self, name):
        """Save a PNG of the current page; returns its path."""
        path = os.path.join(self.artifact_dir, '%02d-%s.png' % (len(self.shots) + 1, name))
        self.driver.save_screenshot(path)
        self.shots.append(path)
        return path
