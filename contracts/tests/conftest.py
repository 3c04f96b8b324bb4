"""Make ``contracts`` mean the installed package inside these tests.

With ``--import-mode=importlib`` and the repo root on ``pythonpath``, pytest names this directory's
modules ``contracts.tests.<name>`` and registers the member directory ``./contracts`` (no
``__init__.py``) as a *namespace* module ``contracts`` — which hides the real package
(``contracts/src/contracts``). Drop the stand-ins and import the real package; test modules are
then attached under it (``contracts.tests`` becomes a namespace sub-package of the real one).
"""

from __future__ import annotations

import importlib
import sys

for _name in ("contracts.tests", "contracts"):
    _mod = sys.modules.get(_name)
    if _mod is not None and getattr(_mod, "__file__", None) is None:
        del sys.modules[_name]

importlib.import_module("contracts")
