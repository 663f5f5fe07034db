"""A real store (SQLite file or PostgreSQL database), created and filled with the build tree's
``atrctl``."""
import glob
import json
import os
import pwd
import re
import subprocess

from .paths import Paths

# Load order of the IG examples: referenced resources before the resources that refer to them.
_TYPE_ORDER = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient',
               'RelatedPerson', 'Coverage', 'Group']

_LARGEST_RE = re.compile(r'^largest group: (\S+) \((\d+) members\)', re.M)


class AtrctlError(RuntimeError):
    """``atrctl`` exited non-zero; ``.result`` is the CompletedProcess."""

    def __init__(self, result):
        super().__init__('atrctl %s -> exit %d\nstdout: %s\nstderr: %s' % (
            ' '.join(result.args[1:]), result.returncode, result.stdout, result.stderr))
        self.result = result


class Store:
    """A store: by default an SQLite file in ``directory`` (``atr.db``); with ``pg`` (a
    :class:`harness.pg.PgServer`) the PostgreSQL database ``pg_dbname`` on it (created here).
    ``directory`` holds the files the tests generate either way.

    ``driver``/``params``: httpd's ``DBDriver``/``DBDParams``; ``spec`` = ``driver:params``,
    what ``atrctl --db`` and the admin CGI take.

    ``owner``: when the tests run as root, httpd's children run as this user (www-data), so
    the directory and database are handed to it after every ``atrctl`` run (SQLite in WAL
    mode needs to write ``-wal``/``-shm`` files next to the database even to read).
    """

    def __init__(self, directory, owner=None, pg=None, pg_dbname='atr'):
        self.directory = directory
        self.pg = pg
        if pg:
            self.driver = 'pgsql'
            self.pg_dbname = pg_dbname
            self.params = pg.create_database(pg_dbname)
            self.path = None
        else:
            self.driver = 'sqlite3'
            self.path = os.path.join(directory, 'atr.db')
            self.params = self.path
        self.spec = '%s:%s' % (self.driver, self.params)
        self.owner = owner
        os.makedirs(directory, exist_ok=True)

    # -- atrctl ---------------------------------------------------------------------------
    def atrctl(self, *args, check=True, timeout=600, env=None):
        """Run ``atrctl --db <this store> ARGS``; return the CompletedProcess (text mode).

        With ``check=True`` a non-zero exit raises :class:`AtrctlError`.
        """
        cmd = [Paths.atrctl, '--db', self.spec] + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.pop('ATR_DB', None)
        if env:
            full_env.update(env)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                env=full_env)
        self._hand_over()
        if check and result.returncode != 0:
            raise AtrctlError(result)
        return result

    def init(self):
        """``atrctl db init`` (creates the schema)."""
        return self.atrctl('db', 'init')

    def load(self, *files):
        """``atrctl load FILE...`` (NDJSON or Bundle files)."""
        return self.atrctl('load', *files)

    def demo_data(self, outdir, members, seed, contracts=None):
        """``atrctl demo-data``; returns ``(files, largest_group_id, largest_group_members)``."""
        args = ['demo-data', '--members', members, '--seed', seed, '--out', outdir]
        if contracts is not None:
            args += ['--contracts', contracts]
        result = self.atrctl(*args)
        m = _LARGEST_RE.search(result.stdout + result.stderr)
        if not m:
            raise RuntimeError('atrctl demo-data printed no "largest group: ID (N members)" line:\n'
                               + result.stdout + result.stderr)
        files = sorted(glob.glob(os.path.join(outdir, '*.ndjson')))
        return files, m.group(1), int(m.group(2))

    # -- fixtures ---------------------------------------------------------------------------
    def write_ig_examples_ndjson(self, out_path):
        """Write the IG examples (the 8 stored types) as one NDJSON file, referenced resources
        first; returns ``{(type, id): resource}`` of what was written."""
        resources = {}
        for path in sorted(glob.glob(os.path.join(Paths.ig_examples, '*.json'))):
            with open(path, encoding='utf-8') as f:
                res = json.load(f)
            if res.get('resourceType') in _TYPE_ORDER:
                resources[(res['resourceType'], res['id'])] = res
        with open(out_path, 'w', encoding='utf-8') as f:
            for key in sorted(resources, key=lambda k: (_TYPE_ORDER.index(k[0]), k[1])):
                f.write(json.dumps(resources[key], separators=(',', ':'), ensure_ascii=False))
                f.write('\n')
        return resources

    def sql(self, query, write=False):
        """Run a query for assertions with the sqlite3 CLI (read-only unless ``write``), or
        psql on PostgreSQL (same output: '|' between columns, one row a line, no header);
        returns stdout."""
        if self.pg:
            return self.pg.psql(self.pg_dbname, query)
        ro = [] if write else ['-readonly']
        return subprocess.run(['sqlite3'] + ro + [self.path, query], capture_output=True,
                              text=True, check=True).stdout

    def drop(self):
        """Remove the database (PostgreSQL; an SQLite file goes with its directory)."""
        if self.pg:
            self.pg.drop_database(self.pg_dbname)

    def _hand_over(self):
        if not self.owner or os.geteuid() != 0:
            return
        pw = pwd.getpwnam(self.owner)
        for root, dirs, files in os.walk(self.directory):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for name in files:
                os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
