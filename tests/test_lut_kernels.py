"""The table kernel of the tuned variants (codegen/lut.py, templates/scalar/lut.c.j2): an op
whose output value depends on one input value (and a constant's value per channel) as a
lookup, bit for bit the op's arithmetic.

Oracles: the NumPy int8 reference (QModel.predict_int8, held to TFLite Micro by
tests/test_leaky_prelu_hard_swish.py, test_elementwise_binary.py, test_kernels.py) and the
reference variant's C, which computes each op with its own arithmetic (no table), compiled on
the host through cffi. The scalar, DSP (through tests/dsp_host.py's ACLE shim) and auto
variants must give their bits on inputs in which every channel meets every int8 value, in
place and with every output in bytes of its own.

Hypothesis draws the op, the shape (odd sizes, channels not multiples of 4), input scales
log-uniform over 1e-6..1e6, zero points at -128 and 127 a third of the time, and a constant
operand (one value, one per channel, or one varying along another axis, which no table
computes), before or after the activation. A few large feature maps per CI run, more under
HYPOTHESIS_PROFILE=thorough; some draws built with ASan and UBSan; the emulated M4 runs a
model of every table kind.
"""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import int8_oracle as O
from dsp_host import requires_qemu, run_on
from minitiny import codegen
from minitiny.codegen import lut
from minitiny.quant.graph import GraphError

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
KINDS = lut.UNARY + lut.BINARY


def every_value(rng, shape, channels):
    """int8 (N, *shape) in which each of `channels` channels (the last axis; 1: all values)
    holds every int8 value at least once, in random places."""
    size = int(np.prod(shape))
    pixels = size // channels
    n = -(-256 // pixels) + 1
    columns = [rng.permutation(np.resize(np.arange(-128, 128), n * pixels)) for _ in range(channels)]
    return np.stack(columns, axis=1).reshape((n,) + tuple(shape)).astype(np.int8)


def build(kind, seed, shape, s_in, z_in, constant, constant_first, activation):
    """One `kind` layer on an input of `shape`; constant: 'scalar', 'channel' (one value per
    channel) or 'row' (one per value of the first axis: no table computes it)."""
    b = O.Builder(seed, shape, kind, np.float32(s_in), z_in)
    if kind in lut.UNARY and kind != "quantize":
        getattr(b, kind)()
    elif kind == "quantize":
        b._op("quantize", [b.cur], b._tensor(shape, np.float32(s_in * O.log_uniform(b.rng, 0.05, 20)),
                                               O.zero_point(b.rng)))
    else:
        other = {"scalar": (), "channel": shape[-1:], "row": shape[:1] + (1,) * (len(shape) - 1)}[constant]
        if kind == "prelu":
            b.prelu(other or (1,))
        else:
            b.binary(kind, other_shape=other, constant=True, constant_first=constant_first,
                     activation=activation if kind in O.FUSED else "none")
    return b.model()


@st.composite
def drawn(draw, max_dim=9):
    kind = draw(st.sampled_from(KINDS), label="kind")
    rank = draw(st.integers(1, 3), label="rank")
    shape = tuple(draw(st.integers(1, max_dim)) for _ in range(rank))
    s_in = float(np.exp(draw(st.floats(np.log(1e-6), np.log(1e6)))))
    z_in = draw(st.sampled_from([-128, 127, None]))
    z_in = draw(st.integers(-128, 127)) if z_in is None else z_in
    args = (kind, draw(O.seeds), shape, s_in, z_in, draw(st.sampled_from(["scalar", "channel", "row"])),
            draw(st.booleans()), draw(st.sampled_from(O.ACTIVATIONS)))
    try:
        return build(*args), args
    except GraphError:                   # a scale Prepare refuses (e.g. hard_swish's multiplier >= 1)
        return None, args


def channels_of(model):
    """The channels of the layer's tables (lut.channels), 1 when it takes none."""
    return lut.channels(model.ops[-1], model) or 1


def host(model, x, variant, flags=(), in_place=True, sanitize=False):
    with tempfile.TemporaryDirectory() as d:
        g = codegen.generate(model, d, name="t", variant=variant, in_place=in_place)
        with open(os.path.join(d, g.manifest["source"]), encoding="utf-8") as f:
            source = f.read()
        got = codegen.load(d, flags=flags, sanitize=sanitize)(x)
    return got.reshape((len(x),) + model.output.shape), source


def check(model, x, variants, flags):
    want = model.predict_int8(x)
    reference, source = host(model, x, "reference")
    assert "_table[" not in source or model.ops[-1].kind == "elu"       # the arithmetic, not a table
    assert np.array_equal(reference, want), f"reference C differs from NumPy\n{model.summary()}"
    for variant in variants:
        for in_place in (True, False):
            got, source = host(model, x, variant, flags if variant == "dsp" else (), in_place)
            bad = np.argwhere(got != want)
            assert not len(bad), (f"{variant} (in_place={in_place}): {len(bad)} of {want.size} differ; "
                                  f"first at {tuple(bad[0])}: C {got[tuple(bad[0])]}, NumPy "
                                  f"{want[tuple(bad[0])]}\n{model.summary()}")
    return source


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(case=drawn(), input_seed=st.integers(0, 2 ** 16), variant=st.sampled_from(["scalar", "dsp", "auto"]))
def test_drawn_tables_give_the_arithmetic_bits(case, input_seed, variant, shim_flags):
    model, args = case
    assume(model is not None)
    x = every_value(np.random.default_rng(input_seed), model.input.shape, channels_of(model))
    source = check(model, x, [variant], shim_flags)
    assert ("_table[" in source) == (lut.table(model.ops[-1], model) is not None)


@settings(max_examples=12 if THOROUGH else 2, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=drawn(), input_seed=st.integers(0, 2 ** 16))
def test_drawn_tables_run_clean_under_asan_and_ubsan(case, input_seed):
    model, _ = case
    assume(model is not None and lut.table(model.ops[-1], model) is not None)
    x = every_value(np.random.default_rng(input_seed), model.input.shape, channels_of(model))
    got, _ = host(model, x, "scalar", sanitize=True)
    assert np.array_equal(got, model.predict_int8(x))


LARGE = [                        # (kind, shape, constant): MobileNet-sized feature maps
    ("hard_swish", (96, 96, 16), None),
    ("add", (64, 64, 3), "scalar"),          # Keras' Rescaling offset
    ("mul", (48, 48, 12), "channel"),        # a normalization's per-channel scale
    ("logistic", (4096,), None),
    ("sub", (40, 33, 5), "channel"),
    ("prelu", (56, 56, 16), "channel"),
]


@pytest.mark.parametrize("i", range(len(LARGE) if THOROUGH else 2))
def test_large_feature_maps_at_extreme_scales(i, shim_flags):
    rng = np.random.default_rng(100 + i)
    kind, shape, constant = LARGE[i]
    for s_in in (1e-6, 1e6, float(O.log_uniform(rng, 1e-6, 1e6))):
        try:
            model = build(kind, i, shape, s_in, O.zero_point(rng), constant or "scalar", False, "relu6")
        except GraphError:
            continue
        assert lut.table(model.ops[-1], model) is not None
        x = every_value(rng, shape, channels_of(model))[:2]
        check(model, x, ["dsp", "auto"], shim_flags)


def test_equal_tables_are_emitted_once():
    """Two logistics on equal quantizations read one table: its flash is counted once."""
    b = O.Builder(0, (8,), "gates", np.float32(0.05), 3)
    x = b.cur
    b.logistic()
    first = b.cur
    b.cur = x
    b.logistic()
    model = b.model(outputs=[first, b.cur])
    with tempfile.TemporaryDirectory() as d:
        g = codegen.generate(model, d, name="g", variant="scalar")
        source = open(os.path.join(d, g.manifest["source"]), encoding="utf-8").read()
        got = codegen.load(d)(O.ALL_INT8.reshape(32, 8))
    assert source.count("static const int8_t logistic_0_table[256]") == 1
    assert "logistic_1_table" not in source
    assert [layer["weight_bytes"] for layer in g.manifest["layers"]] == [256, 0]
    for a, w in zip(got, model.predict_int8(O.ALL_INT8.reshape(32, 8))):
        assert np.array_equal(a.reshape(w.shape), w)


@requires_qemu
def test_every_table_kind_on_the_emulated_m4(tmp_path):
    """A chain of every table kind (one per channel too) on the emulated Cortex-M4, auto
    variant, against the NumPy reference."""
    b = O.Builder(7, (16, 16, 3), "tables", np.float32(0.04), -5)
    b.binary("mul", other_shape=(3,), constant=True)
    b.binary("add", other_shape=(), constant=True, constant_first=True, activation="relu")
    b.hard_swish().leaky_relu().elu().relu().binary("maximum", other_shape=(), constant=True)
    b.binary("squared_difference", other_shape=(), constant=True).logistic()
    b.binary("sub", other_shape=(), constant=True, constant_first=True).tanh().prelu((1,))
    model = b.model()
    assert all(lut.table(op, model) is not None for op in model.ops)
    run_on(model, "auto", "cortex-m4", tmp_path)
