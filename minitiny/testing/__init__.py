"""minitiny.testing: property-based verification of your own int8 model.

    from hypothesis import given
    from minitiny.testing import assert_equivalent, int8_inputs, assert_stable

    assert_equivalent(qmodel, "build/digits")        # NumPy int8 == C == TFLite Micro, or
                                                     # the shrunk input and the layer that differs
    @given(int8_inputs(qmodel))                      # extremes, zero point, targeted ties
    def test_mine(x): ...
    assert_stable(qmodel, x_test[:50], noise=2)      # no class flips under +-2 LSB

Files, in reading order:
    models.py       random int8 models: a builder, configurations, whole graphs (qmodels)
    inputs.py       hypothesis strategies: int8_inputs, float_inputs, tflite_files
    targets.py      inputs aimed at each layer's rounding ties and clamp bounds
    reach.py        the values each tensor can take: interval bounds through the graph
    shrinking.py    a failing input shrunk toward the zero point
    probe.py        every layer's output from the C (a probe build) and from TFLite Micro
    equivalence.py  assert_equivalent
    properties.py   assert_int8_agrees_with_float, assert_stable, assert_invariant, assert_monotonic
    suite.py        the standard property suite (`pytest --minitiny DIR`, `minitiny verify --thorough`)
    plugin.py       the pytest plugin
"""
import importlib

# name -> module: imported on first use, so that loading the pytest plugin (plugin.py,
# active in every pytest run once minitiny is installed) costs nothing and needs no hypothesis
_PUBLIC = {
    "equivalence": ["assert_equivalent", "Mismatch", "standard_inputs"],
    "inputs": ["int8_inputs", "float_inputs", "special_inputs", "tflite_files"],
    "models": ["Builder", "multi_io_model", "qmodels", "random_qmodel"],
    "properties": ["assert_int8_agrees_with_float", "assert_stable", "assert_invariant", "assert_monotonic"],
    "shrinking": ["shrink"],
    "reach": ["tensor_bounds"],
    "targets": ["knife_edges", "targeted_inputs"],
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'minitiny.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
