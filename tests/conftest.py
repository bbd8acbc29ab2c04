"""Shared pytest set-up: hypothesis budgets, one profile per place the tests run, and the
host build flags of the DSP-kernel tests.

CI (CI=true) uses the bounded 'ci' profile so the whole run stays well under 20 minutes on
2 cores; a developer can ask for more with HYPOTHESIS_PROFILE=thorough.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="module")
def shim_flags(tmp_path_factory):
    """Compiler flags that build the DSP kernels on the host (tests/dsp_host.py ACLE_SHIM
    stands in for <arm_acle.h>); a private compile cache."""
    from dsp_host import ACLE_SHIM
    d = tmp_path_factory.mktemp("acle")
    (d / "arm_acle.h").write_text(ACLE_SHIM)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINITINY_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield ["-D__ARM_FEATURE_DSP=1", "-isystem", str(d)]
