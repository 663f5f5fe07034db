"""A real slapd (python-ldap's slapdtest) with the mod_atr Consumer schema loaded.

slapdtest builds a cn=config directory with ``slapadd -n0`` from ``openldap_schema_files``
(names under /etc/ldap/schema or absolute paths), so our schema goes in as
``conf/ldap/atr.ldif`` after the standard schemas it depends on.
"""
import os

os.environ.setdefault('LDAPNOINIT', '1')   # ignore ~/.ldaprc and /etc/ldap/ldap.conf
import ldap  # noqa: E402
import slapdtest  # noqa: E402

from .paths import Paths  # noqa: E402
from .ports import free_port  # noqa: E402


class AtrSlapd(slapdtest.SlapdObject):
    """slapd on 127.0.0.1 with suffix ``dc=atr,dc=example`` and ``ou=clients`` created.

    Attributes: ``ldap_uri``, ``root_dn``, ``root_pw``, ``suffix``, ``clients_dn``.
    Use :meth:`add_consumer` to register a Consumer and :meth:`connect` for a bound
    python-ldap connection.
    """

    suffix = 'dc=atr,dc=example'
    root_cn = 'admin'
    root_pw = 'atr-test-secret'
    slapd_loglevel = '0'
    openldap_schema_files = ('core.ldif', 'cosine.ldif', 'inetorgperson.ldif',
                             Paths.ldap_schema_ldif)

    def __init__(self, rundir_parent):
        # slapdtest puts its run directory under TMPDIR; keep it in the test's tmp tree.
        self.TMPDIR = rundir_parent
        super().__init__()

    def _avail_tcp_port(self):
        return free_port()

    @property
    def clients_dn(self):
        return 'ou=clients,' + self.suffix

    def start(self):
        super().start()
        self.ldapadd('\n'.join([
            'dn: ' + self.suffix, 'objectClass: dcObject', 'objectClass: organization',
            'o: mod_atr tests', 'dc: atr', '',
            'dn: ' + self.clients_dn, 'objectClass: organizationalUnit', 'ou: clients', '']))

    def connect(self):
        """A python-ldap connection bound as the root DN."""
        conn = ldap.initialize(self.ldap_uri)
        conn.protocol_version = 3
        conn.simple_bind_s(self.root_dn, self.root_pw)
        return conn

    def add_consumer(self, client_id, **attrs):
        """Add an ``atrConsumer`` entry; ``attrs`` maps attribute names to a str or a list.

        Example: ``slapd.add_consumer('acme', atrClientStatus='active',
        atrScope=['system/Group.read'], atrGroupId=['fullexample'])``. Returns the DN.
        """
        dn = 'atrClientId=%s,%s' % (ldap.dn.escape_dn_chars(client_id), self.clients_dn)
        entry = [('objectClass', [b'atrConsumer']), ('atrClientId', [client_id.encode()])]
        for name, value in attrs.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            entry.append((name, [v.encode() for v in values]))
        conn = self.connect()
        try:
            conn.add_s(dn, entry)
        finally:
            conn.unbind_s()
        return dn
