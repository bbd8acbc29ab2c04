"""16x8 (int16 activations, int8 weights, int64 bias) for the ops beyond test_int16.py's:
RELU, RELU6, LEAKY_RELU, PRELU (alpha int8), MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, TRANSPOSE_CONV,
RESIZE_NEAREST_NEIGHBOR, SUM, QUANTIZE int16 -> int16 and the data movement (CONCATENATION,
PACK, SPLIT, SPLIT_V, UNPACK, PAD/PADV2, STRIDED_SLICE, SLICE, TRANSPOSE).

Every model here is one of the int8 suites' random models (minitiny.testing.models, and
test_data_movement's drawer) carried into the 16x8 scheme by `to_16x8`, its scales moved by
a drawn gain over seven decades. The oracles:

- TensorFlow Lite Micro, bit for bit, on the writer's `.tflite` with int16 inputs over the
  whole range (-32768 and 32767 in every sample);
- NumPy's own indexing for the data movement (test_data_movement's references);
- the importer: the writer's file reads back to the same ops and outputs;
- the generated C (reference kernels): == NumPy through cffi, under ASan/UBSan, and strict
  C99 under gcc, clang and arm-none-eabi-gcc;
- two files TensorFlow's converter made in 16x8 (ops_16x8_cnn, ops_16x8_sequence), with the
  outputs TFLM gave for them stored beside them.

TFLM runs HARD_SWISH, ELU, RESIZE_BILINEAR, REDUCE_MAX, RSQRT, MIRROR_PAD, DEPTH_TO_SPACE
and SPACE_TO_DEPTH on int8 only (their kernels refuse int16): the kernels, the importer and
the quantizer refuse them by name.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
import test_data_movement as DM
import test_int16 as I16
import test_int16_fast as F
from minitiny import codegen
from minitiny.quant import kernels, supported
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import UnsupportedTFLiteError, from_tflite

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
FEW = settings(max_examples=max(3, settings().max_examples // 8))
WEIGHTED = ("fully_connected", "conv_2d", "depthwise_conv_2d", "transpose_conv")
ACTIVATION_KINDS = ("relu", "relu6", "leaky_relu", "prelu")
BINARY_KINDS = ("maximum", "minimum", "squared_difference")
SPATIAL_KINDS = ("transpose_conv", "resize_nearest_neighbor", "sum")
KINDS = ACTIVATION_KINDS + BINARY_KINDS + SPATIAL_KINDS + DM.KINDS
INT8_ONLY = ("hard_swish", "elu", "resize_bilinear", "reduce_max", "rsqrt", "mirror_pad", "depth_to_space",
             "space_to_depth")


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "16x8 ops vs TFLM")


# ---------------------------------------------------------------------------------------
# From an int8 model to its 16x8 twin
# ---------------------------------------------------------------------------------------
def to_16x8(m, gain=1.0):
    """The int8 QModel `m` in TFLite's 16x8 scheme: every activation and constant operand
    int16 with zero point 0 and scale s * gain / 256 (the same reals at 256 times the
    resolution, moved by `gain`); a constant operand's values (q - z) * 256, clipped; weights
    (and a PRELU's alpha) kept int8; bias int64 with the new s_in * s_w. Ratios of scales
    (the multipliers) stay."""
    weights = {op.inputs[1] for op in m.ops if op.kind in WEIGHTED + ("prelu",)}
    biases = {op.inputs[2]: op.inputs[0] for op in m.ops if op.kind in WEIGHTED and len(op.inputs) > 2}

    def moved(s):
        return np.float32(np.float32(s) * np.float32(gain) / np.float32(256))
    tensors = {}
    for name, t in m.tensors.items():
        if name in weights or name in biases:
            tensors[name] = t
        else:
            data = None if t.data is None else \
                np.clip((t.data.astype(np.int64) - int(t.zero_point)) * 256, -32768, 32767).astype(np.int16)
            tensors[name] = QTensor(name, t.shape, "int16", moved(t.scale), 0, data)
    for name, x in biases.items():
        b, w = m.tensors[name], m.tensors[[op for op in m.ops if name in op.inputs][0].inputs[1]]
        scale = (tensors[x].scale * np.broadcast_to(w.scale, b.shape)).astype(np.float32)
        tensors[name] = QTensor(name, b.shape, "int64", scale if w.per_channel else scale[0],
                                np.zeros(b.shape if w.per_channel else (), np.int32), b.data.astype(np.int64))
    ops = []
    for op in m.ops:
        options = dict(op.options)
        if op.kind == "pad" and options.get("constant") is not None:
            out = m.tensors[op.outputs[0]]
            options["constant"] = int(np.clip((options["constant"] - int(out.zero_point)) * 256, -32768, 32767))
        ops.append(QOp(op.kind, op.name, list(op.inputs), list(op.outputs), options))
    return QModel(m.name, tensors, ops, list(m.inputs), list(m.outputs))


def int16_inputs(m, rng, n=6):
    """(n, *shape) int16 per model input, uniform, -32768 and 32767 in every sample."""
    xs = []
    for name in m.inputs:
        x = rng.integers(-32768, 32768, size=(n,) + m.tensors[name].shape).astype(np.int16)
        flat = x.reshape(n, -1)
        flat[:, 0], flat[:, -1] = -32768, 32767
        xs.append(x)
    return xs


def int8_model(seed, kind, integers, choice, big=False):
    """(an int8 model with one op of `kind`, NumPy's reference or None) from the int8 suites'
    drawers; `big`: tensors of thousands of values."""
    if kind in DM.KINDS:
        return DM.movement_model(seed, kind, integers, choice, big)
    rng = np.random.default_rng(seed)
    if kind in ACTIVATION_KINDS:
        shape = (integers(20, 60), integers(20, 60)) if big else choice([(1,), (10,), (3, 4, 5)])
        b = O.Builder(seed, shape, kind)
        {"relu": b.relu, "relu6": b.relu6, "prelu": b.prelu,
         "leaky_relu": lambda: b.leaky_relu(alpha=choice([0.01, 0.2, 0.3, 1.5]))}[kind]()
        return b.model(), None
    if kind in BINARY_KINDS:
        in_shape, cfg = O.broadcast_config(integers, choice, fused=False)
        if big:
            in_shape = tuple(d * integers(8, 16) if d > 1 else d for d in in_shape)
            cfg["other_shape"] = tuple(o if o == 1 else in_shape[len(in_shape) - len(cfg["other_shape"]) + i]
                                       for i, o in enumerate(cfg["other_shape"]))
        return O.single_op_model(seed, kind, in_shape, **cfg), None
    most = 24 if big else 6
    h, w, c = integers(1, most), integers(1, most), integers(1, 4)
    b = O.Builder(seed, (h, w, c), kind)
    if kind == "transpose_conv":
        k, s = (integers(1, 4), integers(1, 4)), (integers(1, 3), integers(1, 3))
        b.transpose_conv(integers(1, 5), kernel=k, stride=s, padding=choice(["same", "valid"]),
                         activation=choice(O.ACTIVATIONS), per_channel=choice([True, False]),
                         bias=choice([True, False]))
    elif kind == "resize_nearest_neighbor":
        align = choice([False, True])
        b.resize(kind, (integers(1, 2 * most), integers(1, 2 * most)), align_corners=align,
                 half_pixel_centers=not align and choice([False, True]))
    else:
        b.reduce("sum", choice([(0,), (1,), (2,), (0, 1), (1, 2)]), keep_dims=choice([False, True]))
    return b.model(), None


def drawn(data, kind, big=False):
    """(16x8 model, reference, seed) drawn by hypothesis; the gain over seven decades."""
    seed = data.draw(O.seeds, label="seed")
    gain = 10.0 ** data.draw(st.floats(-4, 3), label="log10 gain")
    m, reference = int8_model(seed, kind, *DM.config_from(data), big=big)
    try:
        m16 = to_16x8(m, gain)   # (a model with constants is prepared when it is made)
        m16.prepare()
    except GraphError as e:      # a scale TFLM refuses too (a multiplier out of range): redrawn
        from hypothesis import reject
        assert "multiplier" in str(e) or "range" in str(e), e
        reject()
    return m16, reference, seed


def check(m16, reference, seed, n=6, label=None):
    """NumPy == TFLM on int16 inputs over the whole range, and == NumPy's own indexing."""
    xs = int16_inputs(m16, np.random.default_rng(seed), n)
    if reference is not None and m16.ops[0].kind != "pad":
        got = O.run_all(m16, xs)
        want = reference(xs)
        for name, w in zip(m16.ops[0].outputs, want if isinstance(want, list) else [want]):
            np.testing.assert_array_equal(got[name], w, err_msg=f"{m16.ops[0].kind} {m16.ops[0].options}")
    return O.check_against_tflm(m16, xs, label=label or f"{m16.ops[0].kind} 16x8")


# ---------------------------------------------------------------------------------------
# NumPy == TFLM
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
@FEW
def test_matches_tflm(kind, data):
    m16, reference, seed = drawn(data, kind)
    assert {t.dtype for t in m16.tensors.values() if not t.is_constant} == {"int16"}
    check(m16, reference, seed)


@pytest.mark.parametrize("kind", KINDS)
def test_large_tensors_match_tflm(kind):
    """Where users go: thousands of values per tensor (a few per CI run, more when thorough)."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    for _ in range(3 if THOROUGH else 1):
        seed = int(rng.integers(2 ** 31))
        m, reference = int8_model(seed, kind, *DM.config_from_rng(rng), big=True)
        m16 = to_16x8(m, 10.0 ** rng.uniform(-1, 1))
        m16.prepare()
        check(m16, reference, seed, n=2, label=f"{kind} 16x8, large")


@pytest.mark.parametrize("gain", [1e-3, 1.0, 300.0])
def test_activations_at_extreme_scales(gain):
    """RELU6's six and LEAKY_RELU's alpha where int16 saturates or barely moves, every
    int16 input once (TFLM clamps six to int16: FloatToQuantizedType)."""
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(16, 4096)
    for kind in ACTIVATION_KINDS:
        b = O.Builder(1, (4096,), kind)
        {"relu": b.relu, "relu6": b.relu6, "leaky_relu": b.leaky_relu, "prelu": b.prelu}[kind]()
        m16 = to_16x8(b.model(), gain)
        m16.prepare()
        O.check_against_tflm(m16, x, label=f"{kind} 16x8, every input")


def test_quantize_keeps_the_real_number():
    """QUANTIZE int16 -> int16: the output dequantizes to the input's real number within
    one output step where it fits, and saturates at -32768 / 32767 beyond."""
    rng = np.random.default_rng(5)
    for ratio in (1e-3, 0.37, 1.0, 2.5, 1e3):
        x = QTensor("x", (4096,), "int16", np.float32(1e-3), 0)
        y = QTensor("y", (4096,), "int16", np.float32(1e-3 * ratio), 0)
        m = QModel("q", {"x": x, "y": y}, [QOp("quantize", "q", ["x"], ["y"])], ["x"], ["y"])
        m.prepare()
        xs = int16_inputs(m, rng, 4)
        got = m.predict_int8(xs[0])
        real = x.dequantize(xs[0]).astype(np.float64)
        inside = np.abs(real) < 32767 * float(y.scale)
        assert np.all(np.abs(y.dequantize(got).astype(np.float64) - real)[inside] <= float(y.scale))
        assert np.all(got[~inside & (real > 0)] == 32767) and np.all(got[~inside & (real < 0)] == -32768)
        O.check_against_tflm(m, xs, label="quantize 16x8")


# ---------------------------------------------------------------------------------------
# The importer: the writer's file, int16 or float32 edges
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data(), edge=st.sampled_from(["int16", "float32"]))
@settings(max_examples=max(2, settings().max_examples // 12))
def test_round_trip_through_the_file(kind, data, edge):
    m16, _, seed = drawn(data, kind)
    r = from_tflite(to_tflite(m16, input_type=edge, output_type=edge))

    def as_stored(options):        # the file holds a float option (alpha) as float32
        return {k: np.float32(v) if isinstance(v, float) else v for k, v in options.items()}
    assert [(op.kind, as_stored(op.options), len(op.outputs)) for op in r.ops] == \
        [(op.kind, as_stored(op.options), len(op.outputs)) for op in m16.ops]
    assert {t.dtype for t in r.tensors.values() if not t.is_constant} == {"int16"}
    xs = int16_inputs(m16, np.random.default_rng(seed))
    np.testing.assert_array_equal(O.run_reference(r, xs), O.run_reference(m16, xs))


@pytest.mark.parametrize("kind", INT8_ONLY)
def test_ops_tflm_runs_on_int8_only_are_refused_by_name(kind, monkeypatch):
    """In prepare (GraphError naming the op) and at import (UnsupportedTFLiteError naming the
    operator): a 16x8 file with one of them, written while the kernel table is stretched."""
    b = O.Builder(2, (4, 4, 4), kind)
    special = {"resize_bilinear": lambda: b.resize(kind, (8, 8)), "reduce_max": lambda: b.reduce(kind, (0, 1)),
               "mirror_pad": lambda: b.mirror_pad(((1, 0), (0, 2), (0, 0)))}
    special[kind]() if kind in special else getattr(b, kind)()
    with pytest.raises(GraphError, match=f"{kind}.*no 16x8"):
        to_16x8(b.model()).prepare()
    assert "int16x8" not in supported.BY_NAME[kind.upper()].modes
    monkeypatch.setattr(kernels, "INT16_KINDS", kernels.INT16_KINDS + (kind,))
    m16 = to_16x8(b.model())
    m16.prepare()
    data = to_tflite(m16, input_type="int16", output_type="int16")
    monkeypatch.undo()
    with pytest.raises(UnsupportedTFLiteError, match=f"{kind.upper()}.*not in the 16x8 scheme"):
        from_tflite(data)


def mixed_model(rng, int8_outside=True, n=37):
    """QUANTIZE into the other scheme, a LEAKY_RELU there, QUANTIZE back: int8 -> int16 ->
    int8 (a 16x8 part inside an int8 model), or int16 -> int8 -> int16. Scales drawn over
    eight decades, int8 zero points anywhere."""
    s8 = [np.float32(10.0 ** rng.uniform(-4, 1)) for _ in range(2)]
    s16 = [np.float32(s8[0] * 10.0 ** rng.uniform(-4, 0)) for _ in range(2)]
    z8 = [int(rng.integers(-128, 128)) for _ in range(2)]
    outer = [QTensor(f"e{i}", (n,), "int8", s8[i], z8[i]) if int8_outside else
             QTensor(f"e{i}", (n,), "int16", s16[i], 0) for i in range(2)]
    inner = [QTensor(f"i{i}", (n,), "int16", s16[i], 0) if int8_outside else
             QTensor(f"i{i}", (n,), "int8", s8[i], z8[i]) for i in range(2)]
    ops = [QOp("quantize", "into", ["e0"], ["i0"]), QOp("leaky_relu", "leaky", ["i0"], ["i1"], {"alpha": 0.3}),
           QOp("quantize", "back", ["i1"], ["e1"])]
    return QModel("mixed", {t.name: t for t in outer + inner}, ops, ["e0"], ["e1"])


@given(seed=O.seeds, int8_outside=st.booleans())
@FEW
def test_quantize_between_int8_and_int16_matches_tflm(seed, int8_outside):
    """TFLM's Requantize int8 -> int16 and int16 -> int8 (quantize_common.cc), inside a model
    and at its edges; the file the writer makes imports back to the same model."""
    rng = np.random.default_rng(seed)
    try:
        m = mixed_model(rng, int8_outside)
    except GraphError as e:            # a multiplier out of TFLM's range: redrawn
        from hypothesis import reject
        assert "multiplier" in str(e), e
        reject()
    x = m.tensors["e0"]
    xs = int16_inputs(m, rng, 8) if x.dtype == "int16" else [O.int8_input(rng, x.shape, 8)]
    O.check_against_tflm(m, xs, label=f"quantize {'int8 <-> int16' if int8_outside else 'int16 <-> int8'}")
    r = from_tflite(to_tflite(m))
    assert [(op.kind, r.tensors[op.outputs[0]].dtype) for op in r.ops] == \
        [(op.kind, m.tensors[op.outputs[0]].dtype) for op in m.ops]
    np.testing.assert_array_equal(r.predict_int8(xs[0]), m.predict_int8(xs[0]))


def test_quantize_int8_to_int16_keeps_the_real_number():
    """int8 -> int16: every int8 value's real number within one int16 step (the int16 grid
    is finer), where it fits."""
    q = QTensor("q", (256,), "int8", np.float32(0.05), 7)
    w = QTensor("w", (256,), "int16", np.float32(0.05 / 100), 0)      # holds +-16.4
    m = QModel("up", {"q": q, "w": w}, [QOp("quantize", "up", ["q"], ["w"])], ["q"], ["w"])
    x = np.arange(-128, 128, dtype=np.int8)[None]
    got = m.predict_int8(x)
    assert np.all(np.abs(w.dequantize(got) - q.dequantize(x)) <= float(w.scale))
    O.check_against_tflm(m, x, label="quantize int8 -> int16, every input")


def test_generate_refuses_a_model_mixing_int8_and_int16_naming_the_quantize(tmp_path):
    m = mixed_model(np.random.default_rng(1))
    from minitiny.codegen.output import CodegenError
    with pytest.raises(CodegenError, match="'into' \\(quantize\\) converts int8 -> int16"):
        codegen.generate(m, tmp_path, name="m")
    assert not any(tmp_path.iterdir())


def test_a_mixed_op_is_refused_by_name():
    """Only QUANTIZE converts: any other op with int8 in and int16 out is refused."""
    x = QTensor("x", (6,), "int8", np.float32(0.05), 3)
    y = QTensor("y", (6,), "int16", np.float32(1e-3), 0)
    with pytest.raises(GraphError, match="'r'.*mixes int8 and int16"):
        QModel("mixed", {"x": x, "y": y}, [QOp("relu", "r", ["x"], ["y"])], ["x"], ["y"]).prepare()


# ---------------------------------------------------------------------------------------
# The generated C
# ---------------------------------------------------------------------------------------
def c_inputs(m, rng, n=6):
    xs = int16_inputs(m, rng, n)
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
@settings(max_examples=max(2, settings().max_examples // 12))
def test_host_c_matches_numpy(kind, data, tmp_path_factory):
    m16, _, seed = drawn(data, kind)
    d = tmp_path_factory.mktemp("c16ops")
    codegen.generate(m16, d, name="m")
    x = c_inputs(m16, np.random.default_rng(seed))
    got, want = codegen.load(d)(x), m16.predict_int8(x)
    for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        np.testing.assert_array_equal(g, w, err_msg=kind)


def chain16(seed=3):
    """One 16x8 model through every op kind of this file: conv, leaky ReLU, transposed conv,
    nearest resize, PReLU, ReLU, ReLU6, pad, strided slice, transpose, a split joined back, maximum
    and squared difference with constants, minimum of two branches, sum, requantize."""
    rng = np.random.default_rng(seed)
    b = O.Builder(seed, (6, 5, 2), "chain16")
    b.conv(3, activation="relu").leaky_relu(0.2).transpose_conv(2, kernel=(3, 3), stride=(2, 2))
    b.resize("resize_nearest_neighbor", (10, 9)).prelu().relu().relu6()
    s, z = b.t.scale, b.t.zero_point

    def movement(kind, shape, options, n_out=1):
        outs = [b._tensor(sh, s, z) for sh in (shape if n_out > 1 else [shape])]
        b.ops.append(QOp(kind, f"{kind}_{len(b.ops)}", [b.cur], outs, options))
        b.cur = outs[0]
        return outs
    movement("pad", (12, 10, 2), {"paddings": ((1, 1), (0, 1), (0, 0)), "constant": int(z) + 3})
    movement("strided_slice", (6, 10, 2), {"begin": (0, 0, 0), "end": (12, 10, 2), "strides": (2, 1, 1),
                                           "begin_mask": 0, "end_mask": 0, "shrink_axis_mask": 0})
    movement("transpose", (10, 6, 2), {"perm": (1, 0, 2)})
    parts = movement("split", [(5, 6, 2), (5, 6, 2)], {"axis": 0}, 2)
    joined = b._tensor((10, 6, 2), s, z)
    b.ops.append(QOp("concatenation", "join", parts[::-1], [joined], {"axis": 0}))
    b.cur = joined
    branch = b.cur
    b.binary("maximum", other_shape=(2,), constant=True)
    high = b.cur
    b.cur = branch
    b.binary("squared_difference", other_shape=(1, 1, 2), constant=True)
    sq = b.cur
    out = b._tensor((10, 6, 2), b.tensors[sq].scale, b.tensors[sq].zero_point)
    b.ops.append(QOp("quantize", "requant", [high], [b._tensor((10, 6, 2), b.tensors[sq].scale,
                                                                b.tensors[sq].zero_point)]))
    b.ops.append(QOp("minimum", "low", [b.ops[-1].outputs[0], sq], [out]))
    b.cur = out
    b.reduce("sum", (0,), keep_dims=False)
    m16 = to_16x8(b.model(), float(10.0 ** rng.uniform(-1, 1)))
    m16.prepare()
    return m16


def test_the_chain_matches_tflm_and_its_c_runs_clean_under_asan_and_ubsan(tmp_path, shim_flags):
    m16 = chain16()
    assert {op.kind for op in m16.ops} >= set(KINDS) - {"slice", "pack", "unpack", "split_v"}
    xs = int16_inputs(m16, np.random.default_rng(0), 8)
    O.check_against_tflm(m16, xs, label="16x8 chain")
    codegen.generate(m16, tmp_path, name="chain16")
    np.testing.assert_array_equal(codegen.load(tmp_path)(xs[0]), m16.predict_int8(xs[0]))
    np.testing.assert_array_equal(codegen.load(tmp_path, sanitize=True)(xs[0][:3]), m16.predict_int8(xs[0][:3]))
    F.check_variants(m16, xs[0][:4], tmp_path / "variants", shim_flags)     # the tuned variants too


def test_c_of_every_kind_under_asan_and_ubsan(tmp_path):
    """One sanitized executable per kind, its model drawn at random."""
    rng = np.random.default_rng(12)
    for kind in KINDS:
        m, _ = int8_model(int(rng.integers(2 ** 31)), kind, *DM.config_from_rng(rng))
        m16 = to_16x8(m)
        m16.prepare()
        codegen.generate(m16, tmp_path / kind, name="m")
        x = c_inputs(m16, rng, 3)
        np.testing.assert_array_equal(codegen.load(tmp_path / kind, sanitize=True)(x), m16.predict_int8(x),
                                      err_msg=kind)


@pytest.mark.parametrize("cc, extra", [("gcc", []), ("clang", []),
                                       ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-Os"])])
def test_the_chain_compiles_strict_c99(cc, extra, tmp_path):
    from minitiny.codegen.loader import STRICT_FLAGS
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    codegen.generate(chain16(), tmp_path, name="chain16")
    result = subprocess.run([cc, *STRICT_FLAGS, *extra, "-c", str(tmp_path / "chain16_model.c"),
                             "-o", str(tmp_path / "m.o")], capture_output=True, text=True)
    assert result.returncode == 0, f"{cc}: {result.stderr}"


# ---------------------------------------------------------------------------------------
# Files TensorFlow 2.21's converter made in 16x8 (scripts/make_tflite_testdata.py), with the
# outputs TFLM gave when they were made (full-range and in-distribution int16 inputs)
# ---------------------------------------------------------------------------------------
DATA = os.path.join(os.path.dirname(__file__), "data", "tflite")
TF_FILES = {
    "ops_16x8_cnn": ["conv_2d", "leaky_relu", "pad", "strided_slice", "transpose_conv", "max_pool_2d",
                     "resize_nearest_neighbor", "relu", "max_pool_2d", "transpose", "split",
                     "concatenation", "conv_2d", "conv_2d", "quantize", "maximum", "quantize", "quantize",
                     "minimum", "quantize", "quantize", "concatenation", "mean", "fully_connected", "softmax"],
    "ops_16x8_sequence": ["reshape", "conv_2d", "reshape", "strided_slice", "unpack", "quantize", "quantize",
                          "quantize", "pack", "slice", "pad", "reshape", "strided_slice", "split_v",
                          "quantize", "quantize", "concatenation", "sum", "squared_difference", "quantize",
                          "quantize", "concatenation", "fully_connected"],
}


@pytest.mark.parametrize("name", sorted(TF_FILES))
def test_tf_16x8_file_gives_tflm_stored_outputs_in_numpy_and_c(name, tmp_path, shim_flags):
    """Imported: every op in 16x8 (int16 activations, int16 -> int16 requantizations where the
    converter put them); the NumPy reference and the host C give TFLM's stored outputs bit
    for bit, the C also under ASan/UBSan; the tuned variants (test_int16_fast's check) too."""
    q = from_tflite(os.path.join(DATA, f"{name}.tflite"))
    assert [op.kind for op in q.ops] == TF_FILES[name]
    assert {t.dtype for t in q.tensors.values() if not t.is_constant} == {"int16"}
    with np.load(os.path.join(DATA, f"{name}.expected.npz")) as z:
        x, y = z["x"], z["y"]
    assert x.dtype == np.int16 and x.min() == -32768 and x.max() == 32767
    ours = q.predict_int8(x)
    tally = O.TALLY.setdefault(f"TF 2.21 {name} vs TFLM (stored)", [0, 0])
    tally[0] += ours.size
    tally[1] += int((ours != y).sum())
    np.testing.assert_array_equal(ours, y)
    codegen.generate(q, tmp_path, name="m")
    np.testing.assert_array_equal(codegen.load(tmp_path)(x), y)
    np.testing.assert_array_equal(codegen.load(tmp_path, sanitize=True)(x[60:68]), y[60:68])
    F.check_variants(q, x[56:72], tmp_path / "variants", shim_flags)


def test_the_tf_16x8_ops_cnn_on_the_emulated_cortex_m4(tmp_path):
    """ops_16x8_cnn's C in QEMU on a Cortex-M4: TFLM's stored outputs for full-range and
    in-distribution inputs, bit for bit (test_int16's runner)."""
    I16.run_tf_16x8_file_on_the_m4("ops_16x8_cnn", [0, 1, 2, 64, 65, 66], tmp_path)


# ---------------------------------------------------------------------------------------
# The quantizer
# ---------------------------------------------------------------------------------------
def test_quantize_int16_runs_relu_layers_of_their_own():
    """Keras' ReLU() and ReLU(max_value=6) layers after a layer that cannot fuse them become
    RELU and RELU6 ops of their own; in 16x8 TFLM runs them to the NumPy reference's bits."""
    import minitiny as mt
    from minitiny import layers as L
    from minitiny.models import Sequential
    rng = np.random.default_rng(0)
    m = Sequential([L.Dense(12, input_shape=[5]), L.Reshape((3, 4)), L.ReLU(name="r"),
                    L.ReLU(max_value=6, name="r6"), L.Flatten(), L.Dense(3)])
    x = (rng.normal(size=(200, 5)) * 3).astype(np.float32)
    q = mt.quantize(m, x, activations="int16")
    assert {"relu", "relu6"} <= {op.kind for op in q.ops}
    assert {t.dtype for t in q.tensors.values() if not t.is_constant} == {"int16"}
    O.check_against_tflm(q, q.quantize_input(x), label="mt.quantize 16x8 relu layers")
    want = np.asarray(m.predict(x))     # within the int8 weights' rounding (1/127 of each)
    np.testing.assert_allclose(q.predict(x), want, atol=2e-2 * np.abs(want).max())
