"""Post-training quantization: a trained float model -> an int8 `QModel`, TFLite's way.

    qmodel = quantize(model, representative_data=x_train[:500])

Three steps, each in its own file:
  1. lower      (lower.py)     Keras layers -> TFLite-style float ops; BN folded, activations fused
  2. calibrate  (calibrate.py) run the float ops on representative data: a range per tensor
  3. convert    (this file)    ranges and weights -> scales, zero points, int8/int32 constants

The conventions are TFLite's full-integer int8 scheme ("8-bit quantization specification",
tensorflow.org/lite/performance/quantization_spec), so TFLite Micro's kernels run the result:

  activations  asymmetric int8 per tensor:  real = scale * (q - zero_point), q in [-128, 127]
  weights      symmetric int8 per output channel, q in [-127, 127], zero_point 0
  bias         int32, scale = input_scale * weight_scale[c], zero_point 0
  softmax / logistic outputs: scale 1/256, zero_point -128;   tanh: scale 1/128, zero_point 0
  max/avg pool and reshape keep their input's scale and zero point (TFLM requires it)

Scales are stored as float32 (as a .tflite file stores them) and every later computation
uses the float32 value; rounding is half away from zero (std::round), not NumPy's half-even.

`activations="int16"` gives TFLite's 16x8 scheme instead (the converter's
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8), for the ops TFLM runs in it:

  activations  symmetric int16 per tensor: scale = max(|min|, |max|) / 32767, zero_point 0
  weights      int8, as above
  bias         int64, scale = input_scale * weight_scale[c], zero_point 0
  softmax / logistic / tanh outputs: scale 1/32768, zero_point 0
"""
import numpy as np

from . import kernels
from .calibrate import calibrate
from .fixedpoint import INT8_MAX, INT8_MIN, INT32_MAX, round_half_away
from .graph import QModel, QOp, QTensor
from .lower import WEIGHTED, lower

# Output params fixed by TFLM's kernels (softmax.cc, logistic.cc, tanh.cc check them).
FIXED_OUTPUT = {"softmax": (1.0 / 256, -128), "logistic": (1.0 / 256, -128), "tanh": (1.0 / 128, 0)}
FIXED_OUTPUT_INT16 = {kind: (1.0 / 32768, 0) for kind in FIXED_OUTPUT}
ACTIVATION_TYPES = ("int8", "int16")
# Ops whose int8 kernel does not rescale: output params = input params (TFLM checks it).
SAME_AS_INPUT = ("max_pool_2d", "average_pool_2d", "reshape", "relu6")
NO_RANGE_NEEDED = tuple(FIXED_OUTPUT) + SAME_AS_INPUT
# A range narrower than this is a constant tensor (a dead ReLU, an all-zero input): it gets
# the range [min, min + 1] (scale 1/255). Any scale represents its single value 0 exactly;
# a tiny scale would only make the next op's multiplier enormous. (TFLite's MLIR converter
# likewise gives a zero-width range scale 1.0 instead of dividing by zero.)
MIN_RANGE = 1e-6
# 16x8: the int64 accumulator meets TFLM's MultiplyByQuantizedMultiplier(int64_t), which
# takes |acc| < 2^47 (kernels/common.check_accumulator); the bias alone stays within it.
INT16X8_BIAS_MAX = (1 << 47) - 1


class QuantizationError(ValueError):
    """A model that cannot be quantized faithfully: names the op and the value."""


# ---- activations: asymmetric, per tensor -----------------------------------------------------
def activation_params(lo, hi, where="activation"):
    """(min, max) -> (scale float32, zero_point int), TFLite's rule for int8 activations.

    Follows GetAsymmetricQuantizationParams (tensorflow/lite/tools/optimize/
    quantization_utils.cc), in float32 as there:
        min = min(min, 0); max = max(max, 0)               # 0 must be representable
        scale = (max - min) / (127 - (-128))
        zero_point = round(-128 - min / scale), clamped to [-128, 127]   # the "nudge"
    `where` names the tensor in the error for a range float32 cannot hold.
    """
    lo0, hi0 = float(lo), float(hi)
    with np.errstate(over="ignore"):                 # an overflow is refused just below
        lo, hi = np.float32(min(lo0, 0.0)), np.float32(max(hi0, 0.0))
        width = hi - lo
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(width)):
        raise QuantizationError(f"{where}: the range [{lo0:.3g}, {hi0:.3g}] is not finite in "
                                f"float32 (TFLite holds scales as float32): scale the data or "
                                f"the weights down")
    if width < MIN_RANGE:
        hi = np.float32(lo + np.float32(1.0))
    scale = np.float32((hi - lo) / np.float32(255.0))
    zero_point_from_min = np.float32(-128.0) - lo / scale
    zero_point = int(np.clip(round_half_away(zero_point_from_min), INT8_MIN, INT8_MAX))
    return scale, zero_point


def symmetric_activation_params(lo, hi, where="activation"):
    """(min, max) -> (scale float32, 0): the 16x8 scheme's int16 activations, as TFLite's
    GetSymmetricQuantizationParams (quantization_utils.cc) with a half range of 32767:
        scale = max(|min|, |max|) / 32767
    A range narrower than MIN_RANGE gets [-1, 1] (any scale holds its value 0 exactly)."""
    with np.errstate(over="ignore"):
        bound = np.float32(max(abs(float(lo)), abs(float(hi))))
    if not np.isfinite(bound):
        raise QuantizationError(f"{where}: the range [{float(lo):.3g}, {float(hi):.3g}] is not "
                                f"finite in float32 (TFLite holds scales as float32): scale the "
                                f"data or the weights down")
    if bound < MIN_RANGE:
        bound = np.float32(1.0)
    return np.float32(bound / np.float32(32767.0)), 0


def quantize_activation(x, scale, zero_point):
    """float -> int8: q = clamp(round(x / scale) + zero_point, -128, 127)."""
    q = round_half_away(np.asarray(x, dtype=np.float64) / np.float64(scale)) + zero_point
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


# ---- weights: symmetric, per channel -------------------------------------------------------
def weight_scales(w, axis=0, per_channel=True):
    """scale_c = max |w_c| / 127 (float32), along `axis`; one scale if not per_channel.

    Symmetric narrow range [-127, 127] with zero_point 0, as TFLite's SymmetricPerChannel
    quantization does (quantization_utils.cc): the int8 product then needs no weight offset.
    A channel of all zeros would get scale 0; it gets the tensor's largest channel scale
    instead (its weights are 0 at any scale, and its bias keeps the same resolution as the
    other channels'); an all-zero tensor gets 1/127.
    """
    w = np.asarray(w, dtype=np.float64)
    if not per_channel:
        m = np.float32(np.abs(w).max() / 127.0)
        return np.asarray(m if m > 0 else np.float32(1 / 127), dtype=np.float32)
    other = tuple(a for a in range(w.ndim) if a != axis)
    s = (np.abs(w).max(axis=other) / 127.0).astype(np.float32)        # (C,)
    fallback = s.max() if s.max() > 0 else np.float32(1 / 127)
    return np.where(s > 0, s, fallback).astype(np.float32)


def _along(scales, axis, ndim):
    """Reshape per-channel scales (C,) to broadcast along `axis` of an ndim-array."""
    if scales.ndim == 0:
        return scales
    shape = [1] * ndim
    shape[axis] = -1
    return scales.reshape(shape)


def quantize_weights(w, scales, axis=0):
    """q = clamp(round(w / scale_c), -127, 127) -> int8."""
    s = _along(np.asarray(scales, dtype=np.float64), axis, np.ndim(w))
    return np.clip(round_half_away(np.asarray(w, dtype=np.float64) / s), -127, 127).astype(np.int8)


def fit_bias(bias, input_scale, scales, fan_in, limit=None):
    """Raise weight scales where int32 could not hold the bias (TFLite's AdjustWeightsForBiasScale).

    The bias is stored as round(b_c / (s_in * s_w[c])) and the kernel adds it to an int32
    accumulator of up to fan_in * 127 * 255 in magnitude. A channel whose bias is huge next
    to its weights would overflow; its weight scale grows until bias and accumulator fit,
    costing that channel weight resolution (its weights are negligible next to its bias).
    """
    if bias is None:
        return scales
    if limit is None:                                                # 16x8 passes its own
        limit = INT32_MAX - fan_in * 127 * 255 - 1                   # - 1: the bias rounds
    need64 = np.abs(bias) / (np.float64(input_scale) * limit)          # smallest s_w that fits
    need = need64.astype(np.float32)
    need = np.where(need < need64, np.nextafter(need, np.float32(np.inf)), need)  # round up
    if scales.ndim == 0:
        return np.maximum(scales, need.max()).astype(np.float32)
    return np.maximum(scales, need).astype(np.float32)


def quantize_bias(bias, input_scale, scales, where, dtype="int32"):
    """q_c = round(b_c / (s_in * s_w[c])) as int32 (int64 in 16x8); raises if it still cannot fit."""
    bias_scale = (np.float64(input_scale) * scales.astype(np.float64))       # () or (C,)
    q = round_half_away(np.asarray(bias, dtype=np.float64) / bias_scale)
    limit = INT32_MAX if dtype == "int32" else INT16X8_BIAS_MAX
    if np.abs(q).max(initial=0) > limit:
        c = int(np.argmax(np.abs(q)))
        raise QuantizationError(f"{where}: bias[{c}] = {bias[c]:g} overflows {dtype} at scale "
                                f"{np.ravel(bias_scale)[min(c, bias_scale.size - 1)]:g}")
    with np.errstate(over="ignore", under="ignore"):      # refused just below
        bias_scale32 = bias_scale.astype(np.float32)
    if not np.all(np.isfinite(bias_scale32) & (bias_scale32 > 0)):
        raise QuantizationError(f"{where}: the bias scale s_in * s_w = {np.ravel(bias_scale)[0]:.3g} "
                                f"does not fit float32: scale the data or the weights")
    return q.astype(dtype), bias_scale32


# ---- the conversion --------------------------------------------------------------------------
def output_params(op, x, ranges, activations="int8"):
    """(scale, zero_point) of op's output: fixed by the kernel, inherited, or from its range."""
    if op.kind in FIXED_OUTPUT:
        return (FIXED_OUTPUT_INT16 if activations == "int16" else FIXED_OUTPUT)[op.kind]
    if op.kind in SAME_AS_INPUT:
        return x.scale, x.zero_point
    if op.name not in ranges:
        raise QuantizationError(f"op {op.name!r} (layer {op.layer_names}) has no calibrated range")
    params = symmetric_activation_params if activations == "int16" else activation_params
    return params(*ranges[op.name], where=f"op {op.name!r} (layer {op.layer_names})")


def weight_tensors(op, x, per_channel_dense, names):
    """The int8 weight and int32 (16x8: int64) bias QTensors of a weighted op whose input is `x`."""
    axis = 3 if op.kind == "depthwise_conv_2d" else 0              # TFLite's quantized_dimension
    per_channel = op.kind != "fully_connected" or per_channel_dense
    fan_in = op.weight.size // op.weight.shape[axis]
    bias_dtype = "int64" if x.dtype == "int16" else "int32"
    limit = INT16X8_BIAS_MAX - fan_in * 127 * 32768 if x.dtype == "int16" else None
    s_w = fit_bias(op.bias, x.scale, weight_scales(op.weight, axis, per_channel), fan_in, limit)
    zeros = np.zeros(s_w.shape, np.int32)
    out = [QTensor(names(f"{op.name}_weight"), op.weight.shape, "int8", s_w, zeros,
                   quantize_weights(op.weight, s_w, axis), axis if per_channel else 0)]
    if op.bias is not None:
        q_b, s_b = quantize_bias(op.bias, x.scale, s_w,
                                 f"op {op.name!r} ({op.kind}, layer {op.layer_names})", bias_dtype)
        out.append(QTensor(names(f"{op.name}_bias"), op.bias.shape, bias_dtype, s_b,
                           np.zeros(s_b.shape, np.int32), q_b, 0))
    return out


def convert(graph, ranges, per_channel_dense=True, activations="int8"):
    """FloatGraph + {tensor: (min, max)} -> QModel (validated and prepared by its constructor).

    Activation tensors keep the float graph's names (the input's and each op's); constants
    are named '<op>_weight' and '<op>_bias'. activations: 'int8', or 'int16' (16x8).
    """
    if activations not in ACTIVATION_TYPES:
        raise QuantizationError(f"activations must be one of {', '.join(ACTIVATION_TYPES)}, "
                                f"got {activations!r}")
    if activations == "int16":
        for op in graph.ops:
            if op.kind not in kernels.INT16_KINDS:
                raise QuantizationError(
                    f"op {op.name!r} ({op.kind}, layer {op.layer_names}) has no 16x8 kernel in "
                    f"TFLite Micro as minitiny runs it; 16x8 runs: {', '.join(kernels.INT16_KINDS)}")
    params = symmetric_activation_params if activations == "int16" else activation_params
    used = {graph.input} | {op.name for op in graph.ops}

    def names(base):                                # a constant name no tensor has yet
        name, i = base, 1
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    tensors = {graph.input: QTensor(graph.input, graph.input_shape, activations,
                                    *params(*ranges[graph.input], where=f"input {graph.input!r}"))}
    qops = []
    for op in graph.ops:
        x = tensors[op.inputs[0]]
        constants = weight_tensors(op, x, per_channel_dense, names) if op.kind in WEIGHTED else []
        tensors.update({t.name: t for t in constants})
        tensors[op.name] = QTensor(op.name, op.shape, activations,
                                   *output_params(op, x, ranges, activations))
        qops.append(QOp(op.kind, op.name, list(op.inputs) + [t.name for t in constants],
                        [op.name], dict(op.options)))
    return QModel(graph.name, tensors, qops, [graph.input], [graph.output])


def quantize(model, representative_data=None, *, observer="minmax", percentile=99.99,
             per_channel_dense=True, batch_size=64, activations="int8"):
    """A trained float model (or a `quantize_aware` model) -> full-integer int8 `QModel`.

    representative_data: a few hundred typical inputs (N, *input_shape), e.g. x_train[:500],
        or a generator function yielding [x] batches (TFLite's representative_dataset).
    observer: 'minmax' (TFLite's default), 'percentile' (clip the `percentile` tails) or
        'moving_average' (EMA of per-batch ranges); or a callable returning an observer.
    per_channel_dense: per-output-channel weight scales for Dense too (conv always is).
    activations: 'int8' (TFLite's full-integer scheme) or 'int16' (its 16x8 scheme: int16
        activations with zero point 0, int8 weights, int64 bias; the usual choice for audio).
    A quantization-aware model uses the activation ranges it learned in training;
    representative_data is then optional (only used for ranges it never saw).
    """
    # A quantization-aware model (qat.py) brings the ranges it learned in training; any
    # other model is lowered to its op graph and calibrated here.
    if hasattr(model, "graph_and_ranges"):
        graph, ranges = model.graph_and_ranges(representative_data, observer, percentile, batch_size)
    else:
        graph = lower(model)
        ranges = calibrate(graph, representative_data, observer, percentile, batch_size)
    return convert(graph, ranges, per_channel_dense, activations)
