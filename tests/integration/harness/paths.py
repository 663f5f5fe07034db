"""Locations of the repository, build products and shared spec fixtures."""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


class Paths:
    """All paths the harness needs, resolved once.

    * ``top``     -- repository top (three levels above this file)
    * ``shared``  -- the shared spec directory: ``$ATR_SHARED_DIR``, else ``<top>/../shared``
    * ``atrctl``  -- ``<top>/atrctl/atrctl`` (the build tree binary; libtool may make it a
      wrapper script, which runs just the same)
    * ``module``  -- ``<top>/mod_atr/.libs/mod_atr.so``
    """

    top = os.path.abspath(os.path.join(_HERE, '..', '..', '..'))
    shared = os.path.abspath(os.environ.get('ATR_SHARED_DIR')
                             or os.path.join(top, '..', 'shared'))
    spec = os.path.join(shared, 'spec')
    ig_examples = os.path.join(spec, 'atr', '2.1.0', 'examples')
    atrctl = os.path.join(top, 'atrctl', 'atrctl')
    module = os.path.join(top, 'mod_atr', '.libs', 'mod_atr.so')
    httpd_template = os.path.join(top, 'conf', 'httpd-demo.conf.in')
    ldap_schema_ldif = os.path.join(top, 'conf', 'ldap', 'atr.ldif')
    httpd_bin = os.environ.get('ATR_HTTPD', '/usr/sbin/apache2')
    apache_modules = os.environ.get('ATR_APACHE_MODULES', '/usr/lib/apache2/modules')

    @classmethod
    def check(cls):
        """Raise with a clear message when something the tests need is missing."""
        missing = [p for p in (cls.atrctl, cls.module, cls.httpd_template, cls.ldap_schema_ldif,
                               cls.httpd_bin, cls.ig_examples) if not os.path.exists(p)]
        if missing:
            raise RuntimeError('integration tests need these (run `make` / set ATR_SHARED_DIR): '
                               + ', '.join(missing))
