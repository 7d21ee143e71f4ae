"""Test-suite settings shared by tests/ and examples/.

Hypothesis runs with its default settings locally; under CI (``CI`` set) the ``ci`` profile prints
the blob that reproduces a failure and lifts the per-example deadline, since CI
machines are noisy.
"""

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
