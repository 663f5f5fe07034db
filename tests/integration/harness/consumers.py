"""SMART Backend Services Consumers for the tests: real keys, real signed assertions, real
registry entries in the session's slapd, and a loopback server for JWKS URLs.

* :class:`JwksServer` -- ``set(path, body, status=200, headers=None, delay=0)``, ``url(path)``,
  ``hits(path)``: serves JWKS documents (or anything) on 127.0.0.1.
* :class:`Consumers`  -- factory: ``make(...)`` registers a Consumer in LDAP and returns a
  :class:`Consumer`; ``set_status``, ``modify``, ``delete`` change registry entries.
* :class:`Consumer`   -- ``assertion(...)``, ``token_response(...)``, ``token(...)``, ``get(...)``,
  ``request(...)``.
* :func:`forge` -- a compact JWS with any header/claims and a chosen signature (for the
  attacks a token endpoint must refuse: alg none, HMAC with the public key, ...).
"""
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid

import jwt
import ldap
import ldap.modlist
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .ports import free_port

JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def forge(header, claims, signature=b'', hmac_key=None):
    """Compact JWS from raw parts: signature bytes as given, or HMAC-SHA256/384 over the
    signing input with ``hmac_key`` (chosen by header alg HS256/HS384)."""
    signing_input = b64url(json.dumps(header, separators=(',', ':'))) + '.' + \
        b64url(json.dumps(claims, separators=(',', ':')))
    if hmac_key is not None:
        digest = hashlib.sha384 if header.get('alg') == 'HS384' else hashlib.sha256
        signature = hmac.new(hmac_key, signing_input.encode(), digest).digest()
    return signing_input + '.' + b64url(signature)


def new_key(alg):
    """A fresh private key for RS384 (RSA 2048) or ES384 (P-384)."""
    if alg == 'RS384':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == 'ES384':
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(alg)


def public_jwk(key, kid, alg):
    """The public JWK of a private key, with kid, alg and use."""
    pub = key.public_key()
    algo = jwt.algorithms.RSAAlgorithm if alg == 'RS384' else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algo.to_jwk(pub))
    jwk.update({'kid': kid, 'alg': alg, 'use': 'sig'})
    return jwk


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class JwksServer:
    """A threaded HTTP server on 127.0.0.1 serving registered paths (404 otherwise)."""

    def __init__(self):
        self.port = free_port()
        self._routes = {}
        self._hits = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split('?', 1)[0]
                with outer._lock:
                    outer._hits[path] = outer._hits.get(path, 0) + 1
                    route = outer._routes.get(path)
                if route is None:
                    self.send_response(404)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                status, body, headers, delay = route
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def set(self, path, body, status=200, headers=None, delay=0):
        """Serve ``body`` (dict → JSON, or bytes/str) at ``path``; None removes the route."""
        with self._lock:
            if body is None:
                self._routes.pop(path, None)
                return
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            hdrs = {'Content-Type': 'application/json'}
            hdrs.update(headers or {})
            self._routes[path] = (status, body, hdrs, delay)

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def hits(self, path):
        with self._lock:
            return self._hits.get(path, 0)


class Consumer:
    """A registered client with its own key pair."""

    def __init__(self, factory, client_id, alg, key, kid, jwks_path):
        self.factory = factory
        self.client_id = client_id
        self.alg = alg
        self.key = key
        self.kid = kid
        self.jwks_path = jwks_path
        self.jwks = {'keys': [public_jwk(key, kid, alg)]}
        self._token = None
        self._token_at = 0

    @property
    def jwks_url(self):
        return self.factory.jwks_server.url(self.jwks_path) if self.jwks_path else None

    def assertion(self, aud=None, exp_in=240, header=None, claims=None, key=None, alg=None,
                  jti=None):
        """A signed client assertion (iss = sub = client_id, aud = token URL, exp, jti);
        ``header``/``claims`` entries override or (value None) remove the defaults."""
        now = int(time.time())
        body = {'iss': self.client_id, 'sub': self.client_id,
                'aud': aud or self.factory.token_url, 'exp': now + exp_in,
                'jti': jti or uuid.uuid4().hex}
        for k, v in (claims or {}).items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        hdr = {'kid': self.kid, 'typ': 'JWT'}
        for k, v in (header or {}).items():
            if v is None:
                hdr.pop(k, None)
            else:
                hdr[k] = v
        return jwt.encode(body, key or self.key, algorithm=alg or self.alg, headers=hdr)

    def token_response(self, scope='system/*.read', assertion=None, **form):
        """POST to the token endpoint; ``form`` entries override (None removes) the defaults."""
        data = {'grant_type': 'client_credentials', 'client_assertion_type': JWT_BEARER,
                'client_assertion': assertion or self.assertion(), 'scope': scope}
        for k, v in form.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        return requests.post(self.factory.token_url, data=data, timeout=30)

    def token(self, scope='system/*.read'):
        """An access token (raises with the error body when the endpoint refuses)."""
        r = self.token_response(scope=scope)
        if r.status_code != 200:
            raise AssertionError('token request for %s failed: %d %s' % (
                self.client_id, r.status_code, r.text))
        return r.json()['access_token']

    def cached_token(self, scope='system/*.read'):
        """A token reused for up to 200 s (the server's lifetime is 300 s)."""
        if not self._token or time.time() - self._token_at > 200:
            self._token = self.token(scope)
            self._token_at = time.time()
        return self._token

    def request(self, method, path='', token=None, **kw):
        headers = dict(kw.pop('headers', None) or {})
        headers.setdefault('Authorization', 'Bearer ' + (token or self.cached_token()))
        kw.setdefault('timeout', 60)
        return requests.request(method, self.factory.httpd.url(path), headers=headers, **kw)

    def get(self, path='', token=None, **kw):
        return self.request('GET', path, token=token, **kw)


class Consumers:
    """Registers Consumers in the session's slapd (through python-ldap, not through mod_atr)."""

    def __init__(self, slapd, httpd, jwks_server):
        self.slapd = slapd
        self.httpd = httpd
        self.jwks_server = jwks_server
        self.token_url = httpd.base_url + '/auth/token'

    def dn(self, client_id):
        return 'atrClientId=%s,%s' % (ldap.dn.escape_dn_chars(client_id), self.slapd.clients_dn)

    def make(self, client_id=None, alg='ES384', scopes=('system/*.read',), groups=(),
             contracts=(), jwks='url', status='active', npis=(), tins=(), name=None):
        """Create a key pair and register the client. ``jwks``: 'url' (served by jwks_server
        at /<client_id>.json), 'inline' (atrJwks) or 'both'."""
        client_id = client_id or 'c-' + uuid.uuid4().hex[:12]
        key = new_key(alg)
        kid = 'k-' + uuid.uuid4().hex[:8]
        path = '/jwks/%s.json' % client_id if jwks in ('url', 'both') else None
        c = Consumer(self, client_id, alg, key, kid, path)
        attrs = {'atrClientStatus': status, 'atrScope': list(scopes)}
        if name:
            attrs['displayName'] = name
        if path:
            self.jwks_server.set(path, c.jwks)
            attrs['atrJwksUrl'] = c.jwks_url
        if jwks in ('inline', 'both'):
            attrs['atrJwks'] = json.dumps(c.jwks)
        for attr, values in (('atrGroupId', groups), ('atrContractId', contracts),
                             ('atrNpi', npis), ('atrTin', tins)):
            if values:
                attrs[attr] = list(values)
        self.slapd.add_consumer(client_id, **attrs)
        return c

    def _modify(self, client_id, mods):
        conn = self.slapd.connect()
        try:
            conn.modify_s(self.dn(client_id), mods)
        finally:
            conn.unbind_s()

    def modify(self, client_id, **attrs):
        """Replace attributes (a str, a list, or None/[] to delete the attribute)."""
        mods = []
        for name, value in attrs.items():
            values = [] if value is None else (value if isinstance(value, (list, tuple)) else [value])
            mods.append((ldap.MOD_REPLACE, name, [v.encode() for v in values] or None))
        self._modify(client_id, mods)

    def add_values(self, client_id, attr, values):
        """Add values to a multi-valued attribute, skipping those already there."""
        conn = self.slapd.connect()
        try:
            found = conn.search_s(self.dn(client_id), ldap.SCOPE_BASE, attrlist=[attr])
            have = {v.decode() for v in found[0][1].get(attr, [])} if found else set()
            new = [v for v in values if v not in have]
            if new:
                conn.modify_s(self.dn(client_id), [(ldap.MOD_ADD, attr, [v.encode() for v in new])])
        finally:
            conn.unbind_s()

    def set_status(self, client_id, status):
        self.modify(client_id, atrClientStatus=status)

    def delete(self, client_id):
        conn = self.slapd.connect()
        try:
            conn.delete_s(self.dn(client_id))
        finally:
            conn.unbind_s()


class FhirClient:
    """The FHIR server as seen by one Consumer: ``get``/``post``/``request`` carry its Bearer
    token; everything else (base_url, port, rss_kb, logs, ...) is the underlying Httpd's."""

    def __init__(self, httpd, consumer, scope):
        self._httpd = httpd
        self.consumer = consumer
        self.scope = scope

    def __getattr__(self, name):
        return getattr(self._httpd, name)

    def request(self, method, path='', **kw):
        headers = dict(kw.pop('headers', None) or {})
        if 'Authorization' not in headers:
            headers['Authorization'] = 'Bearer ' + self.consumer.cached_token(self.scope)
        elif headers['Authorization'] in ('', None):
            del headers['Authorization']
        return self._httpd.request(method, path, headers=headers, **kw)

    def get(self, path='', **kw):
        return self.request('GET', path, **kw)

    def post(self, path='', **kw):
        return self.request('POST', path, **kw)
