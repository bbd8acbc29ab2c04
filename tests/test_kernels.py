"""minitiny's int8 kernels against TensorFlow Lite Micro's interpreter, bit for bit.

The oracle is the installed TFLM runtime (tflite-micro): each test writes a QModel as a
.tflite flatbuffer, runs it in TFLM sample by sample, and demands identical int8 outputs
from kernels.run. Hypothesis draws shapes, strides, paddings, depth multipliers, per-tensor
or per-channel weights, scales over several orders of magnitude, zero points at the
extremes and fused activations; the elementwise ops are run over all 256 int8 inputs for
many scales. A second, TFLM-free oracle (naive loops over Python ints, transcribed from
TFLM's reference kernels) checks the vectorised conv, depthwise, pooling and dense code.
How many outputs were compared, and how many differed, is printed at the end of the module.
"""
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import int8_oracle as O
import test_data_movement as M
from minitiny.quant import fixedpoint as fp
from minitiny.quant import kernels, tflm
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor

KINDS = ["fully_connected", "conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d",
         "mean", "add", "reshape", "softmax", "logistic", "tanh", "relu", "relu6"]


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "int8 kernels vs TFLM")


# ---------------------------------------------------------------------------------------
# 1. Every op kind alone, drawn by hypothesis
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_op_matches_tflm(kind, data):
    in_shape, cfg = data.draw(O.op_configs(kind), label="config")
    seed = data.draw(O.seeds, label="seed")
    model = O.single_op_model(seed, kind, in_shape, **cfg)
    O.check_against_tflm(model, seed=seed)


@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
def test_op_sweep_matches_tflm(kind):
    """A fixed sweep of 150 random configurations per kind, 16 samples each."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    for i in range(150):
        in_shape, cfg = O.random_config(rng, kind)
        model = O.single_op_model(int(rng.integers(2 ** 32)), kind, in_shape, **cfg)
        O.check_against_tflm(model, O.random_inputs(model, i, 16), label=kind)


# ---------------------------------------------------------------------------------------
# 2. Elementwise ops: all 256 inputs, scales over seven orders of magnitude
# ---------------------------------------------------------------------------------------
SCALES = np.float32(np.exp(np.linspace(np.log(1e-4), np.log(1e3), 200)))
ZERO_POINTS = [-128, 127, 0, -1, 64, -77, 13, -128, 127, 100]


@O.requires_tflm
@pytest.mark.parametrize("kind", ["logistic", "tanh", "relu", "relu6"])
def test_elementwise_exhaustive(kind):
    for i, s_in in enumerate(SCALES):
        z_in = ZERO_POINTS[i % len(ZERO_POINTS)]
        s_out = np.float32(s_in * [0.3, 1.0, 3.7, 0.011][i % 4])
        z_out = ZERO_POINTS[(i + 3) % len(ZERO_POINTS)]
        model = O.elementwise_model(kind, s_in, z_in, s_out, z_out)
        O.check_against_tflm(model, O.ALL_INT8, label=f"{kind} (all 256 inputs)")


@O.requires_tflm
def test_softmax_and_add_exhaustive_pairs():
    """softmax over rows holding every int8 value; add over every (a, b) pair."""
    rng = np.random.default_rng(1)
    for s in SCALES[::4]:
        b = O.Builder(0, (256,), "softmax", s, 0)
        b.softmax(beta=float(rng.choice([1.0, 0.5, 3.0])))
        x = np.stack([O.ALL_INT8[0], rng.permutation(O.ALL_INT8[0]), np.roll(O.ALL_INT8[0], 7)])
        O.check_against_tflm(b.model(), x, label="softmax (all 256 inputs)")
    a, bb = np.meshgrid(O.ALL_INT8[0], O.ALL_INT8[0])                # (256, 256): every pair
    extra = rng.integers(-128, 128, size=(2, 44, 256)).astype(np.int8)   # > 2^16 values in all:
    a, bb = np.concatenate([a, extra[0]]), np.concatenate([bb, extra[1]])   # the table path
    for seed in range(3):
        model = O.single_op_model(seed, "add", (256,), activation=["none", "relu", "relu6"][seed])
        O.check_against_tflm(model, [a.astype(np.int8), bb.astype(np.int8)], label="add (all pairs)")


@O.requires_tflm
def test_extreme_scales_match_tflm():
    """MEAN over up to 64x64 with s_in / s_out in [1e-3, 1e3] and sums at their limits; ADD
    with input scales 1e-3..1e3 apart; SOFTMAX with beta * scale from 1e-5 to 300."""
    rng = np.random.default_rng(7)
    for i in range(60):
        hw = [(1, 1), (32, 32), (5, 3), (7, 7), (64, 64)][i % 5]
        b = O.Builder(i, hw + (3,), "mean", O.log_uniform(rng, 1e-4, 10))
        b.mean(keep_dims=bool(i % 2))
        b.tensors[b.cur].scale = np.float32(b.tensors["x"].scale * O.log_uniform(rng, 1e-3, 1e3))
        model = QModel("mean", b.tensors, b.ops, b.inputs, [b.cur])
        x = O.int8_input(rng, hw + (3,), 8)
        x[:4] = np.where(rng.random(x[:4].shape) < 0.5, -128, 127)
        x[4], x[5] = 127, -128                           # the largest sums of both signs
        O.check_against_tflm(model, x, label="mean (extreme scales)")
    a = np.tile(O.ALL_INT8, (4, 1))
    for i in range(60):
        s_a = O.log_uniform(rng, 1e-4, 10)
        s_b = np.float32(s_a * O.log_uniform(rng, 1e-3, 1e3))
        b = O.Builder(i, (256,), "add", s_a)
        other = b.input("x2", (256,), s_b)
        b.add(other, activation=O.ACTIVATIONS[i % 3])
        b.tensors[b.cur].scale = np.float32(max(s_a, s_b) * O.log_uniform(rng, 0.01, 100))
        model = QModel("add", b.tensors, b.ops, b.inputs, [b.cur])
        O.check_against_tflm(model, [a, rng.permuted(a, axis=1)], label="add (extreme scales)")
    for i in range(60):
        shape = [(10,), (3, 7), (100,), (1,)][i % 4]
        b = O.Builder(i, shape, "softmax", O.log_uniform(rng, 1e-4, 30))
        b.softmax(beta=float(O.log_uniform(rng, 0.1, 10)))
        O.check_against_tflm(b.model(), O.random_inputs(b.model(), i, 16)[0], label="softmax (extreme scales)")


@O.requires_tflm
@pytest.mark.parametrize("kind", ["fully_connected", "conv_2d", "depthwise_conv_2d"])
def test_multipliers_above_one_match_tflm(kind):
    """s_in * s_w / s_out > 1 (a positive shift: the accumulator is shifted left first, and
    wraps in int32 as in TFLM when it overflows). Small weights keep some outputs unsaturated."""
    rng = np.random.default_rng(3)
    unsaturated = 0
    for i in range(20):
        in_shape = (12,) if kind == "fully_connected" else (5, 5, 3)
        cfg = {"fully_connected": {"units": 6}, "conv_2d": {"out_c": 4}}.get(kind, {})
        model = O.single_op_model(i, kind, in_shape, **cfg)
        w, b, y = (model.tensors[n] for n in model.ops[0].inputs[1:] + model.ops[0].outputs)
        w.data = rng.integers(-1, 2, size=w.shape).astype(np.int8)
        b.data = rng.integers(-50, 51, size=b.shape).astype(np.int32)
        y.scale = np.float32(float(model.input.scale) * float(np.max(w.scale)) / O.log_uniform(rng, 1.0, 30.0))
        model = QModel(kind, model.tensors, model.ops, model.inputs, model.outputs)
        assert np.any(model.ops[0].params["output_shift"] > 0)
        x = O.random_inputs(model, i, 16)
        unsaturated += np.sum(np.abs(model.predict_int8(x[0]).astype(int) + 0.5) < 127)
        O.check_against_tflm(model, x, label="multiplier > 1")
    assert unsaturated > 100


# ---------------------------------------------------------------------------------------
# 3. Prepare, to the last bit: cases where a plausible alternative derivation of a
#    constant gives different outputs. Each test first shows the alternative really differs
#    (so the test can fail), then checks minitiny against TFLM.
# ---------------------------------------------------------------------------------------
def _dense_1x1(s_in, s_w, s_out, acc, z_out=0, kind="fully_connected"):
    """A one-weight layer whose accumulator for input 100 (zero point 0) is `acc`."""
    shapes = {"fully_connected": ((1,), (1, 1), (1,)), "conv_2d": ((1, 1, 1), (1, 1, 1, 1), (1, 1, 1)),
              "depthwise_conv_2d": ((1, 1, 1), (1, 1, 1, 1), (1, 1, 1))}[kind]
    x_shape, w_shape, y_shape = shapes
    qdim = 3 if kind == "depthwise_conv_2d" else 0
    ts = {"x": QTensor("x", x_shape, "int8", s_in, 0),
          "w": QTensor("w", w_shape, "int8", [s_w], [0], np.ones(w_shape, np.int8), qdim),
          "b": QTensor("b", (1,), "int32", [np.float32(s_in) * np.float32(s_w)], [0],
                       np.array([acc - 100], np.int32)),
          "y": QTensor("y", y_shape, "int8", s_out, z_out)}
    model = QModel(kind, ts, [QOp(kind, kind, ["x", "w", "b"], ["y"], {})], ["x"], ["y"])
    return model, np.full((1,) + x_shape, 100, np.int8)


def _distinguishing_layers(n_wanted, seed=1):
    """Scales where s_in * s_w taken in float32 and in double give different multipliers,
    and an accumulator on which the two multipliers round differently."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < n_wanted:
        s_in, s_w = np.float32(rng.uniform(0.01, 0.1)), np.float32(rng.uniform(0.001, 0.01))
        s_out = np.float32(float(s_in) * float(s_w) / 1e-4 * rng.uniform(0.9, 1.1))
        m64 = fp.quantize_multiplier(float(s_in) * float(s_w) / float(s_out))
        m32 = fp.quantize_multiplier(float(np.float32(s_in * s_w)) / float(s_out))
        if m32 == m64:
            continue
        acc = np.arange(1, 1 << 21, dtype=np.int64)
        o64, o32 = fp.multiply_by_quantized_multiplier(acc, *m64), fp.multiply_by_quantized_multiplier(acc, *m32)
        hits = np.nonzero((o64 != o32) & (o64 < 200))[0]
        if len(hits):
            a = int(acc[hits[0]])
            found.append((s_in, s_w, s_out, a, int(o64[hits[0]]), int(o32[hits[0]])))
    return found


@O.requires_tflm
@pytest.mark.parametrize("kind", ["fully_connected", "conv_2d", "depthwise_conv_2d"])
def test_multiplier_is_computed_in_double(kind):
    """TFLM's Prepare takes s_in * s_w / s_out in double; the older TFLite formula multiplied
    the float32 scales in float32 first. The two disagree on these layers."""
    for s_in, s_w, s_out, acc, want64, want32 in _distinguishing_layers(3):
        z_out = -100                        # keep outputs (< 200) inside int8
        model, x = _dense_1x1(s_in, s_w, s_out, acc, z_out, kind)
        assert want64 != want32
        assert int(model.predict_int8(x).ravel()[0]) == want64 + z_out
        O.check_against_tflm(model, x, label="prepare: multiplier in double")


@O.requires_tflm
def test_requantization_uses_double_rounding():
    """TFLM (built without TFLITE_SINGLE_ROUNDING) rounds twice; single rounding differs
    on these accumulators, and minitiny's default must agree with TFLM."""
    s_in, s_w = np.float32(0.05), np.float32(0.004)
    s_out = np.float32(float(s_in) * float(s_w) / 1e-3 * 1.037)
    mult = fp.quantize_multiplier(float(s_in) * float(s_w) / float(s_out))
    acc = np.arange(-200000, 200000, dtype=np.int64)
    differ = acc[fp.multiply_by_quantized_multiplier(acc, *mult)
                 != fp.multiply_by_quantized_multiplier(acc, *mult, single_rounding=True)]
    assert len(differ) > 10
    for a in differ[:: len(differ) // 8]:
        model, x = _dense_1x1(s_in, s_w, s_out, int(a))
        O.check_against_tflm(model, x, label="prepare: double rounding")


@O.requires_tflm
def test_relu6_threshold_is_rounded_in_float32():
    """RELU6's upper bound is z + round(6.0f / scale) in float32 (TFLM's FloatToQuantizedType):
    for scales near 6 / (k + 1/2) float32 and double division round differently."""
    checked = 0
    for k in range(1, 120):
        for ulps in (-2, -1, 0, 1, 2):
            s = np.float32(6.0 / (k + 0.5))
            for _ in range(abs(ulps)):
                s = np.nextafter(s, np.float32(np.inf if ulps > 0 else 0))
            if fp.tflite_round(float(np.float32(6.0) / s)) != fp.tflite_round(6.0 / float(s)):
                for kind in ("relu6", "max_pool_2d"):          # standalone and fused
                    b = O.Builder(0, (16, 16, 1), kind, s, -128)
                    b.relu6() if kind == "relu6" else b.pool(kind, (1, 1), (1, 1), activation="relu6")
                    O.check_against_tflm(b.model(), O.ALL_INT8.reshape(1, 16, 16, 1),
                                         label="prepare: relu6 in float32")
                checked += 1
    assert checked >= 20


@O.requires_tflm
@pytest.mark.parametrize("kind", ["conv_2d", "fully_connected", "max_pool_2d", "average_pool_2d", "relu6"])
def test_a_relu6_bound_beyond_int32_is_refused_as_tflm_refuses_it(kind):
    """Found by the widened drawer: ReLU6 fused into a layer whose output scale is below
    6 / 2^31 puts 6.0 / scale outside int32; TFLM's Prepare refuses it (kernel_util.cc
    Quantize; a pool then ran on whatever its activation range held, giving 1 where minitiny
    gave 87), and its RELU6 op casts it to int32 unchecked (undefined: -128 where minitiny
    gave 85). Refused here too, naming the layer; where 6.0 / scale fits, TFLM's bits."""
    from minitiny.quant.graph import GraphError
    pool = kind.endswith("pool_2d") or kind == "relu6"   # (keep the input's scale: 1e-45 gives inf)
    for scale, fits in ((6 / 2 ** 30, True), (6 / 2 ** 32, False), (2e-25, False)) + ((1e-45, False),) * pool:
        b = O.Builder(3, (4, 4, 2), kind, np.float32(scale), 87)
        if kind == "conv_2d":
            b.conv(2, activation="relu6")
        elif kind == "fully_connected":
            b.flatten().dense(3, activation="relu6")
        elif kind == "relu6":                               # the RELU6 op: TFLM's cast is UB
            b.relu6()
        else:
            b.pool(kind, (2, 2), (2, 2), activation="relu6")
        if kind in ("conv_2d", "fully_connected"):          # relu6 over the output's scale
            b.tensors[b.cur].scale = np.float32(scale)
        if fits:
            O.check_against_tflm(b.model(), O.int8_input(np.random.default_rng(0), (4, 4, 2)),
                                 label="prepare: relu6 bound near int32")
        else:
            with pytest.raises(GraphError, match=rf"op '{b.ops[-1].name}'.*relu6.*does not fit int32"):
                b.model()                                  # QModel runs every op's Prepare


def test_a_bias_scale_beyond_float32_is_refused():
    """Found by the widened drawer (scales 1e-30..1e30): s_in * s_w underflowing float32 was
    accepted for a conv without bias (TFLM takes the multiplier in double), and writing the
    .tflite then failed on the zero bias it adds, whose scale became 0. Refused at Prepare,
    naming the layer; 1e-30 * 1e-5 (a normal float32) is written and read back."""
    from minitiny.quant.graph import GraphError
    from minitiny.quant.tflite_io import to_tflite
    from minitiny.quant.tflite_read import from_tflite
    for s_w, fits in ((1e-5, True), (1e-20, False)):
        b = O.Builder(2, (5, 5, 2), "conv", np.float32(1e-30), 0)
        b.conv(3, bias=False)
        b.tensors[b.ops[0].inputs[1]].scale = np.full(3, s_w, np.float32)
        b.tensors[b.cur].scale = np.float32(max(s_w * 1e-30 * 100, 1e-44))  # a multiplier < 1
        if fits:
            assert from_tflite(to_tflite(b.model())).ops[0].kind == "conv_2d"
            continue
        with pytest.raises(GraphError, match=r"op 'conv_2d_0'.*bias scale s_in \* s_w .* not a normal float32"):
            b.model()


@O.requires_tflm
def test_a_dense_bias_scale_far_from_the_product_relative_to_the_output_is_refused():
    """Found by the widened drawer: TFLM's fully_connected Prepare refuses |s_in * s_w - bias
    scale| / s_out > 0.02 (GetQuantizedConvolutionMultipler); at s_in * s_w = 9e33 the bias
    scale's float32 rounding alone is 2.5e26, over 2% of an output scale of 7e24. minitiny ran
    the model, TFLM refused it. Refused here too; with an output scale of 1e29 both run."""
    from minitiny.quant.graph import GraphError
    for s_out, fits in ((1e29, True), (7.013177e24, False)):
        b = O.Builder(4, (1,), "dense", np.float32(5.5329562e17), 15, weight_scales=(1.624467e16,) * 2)
        b.dense(7)
        b.tensors[b.cur].scale = np.float32(s_out)
        if fits:
            O.check_against_tflm(b.model(), O.ALL_INT8.reshape(256, 1), label="prepare: dense bias scale")
        else:
            with pytest.raises(GraphError, match=r"op 'fully_connected_0'.*> 0.02, which TFLM"):
                b.model()


EXTREME_SCALES = (1e-30, 1e30)
EXTREME_KINDS = ("fully_connected", "conv_2d", "depthwise_conv_2d", "add", "average_pool_2d",
                 "max_pool_2d", "mean")
EXTREME_MODELS = 1400 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 70


def extreme_model(rng, kind):
    """One op of `kind` (int8_oracle.random_config) with input, weight and (for half the
    weighted layers, adds and means) output scales log-uniform over 1e-30 .. 1e30."""
    in_shape, cfg = O.random_config(rng, kind)
    b = O.Builder(int(rng.integers(2 ** 32)), in_shape, kind, O.log_uniform(rng, *EXTREME_SCALES),
                  weight_scales=EXTREME_SCALES)
    if kind == "add":
        b.add(b.input("x2", in_shape, O.log_uniform(rng, *EXTREME_SCALES)), **cfg)
    elif kind in ("average_pool_2d", "max_pool_2d"):
        b.pool(kind, **cfg)
    else:
        {"fully_connected": b.dense, "conv_2d": b.conv, "depthwise_conv_2d": b.depthwise,
         "mean": b.mean}[kind](**cfg)
    if not kind.endswith("pool_2d") and rng.random() < 0.5:     # pools keep their input's
        b.tensors[b.cur].scale = np.full_like(b.tensors[b.cur].scale, O.log_uniform(rng, *EXTREME_SCALES))
    return b.model()


@O.requires_tflm
def test_ops_at_extreme_scales_match_tflm_or_are_refused():
    """Scales from 1e-30 to 1e30, where users' calibration data can put them: every model
    minitiny's Prepare accepts gives TFLM's bits (the fused-ReLU6, bias-scale and dense
    bias checks above came from this sweep); what it refuses is refused with a GraphError.
    70 models per CI run, 1,400 under HYPOTHESIS_PROFILE=thorough."""
    rng = np.random.default_rng(2026)
    accepted = 0
    for i in range(EXTREME_MODELS):
        kind = EXTREME_KINDS[i % len(EXTREME_KINDS)]
        try:
            with np.errstate(over="ignore", under="ignore"):
                model = extreme_model(rng, kind)
        except GraphError:
            continue                        # a tensor or the op's Prepare refused the scales
        O.check_against_tflm(model, seed=i, label=f"{kind} (scales 1e-30..1e30)")
        accepted += 1
    assert accepted >= EXTREME_MODELS // 2, accepted


@O.requires_tflm
def test_relu_multiplier_is_computed_in_double():
    """RELU's multiplier s_in / s_out is taken in double (activations.cc CalculateReluOpData).
    Draw scales until the outputs over all 256 inputs with the multiplier taken in double
    and in float32 differ (about 1 draw in 5000), then check minitiny against TFLM."""
    rng = np.random.default_rng(0)
    x = np.arange(-128, 128, dtype=np.int64)
    found = 0
    for _ in range(100000):
        s_in, s_out = np.float32(np.exp(rng.uniform(-7, 0))), np.float32(np.exp(rng.uniform(-7, 0)))
        z_in = int(rng.integers(-128, 128))
        m64 = fp.quantize_multiplier(float(s_in) / float(s_out))
        m32 = fp.quantize_multiplier(float(np.float32(s_in / s_out)))
        if m64 == m32:
            continue
        y64 = np.clip(fp.multiply_by_quantized_multiplier(x - z_in, *m64) - 128, -128, 127)
        y32 = np.clip(fp.multiply_by_quantized_multiplier(x - z_in, *m32) - 128, -128, 127)
        if np.array_equal(y64, y32):
            continue
        model = O.elementwise_model("relu", s_in, z_in, s_out, -128)
        O.check_against_tflm(model, O.ALL_INT8, label="prepare: relu in double")
        found += 1
        if found == 3:
            break
    assert found == 3


# ---------------------------------------------------------------------------------------
# 4. Small chains and a residual graph
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@given(seed=O.seeds, data=st.data())
def test_cnn_chain_matches_tflm(seed, data):
    rng = np.random.default_rng(seed)
    b = O.Builder(seed, (int(rng.integers(6, 12)), int(rng.integers(6, 12)), int(rng.integers(1, 4))), "cnn")
    b.conv(int(rng.integers(2, 6)), (3, 3), (1, 1), "same", data.draw(O.activations, "act1"),
           per_channel=data.draw(st.booleans(), "pc"))
    if data.draw(st.booleans(), "dw"):
        b.depthwise(int(rng.integers(1, 3)), (3, 3), (2, 2), data.draw(st.sampled_from(["same", "valid"]), "pad"),
                    "relu6")
    b.pool(data.draw(st.sampled_from(["max_pool_2d", "average_pool_2d"]), "pool"), (2, 2), (2, 2), "same")
    if data.draw(st.booleans(), "global"):
        b.mean(keep_dims=data.draw(st.booleans(), "keep"))
        if len(b.t.shape) == 3:
            b.flatten()
    else:
        b.flatten()
    b.dense(int(rng.integers(2, 11)), data.draw(O.activations, "act2"))
    head = data.draw(st.sampled_from(["softmax", "logistic", "tanh", "none"]), "head")
    if head != "none":
        getattr(b, head)()
    O.check_against_tflm(b.model(), seed=seed, label="chain: cnn")


@O.requires_tflm
@given(seed=O.seeds)
def test_residual_graph_matches_tflm(seed):
    """x -> conv(same, relu) -> conv(same) -> add(x) -> relu -> mean -> dense -> softmax."""
    b = O.Builder(seed, (8, 8, 4), "residual")
    skip = b.cur
    b.conv(4, activation="relu").conv(4)
    b.add(skip, activation="none").relu().mean().dense(5).softmax()
    O.check_against_tflm(b.model(), seed=seed, label="chain: residual (add)")


@O.requires_tflm
@given(seed=O.seeds)
def test_mlp_chain_matches_tflm(seed):
    b = O.Builder(seed, (6, 6, 1), "mlp")
    b.flatten().dense(20, "relu", per_channel=True).dense(12).relu6().dense(3).tanh()
    O.check_against_tflm(b.model(), seed=seed, label="chain: mlp")


# ---------------------------------------------------------------------------------------
# 5. A TFLM-free oracle: naive loops over Python ints (TFLM's reference kernels, as loops)
# ---------------------------------------------------------------------------------------
def naive_conv(p, x, w, b, depthwise, single_rounding=False):
    """reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel, one sample."""
    out = np.zeros((p["out_h"], p["out_w"], p["out_c"]), np.int64)
    for out_y in range(p["out_h"]):
        for out_x in range(p["out_w"]):
            for out_c in range(p["out_c"]):
                acc = 0
                for fy in range(p["kernel_h"]):
                    for fx in range(p["kernel_w"]):
                        in_y = out_y * p["stride_h"] - p["pad_h"] + fy * p.get("dilation_h", 1)
                        in_x = out_x * p["stride_w"] - p["pad_w"] + fx * p.get("dilation_w", 1)
                        if not (0 <= in_y < p["in_h"] and 0 <= in_x < p["in_w"]):
                            continue
                        if depthwise:
                            in_c = out_c // p["depth_multiplier"]
                            acc += int(w[0, fy, fx, out_c]) * (int(x[in_y, in_x, in_c]) + p["input_offset"])
                        else:
                            for in_c in range(p["in_c"]):
                                acc += int(w[out_c, fy, fx, in_c]) * (int(x[in_y, in_x, in_c]) + p["input_offset"])
                acc += int(b[out_c]) if b is not None else 0
                acc = int(fp.multiply_by_quantized_multiplier(acc, int(p["output_multiplier"][out_c]),
                                                              int(p["output_shift"][out_c]), single_rounding))
                out[out_y, out_x, out_c] = min(max(acc + p["output_offset"], p["act_min"]), p["act_max"])
    return out


def naive_pool(p, x, average):
    """reference_integer_ops::MaxPool / AveragePool, one sample."""
    out = np.zeros((p["out_h"], p["out_w"], p["channels"]), np.int64)
    for out_y in range(p["out_h"]):
        for out_x in range(p["out_w"]):
            y0, x0 = out_y * p["stride_h"] - p["pad_h"], out_x * p["stride_w"] - p["pad_w"]
            for c in range(p["channels"]):
                vals = [int(x[iy, ix, c]) for iy in range(y0, y0 + p["pool_h"]) for ix in range(x0, x0 + p["pool_w"])
                        if 0 <= iy < p["in_h"] and 0 <= ix < p["in_w"]]
                if average:
                    s, n = sum(vals), len(vals)
                    v = (abs(s) + n // 2) // n * (1 if s > 0 else -1)    # C: (s +- n/2) / n
                else:
                    v = max(vals)
                out[out_y, out_x, c] = min(max(v, p["act_min"]), p["act_max"])
    return out


@pytest.mark.parametrize("kind", ["conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d",
                                  "fully_connected"])
@given(data=st.data())
def test_vectorised_kernels_match_naive_loops(kind, data):
    in_shape, cfg = data.draw(O.op_configs(kind), label="config")
    seed = data.draw(O.seeds, label="seed")
    single = data.draw(st.booleans(), label="single_rounding")
    model = O.single_op_model(seed, kind, in_shape, **cfg)
    op = model.ops[0]
    op.params = kernels.prepare(op, model.tensors, single_rounding=single)
    p = op.params
    x = O.int8_input(np.random.default_rng(seed), model.input.shape, 3)
    args = [x] + [model.tensors[n].data for n in op.inputs[1:]]
    got = kernels.run(op, model.tensors, args)
    for i in range(len(x)):
        if kind in ("conv_2d", "depthwise_conv_2d"):
            want = naive_conv(p, x[i], args[1], args[2] if len(args) > 2 else None,
                              kind == "depthwise_conv_2d", single)
        elif kind == "fully_connected":
            w, b = args[1].astype(np.int64), (args[2] if len(args) > 2 else np.zeros(p["out_features"]))
            acc = [sum(int(w[o, d]) * (int(v) + p["input_offset"]) for d, v in enumerate(x[i].ravel()))
                   + int(b[o]) for o in range(p["out_features"])]
            want = [min(max(int(fp.multiply_by_quantized_multiplier(a, int(p["output_multiplier"][o]),
                                                                    int(p["output_shift"][o]), single))
                            + p["output_offset"], p["act_min"]), p["act_max"]) for o, a in enumerate(acc)]
        else:
            want = naive_pool(p, x[i], kind == "average_pool_2d")
        np.testing.assert_array_equal(got[i], np.asarray(want).reshape(got[i].shape))


def test_average_pool_rounds_halves_away_from_zero():
    """TFLM's (sum +- count/2) / count with C division rounds halves away from zero:
    -1.5 -> -2, -2.5 -> -3, 1.5 -> 2, -0.5 -> -1 (floor(x + 1/2) would give -1, -2, 2, 0;
    NumPy's round -2, -2, 2, -0). Expected values worked out by hand from that rule."""
    b = O.Builder(0, (1, 2, 1), "avg", 0.1, 0)
    b.pool("average_pool_2d", (1, 2), (1, 2), "valid")
    model = b.model()
    x = np.array([[[[-2], [-1]]], [[[-3], [-2]]], [[[1], [2]]], [[[-1], [0]]]], np.int8)
    assert model.predict_int8(x).ravel().tolist() == [-2, -3, 2, -1]


# ---------------------------------------------------------------------------------------
# 6. The params table in kernels/__init__.py is what prepare produces (the C generator reads it)
# ---------------------------------------------------------------------------------------
def _documented_keys():
    table = {}
    for line in kernels.__doc__.splitlines():
        m = re.match(r"\| (.+?) \| (.+) \|$", line)
        if m and m.group(1) not in ("kind", "---"):
            keys = re.findall(r"`(\w+)`", m.group(2))
            for kind in re.findall(r"`(\w+)`", m.group(1)) or ["all kinds"]:
                table[kind] = set(keys)
    return table


def _movement_models():
    """One model of each data-movement kind (tests/test_data_movement.py draws them)."""
    rng = np.random.default_rng(0)
    return {kind: M.movement_model(0, kind, *M.config_from_rng(rng))[0] for kind in M.KINDS}


def test_params_match_the_documented_table():
    table = _documented_keys()
    common = table.pop("all kinds")
    table["depthwise_conv_2d"] = (table["depthwise_conv_2d"] - {"conv_2d"}) | table["conv_2d"]
    models = {kind: O.single_op_model(0, kind, shape, **cfg) for kind, shape, cfg in [
        ("fully_connected", (8,), dict(units=3)), ("conv_2d", (5, 5, 2), dict(out_c=3)),
        ("depthwise_conv_2d", (5, 5, 2), dict(depth_multiplier=2)), ("max_pool_2d", (4, 4, 2), {}),
        ("average_pool_2d", (4, 4, 2), {}), ("mean", (4, 4, 2), {}), ("add", (6,), {}),
        ("softmax", (6,), {})]}
    for kind in ("logistic", "tanh", "relu", "relu6"):
        models[kind] = O.elementwise_model(kind, 0.1, 3, 0.2, -5)
    for kind in ("sub", "mul", "maximum", "minimum", "squared_difference"):
        models[kind] = O.single_op_model(0, kind, (2, 3), other_shape=(3,), constant=True)
    models["leaky_relu"] = O.Builder(0, (2, 3)).leaky_relu(0.1).model()
    models["prelu"] = O.Builder(0, (2, 3)).prelu().model()
    models["hard_swish"] = O.Builder(0, (2, 3)).hard_swish().model()
    models["elu"] = O.Builder(0, (2, 3)).elu().model()
    b = O.Builder(0, (2, 3))
    models["reshape"] = b.reshape((6,)).model()
    models.update(_movement_models())
    for kind in ("sum", "reduce_max", "reduce_min"):
        models[kind] = O.Builder(0, (4, 4, 2)).reduce(kind, (0, 1)).model()
    models["transpose_conv"] = O.Builder(0, (3, 3, 2)).transpose_conv(2).model()
    for kind in ("resize_nearest_neighbor", "resize_bilinear"):
        models[kind] = O.Builder(0, (3, 3, 2)).resize(kind).model()
    models["elu"] = O.Builder(0, (2, 3)).elu().model()
    models["unidirectional_sequence_lstm"] = O.lstm_model(0, 3, 2, 4)
    models["abs"] = O.Builder(0, (2, 3)).abs().model()
    models["rsqrt"] = O.Builder(0, (2, 3)).rsqrt().model()
    for kind in ("depth_to_space", "space_to_depth"):
        models[kind] = getattr(O.Builder(0, (4, 4, 4)), kind)(2).model()
    models["mirror_pad"] = O.Builder(0, (2, 3)).mirror_pad(((1, 0), (0, 2))).model()
    models["l2_normalization"] = O.Builder(0, (2, 3)).l2_normalization().model()
    for kind in ("neg", "square"):
        models[kind] = O.Builder(0, (2, 3)).float_unary(kind).model()
    for kind in ("arg_max", "arg_min"):
        models[kind] = O.Builder(0, (2, 3)).arg(kind, 1).model()
    models["batch_matmul"] = O.more_ops_model()
    assert set(models) == set(table) == set(kernels.KERNELS)
    for kind, model in models.items():
        op = [o for o in model.ops if o.kind == kind][0]
        assert set(op.params) == table[kind] | common, kind


def test_macs():
    m = O.single_op_model(0, "conv_2d", (8, 8, 3), out_c=4, kernel=(3, 3), stride=(2, 2), padding="same")
    assert m.ops[0].params["macs"] == 4 * 4 * 4 * 3 * 3 * 3
    m = O.single_op_model(0, "depthwise_conv_2d", (8, 8, 3), depth_multiplier=2, kernel=(3, 3), padding="valid")
    assert m.ops[0].params["macs"] == 6 * 6 * 6 * 3 * 3
    assert O.single_op_model(0, "fully_connected", (10,), units=7).ops[0].params["macs"] == 70


# ---------------------------------------------------------------------------------------
# 7. Bad input is refused in prepare, naming the op
# ---------------------------------------------------------------------------------------
def _w(shape, zp=0):
    return QTensor("w", shape, "int8", [0.01] * shape[0], [zp] * shape[0], np.ones(shape, np.int8))


def _conv_tensors(**over):
    ts = dict(x=QTensor("x", (5, 5, 2), "int8", 0.1, 0), y=QTensor("y", (5, 5, 3), "int8", 0.2, 0),
              w=QTensor("w", (3, 3, 3, 2), "int8", [0.01] * 3, [0] * 3, np.ones((3, 3, 3, 2), np.int8)),
              b=QTensor("b", (3,), "int32", [0.001] * 3, [0] * 3, np.zeros(3, np.int32)))
    ts.update(over)
    return ts


BAD_CASES = {
    "in-channels": (dict(w=_w((3, 3, 3, 4))),
                    {"padding": "same"}, "input channels"),
    "output shape": (dict(y=QTensor("y", (4, 4, 3), "int8", 0.2, 0)), {"padding": "same"}, "expected (5, 5, 3)"),
    "empty output": (dict(x=QTensor("x", (2, 2, 2), "int8", 0.1, 0)), {"padding": "valid"}, "empty output"),
    "bias scale": (dict(b=QTensor("b", (3,), "int32", [0.5] * 3, [0] * 3, np.zeros(3, np.int32))),
                   {"padding": "same"}, "bias"),
    "overflow": (dict(x=QTensor("x", (5, 5, 200), "int8", 0.1, 0), w=_w((3, 30, 30, 200))),
                 {"padding": "same"}, "overflow"),
    "weight zero point": (dict(w=_w((3, 3, 3, 2), zp=1)),
                          {"padding": "same"}, "zero points must be 0"),
    "output scale": (dict(y=QTensor("y", (5, 5, 3), "int8", 1e-40, 0)), {"padding": "same"}, "out of range"),
    "activation per channel": (dict(x=QTensor("x", (5, 5, 2), "int8", [0.1, 0.1], [0, 0])),
                               {"padding": "same"}, "one scale per tensor"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_prepare_refuses_bad_conv(case):
    over, options, message = BAD_CASES[case]
    ts = _conv_tensors(**over)
    op = QOp("conv_2d", "bad_conv", ["x", "w", "b"], ["y"], options)
    with pytest.raises(GraphError, match=re.escape(message)) as e:
        kernels.prepare(op, ts)
    assert "bad_conv" in str(e.value)


@pytest.mark.parametrize("bad", [0.0, float("nan"), float("inf")])
def test_prepare_refuses_bad_scales(bad):
    for name in ("x", "w", "y"):
        ts = _conv_tensors()
        ts[name].scale = np.full_like(ts[name].scale, bad)     # QTensor checks at creation only
        with pytest.raises(GraphError, match=f"op 'c' \\(conv_2d\\).*{name!r}: scales must be finite"):
            kernels.prepare(QOp("conv_2d", "c", ["x", "w", "b"], ["y"], {"padding": "same"}), ts)


def test_prepare_refuses_bad_fixed_output_quantization():
    for kind, (s, z) in {"softmax": (0.1, 0), "logistic": (1 / 256, 0), "tanh": (1 / 256, -128)}.items():
        ts = dict(x=QTensor("x", (4,), "int8", 0.1, 0), y=QTensor("y", (4,), "int8", s, z))
        with pytest.raises(GraphError, match=f"op 'o' \\({kind}\\).*must have scale"):
            kernels.prepare(QOp(kind, "o", ["x"], ["y"]), ts)


def test_prepare_refuses_requantizing_copies():
    """max/avg pool and reshape do not requantize in TFLM: in and out must match."""
    ts = dict(x=QTensor("x", (4, 4, 1), "int8", 0.1, 0), y=QTensor("y", (2, 2, 1), "int8", 0.2, 0),
              z=QTensor("z", (16,), "int8", 0.1, 1))
    for op in [QOp("max_pool_2d", "p", ["x"], ["y"], {"pool_size": (2, 2), "stride": (2, 2)}),
               QOp("reshape", "p", ["x"], ["z"])]:
        with pytest.raises(GraphError, match="must share scale and zero point"):
            kernels.prepare(op, ts)


@pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed")
@pytest.mark.parametrize("s_out, z_out", [(0.1, 5), (0.03, -128), (0.5, 100)])
def test_relu6_with_another_output_quantization_is_tflms_clamp(s_out, z_out):
    """TensorFlow's converter writes standalone RELU6s whose output is quantized unlike the
    input; TFLM's Relu6 clamps in the input's quantization and ignores the output's. So
    does minitiny: every int8 input, against TFLM through the writer."""
    from minitiny.quant.tflite_io import to_tflite
    ts = dict(x=QTensor("x", (256,), "int8", np.float32(0.05), -3),
              r=QTensor("r", (256,), "int8", np.float32(s_out), z_out))
    q = QModel("relu6", ts, [QOp("relu6", "p", ["x"], ["r"])], ["x"], ["r"])
    x = np.arange(-128, 128, dtype=np.int8)[None]
    np.testing.assert_array_equal(q.predict_int8(x), np.clip(x, -3, -3 + round(6 / 0.05)))
    np.testing.assert_array_equal(q.predict_int8(x), np.asarray(tflm.run_tflm(to_tflite(q), x)).reshape(1, -1))


def test_prepare_refuses_shape_mismatches():
    ts = dict(a=QTensor("a", (4,), "int8", 0.1, 0), b=QTensor("b", (5,), "int8", 0.1, 0),
              y=QTensor("y", (4,), "int8", 0.1, 0), w=_w((3, 5)))
    with pytest.raises(GraphError, match=r"input shapes \(1, 4\) and \(1, 5\) do not broadcast"):
        kernels.prepare(QOp("add", "add0", ["a", "b"], ["y"]), ts)
    with pytest.raises(GraphError, match="expects 5"):
        kernels.prepare(QOp("fully_connected", "fc0", ["a", "w"], ["y"]), ts)
    with pytest.raises(GraphError, match="every axis is reduced without keep_dims"):
        kernels.prepare(QOp("mean", "m0", ["a"], ["y"], {"axes": (0,)}), ts)


def test_run_refuses_wrong_input():
    model = O.single_op_model(0, "fully_connected", (8,), units=3)
    op = model.ops[0]
    with pytest.raises(GraphError, match="must be int8"):
        kernels.run(op, model.tensors, [np.zeros((2, 8), np.float32), model.tensors[op.inputs[1]].data])
    with pytest.raises(GraphError, match="must be int8"):
        kernels.run(op, model.tensors, [np.zeros((2, 9), np.int8), model.tensors[op.inputs[1]].data])
