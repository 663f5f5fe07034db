"""Schema migrations (issue 7: "`atrctl db init` and migrations work on both" stores).

A store made by an earlier mod_atr holds schema version 1 (tests/integration/data/
schema-v1-<driver>.sql, the schema as it first shipped) with rows as that version wrote them
(data/store-v1-rows.sql). This build (schema version 2) must:

* refuse it clearly until it is migrated: ``atrctl db check`` and every other atrctl command
  say "run atrctl db migrate", and httpd answers 503 and logs the same (fail closed);
* bring it to version 2 with ``atrctl db migrate``: the result has exactly the structure of a
  store ``atrctl db init`` makes today (tables, columns, types, collations, indexes,
  constraints), the old rows are served as before, and the tables added since work;
* say what it would do with ``--dry-run`` and change nothing;
* leave a store whose migration fails exactly as it was (one transaction per step);
* take turns when two migrations run at once;
* refuse a store newer than itself, and a store without schema.

Runs on the session's store backend (SQLite, or PostgreSQL with ATR_TEST_STORE=pgsql)."""
import json
import os
import pathlib
import subprocess

import pytest
import requests

from harness import Httpd, Paths, Store
from harness.consumers import JWT_BEARER

DATA = pathlib.Path(__file__).parent / 'data'
BACKEND = os.environ.get('ATR_TEST_STORE', 'sqlite')
GROUP = 'mig-grp-1'
OLDER = "store schema version 1 is older than this build's 2: run atrctl db migrate"

_made = [0]


def new_store(workdir, request, name):
    """An empty store of the session's backend under the session's directory (httpd's
    children must reach an SQLite file), handed to www-data as the session's store is."""
    _made[0] += 1
    directory = str(workdir / ('%s-%d' % (name, _made[0])))
    owner = 'www-data' if os.geteuid() == 0 else None
    if BACKEND == 'pgsql':
        s = Store(directory, owner=owner, pg=request.getfixturevalue('pg'),
                  pg_dbname='%s_%d' % (name.replace('-', '_'), _made[0]))
    else:
        s = Store(directory, owner=owner)
    request.addfinalizer(s.drop)
    return s


def run_sql_script(store, path):
    """Run a whole SQL file on the store as its owner role (psql), or with the sqlite3 CLI."""
    script = pathlib.Path(path).read_text(encoding='utf-8')
    if store.driver == 'pgsql':
        store.sql(script, write=True)
    else:   # on stdin: the CLI takes an argument starting with '-' for an option
        subprocess.run(['sqlite3', store.path], input=script, capture_output=True, text=True,
                       check=True)
    store._hand_over()


def v1_store(workdir, request, name='v1-store', rows=True):
    s = new_store(workdir, request, name)
    run_sql_script(s, DATA / ('schema-v1-%s.sql' % s.driver))
    if rows:
        run_sql_script(s, DATA / 'store-v1-rows.sql')
    return s


def version_of(store):
    return store.sql('SELECT version FROM atr_schema_version').strip()


def structure(store):
    """Everything about the schema that a query can tell, in a comparable form."""
    if store.driver == 'pgsql':
        queries = [
            "SELECT table_name, column_name, ordinal_position, data_type, "
            "coalesce(collation_name, '-'), is_nullable, coalesce(column_default, '-') "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3",
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "ORDER BY 2",
            "SELECT conrelid::regclass, conname, contype, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        ]
    else:
        queries = [
            "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", coalesce(p.dflt_value, '-'), "
            "p.pk FROM sqlite_master m JOIN pragma_table_info(m.name) p "
            "WHERE m.type = 'table' ORDER BY 1, 2",
            "SELECT type, name, tbl_name, coalesce(sql, '-') FROM sqlite_master "
            "WHERE type = 'index' ORDER BY 2",
            "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE type = 'table' "
            "ORDER BY 1",
        ]
    return [store.sql(q).splitlines() for q in queries]


def table_names(store):
    if store.driver == 'pgsql':
        q = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    else:
        q = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1"
    return store.sql(q).split()


@pytest.fixture(scope='module')
def fresh_structure(workdir, request):
    """The structure of a store `atrctl db init` makes with this build."""
    s = new_store(workdir, request, 'fresh-store')
    s.init()
    return structure(s)


def test_fresh_store_differs_from_v1(workdir, request, fresh_structure):
    """The comparison below means something: version 1 is not this build's schema."""
    s = v1_store(workdir, request, rows=False)
    assert structure(s) != fresh_structure
    assert 'atr_export_job' not in table_names(s)


def test_v1_store_refused_then_migrated_and_served(workdir, request, slapd, consumers,
                                                   fresh_structure, allow_errors):
    store = v1_store(workdir, request)
    node = Httpd(str(workdir / 'migrate-httpd'), store, slapd=slapd)
    node.start()
    request.addfinalizer(node.stop)
    allow_errors(r'ATR00302: store not usable: ' + OLDER.replace('.', r'\.'))
    consumer = consumers.make(groups=(GROUP,))

    def token_response():
        return requests.post(node.url('/auth/token'), timeout=30, data={
            'grant_type': 'client_credentials', 'client_assertion_type': JWT_BEARER,
            'client_assertion': consumer.assertion(aud=node.base_url + '/auth/token'),
            'scope': 'system/*.read'})

    # Before: atrctl refuses with what to do, and changes nothing.
    r = store.atrctl('db', 'check', check=False)
    assert r.returncode == 1
    assert OLDER in r.stderr
    newfile = workdir / 'migrate-new.ndjson'
    newfile.write_text('{"resourceType":"Patient","id":"mig-pat-3"}\n', encoding='utf-8')
    r = store.atrctl('load', str(newfile), check=False)
    assert r.returncode == 1
    assert OLDER in r.stderr
    assert store.sql("SELECT count(*) FROM atr_resource").strip() == '4'

    # Before: httpd fails closed (503) and its log says what to do.
    pos = node.log_position()
    r = token_response()
    assert r.status_code == 503, r.text
    assert r.json()['error'] == 'temporarily_unavailable'
    node.wait_for_log(r'ATR00302: store not usable: ' + OLDER.replace('.', r'\.'), since=pos,
                      timeout=10)

    # --dry-run says what it would do, and does nothing.
    r = store.atrctl('db', 'migrate', '--dry-run')
    assert r.stdout.strip() == 'would migrate schema version 1 to 2 (1 step); nothing done'
    assert version_of(store) == '1'
    assert 'atr_export_job' not in table_names(store)

    r = store.atrctl('db', 'migrate')
    assert r.stdout.strip() == 'schema version 1 migrated to 2'
    assert store.atrctl('db', 'check').stdout.strip() == 'schema version 2 OK'
    assert structure(store) == fresh_structure
    r = store.atrctl('db', 'migrate')
    assert r.stdout.strip() == 'schema version 2 is current: nothing to do'

    # After: the rows version 1 wrote are served by the running httpd (no restart needed:
    # a connection whose schema check failed checks again on its next use).
    r = token_response()
    assert r.status_code == 200, r.text
    token = r.json()['access_token']
    auth = {'Authorization': 'Bearer ' + token, 'Accept': 'application/fhir+json'}
    r = requests.get(node.url('/Group/' + GROUP), headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    group = r.json()
    assert [m['entity']['reference'] for m in group['member']] == ['Patient/mig-pat-1',
                                                                  'Patient/mig-pat-2']
    assert group['meta']['versionId'] == '1'
    assert group['meta']['lastUpdated'].startswith('2025-06-01T00:00:00')
    r = requests.get(node.url('/Group'), headers=auth, timeout=30,
                     params={'identifier': 'http://example.org/contract|MIG-CONTRACT-1'})
    assert r.status_code == 200, r.text
    assert [e['resource']['id'] for e in r.json().get('entry', [])] == [GROUP]
    r = requests.get(node.url('/Patient/mig-pat-2'), headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()['name'][0]['given'] == ['Bob']

    # After: new writes take the next version, and what version 2 added works (the export
    # uses its scratch table).
    store.atrctl('load', str(newfile))
    outdir = workdir / 'migrate-export'
    store.atrctl('export', '--group', GROUP, '--out', str(outdir))
    patients = [json.loads(line) for line in
                (outdir / 'Patient-1.ndjson').read_text(encoding='utf-8').splitlines()]
    assert sorted(p['id'] for p in patients) == ['mig-pat-1', 'mig-pat-2']
    assert store.sql("SELECT version FROM atr_current WHERE id = 'mig-pat-3'").strip() == '1'


def test_failed_migration_leaves_the_store_as_it_was(workdir, request, fresh_structure):
    """A step that fails part way is rolled back whole: same version, same tables, same
    columns (PostgreSQL: the collation changes done before the failure are undone too)."""
    store = v1_store(workdir, request)
    # A table of that name already there: the migration's last CREATE TABLE fails.
    store.sql('CREATE TABLE atr_sub_subscription (x INTEGER)', write=True)
    store._hand_over()
    before = structure(store)
    r = store.atrctl('db', 'migrate', check=False)
    assert r.returncode == 1
    assert 'migration to schema version 2 failed, the store stays at version 1' in r.stderr
    assert 'atr_sub_subscription' in r.stderr
    assert version_of(store) == '1'
    assert structure(store) == before
    assert 'atr_export_job' not in table_names(store)
    assert store.sql('SELECT count(*) FROM atr_group_member').strip() == '2'

    store.sql('DROP TABLE atr_sub_subscription', write=True)
    store._hand_over()
    assert store.atrctl('db', 'migrate').stdout.strip() == 'schema version 1 migrated to 2'
    assert structure(store) == fresh_structure


def test_migrations_at_once_take_turns(workdir, request, fresh_structure):
    """Three at once: the ones that wait for the first one's lock find the version moved
    (on SQLite after the schema changed under them, which apr_dbd's legacy prepare reports
    as an error once) and end well without doing anything twice."""
    store = v1_store(workdir, request)
    procs = [subprocess.Popen([Paths.atrctl, '--db', store.spec, 'db', 'migrate'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    store._hand_over()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert err == ''
    said = [out.strip() for out, _ in outs]
    assert set(said) <= {'schema version 1 migrated to 2',
                         'schema version 2 is current: nothing to do'}, said
    assert 'schema version 1 migrated to 2' in said
    assert version_of(store) == '2'
    assert structure(store) == fresh_structure
    assert store.sql('SELECT count(*) FROM atr_resource').strip() == '4'


def test_newer_store_is_refused_and_left_alone(workdir, request):
    store = new_store(workdir, request, 'newer-store')
    store.init()
    store.sql('UPDATE atr_schema_version SET version = 3', write=True)
    store._hand_over()
    r = store.atrctl('db', 'check', check=False)
    assert r.returncode == 1
    assert "store schema version 3 is newer than this build's 2" in r.stderr
    for args in (('db', 'migrate'), ('db', 'migrate', '--dry-run')):
        r = store.atrctl(*args, check=False)
        assert r.returncode == 1
        assert "store schema version 3 is newer than this build's 2" in r.stderr
        assert 'nothing done' in r.stderr
        assert version_of(store) == '3'


def test_migrate_without_schema_says_init(workdir, request):
    store = new_store(workdir, request, 'empty-store')
    if store.driver == 'sqlite3':
        store.sql('CREATE TABLE unrelated (x INTEGER)', write=True)   # the file exists
    r = store.atrctl('db', 'migrate', check=False)
    assert r.returncode == 1
    assert 'store has no mod_atr schema: run atrctl db init' in r.stderr


@pytest.mark.parametrize('args', [('db', 'migrate', '--force'), ('db', 'migrate', 'now', 'x')])
def test_migrate_bad_arguments_are_usage_errors(store, args):
    r = store.atrctl(*args, check=False)
    assert r.returncode == 2
    assert 'usage: atrctl' in r.stderr
