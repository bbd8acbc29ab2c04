"""Random int8 models: a small graph builder, configurations for every op kind, and whole
random graphs (chains, residual blocks, diamonds), as hypothesis strategies or from a seed.

    b = Builder(seed, (8, 8, 1), "m")
    b.conv(4, activation="relu").pool().flatten().dense(10).softmax()
    qmodel = b.model()                         # a QModel, ready for predict_int8 / codegen

    @given(qmodels(["conv_2d", "residual", "fully_connected"]))
    def test_mine(qmodel): ...

Scales are drawn log-uniformly over several orders of magnitude, zero points often at the
extremes -128 and 127. The output scale of a weighted layer is set from the spread of its
accumulator, times a random factor in [1/8, 8], so most outputs land inside int8 and some
layers saturate. minitiny's own tests draw their models here too.
"""
import numpy as np
from hypothesis import strategies as st

from minitiny.geometry import out_size
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.kernels import softmax as softmax_kernel


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
def _window_out(n, k, stride, padding, dilation=1):
    return out_size(padding, n, k, stride, dilation)


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
    def dense(self, units, activation="none", per_channel=False, bias=True, keep_num_dims=False):
        """keep_num_dims: Keras' Dense on an (..., C) input, one row per position: (..., units)
        (on a (C,) input the same as without, and written so, as the importer reads it)."""
        if keep_num_dims and len(self.t.shape) > 1:
            return self._weighted("fully_connected", (units, self.t.shape[-1]), 0, units, self.t.shape[-1],
                                  self.t.shape[:-1] + (units,), per_channel, bias,
                                  {"activation": activation, "keep_num_dims": True})
        fan_in = int(np.prod(self.t.shape))
        return self._weighted("fully_connected", (units, fan_in), 0, units, fan_in, (units,),
                              per_channel, bias, {"activation": activation})

    def _window_options(self, kernel, stride, padding, dilation, activation):
        """(out_h, out_w), options of a convolution (dilation only when not 1, as the importer)."""
        h, w = self.t.shape[:2]
        out = (_window_out(h, kernel[0], stride[0], padding, dilation[0]),
               _window_out(w, kernel[1], stride[1], padding, dilation[1]))
        options = {"stride": tuple(stride), "padding": padding, "activation": activation}
        if tuple(dilation) != (1, 1):
            options["dilation"] = tuple(dilation)
        return out, options

    def conv(self, out_c, kernel=(3, 3), stride=(1, 1), padding="same", activation="none",
             per_channel=True, bias=True, dilation=(1, 1)):
        in_c = self.t.shape[2]
        out, options = self._window_options(kernel, stride, padding, dilation, activation)
        return self._weighted("conv_2d", (out_c,) + tuple(kernel) + (in_c,), 0, out_c,
                              kernel[0] * kernel[1] * in_c, out + (out_c,), per_channel, bias, options)

    def depthwise(self, depth_multiplier=1, kernel=(3, 3), stride=(1, 1), padding="same",
                  activation="none", per_channel=True, bias=True, dilation=(1, 1)):
        out_c = self.t.shape[2] * depth_multiplier
        out, options = self._window_options(kernel, stride, padding, dilation, activation)
        return self._weighted("depthwise_conv_2d", (1,) + tuple(kernel) + (out_c,), 3, out_c,
                              kernel[0] * kernel[1], out + (out_c,), per_channel, bias,
                              dict(options, depth_multiplier=depth_multiplier))

    def transpose_conv(self, out_c, kernel=(3, 3), stride=(2, 2), padding="same", activation="none",
                       per_channel=True, bias=True, out_hw=None):
        """Keras' Conv2DTranspose: out = in * stride ('same') or (in - 1) * stride + k ('valid'),
        unless out_hw gives the output's (H, W) (Keras' output_padding)."""
        h, w, in_c = self.t.shape
        if out_hw is None:
            out_hw = tuple(n * s if padding == "same" else (n - 1) * s + k
                           for n, s, k in zip((h, w), stride, kernel))
        fan_in = -(-kernel[0] // stride[0]) * -(-kernel[1] // stride[1]) * in_c
        return self._weighted("transpose_conv", (out_c,) + tuple(kernel) + (in_c,), 0, out_c, fan_in,
                              tuple(out_hw) + (out_c,), per_channel, bias,
                              {"stride": tuple(stride), "padding": padding, "activation": activation})

    def resize(self, kind="resize_nearest_neighbor", size=None, align_corners=False, half_pixel_centers=False):
        """RESIZE_NEAREST_NEIGHBOR or RESIZE_BILINEAR to `size` (H', W'; default twice the input)."""
        h, w, c = self.t.shape
        size = (2 * h, 2 * w) if size is None else tuple(size)
        out = self._tensor(size + (c,), self.t.scale, self.t.zero_point)
        return self._op(kind, [self.cur], out, {"align_corners": bool(align_corners),
                                                "half_pixel_centers": bool(half_pixel_centers)})

    def pool(self, kind="max_pool_2d", pool_size=(2, 2), stride=(2, 2), padding="valid", activation="none"):
        h, w, c = self.t.shape
        out = (_window_out(h, pool_size[0], stride[0], padding), _window_out(w, pool_size[1], stride[1], padding), c)
        name = self._tensor(out, self.t.scale, self.t.zero_point)     # pools keep the quantization
        return self._op(kind, [self.cur], name, {"pool_size": tuple(pool_size), "stride": tuple(stride),
                                                 "padding": padding, "activation": activation})

    def mean(self, keep_dims=False, same_quantization=False, axes=(0, 1)):
        return self.reduce("mean", axes, keep_dims, same_quantization)

    def reduce(self, kind="mean", axes=(0, 1), keep_dims=False, same_quantization=False):
        """MEAN, SUM or REDUCE_MAX over `axes` (of the shape without the batch); a SUM's output
        scale grows with sqrt(count), as a sum of random values does; REDUCE_MAX keeps the input's."""
        shape = self.t.shape
        axes = tuple(sorted({a % len(shape) for a in axes}))
        count = int(np.prod([shape[a] for a in axes]))
        if same_quantization or kind in ("reduce_max", "reduce_min"):
            scale, zp = self.t.scale, self.t.zero_point
        else:
            grow = np.sqrt(count) if kind == "sum" else 1.0
            scale, zp = np.float32(self.t.scale * grow * log_uniform(self.rng, 0.1, 10)), zero_point(self.rng)
        out_shape = tuple(1 if a in axes else d for a, d in enumerate(shape)) if keep_dims else \
            tuple(d for a, d in enumerate(shape) if a not in axes)
        out = self._tensor(out_shape, scale, zp)
        return self._op(kind, [self.cur], out, {"axes": axes, "keep_dims": keep_dims})

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

    def binary(self, kind, other_shape=None, constant=False, constant_first=False, activation="none",
               other=None, swap=False):
        """self.cur <kind> a new operand of `other_shape` (default: the current shape): a model
        input, or a constant (constant_first: as input 1); or `other`, an existing tensor
        (swap: as input 1). The shapes may broadcast; the output quantization is drawn so
        outputs spread over int8 (MAXIMUM and MINIMUM keep the input's, as TFLite's
        converter does)."""
        rng, a = self.rng, self.t
        other_shape = a.shape if other_shape is None else tuple(other_shape)
        if kind in ("maximum", "minimum"):
            s_b, z_b = a.scale, a.zero_point
        else:
            s_b, z_b = np.float32(a.scale * log_uniform(rng, 1 / 30, 30)), zero_point(rng)
        first = constant and constant_first             # the new operand is input 1
        if other is not None:
            constant, first = self.tensors[other].is_constant, swap
        elif constant:
            data = int8_input(rng, other_shape, 1)[0] if other_shape else np.int8(rng.integers(-128, 128))
            other = self._tensor(other_shape, s_b, z_b, np.asarray(data, np.int8), prefix="c")
        else:
            other = self.input(f"x{len(self.inputs) + 1}", other_shape, s_b, z_b)
        b = self.tensors[other]
        shape = np.broadcast_shapes((1,) + a.shape, b.shape if constant else (1,) + b.shape)[1:]
        s_max = max(float(a.scale), float(b.scale))
        spread = log_uniform(rng, 1 / 8, 8)
        if kind in ("maximum", "minimum"):
            scale, zp = a.scale, a.zero_point
        elif kind == "mul":            # a typical |product| of two offset inputs is ~ 73 * 73
            scale, zp = np.float32(float(a.scale) * float(b.scale) * 73 * 73 / 60 * spread), zero_point(rng)
        elif kind == "squared_difference":     # beyond float32 at extreme scales: refused, redrawn
            with np.errstate(over="ignore"):
                scale, zp = np.float32(s_max ** 2 * 100 * 100 / 60 * spread), zero_point(rng)
        else:
            scale, zp = np.float32(s_max * log_uniform(rng, 0.5, 4)), zero_point(rng)
        out = self._tensor(shape, scale, zp)
        ins = [other, self.cur] if first else [self.cur, other]
        return self._op(kind, ins, out, {"activation": activation} if kind in FUSED else {})

    def leaky_relu(self, alpha=0.2, scale=None, zp=None):
        scale = np.float32(self.t.scale * log_uniform(self.rng, 0.3, 3)) if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("leaky_relu", [self.cur], self._tensor(self.t.shape, scale, zp), {"alpha": alpha})

    def prelu(self, alpha_shape=None, scale=None, zp=None):
        """alpha a constant of `alpha_shape` (default: one per channel), drawn in about [-0.5, 1]."""
        rng = self.rng
        alpha_shape = self.t.shape[-1:] if alpha_shape is None else tuple(alpha_shape)
        s_alpha = np.float32(1.5 / 255 * log_uniform(rng, 0.5, 2))
        z_alpha = int(rng.integers(-128, 0))
        data = rng.integers(-128, 128, size=alpha_shape).astype(np.int8)
        alpha = self._tensor(alpha_shape, s_alpha, z_alpha, data, prefix="alpha")
        scale = np.float32(self.t.scale * log_uniform(rng, 0.3, 3)) if scale is None else scale
        zp = zero_point(rng) if zp is None else zp
        return self._op("prelu", [self.cur, alpha], self._tensor(self.t.shape, scale, zp))

    def hard_swish(self, scale=None, zp=None):
        scale = np.float32(self.t.scale * log_uniform(self.rng, 0.3, 3)) if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("hard_swish", [self.cur], self._tensor(self.t.shape, scale, zp))

    def elu(self, scale=None, zp=None):
        scale = np.float32(self.t.scale * log_uniform(self.rng, 0.3, 3)) if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("elu", [self.cur], self._tensor(self.t.shape, scale, zp))

    def abs(self, scale=None, zp=None):
        """|x|: the output scale drawn near the input's (or the same, with no rescale)."""
        scale = np.float32(self.t.scale * log_uniform(self.rng, 0.3, 3)) if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("abs", [self.cur], self._tensor(self.t.shape, scale, zp))

    def float_unary(self, kind="neg", scale=None, zp=None):
        """NEG or SQUARE as TF's converter leaves them (float32 between DEQUANTIZE and QUANTIZE):
        the output scale drawn near the natural one (SQUARE: (128 s)^2 over 128 steps)."""
        if scale is None:
            natural = self.t.scale if kind == "neg" else self.t.scale ** 2 * 128
            scale = np.float32(natural * log_uniform(self.rng, 0.3, 3))
        zp = zero_point(self.rng) if zp is None else zp
        return self._op(kind, [self.cur], self._tensor(self.t.shape, scale, zp))

    def rsqrt(self, scale=None, zp=None):
        """1/sqrt(x) (an input below its zero point is refused at run time, as TFLM does)."""
        scale = np.float32(log_uniform(self.rng, 0.3, 3) / np.sqrt(self.t.scale) / 128) if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("rsqrt", [self.cur], self._tensor(self.t.shape, scale, zp))

    def batch_matmul(self, other, adj_x=False, adj_y=False, scale=None, zp=None):
        """The current tensor (lhs) times the activation `other` (rhs); the output scale sized
        for sums of depth products."""
        lhs, rhs = self.t, self.tensors[other]
        rows, depth = lhs.shape[-2:][::-1] if adj_x else lhs.shape[-2:]
        cols = rhs.shape[-2] if adj_y else rhs.shape[-1]
        batch = np.broadcast_shapes(lhs.shape[:-2], rhs.shape[:-2])
        scale = np.float32(lhs.scale * rhs.scale * 150 * np.sqrt(depth) * log_uniform(self.rng, 0.3, 3)) \
            if scale is None else scale
        zp = zero_point(self.rng) if zp is None else zp
        return self._op("batch_matmul", [self.cur, other], self._tensor(tuple(batch) + (rows, cols), scale, zp),
                        {"adj_x": adj_x, "adj_y": adj_y})

    def mirror_pad(self, paddings, mode="reflect"):
        """tf.pad REFLECT / SYMMETRIC by (before, after) per dimension; the quantization kept."""
        shape = tuple(n + b + a for n, (b, a) in zip(self.t.shape, paddings))
        return self._op("mirror_pad", [self.cur], self._tensor(shape, self.t.scale, self.t.zero_point),
                        {"paddings": tuple(tuple(p) for p in paddings), "mode": mode})

    def l2_normalization(self):
        """Each row of the last axis over its L2 norm; TFLite's output scale 1/128, zero point 0."""
        return self._op("l2_normalization", [self.cur], self._tensor(self.t.shape, 1 / 128, 0))

    def arg(self, kind="arg_max", axis=-1):
        """ARG_MAX / ARG_MIN along `axis` (of the sample): an int32 output of indices."""
        axis = axis % len(self.t.shape)
        shape = self.t.shape[:axis] + self.t.shape[axis + 1:]
        return self._op(kind, [self.cur], self._tensor(shape, 1.0, 0, dtype="int32"), {"axis": axis})

    def depth_to_space(self, block_size=2):
        """(H, W, C) -> (H b, W b, C / b^2); the quantization kept."""
        h, w, c = self.t.shape
        b = block_size
        return self._op("depth_to_space", [self.cur], self._tensor((h * b, w * b, c // (b * b)), self.t.scale,
                                                                 self.t.zero_point), {"block_size": b})

    def space_to_depth(self, block_size=2):
        """(H, W, C) -> (H / b, W / b, C b^2); the quantization kept."""
        h, w, c = self.t.shape
        b = block_size
        return self._op("space_to_depth", [self.cur], self._tensor((h // b, w // b, c * b * b), self.t.scale,
                                                                 self.t.zero_point), {"block_size": b})

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

    def model(self, outputs=None):
        """The QModel; its outputs `outputs` (tensor names, in order), by default the last."""
        return QModel(self.name, self.tensors, self.ops, self.inputs, outputs or [self.cur])


# ---------------------------------------------------------------------------------------
# One-op models
# ---------------------------------------------------------------------------------------
def lstm_model(seed, steps, features, units, s_x=0.02, s_w=0.01, s_h=1 / 128, cell_log2=-11,
               int16=False, cell_clip=0.0, bias_spread=1.0, name="lstm"):
    """One UNIDIRECTIONAL_SEQUENCE_LSTM, x (steps, features) -> y (steps, units), as TFLite's
    converter writes Keras' LSTM: per-tensor int8 weights around s_w, bias scale s_x * s_w
    (a real bias of about +-bias_spread), hidden state and output in s_h, the int16 cell
    state in 2^cell_log2 (a float: any scale), int16 activations and int64 bias if int16."""
    rng = np.random.default_rng(seed)
    act = "int16" if int16 else "int8"
    z_x = 0 if int16 else int(rng.integers(-20, 21))
    z_h = 0 if int16 else int(rng.integers(-20, 21))
    t = {"x": QTensor("x", (steps, features), act, s_x, z_x),
         "h": QTensor("h", (units,), act, s_h, z_h, variable=True),
         "c": QTensor("c", (units,), "int16", 2.0 ** cell_log2 if isinstance(cell_log2, int)
                      else cell_log2, 0, variable=True),
         "y": QTensor("y", (steps, units), act, s_h, z_h)}
    names = ["x"]
    for src, fan_in in (("in", features), ("rec", units)):
        for gate in "ifco":
            scale = s_w * float(rng.uniform(0.5, 2.0))
            t[f"w_{src}_{gate}"] = QTensor(f"w_{src}_{gate}", (units, fan_in), "int8", scale, 0,
                                           rng.integers(-127, 128, (units, fan_in)))
            names.append(f"w_{src}_{gate}")
    for gate in "ifco":
        s_b = np.float32(s_x) * np.float32(t[f"w_in_{gate}"].scale)
        # a real bias of about +-bias_spread, in the bias' integers (bounded as int32 and so
        # the accumulator check holds)
        limit = min(float(bias_spread) / float(s_b), 2.0 ** 30 if not int16 else 2.0 ** 40)
        data = np.round(rng.uniform(-limit, limit, units)).astype(np.int64)
        t[f"b_{gate}"] = QTensor(f"b_{gate}", (units,), "int64" if int16 else "int32", s_b, 0,
                                 data if int16 else np.clip(data, -2 ** 30, 2 ** 30))
        names.append(f"b_{gate}")
    names += ["h", "c"]
    options = {"cell_clip": float(cell_clip)} if cell_clip else {}
    op = QOp("unidirectional_sequence_lstm", "lstm", names, ["y"], options)
    return QModel(name, t, [op], ["x"], ["y"])


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
    elif kind == "add" and not {"other_shape", "constant"} & set(cfg):
        b.add(b.input("x2", in_shape), **cfg)
    elif kind in BINARY:
        b.binary(kind, **cfg)
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
# Configurations (plain values) for each kind
# ---------------------------------------------------------------------------------------
ACTIVATIONS = ["none", "relu", "relu6"]
BINARY = ("add", "sub", "mul", "maximum", "minimum", "squared_difference")
FUSED = ("add", "sub", "mul")                 # the binary kinds with a fused activation
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
        if choice([False, False, True]):          # a dilated window, as large as the input allows
            cfg["dilation"] = tuple(integers(1, 3 if padding == "same" or k == 1 else max(1, min(3, (n - 1) // (k - 1))))
                                    for n, k in zip(hw, kernel))
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
    elif kind == "add":                   # two activations of one shape (what the C runs)
        in_shape = choice([(1,), (10,), (3, 4, 5)])
        cfg = dict(activation=choice(ACTIVATIONS))
    elif kind in BINARY:                  # sub, mul, ...: broadcasting, constant operands
        in_shape, cfg = broadcast_config(integers, choice, fused=kind in FUSED)
    elif kind == "softmax":
        in_shape = choice([(1,), (2,), (10,), (3, 7), (2, 2, 5), (100,)])
        cfg = dict(beta=choice([1.0, 0.5, 2.0, 0.1, 8.0]))
    elif kind in ("logistic", "tanh", "relu", "relu6"):
        in_shape, cfg = choice([(1,), (10,), (3, 4, 5)]), {}
    elif kind == "reshape":
        in_shape = choice([(2, 3, 4), (24,), (4, 6)])
        cfg = dict(shape=choice([(24,), (6, 4), (2, 12), (1, 1, 24)]))
    else:
        raise ValueError(f"config: unknown op kind {kind!r}")
    return in_shape, cfg


def broadcast_config(integers, choice, fused=True):
    """(in_shape, cfg) of a binary op whose operands broadcast either way: dimensions of the
    output drawn, each operand keeping some as 1 (the other operand only trailing ones, as
    TFLite aligns shapes from the right), the other operand an input or a constant (before
    or after, of rank up to the output's with its batch dimension)."""
    rank = integers(1, 3)
    dims = [integers(1, 5) for _ in range(rank)]
    in_shape = tuple(d if integers(0, 3) else 1 for d in dims)
    k = integers(0, rank)
    other = tuple(d if integers(0, 2) else 1 for d in dims[rank - k:])
    constant = bool(integers(0, 1))
    if constant and k == rank and integers(0, 1):
        other = (1,) + other                              # a constant with the batch dimension
    if not constant and not other:
        other = (1,)
    cfg = dict(other_shape=other, constant=constant, constant_first=constant and bool(integers(0, 1)))
    return in_shape, dict(cfg, activation=choice(ACTIVATIONS)) if fused else cfg


@st.composite
def op_configs(draw, kind):
    """Hypothesis strategy for (in_shape, cfg) of one op kind."""
    return config(kind, lambda lo, hi: draw(st.integers(lo, hi)), lambda xs: draw(st.sampled_from(xs)))


def random_config(rng, kind):
    """The same configurations from a NumPy generator (for fixed sweeps)."""
    return config(kind, lambda lo, hi: int(rng.integers(lo, hi + 1)), lambda xs: xs[int(rng.integers(len(xs)))])


# ---------------------------------------------------------------------------------------
# Whole graphs: chains of any kind, residual blocks, diamonds
# ---------------------------------------------------------------------------------------
SPATIAL = ("conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d", "mean", "transpose_conv",
           "resize_nearest_neighbor", "resize_bilinear")
ANYWHERE = ("fully_connected", "add", "reshape", "softmax", "logistic", "tanh", "relu", "relu6",
            "sub", "mul", "maximum", "minimum", "squared_difference", "leaky_relu", "prelu", "hard_swish",
            "elu", "sum", "reduce_max")
# blocks: a skip connection, two branches joined by ADD, Keras' Rescaling (MUL and ADD by
# constants that broadcast), a squeeze-and-excitation gate (the feature map times its mean)
BLOCKS = ("residual", "diamond", "rescaling", "squeeze_excite")
STEPS = SPATIAL + ANYWHERE + BLOCKS
BRANCH_KINDS = ("conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d",
                "fully_connected", "relu", "relu6", "logistic", "tanh", "mul", "prelu", "hard_swish")


def _choice(rng, options):
    return options[int(rng.integers(len(options)))]


def _window(rng, shape, stride_one=False):
    """A random window, stride and padding that give a non-empty output on `shape`."""
    h, w = shape[0], shape[1]
    padding = "same" if stride_one else _choice(rng, ("same", "valid"))
    kmax_h, kmax_w = (4, 4) if padding == "same" else (min(4, h), min(4, w))
    k = (int(rng.integers(1, kmax_h + 1)), int(rng.integers(1, kmax_w + 1)))
    stride = (1, 1) if stride_one else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    return k, stride, padding


def _dilation(rng, shape, k, padding):
    """A dilation for window k on `shape`: mostly 1, else up to 3 where the dilated window fits."""
    if rng.random() < 0.75:
        return (1, 1)
    top = [3 if padding == "same" or kk == 1 else max(1, min(3, (n - 1) // (kk - 1))) for n, kk in zip(shape, k)]
    return tuple(int(rng.integers(1, t + 1)) for t in top)


def _axes(rng, shape, most):
    """1..most distinct axes of `shape`, sorted."""
    n = int(rng.integers(1, min(len(shape), most) + 1))
    return tuple(sorted(int(a) for a in rng.choice(len(shape), n, replace=False)))


def layer(b, kind, keep_shape=False):
    """Append one `kind` layer to Builder `b`, configured from b.rng.

    keep_shape: the output must have the input's shape (a branch of a residual block).
    Returns False when the kind does not fit the current tensor (spatial kinds need H, W, C).
    """
    rng, shape = b.rng, b.t.shape
    act = _choice(rng, ACTIVATIONS)
    spatial = len(shape) == 3
    if kind in SPATIAL and not spatial:
        return False
    if kind == "fully_connected":
        if keep_shape and len(shape) != 1:
            return False
        units = shape[0] if keep_shape else int(rng.integers(1, 17))
        b.dense(units, act, per_channel=bool(rng.random() < 0.5), bias=bool(rng.random() < 0.8))
    elif kind in ("conv_2d", "depthwise_conv_2d"):
        k, stride, padding = _window(rng, shape, keep_shape)
        cfg = dict(kernel=k, stride=stride, padding=padding, activation=act,
                   per_channel=bool(rng.random() < 0.7), bias=bool(rng.random() < 0.8),
                   dilation=_dilation(rng, shape, k, padding))
        if kind == "conv_2d":
            b.conv(shape[2] if keep_shape else int(rng.integers(1, 7)), **cfg)
        else:
            b.depthwise(1 if keep_shape else int(rng.integers(1, 4)), **cfg)
    elif kind in ("max_pool_2d", "average_pool_2d"):
        k, stride, padding = _window(rng, shape, keep_shape)
        b.pool(kind, pool_size=k, stride=stride, padding=padding, activation=act)
    elif kind == "transpose_conv":
        if keep_shape:
            return False
        k, stride, padding = _window(rng, (8, 8), False)
        b.transpose_conv(int(rng.integers(1, 5)), kernel=k, stride=tuple(min(st, 2) for st in stride),
                         padding=padding, activation=act, per_channel=bool(rng.random() < 0.7),
                         bias=bool(rng.random() < 0.8))
    elif kind in ("resize_nearest_neighbor", "resize_bilinear"):
        if keep_shape:
            return False
        align = bool(rng.random() < 0.3)
        half = bool(rng.random() < 0.5) and not (align and kind == "resize_bilinear")
        b.resize(kind, (int(rng.integers(1, 2 * shape[0] + 1)), int(rng.integers(1, 2 * shape[1] + 1))),
                 align, half)
    elif kind == "mean":
        if keep_shape:
            return False
        axes = (0, 1) if rng.random() < 0.6 else _axes(rng, shape, 2)   # global pooling, or any
        b.mean(keep_dims=bool(rng.random() < 0.5) or len(axes) == len(shape),
               same_quantization=bool(rng.random() < 0.3), axes=axes)
    elif kind in ("sum", "reduce_max"):
        if keep_shape:
            return False
        axes = _axes(rng, shape, 2 if kind == "sum" else len(shape))
        b.reduce(kind, axes, keep_dims=bool(rng.random() < 0.5) or len(axes) == len(shape))
    elif kind == "add":
        # join with an earlier activation of the same shape (a skip), or with itself
        earlier = [n for n, t in b.tensors.items()
                   if not t.is_constant and t.shape == shape and n != b.cur]
        other = _choice(rng, earlier) if earlier and rng.random() < 0.8 else b.cur
        b.add(other, activation=act)
    elif kind == "reshape":
        if keep_shape:
            return False
        if spatial:
            b.flatten() if rng.random() < 0.7 else b.reshape((shape[1], shape[0], shape[2]))
        else:
            b.reshape((1, 1, shape[0]) if rng.random() < 0.5 else (shape[0], 1, 1))
    elif kind == "softmax":
        if shape[-1] > softmax_kernel.MAX_DEPTH or (shape[-1] == 1 and rng.random() < 0.9):
            return False                       # softmax over one value is always 1.0
        b.softmax(beta=float(_choice(rng, (1.0, 0.5, 2.0, 0.1, 8.0))))
    elif kind in ("logistic", "tanh", "relu", "relu6", "hard_swish", "elu"):
        getattr(b, kind)()
    elif kind in BINARY:
        binary_step(b, kind, act)
    elif kind == "leaky_relu":
        b.leaky_relu(alpha=float(_choice(rng, (0.01, 0.1, 0.2, 0.3, 1.0, 2.5))))
    elif kind == "prelu":
        b.prelu(alpha_shape=broadcast_shape(rng, shape))
    else:
        raise ValueError(f"layer: unknown op kind {kind!r}; known: {', '.join(SPATIAL + ANYWHERE)}")
    return True


def broadcast_shape(rng, shape):
    """A shape that broadcasts over `shape` (TFLite's batch dimension included): its trailing
    dimensions, each kept or 1, sometimes with the batch dimension 1 in front."""
    k = int(rng.integers(0, len(shape) + 1))
    other = tuple(d if rng.random() < 0.6 else 1 for d in shape[len(shape) - k:])
    return (1,) + other if k == len(shape) and rng.random() < 0.3 else other


def binary_step(b, kind, act="none"):
    """b.cur <kind> a second operand, the output keeping b.cur's shape: a constant that
    broadcasts (before or after), an earlier activation that broadcasts over b.cur (one of
    the same shape, or a mean over H and W), or b.cur itself. MAXIMUM and MINIMUM need
    inputs of one quantization: their activation operand is b.cur itself."""
    rng, shape = b.rng, b.t.shape
    fused = {"activation": act} if kind in FUSED else {}
    r = rng.random()
    if r < 0.5:
        return b.binary(kind, broadcast_shape(rng, shape), constant=True,
                        constant_first=bool(rng.random() < 0.5), **fused)
    earlier = [n for n, t in b.tensors.items() if not t.is_constant and n != b.cur and len(t.shape) == len(shape)
               and all(d in (1, e) for d, e in zip(t.shape, shape))]
    if kind in ("maximum", "minimum") or not earlier or r < 0.6:
        return b.binary(kind, other=b.cur, **fused)
    return b.binary(kind, other=_choice(rng, earlier), swap=bool(rng.random() < 0.5), **fused)


def rescaling(b):
    """Keras' Rescaling(scale, offset) as TFLite's converter writes it: MUL by a constant, then
    ADD a constant, each a scalar or one value per channel."""
    rng, shape = b.rng, b.t.shape
    for kind in ("mul", "add"):
        other = () if rng.random() < 0.5 else shape[-1:]
        b.binary(kind, other, constant=True)


def squeeze_excite(b):
    """MobileNetV3's gate, shortened: the mean over H and W (1, 1, C), a fused-ReLU ADD of a
    per-channel constant, then the feature map times it (MUL broadcast over H and W)."""
    if len(b.t.shape) != 3:
        return False
    saved = b.cur
    b.mean(keep_dims=True)
    b.binary("add", b.t.shape[-1:], constant=True, activation="relu")
    gate, b.cur = b.cur, saved
    b.binary("mul", other=gate, swap=bool(b.rng.random() < 0.5))


def branch(b, n):
    """n shape-keeping layers from b.cur (kinds that do not fit are redrawn)."""
    done = 0
    while done < n:
        done += layer(b, _choice(b.rng, BRANCH_KINDS), keep_shape=True)


def _varies(b, x):
    """Does the current tensor still take more than one value over the sample batch x?"""
    values = b.model().predict_int8(x, return_all=True)
    return len(np.unique(values[b.cur])) > 1


def _append(b, x, add, tries=4):
    """Run add(b) (it appends one layer or a block), preferring configurations that keep
    the output varying: a zero point or scale that clamps every value to one constant ends
    what the rest of the model can show, and drawn independently per tensor, extremes would
    do so in most deep models. So a collapsed draw is redrawn up to `tries` times (and kept
    outright one time in thirty): collapses and saturation stay in the sample, but rarer.
    A draw that Prepare refuses (e.g. a scale TFLM cannot handle, or at extreme scales a
    product of scales beyond float32) is redrawn too, and the step is skipped if every draw
    is refused."""
    for attempt in range(tries):
        state = dict(b.tensors), list(b.ops), b.cur
        try:
            if add(b) is False:
                return
            varies = _varies(b, x)
        except GraphError:            # a tensor or a layer's Prepare refused the draw
            b.tensors, b.ops, b.cur = state
            continue
        if attempt == tries - 1 or b.rng.random() < 1 / 30 or varies:
            return
        b.tensors, b.ops, b.cur = state


def random_qmodel(seed, steps, spatial=True, input_shape=None, tries=4, name="random", scales=None):
    """A QModel running `steps` (op kinds, 'residual': a skip connection around one or two
    layers, 'diamond': two branches from one tensor joined by ADD) in order; kinds that do
    not fit the current shape are skipped. A model whose output is one constant over its
    sample inputs is drawn again (up to `tries` times; one in ten is kept).
    scales: (lo, hi) of the input and weight scales (default: inputs 1e-6 .. 1e3)."""
    for attempt in range(tries):
        model = _build(seed + attempt * 1_000_003, steps, spatial, input_shape, name, scales)
        x = int8_input(np.random.default_rng(seed), model.input.shape, 16)
        if attempt == tries - 1 or seed % 10 == 0 or len(np.unique(model.predict_int8(x))) > 1:
            return model


def _build(seed, steps, spatial, input_shape, name, scales=None):
    rng = np.random.default_rng(seed)
    if input_shape is None:
        input_shape = ((int(rng.integers(1, 11)), int(rng.integers(1, 11)), int(rng.integers(1, 5)))
                       if spatial else (int(rng.integers(1, 41)),))
    b = Builder(seed, tuple(input_shape), name, in_scale=log_uniform(rng, *(scales or (1e-6, 1e3))),
                **({"weight_scales": scales} if scales else {}))
    x = int8_input(np.random.default_rng(seed), input_shape, 16)

    def residual(b):
        saved = b.cur
        branch(b, int(b.rng.integers(1, 3)))
        b.add(saved, activation=_choice(b.rng, ACTIVATIONS))

    def diamond(b):
        saved = b.cur
        branch(b, 1)
        left, b.cur = b.cur, saved
        branch(b, 1)
        b.add(left, activation=_choice(b.rng, ACTIVATIONS))

    for step in steps:
        blocks = {"residual": residual, "diamond": diamond, "rescaling": rescaling,
                  "squeeze_excite": squeeze_excite}
        _append(b, x, blocks.get(step, lambda b: layer(b, step)))
    if not b.ops:
        b.relu()
    return b.model()


def multi_io_model(seed, n_inputs=2, n_outputs=2, in_shape=(6, 6, 2), name="multi_io"):
    """A graph with several inputs and outputs, as two-headed models have them: the inputs
    (each of `in_shape`, own scales) added in turn, a conv trunk, then heads reading it in
    an order drawn from `seed`: a dense classifier (softmax), a global mean, the trunk itself
    (an output that later ops still read), then small dense heads. The model's outputs list
    the heads in a drawn order, so the first output is not always the last op's."""
    b = Builder(seed, tuple(in_shape), name)
    for i in range(1, n_inputs):
        b.add(b.input(f"x{i + 1}", tuple(in_shape)), activation=ACTIVATIONS[i % 3])
    trunk = b.conv(3, activation="relu").cur
    heads = [trunk]
    for k in range(n_outputs - 1):
        b.cur = trunk
        if k == 0:
            b.flatten().dense(4).softmax()
        elif k == 1:
            b.mean()
        else:
            b.flatten().dense(k + 1, activation="relu")
        heads.append(b.cur)
    order = b.rng.permutation(len(heads))
    return b.model([heads[i] for i in order])


@st.composite
def qmodels(draw, steps=STEPS, min_layers=1, max_layers=8, spatial=None, input_shape=None):
    """Hypothesis strategy: random int8 QModels of the given layer kinds and sizes.

    steps:   the kinds (and 'residual', 'diamond' blocks) to draw from
    spatial: an (H, W, C) input (True), a vector (False), or either (None)
    input_shape: a fixed input shape instead of a drawn one
    """
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"qmodels: unknown steps {sorted(unknown)}; known: {', '.join(STEPS)}")
    seed = draw(seeds, label="seed")
    if spatial is None:
        spatial = draw(st.booleans(), label="spatial input")
    chosen = draw(st.lists(st.sampled_from(list(steps)), min_size=min_layers, max_size=max_layers),
                  label="steps")
    return random_qmodel(seed, chosen, spatial, input_shape)
