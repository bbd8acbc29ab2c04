"""Shared helpers for the int8 tests: one check that runs a QModel in minitiny's NumPy
reference and in TensorFlow Lite Micro's interpreter and demands identical int8 outputs
(tinygrad's helper_test_op, with TFLM as the oracle), and a tally of what was compared.

The random QModels of every op kind, their configurations and hypothesis strategies are
the public minitiny.testing.models (users draw the same models in their own tests); they
are re-exported here under the names the tests use.
"""
import numpy as np
import pytest

from minitiny.quant import tflm
# the builders and configurations live in the public package (minitiny.testing.models)
from minitiny.testing.models import (ACTIVATIONS, ALL_INT8, BINARY, FUSED, Builder,  # noqa: F401
                                     activations, broadcast_config, config, elementwise_model,
                                     int8_input, log_uniform, lstm_model, op_configs, random_config, seeds,
                                     single_op_model, weights, zero_point)
import figures  # noqa: E402  (tests/figures.py)

requires_tflm = pytest.mark.skipif(not tflm.available(),
                                   reason="tflite-micro (TFLM's interpreter, the oracle) is not installed")

# label -> [outputs compared, outputs that differed]; test modules print it at the end
TALLY = {}


# ---------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------
def run_reference(qmodel, xs):
    """minitiny's NumPy int8 reference for a model with one or more inputs (a list)."""
    return qmodel.predict_int8(xs if len(xs) > 1 else xs[0])


def run_all(qmodel, xs):
    """minitiny's NumPy int8 reference for a model with one or more inputs: every tensor."""
    return qmodel.predict_int8(xs if len(xs) > 1 else xs[0], return_all=True)


def random_inputs(qmodel, seed, n=8):
    rng = np.random.default_rng(seed)
    return [int8_input(rng, qmodel.tensors[name].shape, n) for name in qmodel.inputs]


def check_against_tflm(qmodel, x=None, label=None, seed=0):
    """Run `x` (N, ...) int8 (a list of arrays for several model inputs; random when None)
    through minitiny and TFLM; assert identical int8 outputs.

    Returns the number of outputs compared; tallies them under `label` (default: the kind
    of the model's last op) in TALLY.
    """
    if x is None:
        x = random_inputs(qmodel, seed)
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    ours = run_reference(qmodel, xs)
    theirs = tflm.run_tflm(qmodel, xs if len(xs) > 1 else xs[0]).reshape(ours.shape)
    label = label or qmodel.ops[-1].kind
    tally = TALLY.setdefault(label, [0, 0])
    bad = ours != theirs
    tally[0] += ours.size
    tally[1] += int(bad.sum())
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{label}: {int(bad.sum())} of {ours.size} int8 outputs differ from TFLM; first at "
            f"{i}: minitiny {ours[i]}, TFLM {theirs[i]}\n{qmodel.summary()}\n"
            f"params: {qmodel.ops[-1].params}")
    return ours.size


def check_reference_c(qmodel, x, sanitize=False):
    """The model's generated C (reference kernels), built on the host (under ASan and UBSan
    with `sanitize`), against predict_int8 on `x` (an array, or a list for several inputs)."""
    import tempfile
    from minitiny import codegen
    want = qmodel.predict_int8(x)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(qmodel, d, name="m", variant="reference")
        got = codegen.load(d, sanitize=sanitize)(x)
    np.testing.assert_array_equal(np.asarray(got).reshape(want.shape), want)


def spatial_model(seed=6):
    """One model with issue 19's spatial ops and reductions, for the tests that render or
    compile every template: dilated convolutions, a transposed convolution, both resizes, a
    dense layer over the rows of a feature map, reductions over other axes than H and W."""
    b = Builder(seed, (10, 9, 3), "spatial")
    b.conv(4, kernel=(3, 3), dilation=(2, 2), activation="relu").depthwise(2, kernel=(3, 2), dilation=(1, 3))
    b.transpose_conv(4, kernel=(3, 3), stride=(2, 2), padding="same", activation="relu")
    b.resize("resize_nearest_neighbor", (10, 9)).resize("resize_bilinear", (12, 11), half_pixel_centers=True)
    b.dense(5, keep_num_dims=True)
    b.reduce("reduce_max", (2,), keep_dims=True).reduce("mean", (1,)).reduce("sum", (0,), keep_dims=True)
    return b.model()


def more_ops_model(seed=7):
    """One model with the builtins issue 19 added beyond its list, for the tests that render or
    compile every template: MIRROR_PAD, DEPTH_TO_SPACE, SPACE_TO_DEPTH, ABS, RSQRT (after ABS,
    so every input is valid), NEG, SQUARE, L2_NORMALIZATION, BATCH_MATMUL of two activations and
    REDUCE_MIN."""
    b = Builder(seed, (6, 6, 2), "more ops")
    b.conv(8, kernel=(3, 3), activation="relu").mirror_pad(((1, 1), (2, 0), (0, 0)), "reflect")
    b.depth_to_space(2).space_to_depth(2)                                  # (7, 8, 8)
    rhs = b.cur
    b.abs().rsqrt().float_unary("neg").float_unary("square").l2_normalization()
    b.batch_matmul(rhs, adj_y=True).reduce("reduce_min", (2,), keep_dims=True)
    return b.model()


def tally_report():
    return "\n".join(f"  {k:24s} {c:8d} int8 outputs compared with TFLM, {m} mismatched"
                     for k, (c, m) in sorted(TALLY.items()))


def print_tally(request, title):
    """Print TALLY past pytest's output capture (so it shows in a passing run), then clear it."""
    if not TALLY:
        return
    text = f"\n{title}:\n{tally_report()}"
    figures.show(request, text)
    TALLY.clear()
