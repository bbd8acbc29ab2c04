"""minitiny.testing, checked: its strategies draw what they promise, its targeted inputs
hit the accumulators they aim at, its shrinker ends at a minimal input, and
assert_equivalent finds a planted fault in generated C and names the layer.

Oracles: brute force over every accumulator of a range (knife edges), a predicate whose
minimal failing input is known by construction (the shrinker), the NumPy int8 kernels
(the linear form of a layer), an independent run of the faulty C (the reported input).
"""
import copy
import functools
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

from minitiny import codegen
from minitiny.quant import fixedpoint as fp, kernels, tflm
from minitiny.testing import (Mismatch, assert_equivalent, assert_invariant, assert_monotonic,
                              assert_stable, float_inputs, int8_inputs, knife_edges, qmodels,
                              shrink, targeted_inputs, tflite_files)
from minitiny.testing import models, targets

GCC = shutil.which("gcc") or shutil.which("clang")
# more draws under HYPOTHESIS_PROFILE=thorough (the budgets below are CI's)
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 1
requires_cc = pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
# the short road of the C requantization without its sign correction: negative ties round
# toward +infinity instead of away from zero (one of the faults `minitiny verify` missed)
SIGN_FAULT = ("(int32_t)(high - (high >> 31))", "(int32_t)high")


@functools.lru_cache(maxsize=None)
def conv_mlp(seed=16):
    """A conv -> max pool -> dense -> softmax model on which SIGN_FAULT is visible (seed 16:
    its dense layer has a zero point and clamp that let a negative tie through)."""
    return models.random_qmodel(seed, ["conv_2d", "max_pool_2d", "reshape", "fully_connected", "softmax"],
                                spatial=True)


# ---------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def conv_mlp_inputs():
    return int8_inputs(conv_mlp())


@given(st.data())
@settings(max_examples=30 * SCALE)
def test_int8_inputs_lie_in_range(data):
    model = conv_mlp()
    x = data.draw(conv_mlp_inputs())
    assert x.dtype == np.int8 and x.shape == model.input.shape


FIND = settings(max_examples=300 * SCALE, database=None)


def test_int8_inputs_reach_the_extremes_the_zero_point_and_the_targets():
    model = conv_mlp()
    model.prepare()
    zp, strategy = int(model.input.zero_point), int8_inputs(model)
    for value in (-128, 127, zp):
        find(strategy, lambda x: np.all(x == value), settings=FIND)
    find(strategy, lambda x: {-128, 127} <= set(np.unique(x).tolist()) and len(np.unique(x)) <= 3,
         settings=FIND)
    # an input on a knife edge of the first layer's accumulators (targets.py solved it)
    layer = targets.LinearLayer(model, model.ops[0])
    edges = [set(layer.edges(e).tolist()) for e in range(len(layer.channel))]
    find(strategy, lambda x: any(int(a) in edges[e] for e, a in enumerate(layer.acc(x[None])[0])),
         settings=FIND)


@given(st.data())
@settings(max_examples=40 * SCALE)
def test_float_inputs_cover_inside_and_outside_the_calibration_range(data):
    calibration = np.linspace(-2.0, 3.0, 50, dtype=np.float32).reshape(10, 5)
    x = data.draw(float_inputs(None, calibration=calibration, outside=0.5, shape=(5,)))
    assert x.shape == (5,) and x.dtype == np.float32
    assert np.all(x >= -2.0 - 2.5 - 1e-6) and np.all(x <= 3.0 + 2.5 + 1e-6)


def test_float_inputs_reach_beyond_both_ends():
    strategy = float_inputs(None, np.array([[-1.0], [1.0]], np.float32), 1.0, shape=(1,))
    for inside in (lambda v: v < -1.0, lambda v: v > 1.0, lambda v: abs(v) < 0.9):
        find(strategy, lambda x: inside(float(x[0])), settings=FIND)


@pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed")
@given(tflite_files(["conv_2d", "fully_connected", "relu"], max_layers=3))
@settings(max_examples=5 * SCALE)
def test_tflite_files_are_models_tflm_runs(data):
    from minitiny.quant.tflite_read import run_tflm_int8
    from minitiny.quant.tflite_read import from_tflite
    qmodel = from_tflite(data)
    x = models.int8_input(np.random.default_rng(0), qmodel.input.shape, 3)
    np.testing.assert_array_equal(run_tflm_int8(data, x), qmodel.predict_int8(x))


@given(qmodels(["fully_connected", "relu", "residual"], max_layers=3, spatial=False))
@settings(max_examples=10 * SCALE)
def test_qmodels_draws_the_kinds_asked_for(qmodel):
    # a residual block's branch may hold any layer that keeps its input's shape
    assert {op.kind for op in qmodel.ops} <= {"fully_connected", "relu", "add", "conv_2d", "depthwise_conv_2d",
                                              "max_pool_2d", "average_pool_2d", "relu6", "logistic", "tanh",
                                              "mul", "prelu", "hard_swish"}


# ---------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------
@given(st.integers(2 ** 30, 2 ** 31 - 1), st.integers(-12, 2), st.integers(-128, 127),
       st.sampled_from([(-128, 127), (0, 127), (-128, 50)]))
@settings(max_examples=40 * SCALE)
def test_knife_edges_are_the_clamp_bounds_and_ties_brute_force_finds(m, shift, z, clamp):
    """Every accumulator of [-3000, 3000] requantized (the exact integer formula): the
    reported clamp transitions are all there are, and every reported tie is a tie."""
    lo, hi = clamp
    acc = np.arange(-3000, 3001)
    out = fp.multiply_by_quantized_multiplier(acc, m, shift) + z
    edges = set(knife_edges(m, shift, z, lo, hi, -3000, 3000).tolist())
    for bound in (lo, hi + 1):                      # the first acc at or past a clamp bound
        first = np.flatnonzero(out >= bound)
        if len(first) and first[0] > 0:
            assert {int(acc[first[0]]) - 1, int(acc[first[0]])} <= edges
    r = max(-shift, 0)
    if r >= 1 and shift <= 0:
        x = fp.saturating_rounding_doubling_high_mul(acc, m)
        ties = set(acc[(x & ((1 << r) - 1)) == (1 << (r - 1))].tolist())
        near_zero = {a for a in ties if abs(int(x[a + 3000])) < (1 << r)}     # the ties at q = -1, 0
        assert near_zero <= edges


def test_linear_form_of_a_layer_is_what_the_kernel_computes():
    qmodel = conv_mlp()
    qmodel.prepare()
    x = models.int8_input(np.random.default_rng(1), qmodel.input.shape, 20)
    values = qmodel.predict_int8(x, return_all=True)
    for op in qmodel.ops:
        if op.kind not in targets.WEIGHTED:
            continue
        layer, p = targets.LinearLayer(qmodel, op), op.params
        acc = layer.acc(values[op.inputs[0]])
        out = np.clip(targets.requantize(acc, p["output_multiplier"][layer.channel],
                                         p["output_shift"][layer.channel], p["output_offset"]),
                      p["act_min"], p["act_max"])
        np.testing.assert_array_equal(out, values[op.outputs[0]].reshape(len(x), -1))


@pytest.mark.parametrize("shape, units", [((100, 100, 1), 6), ((1200,), 1000)])
def test_solved_inputs_hit_their_targets_on_large_layers(shape, units):
    """Where users go: a 100x100 image flattened into a dense layer, a dense layer of 1000
    units; extreme input and weight scales (1e-14 .. 1e15, their products still normal
    float32)."""
    rng = np.random.default_rng(len(shape))
    b = models.Builder(7, shape, "large", in_scale=np.float32(1e-12 if len(shape) == 3 else 1e15),
                       weight_scales=(1e-14, 1e-12) if len(shape) == 3 else (1e14, 1e15))
    qmodel = (b.flatten() if len(shape) == 3 else b).dense(units, "relu", per_channel=True).model()
    qmodel.prepare()
    layer = targets.LinearLayer(qmodel, qmodel.ops[-1])
    hits = 0
    for e in rng.choice(len(layer.channel), min(8, len(layer.channel)), replace=False):
        for target in layer.edges(int(e))[:4]:
            x = layer.solve(int(e), target, rng.integers(-128, 128, qmodel.input.shape))
            if x is not None:
                assert layer.acc(x[None], int(e))[0] == target and x.min() >= -128 and x.max() <= 127
                hits += 1
    assert hits >= 8


def test_solved_inputs_hit_their_targets_exactly():
    qmodel = conv_mlp()
    qmodel.prepare()
    layer = targets.LinearLayer(qmodel, qmodel.ops[0])
    rng = np.random.default_rng(0)
    hits = 0
    for e in range(len(layer.channel)):
        for target in layer.edges(e):
            x = layer.solve(e, target, rng.integers(-128, 128, qmodel.input.shape))
            if x is not None:
                assert x.min() >= -128 and x.max() <= 127
                assert layer.acc(x[None], e)[0] == target
                hits += 1
    assert hits >= 10
    batch = targeted_inputs(qmodel, n=16)
    assert batch.dtype == np.int8 and batch.shape[1:] == qmodel.input.shape and len(batch) >= 8


def test_solved_inputs_find_a_bias_fault_the_next_layers_mask():
    """A bias constant off by one in one channel of a per-channel dense layer moves that
    channel's output by one step, only where its accumulator sits next to a step, and the
    next dense layer and the softmax hide most such steps. The solved inputs (each chosen
    where that step reaches the model output) show the fault in every channel; as many
    random inputs show it in none (seed 3: every channel's fault is visible)."""
    qmodel = models.Builder(3, (64,), "masked").dense(16, "relu", per_channel=True).dense(10).softmax().model()
    qmodel.prepare()
    op = qmodel.ops[0]
    solved = np.concatenate(list(targets.solved_batches(qmodel, op, np.random.default_rng(0), limit=256,
                                                        tries=31)))
    rand = np.random.default_rng(1).integers(-128, 128, solved.shape).astype(np.int8)
    hits = {"solved": [], "random": []}
    for c in range(16):
        faulty = copy.deepcopy(qmodel)
        bias = faulty.tensors[op.inputs[2]]
        bias.data = bias.data.copy()
        bias.data[c] += 1
        for name, x in (("solved", solved), ("random", rand)):
            if np.any(faulty.predict_int8(x) != qmodel.predict_int8(x)):
                hits[name].append(c)
    assert hits["solved"] == list(range(16)) and len(hits["random"]) <= 2, hits


def test_sensitivity_is_a_one_step_change_reaching_the_output():
    """sensitivity against the rest of the model run by hand, one input at a time, on
    the moved value: a dense layer whose next layer and softmax hide some steps."""
    qmodel = models.Builder(3, (64,), "masked").dense(16, "relu", per_channel=True).dense(10).softmax().model()
    qmodel.prepare()
    op = qmodel.ops[0]
    x = np.random.default_rng(0).integers(-128, 128, (100, 64)).astype(np.int8)
    for e, step in ((3, 1), (11, -1)):
        got = targets.sensitivity(qmodel, op, x, [e], steps=(step,))[:, 0]
        values = qmodel.predict_int8(x, return_all=True)
        want = np.zeros(len(x), bool)
        for n in range(len(x)):
            h = values[op.outputs[0]][n].astype(np.int64)
            h[e] = np.clip(h[e] + step, -128, 127)
            v = {op.outputs[0]: h[None].astype(np.int8)}
            for o in qmodel.ops[1:]:
                v[o.outputs[0]] = kernels.run(o, qmodel.tensors,
                                              [v[i] if i in v else qmodel.tensors[i].data for i in o.inputs])
            want[n] = np.any(v[qmodel.outputs[0]][0] != values[qmodel.outputs[0]][n])
        np.testing.assert_array_equal(got, want)
        assert 0 < got.sum() < len(x), (e, got.sum())


# ---------------------------------------------------------------------------------------
# Shrinking
# ---------------------------------------------------------------------------------------
@given(st.integers(-128, 127), st.integers(-100, 100), st.integers(-100, 100), st.integers(0, 2 ** 16))
@settings(max_examples=30 * SCALE)
def test_shrinking_ends_at_the_minimal_input(zp, a, b, seed):
    """fails(x) <=> x[3] - zp >= a' and x[7] - zp <= b' (away from zp, inside int8): the
    smallest failing input is known, all zero point but those two values."""
    a = int(np.clip(zp + a, -128, 127)) - zp
    b = int(np.clip(zp + b, -128, 127)) - zp
    if a <= 0 or b >= 0:
        a, b = max(a, 1), min(b, -1)
        if zp + a > 127 or zp + b < -128:
            return
    fails = lambda xs: (xs.reshape(len(xs), -1)[:, 3].astype(int) - zp >= a) & \
                       (xs.reshape(len(xs), -1)[:, 7].astype(int) - zp <= b)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (4, 4)).astype(np.int8)
    x.reshape(-1)[3], x.reshape(-1)[7] = 127 if a > 0 else zp + a, -128 if b < 0 else zp + b
    assert fails(x[None])[0]
    small = shrink(x, fails, zp)
    want = np.full(16, zp, np.int8)
    want[3], want[7] = zp + a, zp + b
    np.testing.assert_array_equal(small.reshape(-1), want)


def test_shrinking_stops_at_its_deadline_with_a_failing_input():
    """fails(x) <=> at least 600 of 1024 values at 127: minimal inputs keep 600 of them, so
    shrinking one value at a time takes hundreds of slow batches; a deadline ends it early
    and what it returns still fails."""
    import time
    calls = []

    def fails(xs):
        calls.append(len(xs))
        time.sleep(0.05)
        return (xs.reshape(len(xs), -1) == 127).sum(axis=1) >= 600
    x = np.full(1024, 127, np.int8)
    start = time.monotonic()
    small = shrink(x, fails, 0, deadline=start + 0.5)
    assert time.monotonic() - start < 0.5 + 0.05 + 1.0           # one batch may finish late
    assert fails(small[None])[0] and len(calls) < 20
    assert not np.array_equal(small, x) or len(calls) == 1          # it did shrink if it could


# ---------------------------------------------------------------------------------------
# assert_equivalent on generated C
# ---------------------------------------------------------------------------------------
@requires_cc
def test_assert_equivalent_passes_on_the_generated_c(tmp_path):
    qmodel = conv_mlp()
    codegen.generate(qmodel, tmp_path, name="m", variant="scalar")
    assert assert_equivalent(qmodel, tmp_path, n=64) >= 64


@requires_cc
def test_assert_equivalent_finds_a_planted_fault_and_names_the_layer(tmp_path):
    qmodel = conv_mlp()
    codegen.generate(qmodel, tmp_path, name="m", variant="scalar")
    src = tmp_path / "m_model.c"
    text = src.read_text()
    assert SIGN_FAULT[0] in text
    src.write_text(text.replace(*SIGN_FAULT))
    with pytest.raises(Mismatch) as info:
        assert_equivalent(qmodel, tmp_path, n=64, search_steps=30)
    err = info.value
    assert err.engine == "C" and err.layer == 3 and err.op.kind == "fully_connected"
    assert "First layer that diverges: layer 3 'fully_connected_3'" in str(err)
    # the reported input really differs, run independently of the probe build
    got = codegen.load(tmp_path)(err.input[None])
    assert not np.array_equal(got, qmodel.predict_int8(err.input[None]))
    assert not np.array_equal(err.expected, err.actual)
    # shrunk: no value can be moved to the zero point and still show the fault
    zp = int(qmodel.input.zero_point)
    for i in np.flatnonzero(err.input.reshape(-1) != zp)[:10]:
        y = err.input.copy().reshape(-1)
        y[i] = zp
        assert np.array_equal(codegen.load(tmp_path)(y.reshape(err.input.shape)[None]),
                              qmodel.predict_int8(y.reshape(err.input.shape)[None]))


# ---------------------------------------------------------------------------------------
# Properties of the model itself
# ---------------------------------------------------------------------------------------
def two_class_model(w_sign=1):
    """dense 4 -> 2 with weights +-(1, 1, 1, 1): class 1 wins when sum(x) rises."""
    b = models.Builder(0, (4,), "two", in_scale=0.01, in_zero_point=0)
    b.dense(2)
    qmodel = b.model()
    w = qmodel.tensors[qmodel.ops[0].inputs[1]]
    w.data[:] = np.array([[-1, -1, -1, -1], [1, 1, 1, 1]], np.int8) * w_sign
    qmodel.tensors[qmodel.ops[0].inputs[2]].data[:] = 0
    out = qmodel.tensors[qmodel.ops[0].outputs[0]]
    out.scale, out.zero_point = np.float32(2 * 0.01 * float(w.scale)), np.int32(0)   # out = acc / 2
    qmodel.prepare()
    return qmodel


def test_assert_stable_finds_a_flip_near_the_boundary_and_passes_far_from_it():
    qmodel = two_class_model()
    assert_stable(qmodel, np.array([[100, 100, 100, 100]], np.int8), noise=3)
    with pytest.raises(AssertionError, match="class 1 becomes 0"):
        assert_stable(qmodel, np.array([[2, 1, -1, 0]], np.int8), noise=1)


def test_assert_monotonic_sweeps_every_value_of_the_feature():
    assert_monotonic(two_class_model(), np.zeros((2, 4), np.int8), feature=2, output=1)
    with pytest.raises(AssertionError, match="output 1 falls"):
        assert_monotonic(two_class_model(-1), np.zeros((1, 4), np.int8), feature=2, output=1)


def test_assert_invariant_to_a_declared_transformation():
    qmodel = two_class_model()
    x = np.array([[10, 20, 30, 40], [-5, -6, -7, -8]], np.int8)
    assert_invariant(qmodel, x, lambda v: v[::-1])                  # a sum ignores the order
    with pytest.raises(AssertionError, match="change class under negate"):
        assert_invariant(qmodel, x, lambda v: -v, name="negate")


# ---------------------------------------------------------------------------------------
# The pytest plugin, run as a user runs it: in a project of their own
# ---------------------------------------------------------------------------------------
def plant(c_file, pattern, replace):
    """One fault in a generated C file: the first match of `pattern` replaced."""
    text = c_file.read_text()
    new, n = re.subn(pattern, replace, text, count=1)
    assert n == 1, pattern
    c_file.write_text(new)


@requires_cc
def test_pytest_plugin_runs_the_property_suite_on_a_model_directory(tmp_path):
    qmodel = conv_mlp()
    codegen.generate(qmodel, tmp_path / "build" / "good", name="m", variant="scalar")
    codegen.generate(qmodel, tmp_path / "build" / "bad", name="m", variant="scalar")
    # the first layer's first bias constant far off (a bias of another model pasted in)
    plant(tmp_path / "build" / "bad" / "m_model.c", r"(conv_2d_0_bias\[\d+\] = \{\s*)(-?\d+)",
          lambda m: m.group(1) + str(int(m.group(2)) + 20000))
    installed = any(e.value == "minitiny.testing.plugin"
                    for e in importlib.metadata.entry_points(group="pytest11"))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--minitiny-budget", "3",
           "--minitiny", "build/good", "--minitiny", "build/bad"]
    if not installed:       # a source checkout without `pip install -e .`: load it by name
        cmd[3:3] = ["-p", "minitiny.testing.plugin"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "1 failed, 5 passed" in out, out
    assert "minitiny[build/bad]::bit-exact" in out and "layer 0 'conv_2d_0'" in out, out


@requires_cc
def test_cli_verify_thorough_names_the_layer_within_its_budget(tmp_path, capsys):
    from minitiny.cli import main
    qmodel = conv_mlp()
    codegen.generate(qmodel, tmp_path / "bad", name="m", variant="scalar")
    plant(tmp_path / "bad" / "m_model.c", r"(conv_2d_0_bias\[\d+\] = \{\s*)(-?\d+)",
          lambda m: m.group(1) + str(int(m.group(2)) + 20000))
    assert main(["verify", str(tmp_path / "bad"), "-n", "4", "--thorough", "--budget", "3"]) == 1
    out = capsys.readouterr().out
    assert "thorough: bit-exact" in out and "FAILED" in out and "layer 0 'conv_2d_0'" in out
    assert main(["verify", str(tmp_path / "bad"), "--thorough", "--budget", "-1"]) == 2


@requires_cc
@pytest.mark.parametrize("fault", [False, True])
def test_assert_equivalent_stops_within_its_budget_however_slow_the_model(tmp_path, monkeypatch, fault):
    """Every comparison made 0.3 s slower (a model far larger than this one): the search,
    the shrinking of a found difference and the diagnosis still end within the budget and a
    few comparisons (the C is compiled before the clock starts)."""
    import time
    from minitiny.testing import equivalence
    qmodel = conv_mlp()
    codegen.generate(qmodel, tmp_path, name="m", variant="scalar")
    if fault:
        plant(tmp_path / "m_model.c", r"(conv_2d_0_bias\[\d+\] = \{\s*)(-?\d+)",
              lambda m: m.group(1) + str(int(m.group(2)) + 20000))
    equivalence.Engines(qmodel, tmp_path, use_tflm=False)            # compiled and cached
    real = equivalence.Engines.differs

    def slow(self, x, which=None):
        time.sleep(0.3)
        return real(self, x, which)
    monkeypatch.setattr(equivalence.Engines, "differs", slow)
    budget, start = 3.0, time.monotonic()
    if fault:
        with pytest.raises(Mismatch, match="layer 0 'conv_2d_0'"):
            assert_equivalent(qmodel, tmp_path, budget=budget, search_steps=40, use_tflm=False)
    else:
        assert assert_equivalent(qmodel, tmp_path, budget=budget, search_steps=40, use_tflm=False) > 0
    assert time.monotonic() - start < 2 * budget


# ---------------------------------------------------------------------------------------
# docs/VERIFY.md: its commands parse, its fault can be planted, its code runs
# ---------------------------------------------------------------------------------------
DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "VERIFY.md")


def doc_blocks(kind):
    with open(DOC, encoding="utf-8") as f:
        return re.findall(rf"```{kind}\n(.*?)```", f.read(), re.S)


def digits_shaped(tmp_path):
    """A stand-in for the demo's digits model (784 -> 20 relu -> 10 softmax), generated
    where the walk-through expects it, and the faulty copy step 1 makes."""
    b = models.Builder(10, (28, 28), "digits")
    qmodel = b.flatten().dense(20, "relu").dense(10).softmax().model()
    codegen.generate(qmodel, tmp_path / "build" / "demo" / "digits", name="digits")
    shutil.copytree(tmp_path / "build" / "demo" / "digits", tmp_path / "build" / "faulty")
    return qmodel


@requires_cc
def test_the_verify_walkthrough_commands_parse_and_its_code_runs(tmp_path, monkeypatch):
    from minitiny.cli import build_parser
    qmodel = digits_shaped(tmp_path)
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    for line in "\n".join(doc_blocks("sh")).splitlines():
        argv = shlex.split(line.split("#")[0])
        if not argv:
            continue
        if argv[0] == "minitiny":
            parser.parse_args(argv[1:])                 # exits (SystemExit) on an unknown option
        elif argv[0] == "sed":                          # step 1: the fault, planted as written
            old, new = re.fullmatch(r"s/(.*)/(.*)/", argv[2]).groups()
            unescape = lambda s: s.replace("\\(", "(").replace("\\)", ")")
            c_file = tmp_path / argv[3]
            text = c_file.read_text()
            assert unescape(old) in text
            c_file.write_text(text.replace(unescape(old), unescape(new)))
        elif argv[0] == "pytest":
            assert {"--minitiny", "--minitiny-budget"} <= set(a for a in argv if a.startswith("--"))
    python = doc_blocks("python")
    scope = {}
    code = python[0].replace("budget=30", "budget=3")          # CI's time, the same code
    exec(compile(code, "VERIFY.md", "exec"), scope)            # loads build/demo/digits
    assert scope["qmodel"].input.shape == qmodel.input.shape
    try:
        scope["test_the_c_is_bit_exact"]()
    except Mismatch as e:                             # the stand-in may show the fault, or not
        assert e.engine == "C" and "First layer that diverges" in str(e)
    exec(compile(python[1], "VERIFY.md", "exec"), scope)


# ---------------------------------------------------------------------------------------
# bench/mutation.py: its equivalence decisions, checked by brute force on a small layer
# ---------------------------------------------------------------------------------------
def _brute_force_agrees(qmodel, decided, every, tmp_path):
    """Each decided fault's C on every input: it changes an output iff it was called
    non-equivalent."""
    for i, r in enumerate(decided):
        d = tmp_path / f"f{i}"
        codegen.generate(qmodel, d, name="m", variant=r["variant"])
        (d / "m_model.c").write_text(r["source"])
        differs = np.any(codegen.load(d)(every) != qmodel.predict_int8(every))
        assert differs == (r["status"] == "non-equivalent"), (r["operator"], r["status"])


@requires_cc
@pytest.mark.parametrize("softmax", [False, True])
def test_mutation_bench_decisions_agree_with_brute_force(tmp_path, softmax):
    """A dense layer on two inputs (then a softmax, whose helpers the requantization's
    faults reach too): all 65,536 int8 inputs through the faulty C. A fault the bench
    calls equivalent changes no output; one it calls non-equivalent changes some."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    import mutation
    b = models.Builder(3, (2,), "tiny", in_zero_point=0).dense(3, "relu", per_channel=True)
    qmodel = (b.softmax() if softmax else b).model()
    every = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 2).astype(np.int8)
    rows = mutation.bench(quick=True, budget=1.0, models={"tiny": (qmodel, every[::997])}, log=lambda *a: None)
    decided = [r for r in rows if r["status"] in ("equivalent", "non-equivalent")]
    assert len(decided) >= 5 and not [r for r in rows if r["status"] == "DECISION WRONG"]
    if softmax:                     # helpers the softmax shares, proved equivalent (seed 3)
        assert {r["operator"] for r in decided if r["status"] == "equivalent"} & \
            {"rounding: RDBPOT threshold", "saturation branch"}
    _brute_force_agrees(qmodel, decided, every, tmp_path)
    assert f"| tiny | {rows[0]['variant']} |" in mutation.table(rows, 1.0)


@requires_cc
def test_mutation_bench_decides_mean_faults_as_brute_force_does(tmp_path):
    """A 1x1 conv, MEAN and a dense layer on two inputs: all 65,536 of them through the
    faulty C. MEAN's multiplier and shift and the requantization helper (called by MEAN
    too) are decided over MEAN's reachable sums: what the bench calls equivalent changes
    no output, what it calls non-equivalent changes some."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    import mutation
    qmodel = models.Builder(5, (1, 2, 1), "mean").conv(2, kernel=(1, 1), activation="relu").mean().dense(3).model()
    every = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 1, 2, 1)
    every = every.astype(np.int8)
    rows = mutation.bench(quick=True, budget=1.0, models={"mean": (qmodel, every[::997])}, log=lambda *a: None)
    decided = [r for r in rows if r["status"] in ("equivalent", "non-equivalent")]
    assert not [r for r in rows if r["status"] == "DECISION WRONG"]
    assert {"multiplier", "shift constant"} & {r["operator"] for r in decided}
    _brute_force_agrees(qmodel, decided, every, tmp_path)


def test_reachable_bounds_hold_and_are_exact_for_a_first_dense_layer():
    """reach.tensor_bounds against every one of the 65,536 inputs of a two-input model:
    every activation lies within its bounds, and the first (dense) layer's bounds are
    reached (interval arithmetic is exact for one layer: each input is free)."""
    from minitiny.testing import reach
    qmodel = models.Builder(4, (2,), "two").dense(6, "relu", per_channel=True).dense(5, "relu").dense(3).model()
    qmodel.prepare()
    bounds = reach.tensor_bounds(qmodel)
    every = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 2).astype(np.int8)
    values = qmodel.predict_int8(every, return_all=True)
    for op in qmodel.ops:
        lo, hi = bounds[op.outputs[0]]
        v = values[op.outputs[0]]
        assert (v >= lo).all() and (v <= hi).all(), op.name
    first = qmodel.ops[0].outputs[0]
    np.testing.assert_array_equal(values[first].min(axis=0), bounds[first][0][0])
    np.testing.assert_array_equal(values[first].max(axis=0), bounds[first][1][0])


@given(qmodels(max_layers=6), st.integers(0, 2 ** 16))
@settings(max_examples=10 * SCALE, deadline=None)
def test_reachable_bounds_hold_on_drawn_models(qmodel, seed):
    """Random models of every kind the drawer makes (branches, pooling, element-wise
    ops), random and extreme inputs: every activation within reach.tensor_bounds."""
    from minitiny.testing import reach
    qmodel.prepare()
    bounds = reach.tensor_bounds(qmodel)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (64,) + qmodel.input.shape).astype(np.int8)
    x[0], x[1] = -128, 127
    values = qmodel.predict_int8(x, return_all=True)
    for name, (lo, hi) in bounds.items():
        if name in values:
            assert (values[name] >= lo).all() and (values[name] <= hi).all(), name


def test_assert_int8_agrees_with_float_bounds_the_quantization_error():
    import minitiny as mt
    from minitiny.layers import Dense
    from minitiny.testing import assert_int8_agrees_with_float
    mt.random.seed(0)
    model = mt.Sequential([Dense(3, input_shape=[4])])
    x = np.random.default_rng(0).uniform(-1, 1, (64, 4)).astype(np.float32)
    qmodel = mt.quantize(model, x)
    # the int8 error of one dense layer: a few output steps at most
    assert_int8_agrees_with_float(model, qmodel, 4 * float(qmodel.output.scale), x)
    assert_int8_agrees_with_float(model, qmodel, 0.05, x, classes=True)
    with pytest.raises(AssertionError, match="differs from float by"):
        assert_int8_agrees_with_float(model, qmodel, 1e-9, x)
