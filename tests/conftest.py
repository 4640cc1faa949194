"""Test settings shared by the whole suite.

Hypothesis explores new examples on every local run; under CI (``CI`` set) it runs a fixed, derandomized
set so that a run is reproducible, while the local runs keep searching (and keep what they find in
``.hypothesis/``).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
