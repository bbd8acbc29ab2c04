"""The pytest plugin: `pytest --minitiny build/digits` runs the standard property suite
(minitiny.testing.suite) against a generated model directory, in the user's own CI.

    pytest --minitiny build/digits                       # one test per property
    pytest --minitiny build/digits --minitiny build/kws --minitiny-budget 120
    pytest --minitiny build/digits --minitiny-tflite digits.tflite

The property tests are added to whatever else pytest collects, named
`minitiny[DIR]::PROPERTY`. The `minitiny_model` fixture gives a user's own tests the
(QModel, directory) of the first --minitiny directory. Installed with minitiny (the
setup.py entry point `pytest11`), active only when --minitiny is given.
"""
import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("minitiny", "property-based verification of generated int8 models")
    group.addoption("--minitiny", action="append", default=[], metavar="DIR",
                    help="run minitiny's property suite on the model generated in DIR (repeatable)")
    group.addoption("--minitiny-budget", type=float, default=60.0, metavar="SECONDS",
                    help="time budget per model directory (default 60)")
    group.addoption("--minitiny-tflite", default=None, metavar="FILE",
                    help="the .tflite file TFLite Micro runs (default: the model written as .tflite)")


class PropertyItem(pytest.Item):
    def __init__(self, *, c_dir, prop, **kwargs):
        super().__init__(**kwargs)
        self.c_dir, self.prop = c_dir, prop

    def runtest(self):
        from . import suite
        config = self.config
        qmodel = suite.load_model(self.c_dir)
        options = {"tflite": config.getoption("minitiny_tflite")} if self.prop == "bit-exact" else {}
        fn, share = suite.PROPERTIES[self.prop]
        fn(self.c_dir, qmodel, config.getoption("minitiny_budget") * share, **options)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (AssertionError, FileNotFoundError, ValueError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.c_dir, None, f"minitiny[{self.c_dir}]::{self.prop}"


def pytest_collection_modifyitems(session, config, items):
    from .suite import PROPERTIES
    for c_dir in config.getoption("minitiny"):
        if not os.path.isdir(c_dir):
            raise pytest.UsageError(f"--minitiny {c_dir}: not a directory written by `minitiny generate`")
        for prop in PROPERTIES:
            items.append(PropertyItem.from_parent(session, name=f"minitiny[{c_dir}]::{prop}",
                                                  c_dir=c_dir, prop=prop))


@pytest.fixture
def minitiny_model(request):
    """(QModel, directory) of the first --minitiny directory (skips without one)."""
    dirs = request.config.getoption("minitiny")
    if not dirs:
        pytest.skip("no --minitiny DIR given")
    from .suite import load_model
    return load_model(dirs[0]), dirs[0]
