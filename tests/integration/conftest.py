"""pytest fixtures for the mod_atr integration tests.

Everything is real and runs on loopback: slapd (python-ldap's slapdtest with our schema),
a store made by the build tree's ``atrctl`` (SQLite, or PostgreSQL with
``ATR_TEST_STORE=pgsql``), and httpd with the built mod_atr.
Build first (``make``); ``script/test`` does both, and runs the suite once per store.

Session fixtures
    ``workdir``  a directory under /tmp (pathlib.Path) holding everything below; removed at
                 the end when all tests passed, else kept and printed (``ATR_KEEP_TEST_DIR=1``
                 keeps it always).
    ``slapd``    :class:`harness.AtrSlapd` -- ``ldap_uri``, ``root_dn``/``root_pw``,
                 ``clients_dn``; ``add_consumer(client_id, **attrs)``, ``connect()``.
    ``pg``       :class:`harness.pg.PgServer` -- a PostgreSQL 15 server (initdb into
                 ``<workdir>/pg``, a free loopback port), started on first use: by ``store``
                 when ``ATR_TEST_STORE=pgsql``, by the multi-node tests.
    ``store``    :class:`harness.Store` -- ``db init``, then the demo dataset
                 (``atrctl demo-data --members 300 --seed 7``) and the ATR 2.1.0 IG examples
                 are loaded. Extra attributes: ``demo_files``, ``largest_group`` (id),
                 ``largest_group_members`` (n), ``ig_resources`` ({(type, id): resource}).
                 ``store.atrctl(*args, check=True)`` runs atrctl against it;
                 ``store.sql(query)`` queries it (sqlite3 CLI, or psql on PostgreSQL: same
                 output format). ``store.driver``/``params``/``spec``: what httpd's
                 DBDriver/DBDParams and ``atrctl --db`` get.
                 Demo ids are prefixed (``grp-1``, ``pat-1``, ...), the IG examples keep
                 theirs (``Group/fullexample``, ``Patient/1``, ...).
    ``httpd``    :class:`harness.Httpd` on a free port -- ``base_url``
                 (``http://127.0.0.1:<port>/fhir``), ``get(path, **kw)``,
                 ``post(path, **kw)``, ``request(method, path, **kw)`` (paths are relative to
                 base_url), ``error_log``/``access_log`` paths, ``read_log(since)``,
                 ``log_position()``, ``wait_for_log(regex, since, timeout)``, ``rss_kb()``
                 (sum of VmRSS of httpd's children, kB; ``rss_kb('VmHWM')`` for the peak),
                 ``child_pids()``, ``pid()``, ``graceful_restart()``; ``export_dir`` is its
                 ``ATRExportDir`` (``<workdir>/export-1``, owned by www-data under root).

    ``jwks_server`` loopback HTTP server for client JWKS URLs: ``set(path, body, status=200,
                 headers=None, delay=0)``, ``url(path)``, ``hits(path)``.
    ``consumers`` factory of registered Consumers (harness/consumers.py): ``make(client_id=None,
                 alg='ES384', scopes=('system/*.read',), groups=(), contracts=(),
                 jwks='url'|'inline'|'both', status='active', npis=(), tins=())``,
                 ``modify``, ``add_values``, ``set_status``, ``delete``, ``token_url``.
    ``fhir``     the server as the default consumer ``atr-test-default`` (scopes
                 ``system/*.read system/Group.write``, linked to DEFAULT_GROUPS): requests carry
                 its Bearer token; ``headers={'Authorization': ''}`` sends none.
    ``anon``     the server without a token.
    ``entitle``  ``entitle(*group_ids)`` links more Groups to the default consumer.

    Bulk export (issue 4; harness/bulk.py):
    ``bulk_clients``  factory ``make(groups=(), scopes=('system/*.read',), contracts=())``
                      of :class:`harness.bulk.BulkClient` (a new registered Consumer each
                      time): ``kickoff``, ``run_export`` (kick-off → poll honouring
                      Retry-After → manifest), ``status``, ``download``, ``delete``, ``read``.
    ``bulk_data``     demo data with ids prefixed ``zk`` (400 members, 2 contracts):
                      ``.group``/``.group2`` (``zkgrp-1``/``zkgrp-2``), ``.files``,
                      ``.reference[group]``: (summary, digests) of ``atrctl export``.
    ``bulk_big_group`` a 200,000-member Group (ids prefixed ``zb``) and the ``atrctl export``
                      of it: ``.group``, ``.members``, ``.summary``, ``.digests``
                      ({type: (sha256, lines)}), for exports that must outlive a kill.

Function fixtures
    ``httpd_config``  a callable ``configure(extra_directives)`` that restarts the session's
                      httpd with extra directives appended to the template; the default
                      config is restored after the test. Example::

                          def test_small_pages(httpd, httpd_config):
                              httpd_config('ATRSearchDefaultCount 2')
                              ...
    ``allow_errors``  a callable ``allow(regex, ...)``: error-log lines matching one of the
                      regexes do not fail this test (for tests that provoke errors on purpose).
                      The marker ``@pytest.mark.allow_errors(r'regex', ...)`` does the same.
                      Crashes (segfault, AH00052) can never be allowed.

The autouse fixture ``_no_unexpected_httpd_errors`` reads, after every test, what each
running httpd wrote to its error log during the test and fails the test on any line at level
error/crit/alert/emerg or reporting a crash (segfault, AH00052), unless allowed as above.
Before that it DELETEs every bulk export job the test started through a BulkClient.

Environment: ``ATR_SHARED_DIR`` (default ``<repo>/../shared``), ``ATR_TEST_PORTS=LOW-HIGH``
(restrict the ports used; default: any free port), ``ATR_TEST_STORE=sqlite|pgsql`` (the
session's store; default sqlite), ``ATR_PG_BIN`` (PostgreSQL's programs; default
/usr/lib/postgresql/15/bin).
"""
import os
import pathlib
import re
import shutil
import tempfile
import time

import pytest

from harness import AtrSlapd, Httpd, Paths, Store
from harness.pg import PgServer
from harness.bulk import BulkClient, load_renamed_demo, reference_export
from harness.consumers import Consumers, FhirClient, JwksServer
from harness.httpd import is_crash, is_unexpected

# Several nodes share one store only on PostgreSQL: the multi-node tests belong to the
# ATR_TEST_STORE=pgsql pass of script/test (CI runs both passes), and are not collected in
# the SQLite one.
collect_ignore = [] if os.environ.get('ATR_TEST_STORE', 'sqlite') == 'pgsql' else ['test_multinode.py']

DEMO_MEMBERS = 300
DEMO_SEED = 7

STORE_BACKEND = os.environ.get('ATR_TEST_STORE', 'sqlite')
if STORE_BACKEND not in ('sqlite', 'pgsql'):
    raise RuntimeError('ATR_TEST_STORE=%r: use sqlite or pgsql' % STORE_BACKEND)


def pytest_report_header(config):
    return 'mod_atr store: %s (ATR_TEST_STORE)' % STORE_BACKEND


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'allow_errors(*regexes): httpd error-log lines matching any regex do not '
                   'fail the test')


@pytest.fixture(scope='session')
def workdir(request):
    """One directory for the whole session (slapd, store, httpd live below it).

    It is made under /tmp (not pytest's 0700 tmp tree) because httpd's children run as
    www-data and must reach the store. Removed at the end when every test passed; otherwise
    kept (its path is printed) so the logs can be read. ``ATR_KEEP_TEST_DIR=1`` keeps it always.
    """
    Paths.check()
    d = tempfile.mkdtemp(prefix='atr-it-')
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    if request.session.testsfailed or os.environ.get('ATR_KEEP_TEST_DIR'):
        print('\nintegration test files kept in %s' % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope='session')
def slapd(workdir):
    server = AtrSlapd(str(workdir))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def pg(workdir):
    server = PgServer(str(workdir / 'pg'))
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope='session')
def store(workdir, request):
    pg_server = request.getfixturevalue('pg') if STORE_BACKEND == 'pgsql' else None
    s = Store(str(workdir / 'store'), owner='www-data' if os.geteuid() == 0 else None,
              pg=pg_server)
    s.init()
    demo_dir = os.path.join(s.directory, 'demo')
    s.demo_files, s.largest_group, s.largest_group_members = s.demo_data(
        demo_dir, DEMO_MEMBERS, DEMO_SEED)
    s.load(*s.demo_files)
    ig_file = os.path.join(s.directory, 'ig-examples.ndjson')
    s.ig_resources = s.write_ig_examples_ndjson(ig_file)
    s.load(ig_file)
    return s


@pytest.fixture
def scratch_store(request, tmp_path):
    """``make()``: a new empty :class:`harness.Store` (no schema) on the session's backend:
    an SQLite file under tmp_path, or a new database on the session's PostgreSQL (dropped
    after the test). For atrctl tests that need a store of their own."""
    made = []

    def make():
        n = len(made) + 1
        if STORE_BACKEND == 'pgsql':
            name = 'scratch_%d_%d' % (os.getpid(), _scratch_counter())
            s = Store(str(tmp_path / ('store-%d' % n)), pg=request.getfixturevalue('pg'),
                      pg_dbname=name)
        else:
            s = Store(str(tmp_path / ('store-%d' % n)))
        made.append(s)
        return s

    yield make
    for s in made:
        s.drop()


_scratch_n = [0]


def _scratch_counter():
    _scratch_n[0] += 1
    return _scratch_n[0]


@pytest.fixture(scope='session')
def httpd(workdir, store, slapd):
    server = Httpd(str(workdir / 'httpd'), store, slapd=slapd)
    server.start()
    yield server
    server.stop()
    # What was logged after the last test (e.g. at shutdown) must be clean too.
    bad = [e.text for e in server.read_new_log() if is_unexpected(e)]
    if bad:
        pytest.fail('unexpected lines in httpd error log after the last test:\n'
                    + '\n'.join(bad[:40]), pytrace=False)


@pytest.fixture
def httpd_config(httpd):
    """``configure(extra)``: restart httpd with extra directives; restored afterwards."""
    changed = []

    def configure(extra):
        changed.append(True)
        httpd.restart(extra)
        return httpd

    yield configure
    if changed:
        httpd.restart('')


@pytest.fixture
def allow_errors(request):
    """``allow(regex, ...)``: let matching error-log lines pass for this test."""
    patterns = request.node.__dict__.setdefault('_atr_allowed_errors', [])

    def allow(*regexes):
        patterns.extend(re.compile(r) for r in regexes)

    return allow


@pytest.fixture(autouse=True)
def _no_unexpected_httpd_errors(request):
    yield
    # First DELETE the bulk export jobs the test started (harness.bulk.BulkClient), so no
    # queued or running export spills into the next test, and what that logs counts here.
    BulkClient.cleanup()
    allowed = list(request.node.__dict__.get('_atr_allowed_errors', []))
    for mark in request.node.iter_markers('allow_errors'):
        allowed.extend(re.compile(r) for r in mark.args)
    bad = []
    for h in list(Httpd.running):
        # Everything logged since the previous check: lines written between two tests (e.g.
        # by a child that started late) are charged to the next test rather than lost.
        for entry in h.read_new_log():
            if is_crash(entry) or (is_unexpected(entry)
                                   and not any(p.search(entry.text) for p in allowed)):
                bad.append(entry.text)
    if bad:
        pytest.fail('unexpected lines in httpd error log:\n' + '\n'.join(bad[:40]),
                    pytrace=False)


# Group ids the issue-2 tests create or read; the default consumer is linked to all of them.
DEFAULT_GROUPS = ('fullexample', 'davincipatientlistexample', 'grp-1', 'versioned', 'srch-a',
                  'srch-b', 'srch-c', 'srch-d', 'gone-grp')
DEFAULT_CLIENT = 'atr-test-default'
DEFAULT_SCOPE = 'system/*.read system/Group.write'


@pytest.fixture(scope='session')
def jwks_server():
    """A loopback HTTP server for JWKS URLs (``set``, ``url``, ``hits``)."""
    server = JwksServer().start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def consumers(slapd, httpd, jwks_server):
    """Factory of registered Consumers with their own keys (see harness/consumers.py)."""
    return Consumers(slapd, httpd, jwks_server)


@pytest.fixture(scope='session')
def default_consumer(consumers):
    """The Consumer the issue-2 tests read as: every scope they need, every Group they use.
    Its keys are inline (atrJwks), so it does not depend on the JWKS server."""
    return consumers.make(DEFAULT_CLIENT, alg='ES384', scopes=DEFAULT_SCOPE.split(),
                          groups=DEFAULT_GROUPS, jwks='inline', name='Default test consumer')


@pytest.fixture(scope='session')
def fhir(httpd, default_consumer):
    """The FHIR server as the default consumer: requests carry its Bearer token (pass
    ``headers={'Authorization': ''}`` to send none). Other attributes are the Httpd's."""
    return FhirClient(httpd, default_consumer, DEFAULT_SCOPE)


@pytest.fixture(scope='session')
def anon(httpd):
    """The FHIR server without a token (the session's Httpd)."""
    return httpd


@pytest.fixture(scope='session')
def entitle(consumers, default_consumer):
    """``entitle(*group_ids)``: link more Groups to the default consumer and wait out the
    registry cache (1 s in the test config) so the next request sees them."""
    def link(*group_ids):
        consumers.add_values(default_consumer.client_id, 'atrGroupId', list(group_ids))
        time.sleep(1.1)
    return link


@pytest.fixture(scope='session')
def atrctl(store):
    """``atrctl(*args)``: run atrctl against the session's store; fails on a non-zero exit."""
    return store.atrctl


# -- bulk export (issue 4) ---------------------------------------------------------------------

@pytest.fixture(scope='session')
def bulk_clients(consumers, httpd):
    """``make(groups=(), scopes=('system/*.read',), contracts=())``: a new Consumer (inline
    JWKS) as a :class:`harness.bulk.BulkClient`; its tokens ask for ``scope`` (default: all
    of ``scopes``)."""
    def make(groups=(), scopes=('system/*.read',), contracts=(), scope=None):
        c = consumers.make(groups=groups, scopes=scopes, contracts=contracts, jwks='inline')
        return BulkClient(httpd, c, scope=scope or ' '.join(scopes))
    return make


class _Dataset:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(scope='session')
def bulk_data(store, tmp_path_factory):
    """Demo data with every id prefixed ``zk`` (identifier values ``zk-``; contracts
    ``zk-CTR-1``, ``zk-CTR-2``): 400 members in 2 contracts, so two Groups
    (``zkgrp-1`` with the odd members ``zkpat-1``, ``zkpat-3``, ..., ``zkgrp-2`` the even;
    all 8 types are reachable from each; an export of one is about 570 kB). The prefixes start
    with ``z`` so that these ids sort after the session's demo ids (tests that take "the first
    Practitioner" by id keep finding the session's)."""
    out = tmp_path_factory.mktemp('bulk-data')
    _largest, _entries, files = load_renamed_demo(store, str(out), 'zk', 400, 13, 2)
    reference = {g: reference_export(store, g, str(out / ('reference-' + g)))
                 for g in ('zkgrp-1', 'zkgrp-2')}
    return _Dataset(group='zkgrp-1', group2='zkgrp-2', files=files, reference=reference)


BIG_MEMBERS = 200_000


@pytest.fixture(scope='session')
def bulk_big_group(store, tmp_path_factory):
    """A 200,000-member Group (ids prefixed ``zb``; one contract) and the ``atrctl export`` of
    it: an export that takes seconds, long enough to kill or restart its worker mid-way."""
    out = tmp_path_factory.mktemp('bulk-big')
    gid, members, _files = load_renamed_demo(store, str(out), 'zb', BIG_MEMBERS, 41, 1,
                                             keep_files=False)
    summary, digests = reference_export(store, gid, str(out / 'reference'), keep_files=False)
    return _Dataset(group=gid, members=members, summary=summary, digests=digests)
