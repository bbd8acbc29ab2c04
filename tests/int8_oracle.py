"""Shared helpers for the int8 tests: random QModels of every op kind and small chains of
them, hypothesis strategies for their configurations, and one check that runs a QModel in
minitiny's NumPy reference and in TensorFlow Lite Micro's interpreter and demands identical
int8 outputs (tinygrad's helper_test_op, with TFLM as the oracle).

Scales are drawn log-uniformly over several orders of magnitude, zero points often at the
extremes -128 and 127, and inputs always include -128 and 127. The output scale of a
weighted layer is set from the spread of its accumulator, times a random factor in
[1/8, 8], so most outputs land inside int8 and some layers saturate.
"""
import numpy as np
import pytest
from hypothesis import strategies as st

from minitiny.quant import kernels, tflm
from minitiny.quant.graph import QModel, QOp, QTensor
import figures  # noqa: E402  (tests/figures.py)

requires_tflm = pytest.mark.skipif(not tflm.available(),
                                   reason="tflite-micro (TFLM's interpreter, the oracle) is not installed")

# label -> [outputs compared, outputs that differed]; test modules print it at the end
TALLY = {}


# ---------------------------------------------------------------------------------------
# Random numbers
# ---------------------------------------------------------------------------------------
def log_uniform(rng, lo, hi, size=None):
    return np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi), size)))


def zero_point(rng):
    """Zero points with the extremes over-represented."""
    r = rng.random()
    return -128 if r < 0.2 else 127 if r < 0.35 else int(rng.integers(-128, 128))


def int8_input(rng, shape, n=8):
    """(n, *shape) int8, uniform, with -128 and 127 planted in every sample."""
    x = rng.integers(-128, 128, size=(n,) + tuple(shape)).astype(np.int8)
    flat = x.reshape(n, -1)
    flat[:, 0] = -128
    flat[:, -1] = 127
    return x


def weights(rng, shape):
    """Symmetric int8 weights in [-127, 127], with both ends present."""
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    flat = w.reshape(-1)
    flat[0], flat[-1] = -127, 127
    return w


ALL_INT8 = np.arange(-128, 128, dtype=np.int8)[None]        # (1, 256): every int8 once


# ---------------------------------------------------------------------------------------
# A small graph builder: layers appended in order, each reading the previous output
# ---------------------------------------------------------------------------------------
def _out_size(n, k, stride, padding):
    return -(-n // stride) if padding == "same" else (n - k) // stride + 1


class Builder:
    def __init__(self, seed, in_shape, name="model", in_scale=None, in_zero_point=None,
                 weight_scales=(1e-4, 1e-1)):
        self.rng = np.random.default_rng(seed)
        self.weight_scales = weight_scales              # log-uniform range of weight scales
        self.name, self.tensors, self.ops, self.inputs = name, {}, [], []
        self.cur = self.input("x", in_shape, in_scale, in_zero_point)

    # -- tensors -------------------------------------------------------------------------
    def _tensor(self, shape, scale, zp, data=None, qdim=0, prefix="t", dtype="int8"):
        name = f"{prefix}{len(self.tensors)}"
        self.tensors[name] = QTensor(name, shape, dtype, scale, zp, data, qdim)
        return name

    def input(self, name, shape, scale=None, zp=None):
        scale = log_uniform(self.rng, 1e-3, 1.0) if scale is None else np.float32(scale)
        zp = zero_point(self.rng) if zp is None else zp
        self.tensors[name] = QTensor(name, shape, "int8", scale, np.int32(zp))
        self.inputs.append(name)
        return name

    @property
    def t(self):
        return self.tensors[self.cur]

    def _op(self, kind, inputs, out, options=None):
        self.ops.append(QOp(kind, f"{kind}_{len(self.ops)}", inputs, [out], options or {}))
        self.cur = out
        return self

    def _output_scale(self, s_w, fan_in):
        """Maps a typical accumulator (std ~ 73 * 80 * sqrt(fan_in) for uniform int8 inputs
        and weights) to ~ +-60, times a random factor in [1/8, 8]."""
        typical = float(self.t.scale) * float(np.max(s_w)) * 73 * 80 * np.sqrt(fan_in)
        return np.float32(typical / 60 * log_uniform(self.rng, 1 / 8, 8))

    def _weighted(self, kind, w_shape, q_dim, n_out, fan_in, out_shape, per_channel, bias, options):
        rng = self.rng
        lo, hi = self.weight_scales
        s_w = log_uniform(rng, lo, hi, n_out) if per_channel else log_uniform(rng, lo, hi)
        w = self._tensor(w_shape, s_w, np.zeros_like(s_w, np.int32), weights(rng, w_shape), q_dim, "w")
        inputs = [self.cur, w]
        if bias:
            b_scale = (np.float32(self.t.scale) * np.broadcast_to(s_w, (n_out,))).astype(np.float32)
            if not per_channel and kind == "fully_connected":
                b_scale = np.float32(b_scale[0])
            data = rng.integers(-20000, 20000, size=n_out).astype(np.int32)
            inputs.append(self._tensor((n_out,), b_scale, np.zeros_like(b_scale, np.int32), data,
                                       prefix="b", dtype="int32"))
        out = self._tensor(out_shape, self._output_scale(s_w, fan_in), zero_point(rng))
        return self._op(kind, inputs, out, options)

    # -- layers --------------------------------------------------------------------------
    def dense(self, units, activation="none", per_channel=False, bias=True):
        fan_in = int(np.prod(self.t.shape))
        return self._weighted("fully_connected", (units, fan_in), 0, units, fan_in, (units,),
                              per_channel, bias, {"activation": activation})

    def conv(self, out_c, kernel=(3, 3), stride=(1, 1), padding="same", activation="none",
             per_channel=True, bias=True):
        h, w, in_c = self.t.shape
        out = (_out_size(h, kernel[0], stride[0], padding), _out_size(w, kernel[1], stride[1], padding), out_c)
        return self._weighted("conv_2d", (out_c,) + tuple(kernel) + (in_c,), 0, out_c,
                              kernel[0] * kernel[1] * in_c, out, per_channel, bias,
                              {"stride": tuple(stride), "padding": padding, "activation": activation})

    def depthwise(self, depth_multiplier=1, kernel=(3, 3), stride=(1, 1), padding="same",
                  activation="none", per_channel=True, bias=True):
        h, w, in_c = self.t.shape
        out_c = in_c * depth_multiplier
        out = (_out_size(h, kernel[0], stride[0], padding), _out_size(w, kernel[1], stride[1], padding), out_c)
        return self._weighted("depthwise_conv_2d", (1,) + tuple(kernel) + (out_c,), 3, out_c,
                              kernel[0] * kernel[1], out, per_channel, bias,
                              {"stride": tuple(stride), "padding": padding, "activation": activation,
                               "depth_multiplier": depth_multiplier})

    def pool(self, kind="max_pool_2d", pool_size=(2, 2), stride=(2, 2), padding="valid", activation="none"):
        h, w, c = self.t.shape
        out = (_out_size(h, pool_size[0], stride[0], padding), _out_size(w, pool_size[1], stride[1], padding), c)
        name = self._tensor(out, self.t.scale, self.t.zero_point)     # pools keep the quantization
        return self._op(kind, [self.cur], name, {"pool_size": tuple(pool_size), "stride": tuple(stride),
                                                 "padding": padding, "activation": activation})

    def mean(self, keep_dims=False, same_quantization=False):
        c = self.t.shape[-1]
        if same_quantization:
            scale, zp = self.t.scale, self.t.zero_point
        else:
            scale, zp = np.float32(self.t.scale * log_uniform(self.rng, 0.1, 10)), zero_point(self.rng)
        out = self._tensor((1, 1, c) if keep_dims else (c,), scale, zp)
        return self._op("mean", [self.cur], out, {"axes": (0, 1), "keep_dims": keep_dims})

    def reshape(self, shape):
        out = self._tensor(tuple(shape), self.t.scale, self.t.zero_point)
        return self._op("reshape", [self.cur], out)

    def flatten(self):
        return self.reshape((int(np.prod(self.t.shape)),))

    def add(self, other, activation="none"):
        """self.cur + other (a tensor name of the same shape), a new output quantization."""
        s = max(float(self.t.scale), float(self.tensors[other].scale))
        out = self._tensor(self.t.shape, np.float32(s * log_uniform(self.rng, 0.5, 4)), zero_point(self.rng))
        return self._op("add", [self.cur, other], out, {"activation": activation})

    def softmax(self, beta=1.0):
        return self._op("softmax", [self.cur], self._tensor(self.t.shape, 1 / 256, -128), {"beta": beta})

    def logistic(self):
        return self._op("logistic", [self.cur], self._tensor(self.t.shape, 1 / 256, -128))

    def tanh(self):
        return self._op("tanh", [self.cur], self._tensor(self.t.shape, 1 / 128, 0))

    def relu(self, scale=None, zp=None):
        scale = np.float32(self.t.scale * log_uniform(self.rng, 0.3, 3)) if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("relu", [self.cur], self._tensor(self.t.shape, scale, zp))

    def relu6(self):
        return self._op("relu6", [self.cur], self._tensor(self.t.shape, self.t.scale, self.t.zero_point))

    def model(self):
        return QModel(self.name, self.tensors, self.ops, self.inputs, [self.cur])


# ---------------------------------------------------------------------------------------
# One-op models (what the per-kind tests build)
# ---------------------------------------------------------------------------------------
def single_op_model(seed, kind, in_shape, **cfg):
    b = Builder(seed, in_shape, kind)
    if kind == "fully_connected":
        b.dense(**cfg)
    elif kind == "conv_2d":
        b.conv(**cfg)
    elif kind == "depthwise_conv_2d":
        b.depthwise(**cfg)
    elif kind in ("max_pool_2d", "average_pool_2d"):
        b.pool(kind, **cfg)
    elif kind == "add":
        b.add(b.input("x2", in_shape), **cfg)
    else:
        getattr(b, kind)(**cfg)
    return b.model()


def elementwise_model(kind, s_in, z_in, s_out=None, z_out=None, shape=(256,)):
    """logistic / tanh / relu / relu6 over one tensor; the output quantization is TFLM's
    fixed one for logistic and tanh, the input's for relu6."""
    b = Builder(0, shape, kind, s_in, z_in)
    if kind == "relu":
        b.relu(np.float32(s_out), z_out)
    else:
        getattr(b, kind)()
    return b.model()


# ---------------------------------------------------------------------------------------
# Hypothesis strategies: configurations (plain values) for each kind
# ---------------------------------------------------------------------------------------
ACTIVATIONS = ["none", "relu", "relu6"]
activations = st.sampled_from(ACTIVATIONS)
seeds = st.integers(0, 2 ** 32 - 1)


def config(kind, integers, choice):
    """(in_shape, cfg) for single_op_model(seed, kind, in_shape, **cfg), drawn with
    integers(lo, hi) (inclusive) and choice(options): hypothesis or a NumPy generator."""
    def windowed(max_hw=9, max_k=4):
        padding = choice(["same", "valid"])
        h, w = integers(1, max_hw), integers(1, max_hw)
        kh = integers(1, max_k if padding == "same" else min(max_k, h))   # non-empty output
        kw = integers(1, max_k if padding == "same" else min(max_k, w))
        return (h, w), (kh, kw), (integers(1, 3), integers(1, 3)), padding

    if kind == "fully_connected":
        in_shape = choice([(1,), (7,), (33,), (2, 3), (2, 2, 3)])
        cfg = dict(units=integers(1, 16), activation=choice(ACTIVATIONS),
                   per_channel=choice([False, True]), bias=choice([True, False]))
    elif kind in ("conv_2d", "depthwise_conv_2d"):
        hw, kernel, stride, padding = windowed()
        in_shape = hw + (integers(1, 4),)
        cfg = dict(kernel=kernel, stride=stride, padding=padding, activation=choice(ACTIVATIONS),
                   per_channel=choice([True, False]), bias=choice([True, False]))
        if kind == "conv_2d":
            cfg["out_c"] = integers(1, 5)
        else:
            cfg["depth_multiplier"] = integers(1, 3)
    elif kind in ("max_pool_2d", "average_pool_2d"):
        hw, kernel, stride, padding = windowed()
        in_shape = hw + (integers(1, 4),)
        cfg = dict(pool_size=kernel, stride=stride, padding=padding, activation=choice(ACTIVATIONS))
    elif kind == "mean":
        in_shape = (integers(1, 12), integers(1, 12), integers(1, 4))
        cfg = dict(keep_dims=choice([False, True]), same_quantization=choice([False, True]))
    elif kind == "add":
        in_shape = choice([(1,), (10,), (3, 4, 5)])
        cfg = dict(activation=choice(ACTIVATIONS))
    elif kind == "softmax":
        in_shape = choice([(1,), (2,), (10,), (3, 7), (2, 2, 5), (100,)])
        cfg = dict(beta=choice([1.0, 0.5, 2.0, 0.1, 8.0]))
    elif kind in ("logistic", "tanh", "relu", "relu6"):
        in_shape, cfg = choice([(1,), (10,), (3, 4, 5)]), {}
    elif kind == "reshape":
        in_shape = choice([(2, 3, 4), (24,), (4, 6)])
        cfg = dict(shape=choice([(24,), (6, 4), (2, 12), (1, 1, 24)]))
    else:
        raise ValueError(kind)
    return in_shape, cfg


@st.composite
def op_configs(draw, kind):
    """Hypothesis strategy for (in_shape, cfg) of one op kind."""
    return config(kind, lambda lo, hi: draw(st.integers(lo, hi)), lambda xs: draw(st.sampled_from(xs)))


def random_config(rng, kind):
    """The same configurations from a NumPy generator (for fixed sweeps)."""
    return config(kind, lambda lo, hi: int(rng.integers(lo, hi + 1)), lambda xs: xs[int(rng.integers(len(xs)))])


# ---------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------
def run_reference(qmodel, xs):
    """minitiny's NumPy int8 reference for a model with one or more inputs."""
    if len(qmodel.inputs) == 1:
        return qmodel.predict_int8(xs[0])
    values = dict(zip(qmodel.inputs, xs))
    for op in qmodel.ops:
        args = [values[n] if n in values else qmodel.tensors[n].data for n in op.inputs]
        values[op.outputs[0]] = kernels.run(op, qmodel.tensors, args)
    return values[qmodel.outputs[0]]


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
