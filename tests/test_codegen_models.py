"""The generated C against the NumPy int8 reference, bit for bit.

Every test generates C from a QModel, compiles it on the host (gcc or clang, with
-std=c99 -Wall -Wextra -Werror -pedantic; cached by minitiny.codegen.load) and demands that
the C's int8 outputs equal QModel.predict_int8's for random inputs with -128 and 127 in every
sample. The models: each op kind alone (tests/int8_oracle.py's builders and hypothesis
configurations), and random multi-layer chains drawn by hypothesis (`random_model`), where
`add` joins the current tensor with an earlier one of the same shape (a skip connection), so
the arena planner meets long-lived tensors and in-place ops. A few models also run under
-fsanitize=address,undefined, and the code is compiled for Cortex-M with arm-none-eabi-gcc.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.codegen import generator  # noqa: E402
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor  # noqa: E402
from minitiny.testing.models import binary_step, broadcast_shape  # noqa: E402

SPATIAL_KINDS = ("conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d", "mean")
ANY_KINDS = ("fully_connected", "softmax", "relu", "relu6", "logistic", "tanh", "add", "reshape")
KINDS = SPATIAL_KINDS + ANY_KINDS


def _window(rng, h, w):
    padding = str(rng.choice(["same", "valid"]))
    k = (int(rng.integers(1, (3 if padding == "same" else min(h, 3)) + 1)),
         int(rng.integers(1, (3 if padding == "same" else min(w, 3)) + 1)))
    return dict(stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))), padding=padding), k


def add_layer(b, kind):
    """Append `kind` to int8_oracle.Builder `b` with a configuration drawn from b.rng; False if
    the kind does not fit the current shape (spatial kinds need (H, W, C))."""
    rng, shape = b.rng, b.t.shape
    act = str(rng.choice(["none", "relu", "relu6"]))
    if kind in SPATIAL_KINDS and len(shape) != 3:
        return False
    if kind == "fully_connected":
        b.dense(int(rng.integers(1, 12)), act, per_channel=bool(rng.random() < 0.5),
                bias=bool(rng.random() < 0.8))
    elif kind in ("conv_2d", "depthwise_conv_2d"):
        cfg, k = _window(rng, *shape[:2])
        cfg.update(kernel=k, activation=act, per_channel=bool(rng.random() < 0.7),
                   bias=bool(rng.random() < 0.8))
        if kind == "conv_2d":
            b.conv(int(rng.integers(1, 6)), **cfg)
        else:
            b.depthwise(int(rng.integers(1, 3)), **cfg)
    elif kind in ("max_pool_2d", "average_pool_2d"):
        cfg, k = _window(rng, *shape[:2])
        b.pool(kind, pool_size=k, activation=str(rng.choice(["none", "relu"])), **cfg)
    elif kind == "mean":
        b.mean(keep_dims=bool(rng.random() < 0.5), same_quantization=bool(rng.random() < 0.3))
    elif kind == "add":
        # a skip connection: an earlier activation of the same shape (or the tensor itself)
        earlier = [n for n, t in b.tensors.items() if not t.is_constant and t.shape == shape and n != b.cur]
        b.add(earlier[int(rng.integers(len(earlier)))] if earlier and rng.random() < 0.8 else b.cur,
              activation=str(rng.choice(["none", "relu"])))
    elif kind == "reshape":
        b.flatten() if len(shape) == 3 else b.reshape((1, 1, shape[0]) if len(shape) == 1 else shape[::-1])
    elif kind == "softmax":
        b.softmax(beta=float(rng.choice([1.0, 0.5, 2.0])))
    elif kind in o.BINARY:
        binary_step(b, kind, act)          # a constant or an activation that broadcasts, or itself
    elif kind == "prelu":
        b.prelu(alpha_shape=broadcast_shape(rng, shape))
    elif kind in ("sum", "reduce_max"):      # over the last axis, keeping it
        b.reduce(kind, (len(shape) - 1,), keep_dims=True)
    else:
        getattr(b, kind)()
    return True


def random_model(seed, kinds, input_shape=None, name="random"):
    """A QModel running `kinds` in order (kinds that do not fit the shape are skipped)."""
    rng = np.random.default_rng(seed)
    if input_shape is None:
        input_shape = (int(rng.integers(3, 9)), int(rng.integers(3, 9)), int(rng.integers(1, 4)))
    b = o.Builder(seed, tuple(input_shape), name)
    for kind in kinds:
        add_layer(b, kind)
    if not b.ops:
        b.relu()
    return b.model()


def renamed(model, op_names=(), tensor_names=(), model_name=None):
    """The same model with new op / activation-tensor names (for the name-sanitising tests)."""
    acts = [n for n, t in model.tensors.items() if not t.is_constant]
    mapping = dict(zip(acts, tensor_names))
    tensors = {}
    for n, t in model.tensors.items():
        new = mapping.get(n, n)
        tensors[new] = QTensor(new, t.shape, t.dtype, t.scale, t.zero_point, t.data, t.quantized_dimension)
    ops = [QOp(op.kind, op_names[i] if i < len(op_names) else op.name,
               [mapping.get(n, n) for n in op.inputs], [mapping.get(n, n) for n in op.outputs], op.options)
           for i, op in enumerate(model.ops)]
    return QModel(model_name or model.name, tensors, ops, [mapping.get(n, n) for n in model.inputs],
                  [mapping.get(n, n) for n in model.outputs])


# =======================================================================================
# The tests: generated C == QModel.predict_int8, bit for bit
# =======================================================================================
GCC, CLANG, ARM_GCC = shutil.which("gcc"), shutil.which("clang"), shutil.which("arm-none-eabi-gcc")
requires_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
EVERY_KIND = ["conv_2d", "relu", "depthwise_conv_2d", "add", "mul", "max_pool_2d", "relu6", "prelu",
              "average_pool_2d", "hard_swish", "sub", "logistic", "tanh", "add", "squared_difference",
              "maximum", "leaky_relu", "mean", "minimum", "elu", "reshape", "reduce_max", "sum",
              "fully_connected", "softmax"]


RESIZING = {"transpose_conv", "resize_nearest_neighbor", "resize_bilinear"}
# Kinds with C that the every-kind model leaves out, and the test file that runs their C
ELSEWHERE = {"abs": "test_abs_rsqrt", "rsqrt": "test_abs_rsqrt", "neg": "test_float_unary",
             "square": "test_float_unary", "batch_matmul": "test_batch_matmul",
             "l2_normalization": "test_l2_normalization", "reduce_min": "test_spatial_ops",
             "unidirectional_sequence_lstm": "test_lstm"}


def test_every_kind_with_c_is_in_the_every_kind_model_or_named_elsewhere():
    rest = set(generator.TEMPLATES) - set(generator.MOVEMENT_TEMPLATES) - RESIZING - set(EVERY_KIND)
    assert rest == set(ELSEWHERE), f"add {sorted(rest - set(ELSEWHERE))} to EVERY_KIND or ELSEWHERE"
    here = os.path.dirname(os.path.abspath(__file__))
    for kind, test in ELSEWHERE.items():
        with open(os.path.join(here, test + ".py")) as f:
            assert kind in f.read(), (kind, test)


def every_kind_model(seed=0, name="every_kind"):
    """One model holding every op kind the C generator has but the data-movement ones (whose
    chain is tests/test_data_movement.py movement_chain) and the resizing ones (transpose_conv,
    the resizes: int8_oracle.spatial_model; mean keeps dims so reshape can flatten after it);
    a draw a kind's Prepare refuses is drawn again."""
    for s in range(seed, seed + 100):
        try:
            model = random_model(s, EVERY_KIND, input_shape=(7, 6, 3), name=name)
        except GraphError:
            continue
        if {op.kind for op in model.ops} == set(EVERY_KIND):
            return model
    raise AssertionError("no seed gave a model with every kind")


def check_bit_exact(model, x, compiler=None, sanitize=False, variant="scalar"):
    """Generate, compile, run; assert the C's int8 outputs equal predict_int8's."""
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m", variant=variant)
        fn = codegen.load(d, compiler=compiler, sanitize=sanitize)
        got = fn(x)
    want = model.predict_int8(x)
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        i = tuple(bad[0])
        raise AssertionError(f"{len(bad)} of {want.size} outputs differ; first at {i}: C {got[i]}, "
                             f"NumPy {want[i]}\n{model.summary()}")
    return got


def inputs_for(model, seed, n=16):
    """Random int8 inputs with -128 and 127 in every sample (int8_oracle.int8_input)."""
    return o.int8_input(np.random.default_rng(seed), model.input.shape, n)


# -- each op kind alone ----------------------------------------------------------------
ONE_OP_MODELS = {
    "fully_connected": lambda: o.single_op_model(1, "fully_connected", (4, 3), units=7, activation="relu"),
    "fully_connected per channel": lambda: o.single_op_model(2, "fully_connected", (16,), units=5,
                                                             per_channel=True, activation="relu6"),
    "fully_connected no bias": lambda: o.single_op_model(3, "fully_connected", (9,), units=4, bias=False),
    "conv_2d same": lambda: o.single_op_model(4, "conv_2d", (7, 6, 3), out_c=4, kernel=(3, 2),
                                              stride=(2, 1), activation="relu"),
    "conv_2d valid per tensor": lambda: o.single_op_model(5, "conv_2d", (6, 6, 2), out_c=3, padding="valid",
                                                          per_channel=False, bias=False),
    "depthwise_conv_2d": lambda: o.single_op_model(6, "depthwise_conv_2d", (6, 6, 3), depth_multiplier=2,
                                                   stride=(2, 2)),
    "depthwise_conv_2d valid": lambda: o.single_op_model(7, "depthwise_conv_2d", (5, 6, 2), padding="valid",
                                                         kernel=(2, 3), activation="relu6"),
    "max_pool_2d": lambda: o.single_op_model(8, "max_pool_2d", (5, 7, 3), pool_size=(3, 2), padding="same",
                                             activation="relu"),
    "average_pool_2d": lambda: o.single_op_model(9, "average_pool_2d", (5, 7, 3), pool_size=(3, 3),
                                                 stride=(1, 2), padding="same"),
    "mean": lambda: o.single_op_model(10, "mean", (5, 3, 4)),
    "mean same quantization": lambda: o.single_op_model(11, "mean", (4, 4, 3), same_quantization=True,
                                                        keep_dims=True),
    "softmax": lambda: o.single_op_model(12, "softmax", (3, 10), beta=0.7),
    "logistic": lambda: o.elementwise_model("logistic", np.float32(0.05), 3),
    "tanh": lambda: o.elementwise_model("tanh", np.float32(0.03), -5),
    "relu": lambda: o.elementwise_model("relu", np.float32(0.05), 3, np.float32(0.04), -128),
    "relu6": lambda: o.elementwise_model("relu6", np.float32(0.05), 3),
    "add (residual)": lambda: random_model(13, ["conv_2d", "add"], input_shape=(4, 4, 2)),
    "reshape": lambda: random_model(14, ["reshape", "fully_connected"], input_shape=(3, 2, 2)),
}


@requires_gcc
@pytest.mark.parametrize("label", sorted(ONE_OP_MODELS))
def test_each_op_kind_alone(label):
    model = ONE_OP_MODELS[label]()
    check_bit_exact(model, inputs_for(model, seed=len(label), n=32))
    if model.input.shape == (256,):          # elementwise: every int8 value once
        check_bit_exact(model, o.ALL_INT8)


ONE_OP_KINDS = ["fully_connected", "conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d",
                "mean", "softmax"]


@requires_gcc
@given(st.sampled_from(ONE_OP_KINDS).flatmap(lambda k: o.op_configs(k).map(lambda c: (k,) + tuple(c))),
       o.seeds)
def test_one_op_drawn_by_hypothesis(config, seed):
    """int8_oracle's configurations: shapes, strides, paddings, depth multipliers, activations."""
    kind, in_shape, cfg = config
    model = o.single_op_model(seed, kind, in_shape, **cfg)
    check_bit_exact(model, inputs_for(model, seed=0))


@requires_gcc
@given(st.sampled_from(["logistic", "tanh", "relu", "relu6"]), o.seeds)
def test_elementwise_ops_on_every_int8_value(kind, seed):
    rng = np.random.default_rng(seed)
    s_in, z_in = o.log_uniform(rng, 1e-3, 1.0), o.zero_point(rng)
    model = o.elementwise_model(kind, s_in, z_in, np.float32(s_in * o.log_uniform(rng, 0.3, 3)),
                                o.zero_point(rng))
    check_bit_exact(model, o.ALL_INT8)


@requires_gcc
@given(st.integers(0, 2 ** 16), st.lists(st.sampled_from(KINDS), min_size=1, max_size=7))
def test_random_models_drawn_by_hypothesis(seed, kinds):
    model = random_model(seed, kinds)
    check_bit_exact(model, inputs_for(model, seed))


# -- one model with every kind: compilers, sanitizers, rounding ----------------------------
@pytest.fixture(scope="module")
def every_kind():
    return every_kind_model()


@requires_gcc
def test_every_kind_in_one_model_gcc(every_kind):
    check_bit_exact(every_kind, inputs_for(every_kind, 1, 64), compiler=GCC)


@pytest.mark.skipif(CLANG is None, reason="clang is not installed")
def test_every_kind_in_one_model_clang(every_kind):
    check_bit_exact(every_kind, inputs_for(every_kind, 2, 64), compiler=CLANG)


EXTRA_WARNINGS = ["-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wcast-qual", "-Wcast-align",
                  "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wundef", "-Wdouble-promotion",
                  "-Wpointer-arith", "-Wvla", "-Wredundant-decls"]


@pytest.mark.parametrize("cc", [c for c in (GCC, CLANG) if c])
def test_generated_c_passes_extra_warnings(every_kind, tmp_path, cc):
    """Beyond the promised -Wall -Wextra -pedantic: what a strict firmware build may add."""
    g = codegen.generate(every_kind, tmp_path)
    for defines in ([], ["-DMINITINY_FLOAT_HELPERS"]):
        subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"] + EXTRA_WARNINGS
                       + defines + ["-c", g.source, "-o", os.devnull], check=True)


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4", "cortex-m7"])
def test_generated_c_compiles_for_cortex_m(every_kind, tmp_path, cpu):
    g = codegen.generate(every_kind, tmp_path)
    subprocess.run([ARM_GCC, f"-mcpu={cpu}", "-mthumb", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-pedantic", "-Os", "-ffreestanding", "-c", g.source, "-o", str(tmp_path / "m.o")],
                   check=True)


@requires_gcc
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sanitizers_run_clean(seed):
    model = every_kind_model(seed * 10)
    check_bit_exact(model, inputs_for(model, seed, 16), sanitize=True)


@requires_gcc
@pytest.mark.parametrize("variant, bound", [("reference", ".output_depth = 8,"), ("scalar", "out_channel < 8;")])
def test_sanitizer_build_catches_an_out_of_bounds_write(tmp_path, variant, bound):
    """The harness itself: a planted off-by-one must be reported, not pass silently."""
    model = o.single_op_model(1, "fully_connected", (16,), units=8)
    g = codegen.generate(model, tmp_path, variant=variant)
    src = open(g.source).read()
    assert bound in src
    with open(g.source, "w") as f:
        f.write(src.replace(bound, bound.replace("8", "9")))
    fn = codegen.load(g.dir, sanitize=True)
    with pytest.raises(codegen.SanitizerError, match="out of bounds|overflow|insufficient space"):
        fn(inputs_for(model, 0, 2))


@requires_gcc
def test_single_rounding_models(every_kind):
    """TFLITE_SINGLE_ROUNDING's requantization (one 64-bit rounding) in the C as in NumPy."""
    ops = [QOp(op.kind, op.name, op.inputs, op.outputs, op.options) for op in every_kind.ops]
    model = QModel(every_kind.name, every_kind.tensors, ops, every_kind.inputs, every_kind.outputs,
                   single_rounding=True)
    assert codegen.model_hash(model) != codegen.model_hash(every_kind)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d)
        assert "single rounding" in open(os.path.join(d, "every_kind_model.c")).read()
    check_bit_exact(model, inputs_for(model, 3, 64))


# -- the float32 C of an unquantized model ------------------------------------------------
# Tolerance: the C sums in another order than NumPy's float32 matmul; with the few hundred
# terms of these models the difference stays near 1e-7 (measured), so 1e-5 of the output
# scale leaves a wide margin while still catching any wrong weight, index or activation.
FLOAT_TOLERANCE = 1e-5


def float_models():
    import minitiny as mt
    L = mt.layers
    mt.random.seed(3)
    seq = mt.Sequential([
        L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 7, 2)),
        L.BatchNormalization(),
        L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu6"),
        L.MaxPooling2D(2, padding="same"), L.AveragePooling2D((2, 1), strides=1),
        L.Activation("tanh"), L.Dropout(0.5), L.Flatten(), L.Dense(10, activation="sigmoid"),
        L.ReLU(0.7), L.Activation("linear"), L.Dense(5, activation="softmax")], name="float seq")
    bn = seq.layers[1]
    rng = np.random.default_rng(0)
    bn.set_weights([rng.random(4) + 0.5, rng.normal(size=4), rng.normal(size=4), rng.random(4) + 0.5])
    x = mt.Input((6, 6, 3))
    y = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    z = L.Add()([x, y])
    w = L.Conv2D(3, 1, use_bias=False)(z)
    s = L.Add()([z, w, y])
    out = L.Dense(4, activation="tanh")(L.GlobalAveragePooling2D()(s))
    return [seq, mt.Model(x, out, name="residual")]


@requires_gcc
def test_float_models_match_numpy_float32(tmp_path):
    import minitiny as mt
    for i, model in enumerate(float_models()):
        g = codegen.generate(model, tmp_path / str(i))
        assert g.manifest["dtype"] == "float32"
        assert g.manifest["arena_bytes"] >= g.manifest["arena_lower_bound"]
        back = mt.load_model(os.path.join(g.dir, f"{g.name}.model.npz"))
        assert [type(l).__name__ for l in back.layers] == [type(l).__name__ for l in model.layers]
        src = open(g.source).read()
        assert "static const float" in src and "int8_t" not in src
        fn = codegen.load(g.dir)
        x = np.random.default_rng(i).normal(size=(32,) + tuple(model.input_shape)).astype(np.float32)
        got, want = fn(x), model.predict(x)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=FLOAT_TOLERANCE,
                                   atol=FLOAT_TOLERANCE * max(1.0, float(np.abs(want).max())))


def test_float_codegen_names_an_unsupported_layer(tmp_path):
    import minitiny as mt

    class _Gelu(mt.layers.Layer):          # a leading "_" keeps it out of the layer registry
        def call(self, x, training=False):
            return x
    model = mt.Sequential([mt.layers.Dense(3, input_shape=(2,)), _Gelu()])
    with pytest.raises(codegen.CodegenError, match="_Gelu.*supported: .*Conv2D"):
        codegen.generate(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(ARM_GCC is None or not shutil.which("arm-none-eabi-nm"),
                    reason="the arm-none-eabi toolchain is not installed")
@pytest.mark.parametrize("variant", ["reference", "scalar"])
def test_code_size_estimate_is_close_to_the_measured_size(every_kind, tmp_path, variant):
    """The manifest's code estimate (generator.CODE_BYTES...) against arm-none-eabi-gcc -Os."""
    from minitiny.codegen import sizes
    g = codegen.generate(every_kind, tmp_path, variant=variant)
    measured = sizes.measure(g.dir)
    estimate = g.manifest["code_bytes_estimate"]
    assert 0.6 * estimate <= measured["total_code"] <= 1.5 * estimate, (measured, estimate)
    assert measured["rodata"] >= sum(t.nbytes for t in every_kind.tensors.values() if t.is_constant)


def _two_layers(kind):
    """Two layers of `kind` with different shapes: the generic kernel stays general."""
    from int8_oracle import Builder
    b = Builder(0, (6, 6, 4), "m")
    if kind == "transpose_conv":
        b.transpose_conv(5)
        b.transpose_conv(3, stride=(1, 1), padding="valid")
    elif kind == "conv_2d":
        b.conv(5)
        b.conv(3, stride=(2, 2), padding="valid")
    elif kind == "depthwise_conv_2d":
        b.depthwise(2)
        b.depthwise(1, stride=(2, 2), padding="valid")
    else:
        b.resize(kind)
        b.resize(kind, size=(5, 7), align_corners=True)
    return b.model()


@pytest.mark.skipif(ARM_GCC is None or not shutil.which("arm-none-eabi-nm"),
                    reason="the arm-none-eabi toolchain is not installed")
@pytest.mark.parametrize("kind", ["conv_2d", "depthwise_conv_2d", "transpose_conv",
                                  "resize_nearest_neighbor", "resize_bilinear"])
def test_reference_kernel_code_bytes_are_measured(kind, tmp_path):
    """generator.CODE_BYTES_REFERENCE[kind] against the generic kernel's symbol (with the
    static helper only it calls) under arm-none-eabi-gcc -Os -fno-inline, as sizes.py builds."""
    from minitiny.codegen import generator
    g = codegen.generate(_two_layers(kind), tmp_path, name="m", variant="reference")
    obj = tmp_path / "m.o"
    subprocess.run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Os", "-fno-inline",
                    "-ffunction-sections", "-I", str(tmp_path), "-c", g.source, "-o", str(obj)],
                   check=True)
    nm = subprocess.run([ARM_GCC.replace("gcc", "nm"), "-S", str(obj)], capture_output=True,
                        text=True, check=True).stdout
    sizes = {parts[3]: int(parts[1], 16) for parts in map(str.split, nm.splitlines()) if len(parts) == 4}
    assert kind in sizes, f"no general {kind} symbol: {sorted(sizes)}"
    kernel = sizes[kind] + sizes.get("interpolation_values", 0)
    estimate = generator.CODE_BYTES_REFERENCE[kind]
    assert 0.75 * estimate <= kernel <= 1.3 * estimate, (kind, kernel, estimate)


@pytest.mark.parametrize("kind", ["logistic", "tanh"])
@pytest.mark.parametrize("zero_point", [-128, 0, 126, 127])
def test_saturating_logistic_and_tanh_need_no_fixed_point(kind, zero_point):
    """An input scale of 8 or more leaves TFLM's input_range_radius at 0: the C only saturates,
    emits no gemmlowp helper, and still gives NumPy's bits for every int8 input."""
    from int8_oracle import elementwise_model
    model = elementwise_model(kind, np.float32(8.0), zero_point)
    assert model.ops[0].params["input_range_radius"] == 0
    x = np.arange(-128, 128).astype(np.int8)[None]
    with tempfile.TemporaryDirectory() as d:
        g = codegen.generate(model, d, name="m")
        assert "gemmlowp_" not in open(g.source).read()
        np.testing.assert_array_equal(codegen.load(d)(x), model.predict_int8(x))
