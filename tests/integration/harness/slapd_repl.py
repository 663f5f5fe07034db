"""Two slapd servers for the Consumer registry: a syncrepl provider and its replica.

OpenLDAP's own replication, configured the way docs/registry.md ("Replicas and failover")
describes it:

* :class:`ProviderSlapd` -- an :class:`AtrSlapd` with the ``syncprov`` overlay on its
  database (module from /usr/lib/ldap) and an ``entryCSN``/``entryUUID`` index.
* :class:`ReplicaSlapd` -- an :class:`AtrSlapd` whose database is a ``syncrepl`` consumer of
  the provider (``refreshAndPersist``, retried every second while the provider is away),
  read-only, with an ``olcUpdateRef`` to the provider. It gets every entry, the suffix and
  ``ou=clients`` included, from the provider.

Both take the same suffix, root DN and password, so one ``ATRRegistryBindDN`` and password
file serve both. :meth:`halt` and :meth:`resume` stop and start a server on the same port
with the same data (slapdtest's ``stop`` deletes the data; ``restart`` needs it running).
"""
import atexit
import os
import signal
import time

import ldap

from .slapd import AtrSlapd

SYNC_WAIT = 30   # seconds a replicated change may take to show (a bound, not an assertion)


class _Haltable(AtrSlapd):
    """An AtrSlapd that can be stopped and started again keeping its port and data."""

    stopped_by_signal = False

    def halt(self):
        """Stop slapd (SIGTERM, wait); the data and port stay for :meth:`resume`."""
        if self._proc is not None:
            self.cont()
            self._proc.terminate()
            self.wait()

    def pause(self):
        """SIGSTOP: slapd keeps its socket (the kernel still accepts connections) but answers
        nothing, as a hung server does. :meth:`cont` undoes it."""
        if self._proc is not None and not self.stopped_by_signal:
            self._proc.send_signal(signal.SIGSTOP)
            self.stopped_by_signal = True

    def cont(self):
        if self._proc is not None and self.stopped_by_signal:
            self._proc.send_signal(signal.SIGCONT)
        self.stopped_by_signal = False

    def stop(self):
        self.cont()
        super().stop()

    def resume(self):
        """Start slapd again on the same port with the same data (waits until it answers)."""
        if self._proc is None:
            self._start_slapd()

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def search_clients(self, filterstr='(objectClass=atrConsumer)'):
        """{client id: {attribute: [str]}} of the entries under ``clients_dn`` on this
        server ({} when ``ou=clients`` is not there yet)."""
        return self._clients_or_none(filterstr) or {}

    def _clients_or_none(self, filterstr='(objectClass=atrConsumer)'):
        conn = self.connect()
        try:
            try:
                res = conn.search_s(self.clients_dn, ldap.SCOPE_ONELEVEL, filterstr)
            except ldap.NO_SUCH_OBJECT:
                return None
        finally:
            conn.unbind_s()
        return {a['atrClientId'][0].decode(): {k: [v.decode() for v in vs] for k, vs in a.items()}
                for _dn, a in res}


class ProviderSlapd(_Haltable):
    """The read-write server: ``syncprov`` keeps the change state replicas sync from."""

    def gen_config(self):
        text = super().gen_config()
        text = text.replace('olcModuleLoad: back_%s\n' % self.database,
                            'olcModuleLoad: back_%s\nolcModuleLoad: syncprov\n' % self.database)
        # The database entry is the template's last: these lines belong to it.
        return text.rstrip('\n') + '\n' + '\n'.join([
            'olcDbIndex: objectClass eq',
            'olcDbIndex: entryCSN eq',
            'olcDbIndex: entryUUID eq',
            'olcLimits: dn.exact="%s" time.soft=unlimited time.hard=unlimited '
            'size.soft=unlimited size.hard=unlimited' % self.root_dn,
            '',
            'dn: olcOverlay=syncprov,olcDatabase={1}%s,cn=config' % self.database,
            'objectClass: olcOverlayConfig',
            'objectClass: olcSyncProvConfig',
            'olcOverlay: syncprov',
            'olcSpCheckpoint: 100 1',
            'olcSpSessionlog: 1000',
            '', ''])


class ReplicaSlapd(_Haltable):
    """A read-only replica of ``provider`` (syncrepl consumer, refreshAndPersist)."""

    def __init__(self, rundir_parent, provider):
        self.provider = provider
        super().__init__(rundir_parent)

    def syncrepl_line(self):
        p = self.provider
        return ('rid=001 provider=%s bindmethod=simple binddn="%s" credentials=%s '
                'searchbase="%s" type=refreshAndPersist retry="1 +" timeout=3 '
                'network-timeout=3' % (p.ldap_uri.rstrip('/'), p.root_dn, p.root_pw, p.suffix))

    def gen_config(self):
        text = super().gen_config()
        return text.rstrip('\n') + '\n' + '\n'.join([
            'olcDbIndex: objectClass eq',
            'olcDbIndex: entryCSN eq',
            'olcDbIndex: entryUUID eq',
            'olcSyncrepl: ' + self.syncrepl_line(),
            'olcUpdateRef: ' + self.provider.ldap_uri.rstrip('/'),
            '', ''])

    def start(self):
        # No local adds: a replica refuses writes; the suffix and ou=clients arrive by syncrepl.
        if self._proc is None:
            atexit.register(self.stop)
            self._cleanup_rundir()
            self.setup_rundir()
            self._write_config()
            self._test_config()
            self._start_slapd()
        self.wait_for(lambda clients: True, what='ou=clients from the provider')

    def wait_for(self, predicate, what):
        """Wait (at most SYNC_WAIT s) until ``predicate(search_clients())`` is true; raise
        AssertionError naming ``what`` otherwise. Returns the last search result."""
        deadline = time.monotonic() + SYNC_WAIT
        while True:
            clients = self._clients_or_none()
            if clients is not None and predicate(clients):
                return clients
            if time.monotonic() > deadline:
                raise AssertionError('replica at %s did not get %s within %d s' % (
                    self.ldap_uri, what, SYNC_WAIT))
            time.sleep(0.1)


class Directories:
    """Stands in for an AtrSlapd where the harness's Httpd renders @LDAP_URI@ and friends:
    ``ldap_uri`` is the space-separated list of every server's URI, in the order given."""

    def __init__(self, *servers):
        self.servers = servers
        first = servers[0]
        self.ldap_uri = ' '.join(s.ldap_uri for s in servers)
        self.clients_dn = first.clients_dn
        self.root_dn = first.root_dn
        self.root_pw = first.root_pw
        self.suffix = first.suffix


def provider_and_replica(rundir_parent):
    """Start a provider and a replica of it under ``rundir_parent``; returns both."""
    os.makedirs(rundir_parent, exist_ok=True)
    provider = ProviderSlapd(rundir_parent)
    provider.start()
    replica = ReplicaSlapd(rundir_parent, provider)
    try:
        replica.start()
    except Exception:
        provider.stop()
        raise
    return provider, replica
