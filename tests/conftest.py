"""Shared pytest set-up: hypothesis budgets, one profile per place the tests run.

CI (CI=true) uses the bounded 'ci' profile so the whole run stays well under 20 minutes on
2 cores; a developer can ask for more with HYPOTHESIS_PROFILE=thorough.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
