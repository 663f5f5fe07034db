"""A real PostgreSQL 15 server for the tests, on a loopback port, in a directory of its own.

:class:`PgServer` runs ``initdb`` into ``<directory>`` and ``pg_ctl start`` on a free port
(listening on 127.0.0.1 only; its Unix socket in the data directory, never /var/run). As root
(CI) the server runs as the ``postgres`` user Debian's package creates (PostgreSQL refuses to
run as root); otherwise as the current user.

The cluster is made with ``--locale=C`` (the only locale a minimal Debian has), but each store
database is created with an ICU collation (``en-US``): the schema (conf/sql/schema-pgsql.sql)
declares every text column ``COLLATE "C"``, so ids sort the same way as on SQLite (byte
order) whatever the database's locale, and these tests would notice if one did not.

Settings that only make sense for a throw-away test server: ``fsync=off``,
``synchronous_commit=off``, ``full_page_writes=off``; ``trust`` authentication for
127.0.0.1 (production: scram-sha-256 and a password in DBDParams or a passfile).
``max_connections`` covers three httpd (the session's and two multi-node test nodes: ServerLimit
4 x DBDMax 25 each) plus atrctl.
"""
import os
import pwd
import shutil
import subprocess
import time

from .ports import free_port

PG_BIN = os.environ.get('ATR_PG_BIN', '/usr/lib/postgresql/15/bin')
MAX_CONNECTIONS = 400


class PgError(RuntimeError):
    pass


class PgServer:
    """``start()``, ``stop()``, ``create_database(name)`` -> apr_dbd pgsql params,
    ``psql(dbname, sql)``. ``port``, ``host`` (127.0.0.1), ``user`` (the role the stores use,
    ``atr``; not a superuser)."""

    def __init__(self, directory, port=None):
        self.directory = directory
        self.data = os.path.join(directory, 'data')
        self.log = os.path.join(directory, 'postgresql.log')
        self.host = '127.0.0.1'
        self.port = port or free_port()
        self.user = 'atr'
        self.os_user = 'postgres' if os.geteuid() == 0 else None
        self.superuser = self.os_user or pwd.getpwuid(os.geteuid()).pw_name
        self.running = False

    # -- processes ---------------------------------------------------------------------------
    def _as_server(self, argv, **kw):
        """Run argv as the server's OS user (runuser as root); CompletedProcess, text mode."""
        if self.os_user:
            argv = ['runuser', '-u', self.os_user, '--'] + argv
        kw.setdefault('capture_output', True)
        kw.setdefault('text', True)
        kw.setdefault('timeout', 120)
        return subprocess.run(argv, **kw)

    def _check(self, p, what):
        if p.returncode != 0:
            raise PgError('%s failed (exit %d):\n%s%s\n%s' % (what, p.returncode, p.stdout,
                                                              p.stderr, self.log_tail()))
        return p

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        if self.os_user:
            pw = pwd.getpwnam(self.os_user)
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        self._check(self._as_server([os.path.join(PG_BIN, 'initdb'), '-D', self.data,
                                     '--locale=C', '--encoding=UTF8', '--auth=trust',
                                     '-U', self.superuser]), 'initdb')
        with open(os.path.join(self.data, 'postgresql.conf'), 'a', encoding='utf-8') as f:
            f.write('\n# mod_atr tests (harness/pg.py)\n'
                    "listen_addresses = '127.0.0.1'\n"
                    'port = %d\n'
                    "unix_socket_directories = '%s'\n"
                    'max_connections = %d\n'
                    'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
                    "log_min_messages = warning\n"
                    # deadlocks and serialization failures are what concurrency tests provoke:
                    # the log says which statements met
                    "log_lock_waits = on\n" % (self.port, self.data, MAX_CONNECTIONS))
        self._check(self._as_server([os.path.join(PG_BIN, 'pg_ctl'), '-D', self.data, '-l',
                                     self.log, '-w', '-t', '60', 'start']), 'pg_ctl start')
        self.running = True
        self.psql('postgres', 'CREATE ROLE %s LOGIN' % self.user, superuser=True)
        return self

    def stop(self):
        if not self.running:
            return
        self._as_server([os.path.join(PG_BIN, 'pg_ctl'), '-D', self.data, '-m', 'fast', '-w',
                         'stop'])
        self.running = False

    def log_tail(self, n=30):
        try:
            with open(self.log, encoding='utf-8', errors='replace') as f:
                return 'postgresql.log tail:\n' + ''.join(f.readlines()[-n:])
        except OSError:
            return ''

    # -- databases ---------------------------------------------------------------------------
    def params(self, dbname):
        """apr_dbd pgsql parameters (libpq conninfo) for ``dbname`` as the store role."""
        return 'host=%s port=%d dbname=%s user=%s' % (self.host, self.port, dbname, self.user)

    def create_database(self, dbname):
        """A new empty database owned by the store role, with an ICU en-US collation (see
        the module docstring); returns its apr_dbd params."""
        self.psql('postgres', "CREATE DATABASE %s OWNER %s TEMPLATE template0 ENCODING 'UTF8'"
                  " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'" % (dbname, self.user),
                  superuser=True)
        return self.params(dbname)

    def drop_database(self, dbname):
        self.psql('postgres', 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % dbname, superuser=True)

    def psql(self, dbname, sql, superuser=False, check=True):
        """Run ``sql`` with psql (unaligned, tuples only, '|' between columns: the sqlite3
        CLI's default output); returns stdout."""
        argv = [shutil.which('psql') or '/usr/bin/psql', '-X', '-q', '-A', '-t', '-F', '|',
                '-v', 'ON_ERROR_STOP=1', '-h', self.host, '-p', str(self.port),
                '-U', self.superuser if superuser else self.user, '-d', dbname, '-c', sql]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PGCONNECT_TIMEOUT='10'))
        if check and p.returncode != 0:
            raise PgError('psql %s: %s\n%s' % (dbname, sql, p.stderr))
        return p.stdout

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = subprocess.run([os.path.join(PG_BIN, 'pg_isready'), '-h', self.host, '-p',
                                str(self.port)], capture_output=True)
            if p.returncode == 0:
                return
            time.sleep(0.1)
        raise PgError('PostgreSQL on port %d not ready\n%s' % (self.port, self.log_tail()))
