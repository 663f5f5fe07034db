"""A real httpd (Debian's /usr/sbin/apache2) with the build tree's mod_atr on loopback."""
import collections
import grp
import os
import pwd
import re
import signal
import socket
import subprocess
import time

import requests

from .paths import Paths
from .ports import free_port

ErrorLogLine = collections.namedtuple('ErrorLogLine', 'module level text')

# "[Tue Nov 24 22:30:38.123456 2026] [atr:error] [pid 1:tid 2] ..." (httpd 2.4 default format)
_LOG_RE = re.compile(r'^\[[^\]]*\] \[(?:([^:\]]*):)?(\w+)\]')

# Levels that mean something went wrong; see Httpd.unexpected_errors().
BAD_LEVELS = frozenset(('error', 'crit', 'alert', 'emerg'))
# Signs of a crash at any level (AH00052: "child pid N exit signal Segmentation fault").
BAD_SUBSTRINGS = ('segfault', 'Segmentation fault', 'AH00052')


def parse_error_log(text):
    """Split error-log text into ErrorLogLine tuples (lines not in httpd's format, e.g. what a
    child wrote to stderr, get module ``None`` and level ``'stderr'``)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LOG_RE.match(line)
        if m:
            out.append(ErrorLogLine(m.group(1), m.group(2), line))
        else:
            out.append(ErrorLogLine(None, 'stderr', line))
    return out


def is_crash(entry):
    """True for a line that reports a crash (a child killed by a signal, a segfault)."""
    return any(s in entry.text for s in BAD_SUBSTRINGS)


def is_unexpected(entry):
    """True for a line at level error/crit/alert/emerg or one that reports a crash."""
    return entry.level in BAD_LEVELS or is_crash(entry)


class Httpd:
    """httpd serving ``<base_url>`` = ``http://127.0.0.1:<port>/fhir`` from ``store``.

    The config is ``conf/httpd-demo.conf.in`` rendered into ``directory/httpd.conf``;
    ``extra`` directives are appended (see :meth:`start` / :meth:`restart`).
    Logs: ``directory/error_log`` and ``directory/access_log``.
    Bulk export files: ``export_dir`` (``ATRExportDir``), by default ``export-<n>`` beside
    ``directory`` (n numbers the instances), owned by httpd's ``User`` when run as root.
    """

    running = []   # every started instance, for the error-log check in conftest.py

    # Appended to every test config: registry entries expire after 1 s (so tests that change
    # LDAP see it quickly), JWKS URLs may be plain http on loopback (the test JWKS server),
    # bulk export status answers Retry-After: 1 (so a whole export takes a second or two), and a
    # job whose worker was killed is claimed again after 3 s instead of 30 (PostgreSQL: 15 s,
    # see STALE_AFTER).
    TEST_DIRECTIVES = ('ATRRegistryCacheTTL 1\nATRJWKSAllowLoopbackHTTP On\n'
                       'ATRExportPollInterval 1\nATRExportStaleAfter %d\n')
    # ATRExportStaleAfter by store driver. An export heartbeats from its writing loop only, not
    # while it collects the Group's references (one INSERT ... SELECT per type, about 2 s each
    # for the 200,000-member Group on PostgreSQL on a busy 2-core machine): with 3 s a worker
    # that is alive and busy would be taken for dead and its job claimed a second time.
    STALE_AFTER = {'sqlite3': 3, 'pgsql': 15}

    _instances = 0   # numbers the export directories of the instances of a session

    def __init__(self, directory, store, port=None, slapd=None, export_dir=None, token_key=None):
        self.directory = directory
        self.store = store
        self.slapd = slapd
        self.port = port or free_port()
        self.base_url = 'http://127.0.0.1:%d/fhir' % self.port
        self.conf_path = os.path.join(directory, 'httpd.conf')
        self.error_log = os.path.join(directory, 'error_log')
        self.access_log = os.path.join(directory, 'access_log')
        self.pid_file = os.path.join(directory, 'httpd.pid')
        self.extra = ''
        self.admin_conf = ''    # what replaces @ADMIN@ (harness/browser.py sets an Include line)
        self.checked_upto = 0   # error-log offset up to which read_new_log() has returned
        self.session = requests.Session()
        self.user = 'www-data' if os.geteuid() == 0 else None
        os.makedirs(directory, exist_ok=True)
        Httpd._instances += 1
        self.export_dir = export_dir or os.path.join(
            os.path.dirname(os.path.abspath(directory)), 'export-%d' % Httpd._instances)
        os.makedirs(self.export_dir, exist_ok=True)
        self._hand_over(self.export_dir)
        # Secrets live in files (never in the config): the registry bind password and the
        # token key (32 random bytes) shared by every node (``token_key``: another node's,
        # so that each accepts the other's access tokens).
        self.ldap_pw_file = os.path.join(directory, 'ldap.secret')
        self.token_key_file = os.path.join(directory, 'token.key')
        self.token_key = token_key or os.urandom(32)
        self._write_secret(self.ldap_pw_file, (slapd.root_pw if slapd else '').encode())
        self._write_secret(self.token_key_file, self.token_key)

    def _write_secret(self, path, data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        self._hand_over(path)

    def _hand_over(self, path):
        """Give ``path`` to httpd's ``User`` (children run as www-data when started as root)."""
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # -- config -----------------------------------------------------------------------------
    def render_config(self, extra=''):
        with open(Paths.httpd_template, encoding='utf-8') as f:
            text = f.read()
        user_group = ''
        if self.user:
            pw = pwd.getpwnam(self.user)
            user_group = 'User %s\nGroup %s' % (self.user, grp.getgrgid(pw.pw_gid).gr_name)
        for key, value in (('@STATE_DIR@', self.directory), ('@PORT@', str(self.port)),
                           ('@MODULE@', Paths.module), ('@APACHE_MODULES@', Paths.apache_modules),
                           ('@DBDRIVER@', self.store.driver),
                           ('@DB@', self.store.params), ('@USER_GROUP@', user_group),
                           ('@LDAP_URI@', self.slapd.ldap_uri if self.slapd else ''),
                           ('@LDAP_BASE@', self.slapd.clients_dn if self.slapd else ''),
                           ('@LDAP_BIND_DN@', self.slapd.root_dn if self.slapd else ''),
                           ('@LDAP_PW_FILE@', self.ldap_pw_file),
                           ('@TOKEN_KEY@', self.token_key_file),
                           ('@EXPORT_DIR@', self.export_dir),
                           ('@ADMIN@', self.admin_conf),
                           ('@EXTRA@', self.TEST_DIRECTIVES % self.STALE_AFTER[self.store.driver] + extra)):
            text = text.replace(key, value)
        with open(self.conf_path, 'w', encoding='utf-8') as f:
            f.write(text)
        return self.conf_path

    def config_test(self, extra=''):
        """``apache2 -t`` on the config with ``extra``; returns (exit code, output)."""
        self.render_config(extra)
        p = subprocess.run([Paths.httpd_bin, '-t', '-f', self.conf_path],
                           capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr

    # -- life cycle -------------------------------------------------------------------------
    def start(self, extra=''):
        """Render the config with ``extra`` directives and start httpd; wait until it accepts
        connections. Raises with the error log's tail when it does not come up."""
        self.extra = extra
        self.render_config(extra)
        if self.user:
            # Children run as www-data; the parent (root) opens the logs.
            pw = pwd.getpwnam(self.user)
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        p = subprocess.run([Paths.httpd_bin, '-f', self.conf_path, '-k', 'start'],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError('httpd did not start (exit %d): %s\n%s' % (
                p.returncode, p.stdout + p.stderr, self.log_tail()))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # The port accepts before the detached parent has written its pid file: a stop or
            # restart right after would find no pid, stop nothing, and `-k start` would then
            # answer "already running" (exit 0), leaving the old config in place.
            if self._accepts() and self.pid():
                self.started_at = time.monotonic()
                if self not in Httpd.running:
                    Httpd.running.append(self)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError('httpd did not listen on port %d within 20 s\n%s' % (
            self.port, self.log_tail()))

    # Debian's httpd 2.4 event MPM can crash (AH00052, in apr_os_sock_get) when stopped
    # abruptly (SIGTERM) while it is starting up or while a connection is still being closed:
    # seen without mod_atr too. The harness therefore stops gracefully (SIGWINCH: children
    # finish what they are doing; GracefulShutdownTimeout in the template bounds it), never
    # stops a server younger than MIN_UPTIME, and falls back to SIGTERM/SIGKILL only if the
    # graceful stop hangs. A crash in the log then always means something real.
    MIN_UPTIME = 1.0

    def stop(self):
        """Stop httpd gracefully and wait for it to exit (SIGTERM after 15 s, then SIGKILL)."""
        self.session.close()
        self.session = requests.Session()
        pid = self.pid()
        if pid:
            young = self.MIN_UPTIME - (time.monotonic() - getattr(self, 'started_at', 0))
            if young > 0:
                time.sleep(young)
            for sig, wait in ((signal.SIGWINCH, 15), (signal.SIGTERM, 15), (signal.SIGKILL, 0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not _alive(pid):
                    break
            while _alive(pid):
                time.sleep(0.05)
        if self in Httpd.running:
            Httpd.running.remove(self)

    def restart(self, extra=''):
        """Stop, then start with the template plus ``extra`` directives (replacing any extra
        directives of the previous start)."""
        self.stop()
        return self.start(extra)

    def graceful_restart(self):
        """``apache2 -k graceful``: SIGUSR1 to the parent (same config, new generation of
        children; requests in flight finish in the old ones)."""
        os.kill(self.pid(), signal.SIGUSR1)

    def pid(self):
        """The parent's pid from the pid file, or None."""
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _accepts(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                return True
        except OSError:
            return False

    # -- requests ---------------------------------------------------------------------------
    def url(self, path=''):
        """Absolute URL: ``path`` is relative to base_url ('metadata', '/Group/x'), or absolute."""
        if path.startswith('http://') or path.startswith('https://'):
            return path
        if not path:
            return self.base_url
        return self.base_url + ('' if path.startswith('/') else '/') + path

    def request(self, method, path='', **kw):
        """``requests`` call on a keep-alive session; default timeout 60 s."""
        kw.setdefault('timeout', 60)
        return self.session.request(method, self.url(path), **kw)

    def get(self, path='', **kw):
        return self.request('GET', path, **kw)

    def post(self, path='', **kw):
        return self.request('POST', path, **kw)

    # -- logs -------------------------------------------------------------------------------
    def log_position(self):
        """Current size of the error log (pass it to :meth:`read_log`)."""
        try:
            return os.path.getsize(self.error_log)
        except OSError:
            return 0

    def _read_from(self, since):
        try:
            with open(self.error_log, 'rb') as f:
                if os.fstat(f.fileno()).st_size < since:
                    since = 0   # rotated or truncated
                f.seek(since)
                data = f.read()
        except OSError:
            return [], since
        # Only whole lines; a line being written is left for the next read.
        cut = data.rfind(b'\n') + 1
        return parse_error_log(data[:cut].decode('utf-8', 'replace')), since + cut

    def read_log(self, since=0):
        """ErrorLogLine list of what was logged after byte offset ``since``."""
        return self._read_from(since)[0]

    def read_new_log(self):
        """ErrorLogLine list of what was logged since the previous call (first call: all)."""
        lines, self.checked_upto = self._read_from(self.checked_upto)
        return lines

    def wait_for_log(self, regex, since=0, timeout=60):
        """The first ``re.Match`` of ``regex`` in an error-log line written after byte offset
        ``since``, waiting up to ``timeout`` seconds; raises AssertionError when none came."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.read_log(since):
                m = pattern.search(entry.text)
                if m:
                    return m
            if time.monotonic() > deadline:
                raise AssertionError('no error-log line matching %r within %s s\n%s' % (
                    regex, timeout, self.log_tail()))
            time.sleep(0.02)

    def log_tail(self, n=30):
        lines = [e.text for e in self.read_log()][-n:]
        return 'error_log tail:\n' + '\n'.join(lines)

    # -- resources --------------------------------------------------------------------------
    def child_pids(self):
        parent = self.pid()
        if not parent:
            return []
        return [pid for pid in _all_pids() if _ppid(pid) == parent]

    def rss_kb(self, field='VmRSS'):
        """Sum of ``field`` (VmRSS, or VmHWM for the peak) over httpd's children, in kB."""
        return sum(_status_kb(pid, field) for pid in self.child_pids())


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def _all_pids():
    return [int(d) for d in os.listdir('/proc') if d.isdigit()]


def _ppid(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _status_kb(pid, field):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
