"""Test configuration.

Hypothesis profiles: "default" is sized so the whole suite runs in about five minutes on
a 2-core machine; GICPROOF_HYPOTHESIS=deep selects a much longer search (nightly/manual),
and makes the tests that take representatives by default (``helpers.representatives``:
some kernel revisions, some shipped files) take all of them (``helpers.deep``).
Golden reports: ``pytest --regen-golden`` (or GICPROOF_REGEN_GOLDEN=1) rewrites them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=60, stateful_step_count=30, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", max_examples=2000, stateful_step_count=80, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GICPROOF_HYPOTHESIS", "default"))


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.txt from the current reports")
