"""Bulk export (issue 4) as a Consumer sees it: kick-off, status polls that honour
Retry-After, the manifest, file downloads, DELETE; and the datasets the bulk tests export.

* :class:`BulkClient` -- one registered Consumer doing bulk exports: ``kickoff``, ``status``,
  ``poll``, ``run_export`` (kick-off → poll → manifest), ``download``, ``delete``, ``read``.
  Every accepted kick-off is remembered in ``BulkClient.started``; conftest.py deletes those
  jobs after each test, so no test leaves a queued or running export to the next one.
* :func:`load_renamed_demo` -- ``atrctl demo-data`` with every id prefixed (so it does not
  replace the session's demo resources), loaded into the store.
* :func:`reference_export` -- ``atrctl export`` of the same Group: what a bulk export of it
  must contain (same writer, same store).
"""
import email.utils
import hashlib
import json
import os
import re
import shutil
import time
import urllib.parse

import requests

ATR_TYPES = ('Group', 'Patient', 'Coverage', 'RelatedPerson', 'Practitioner',
             'PractitionerRole', 'Organization', 'Location')
DAVINCI = '$davinci-data-export'
EXPORT = '$export'
NDJSON = 'application/fhir+ndjson'
# The headers a well-behaved Bulk Data client sends with a kick-off (BULK-KO-02).
KICKOFF_HEADERS = {'Accept': 'application/fhir+json', 'Prefer': 'respond-async'}
CLAIM_RE = r'export (\S+) claimed by pid (\d+)'

_DEMO_ID = re.compile(r'(?<=["/])(cov|grp|loc|pat|prac|role|rp|org)-(\d+)(?=")')


def qs(*pairs):
    """A query string from (name, value) pairs, commas and colons left readable (as a client
    would write ``_type=Group,Patient``); everything else percent-encoded (``+`` → ``%2B``)."""
    return '&'.join('%s=%s' % (urllib.parse.quote(n, safe=''), urllib.parse.quote(v, safe=',:'))
                    for n, v in pairs)


def parameters(*pairs):
    """A FHIR Parameters body: ``patient`` values become valueReference, the rest valueString."""
    params = []
    for name, value in pairs:
        if name == 'patient':
            params.append({'name': name, 'valueReference': {'reference': value}})
        else:
            params.append({'name': name, 'valueString': value})
    return {'resourceType': 'Parameters', 'parameter': params}


def retry_after(r):
    """Seconds of a Retry-After header (delta-seconds or HTTP-date); AssertionError if absent."""
    value = r.headers.get('Retry-After')
    assert value, 'no Retry-After on %d: %r' % (r.status_code, dict(r.headers))
    if value.strip().isdigit():
        return int(value)
    when = email.utils.parsedate_to_datetime(value)
    return max(0.0, when.timestamp() - time.time())


def ndjson_lines(data):
    """The lines of an NDJSON body (bytes): every line ends with ``\\n``, none is empty."""
    if not data:
        return []
    assert data.endswith(b'\n'), data[-80:]
    out = data[:-1].split(b'\n')
    assert all(out), 'empty line in NDJSON'
    return out


def oo(r, status=None):
    """The OperationOutcome of an error answer (checks status, Content-Type and shape)."""
    if status is not None:
        assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers.get('Content-Type', '').startswith('application/fhir+json'), r.headers
    body = r.json()
    assert body['resourceType'] == 'OperationOutcome', body
    assert body['issue'] and body['issue'][0]['code'], body
    return body


class Export:
    """One export run: ``kickoff`` (response), ``url`` (status URL), ``job``, ``polls``
    (status, X-Progress, Retry-After of every answer), ``final`` (the last status answer) and
    ``manifest`` (its JSON when 200)."""

    def __init__(self, kickoff, url, job):
        self.kickoff = kickoff
        self.url = url
        self.job = job
        self.polls = []
        self.final = None
        self.manifest = None

    def outputs(self, rtype=None):
        return [o for o in self.manifest['output'] if rtype is None or o['type'] == rtype]

    def types(self):
        return sorted({o['type'] for o in self.manifest['output']})


class BulkClient:
    """A registered Consumer (harness.consumers.Consumer) doing bulk exports against httpd."""

    started = []   # (client, status URL) of every 202 kick-off, deleted after each test
    # Status requests to one URL are spaced by PACE seconds (the test ATRExportPollInterval), so
    # that only the tests about throttling (pace=False) ever poll too fast (BULK-ST-03).
    PACE = 1.0
    _last_status = {}

    def __init__(self, httpd, consumer, scope='system/*.read'):
        self.httpd = httpd
        self.consumer = consumer
        self.client_id = consumer.client_id
        self.scope = scope
        self.session = requests.Session()
        self._tokens = {}

    # -- plumbing -------------------------------------------------------------------------
    def token(self, scope=None):
        """An access token for ``scope`` (default: the client's), reused for up to 200 s."""
        scope = scope or self.scope
        tok, at = self._tokens.get(scope, (None, 0))
        if not tok or time.time() - at > 200:
            tok, at = self.consumer.token(scope), time.time()
            self._tokens[scope] = (tok, at)
        return tok

    def request(self, method, path='', token=None, scope=None, headers=None, session=False,
                **kw):
        """A request with this client's Bearer token (``token=''``: none; ``token='x'``: that
        one; ``scope``: a token for that scope). ``headers`` values None remove the default
        header (e.g. requests' ``Accept: */*``). ``session=True`` reuses a keep-alive
        connection; by default every request has its own, so a killed or restarted child
        cannot break the next one."""
        h = dict(headers or {})
        if token is None:
            token = self.token(scope)
        if token and 'Authorization' not in h:
            h['Authorization'] = 'Bearer ' + token
        kw.setdefault('timeout', 60)
        send = self.session.request if session else requests.request
        return send(method, self.httpd.url(path), headers=h, **kw)

    def get(self, path='', **kw):
        return self.request('GET', path, **kw)

    def read(self, rtype, rid):
        """FHIR read of ``rtype/rid`` (keep-alive)."""
        return self.request('GET', '/%s/%s' % (rtype, rid), session=True,
                            headers={'Accept-Encoding': 'identity'})

    # -- kick-off ---------------------------------------------------------------------------
    def kickoff_url(self, group, op=DAVINCI, query=None):
        if isinstance(query, (list, tuple)):
            query = qs(*query)
        return self.httpd.url('/Group/%s/%s' % (group, op)) + ('?' + query if query else '')

    def kickoff(self, group, op=DAVINCI, query=None, body=None, headers=None, method=None,
                **kw):
        """Kick-off of ``[base]/Group/<group>/<op>``: GET with ``query`` (a raw string or
        (name, value) pairs), or POST with ``body`` (a dict is sent as
        application/fhir+json; bytes/str as given). ``headers`` override KICKOFF_HEADERS
        (None removes one). Returns the response; a 202 is remembered for cleanup."""
        h = dict(KICKOFF_HEADERS)
        h.update(headers or {})
        url = self.kickoff_url(group, op, query)
        if body is not None:
            method = method or 'POST'
            if isinstance(body, dict):
                h.setdefault('Content-Type', 'application/fhir+json')
                body = json.dumps(body)
            kw['data'] = body
        r = self.request(method or 'GET', url, headers=h, **kw)
        if r.status_code == 202 and r.headers.get('Content-Location'):
            BulkClient.started.append((self, r.headers['Content-Location']))
        return r

    def accepted(self, r):
        """Check a kick-off answer is BULK-KO-07's 202 and return an :class:`Export` for it."""
        assert r.status_code == 202, (r.status_code, r.text[:800])
        loc = r.headers.get('Content-Location', '')
        m = re.fullmatch(re.escape(self.httpd.base_url) + r'/export-status/([A-Za-z0-9_.~-]+)',
                         loc)
        assert m, 'Content-Location is not an absolute status URL: %r' % loc
        return Export(r, loc, m.group(1))

    # -- status -----------------------------------------------------------------------------
    def status(self, url, headers=None, pace=True, **kw):
        """GET the status URL (``Accept: application/json``). ``pace``: first wait until PACE
        seconds have passed since the previous status request to that URL."""
        if pace:
            wait = BulkClient._last_status.get(url, 0) + self.PACE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        h = {'Accept': 'application/json'}
        h.update(headers or {})
        try:
            return self.request('GET', url, headers=h, **kw)
        finally:
            BulkClient._last_status[url] = time.monotonic()

    def poll(self, export, timeout=180, allow_throttled=False, **kw):
        """Poll ``export.url`` until it is no longer 202, sleeping what each Retry-After says
        (the first poll goes at once).
        A client that honours Retry-After is never throttled: a 429 fails unless
        ``allow_throttled``. Sets and returns ``export.final`` (and ``export.manifest``)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.status(export.url, pace=False, **kw)
            export.polls.append((r.status_code, r.headers.get('X-Progress'),
                                 r.headers.get('Retry-After')))
            if r.status_code == 429 and not allow_throttled:
                raise AssertionError('throttled although Retry-After was honoured: %r %s'
                                     % (export.polls, r.text[:300]))
            if r.status_code not in (202, 429):
                break
            wait = retry_after(r)
            assert time.monotonic() + wait < deadline, \
                'export %s not finished within %s s: %r' % (export.job, timeout, export.polls[-5:])
            time.sleep(max(wait, 0.05))
        export.final = r
        if r.status_code == 200:
            export.manifest = r.json()
        return r

    def run_export(self, group, op=DAVINCI, timeout=180, **kw):
        """Kick-off (must be 202) → poll → the :class:`Export`, its final answer a 200."""
        e = self.accepted(self.kickoff(group, op, **kw))
        r = self.poll(e, timeout=timeout)
        assert r.status_code == 200, (r.status_code, r.text[:800])
        return e

    # -- files and delete -------------------------------------------------------------------
    def download(self, url, headers=None, **kw):
        """GET a file URL; ``Accept-Encoding: identity`` unless ``headers`` say otherwise."""
        h = {'Accept-Encoding': 'identity'}
        h.update(headers or {})
        return self.request('GET', url, headers=h, **kw)

    def file_lines(self, url):
        r = self.download(url, session=True)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        return ndjson_lines(r.content)

    def delete(self, url, **kw):
        return self.request('DELETE', url, **kw)

    @classmethod
    def untrack(cls, url):
        """Keep the job of ``url`` past the end of the current test (a module fixture's job;
        its fixture deletes it)."""
        cls.started[:] = [s for s in cls.started if s[1] != url]

    @classmethod
    def cleanup(cls):
        """DELETE every job a test started (404s are fine: already deleted or expired)."""
        while cls.started:
            client, url = cls.started.pop()
            try:
                client.delete(url, timeout=30)
            except requests.RequestException:
                pass


def claims(httpd, job, since=0):
    """Pids whose worker claimed ``job`` (the "export <job> claimed by pid <pid>" info lines
    logged after byte offset ``since``), in log order."""
    out = []
    for entry in httpd.read_log(since):
        m = re.search(CLAIM_RE, entry.text)
        if m and m.group(1) == job:
            out.append(int(m.group(2)))
    return out


def wait_claim(httpd, job, since=0, timeout=60):
    """The pid of the worker that claims ``job`` (waits for the log line)."""
    m = httpd.wait_for_log(r'export (%s) claimed by pid (\d+)' % re.escape(job), since, timeout)
    return int(m.group(2))


def file_digests(client, manifest, key='output'):
    """{type: (sha256 of the type's files concatenated in file order, line count)} of what
    the manifest lists, downloaded with ``client``; also checks each file's line count
    against its ``count``."""
    out = {}
    for item in manifest[key]:
        r = client.download(item['url'], session=True, stream=True)
        assert r.status_code == 200, (item, r.status_code)
        h, n = out.get(item['type'], (hashlib.sha256(), 0))
        lines = 0
        tail = b''
        for chunk in r.iter_content(1 << 20):
            h.update(chunk)
            lines += chunk.count(b'\n')
            tail = chunk[-1:] or tail
        assert tail == b'\n', item
        assert lines == item['count'], (item, lines)
        out[item['type']] = (h, n + lines)
    return {t: (h.hexdigest(), n) for t, (h, n) in out.items()}


def reference_export(store, group, out_dir, *args, keep_files=True):
    """``atrctl export`` of ``group`` into ``out_dir``: (summary, {type: (sha256, lines)});
    ``keep_files=False`` removes the files once digested."""
    p = store.atrctl('export', '--group', group, '--out', out_dir, *args, timeout=900)
    summary = json.loads(p.stdout)
    digests = {}
    for item in summary['output']:
        path = os.path.join(out_dir, os.path.basename(item['url']))
        h, n = digests.get(item['type'], (hashlib.sha256(), 0))
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        digests[item['type']] = (h, n + item['count'])
    if not keep_files:
        shutil.rmtree(out_dir)
    return summary, {t: (h.hexdigest(), n) for t, (h, n) in digests.items()}


def job_entries(export_dir, job):
    """What ``export_dir`` holds for ``job`` (its ``<job>.<claim>`` directories and anything
    else named after it), as paths relative to export_dir, files and directories."""
    found = []
    for root, dirs, files in os.walk(export_dir):
        rel = os.path.relpath(root, export_dir)
        for name in dirs + files:
            path = os.path.normpath(os.path.join(rel, name))
            if job in path:
                found.append(path)
    return sorted(found)


def all_files(directory):
    """Every regular file below ``directory`` (relative paths)."""
    out = []
    for root, _dirs, files in os.walk(directory):
        out.extend(os.path.relpath(os.path.join(root, f), directory) for f in files)
    return sorted(out)


def wait_until(predicate, timeout=30, interval=0.2, what='condition'):
    """Poll ``predicate()`` until it returns a true value (returned); AssertionError after
    ``timeout`` seconds. (A requests Response is false when its status is 4xx/5xx: wrap it.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('%s not reached within %s s' % (what, timeout))
        time.sleep(interval)


def load_renamed_demo(store, out_dir, prefix, members, seed, contracts, keep_files=True):
    """``atrctl demo-data`` whose ids (grp-1, pat-7, payer, ...) and identifier values (M000000007,
    CTR-1, NPIs, ...; as ``<prefix>-M000000007``) all get ``prefix``, loaded into ``store``. Returns (largest group id, its member entries, {type: file}); with
    ``keep_files=False`` the NDJSON files are removed after the load (and {} returned)."""
    src = os.path.join(out_dir, 'src')
    dst = os.path.join(out_dir, 'renamed')
    os.makedirs(dst, exist_ok=True)
    p = store.atrctl('demo-data', '--members', members, '--seed', seed, '--contracts',
                     contracts, '--out', src, timeout=900)
    m = re.search(r'^largest group: (\S+) \((\d+) members\)', p.stdout + p.stderr, re.M)
    assert m, p.stdout + p.stderr
    files = {}
    for name in sorted(os.listdir(src)):
        if not name.endswith('.ndjson'):
            continue
        with open(os.path.join(src, name), encoding='utf-8') as fin, \
                open(os.path.join(dst, name), 'w', encoding='utf-8') as fout:
            for line in fin:
                line = _DEMO_ID.sub(lambda x: prefix + x.group(1) + '-' + x.group(2), line)
                line = line.replace('"id":"payer"', '"id":"%spayer"' % prefix) \
                           .replace('"Organization/payer"', '"Organization/%spayer"' % prefix)
                # identifier values too (member ids, NPIs, TINs, contracts): the roster and
                # the entitlement by contract resolve them, and must keep finding the
                # session's own demo resources
                line = line.replace('"value":"', '"value":"%s-' % prefix)
                fout.write(line)
        files[name[:-len('.ndjson')]] = os.path.join(dst, name)
    # referenced types first, Group last (as the demo's own load order)
    order = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient',
             'RelatedPerson', 'Coverage', 'Group']
    store.load(*[files[t] for t in order if t in files])
    shutil.rmtree(src)
    if not keep_files:
        shutil.rmtree(dst)
        files = {}
    return prefix + m.group(1), int(m.group(2)), files
