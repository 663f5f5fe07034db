"""Fixture data from the shared spec directory, as fresh Python objects."""
import json
import os
import pathlib

from .paths import Paths

SHARED = pathlib.Path(Paths.shared)
ATRCTL = Paths.atrctl


def ig_example(name, version='2.1.0'):
    """A fresh copy of an ATR IG example resource (``Group-fullexample.json``, ...)."""
    with open(os.path.join(Paths.spec, 'atr', version, 'examples', name), encoding='utf-8') as f:
        return json.load(f)
