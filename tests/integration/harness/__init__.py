"""Integration-test harness for mod_atr: real slapd, real SQLite store, real httpd.

Nothing here is mocked. The pieces:

* :mod:`harness.paths`   -- where the repository, the build tree binaries and the spec fixtures are
* :mod:`harness.ports`   -- free loopback ports
* :mod:`harness.slapd`   -- :class:`AtrSlapd`, python-ldap's slapdtest server with our schema
* :mod:`harness.store`   -- :class:`Store`, an SQLite store made and filled with ``atrctl``
* :mod:`harness.httpd`   -- :class:`Httpd`, httpd with the built mod_atr, its error log and RSS

* :mod:`harness.consumers` -- Consumers with real keys, the JWKS server, the token client

``tests/integration/conftest.py`` turns them into pytest fixtures.
"""
from .paths import Paths  # noqa: F401
from .slapd import AtrSlapd  # noqa: F401
from .store import Store  # noqa: F401
from .httpd import Httpd, ErrorLogLine  # noqa: F401

__all__ = ['Paths', 'AtrSlapd', 'Store', 'Httpd', 'ErrorLogLine']
