"""What every int8 kernel shares: the tensor checks of Prepare and the epilogue of Eval.

Prepare side (TFLM kernel_util.cc and each kernel's *Prepare): an activation is int8 with
one scale and a zero point in [-128, 127]; weights are symmetric int8, bias int32 with
scale s_in * s_w; the int32 accumulator and the multiplier must stay in range. In TFLite's
16x8 scheme an activation is int16 with zero point 0 (symmetric), the bias int64, and the
weighted sums accumulate in int64 (`LIMITS`, `BIAS_DTYPE`).
Eval side: the requantization epilogue of every weighted sum, and the window helpers of
the convolutions and pools (padding, taps, batching).
"""
import numpy as np

from minitiny import geometry

from .. import fixedpoint as fp
from ..errors import GraphError

INT8_MIN, INT8_MAX = fp.INT8_MIN, fp.INT8_MAX
# activation dtype -> its integer range, and the bias dtype of a weighted op reading it
LIMITS = {"int8": (INT8_MIN, INT8_MAX), "int16": (fp.INT16_MIN, fp.INT16_MAX)}
BIAS_DTYPE = {"int8": "int32", "int16": "int64"}


# ---------------------------------------------------------------------------------------
# Prepare: checks and parameters
# ---------------------------------------------------------------------------------------
def fail(op, msg):
    raise GraphError(f"op {op.name!r} ({op.kind}): {msg}")


def check_scales(op, t, role):
    scale = np.asarray(t.scale, dtype=np.float64)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        fail(op, f"{role} {t.name!r}: scales must be finite and > 0, got {scale.ravel()[:4]}")


def activation_tensor(op, tensors, name, role):
    """The tensor `name`, checked to be an int8 activation with one scale and zero point,
    or an int16 one with zero point 0 (TFLite's 16x8 scheme is symmetric)."""
    t = tensors[name]
    check_scales(op, t, role)
    if t.is_constant:
        fail(op, f"{role} {name!r} must be an activation, not a constant")
    if t.dtype not in LIMITS:
        fail(op, f"{role} {name!r} must be int8 (or int16 in the 16x8 scheme), got {t.dtype}")
    if t.per_channel:
        fail(op, f"{role} {name!r} must have one scale per tensor, got {t.scale.shape[0]}")
    check_zero_point(op, t, role)
    if any(d <= 0 for d in t.shape):
        fail(op, f"{role} {name!r}: zero-size shape {t.shape}")
    return t


def check_zero_point(op, t, role):
    """int8: a zero point in [-128, 127]; int16: zero point 0 (the 16x8 scheme's rule)."""
    if t.dtype == "int16" and int(t.zero_point) != 0:
        fail(op, f"{role} {t.name!r}: an int16 tensor must have zero point 0 (TFLite's 16x8 "
                 f"scheme is symmetric), got {int(t.zero_point)}")
    if not INT8_MIN <= int(t.zero_point) <= INT8_MAX:
        fail(op, f"{role} {t.name!r}: zero point {int(t.zero_point)} outside [-128, 127]")


def input_and_output(op, tensors, same_shape=False):
    """The (input, output) activations of a one-input op; same_shape for elementwise ops."""
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    if same_shape and x.shape != out.shape:
        fail(op, f"input shape {x.shape} != output shape {out.shape}")
    return x, out


def scale(t):
    """The per-tensor scale as TFLM holds it: a float32."""
    return np.float32(t.scale)


def size(t):
    """The number of values of tensor t."""
    return int(np.prod(t.shape))


class ActivationRangeError(ValueError):
    """A fused activation's bound does not fit int32 at this output scale (prepare names the op)."""


def activation_range(activation, scale, zero_point, dtype="int8"):
    """CalculateActivationRangeQuantized (TFLM kernel_util.cc): fold a fused ReLU/ReLU6
    into the int8 (or int16) clamp. quantize(x) = z + (int) roundf(x / scale), in float32; TFLM's
    Quantize refuses a rounded x / scale outside [float(INT32_MIN), float(INT32_MAX)] (ReLU6's
    6.0 over a scale below about 3e-9), so the model is refused here too (and 2^31 itself,
    which TFLM accepts and then casts to int32: undefined behaviour)."""
    def quantize(x):
        with np.errstate(over="ignore"):
            r = float(np.float32(x) / np.float32(scale))     # inf below a scale of 6 / FLT_MAX
        q = np.float32(fp.tflite_round(r)) if np.isfinite(r) else r
        if not fp.INT32_MIN <= float(q) <= fp.INT32_MAX:    # (TFLM casts 2^31 to int32: UB)
            raise ActivationRangeError(
                f"{activation}: {x} / output scale {float(scale):.9g} = {float(q):.9g} does not "
                f"fit int32; TFLM refuses such a range (kernel_util.cc Quantize), or for a RELU6 "
                f"op casts it to int32 (undefined behaviour)")
        return int(zero_point) + int(q)
    lo, hi = LIMITS[dtype]
    if activation == "relu":
        return max(lo, quantize(0.0)), hi
    if activation == "relu6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    return lo, hi


def check_multiplier(op, real, formula):
    """The real multiplier must be finite, > 0 and < 2^31 (a larger one would shift the
    int32 accumulator left by 32 or more bits)."""
    real = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real <= 0) or np.any(real >= 2.0 ** 31):
        fail(op, f"the multiplier {formula} = {real.ravel()[:4]} is out of range (0, 2^31): "
                 f"check the scales")


def same_quantization(op, a, b):
    if float(a.scale) != float(b.scale) or int(a.zero_point) != int(b.zero_point):
        fail(op, f"TFLM's kernel does not requantize: {a.name!r} (scale {float(a.scale)}, zero point "
                 f"{int(a.zero_point)}) and {b.name!r} (scale {float(b.scale)}, zero point "
                 f"{int(b.zero_point)}) must share scale and zero point")


def check_output_quantization(op, out, scale, zero_point):
    if abs(float(out.scale) - scale) > 1e-3 * scale or int(out.zero_point) != zero_point:
        fail(op, f"output {out.name!r} must have scale {scale} and zero point {zero_point} "
                 f"(TFLM's int8 kernel fixes them), got {float(out.scale)}, {int(out.zero_point)}")


# -- the weighted ops (fully_connected, conv_2d, depthwise_conv_2d) ------------------------
def weights_and_bias(op, tensors, n_out, channel_axis):
    """Check weight (int8, symmetric) and bias (int32; int64 after an int16 input) tensors;
    return (w, w_scales, b)."""
    w = tensors[op.inputs[1]]
    check_scales(op, w, "weight")
    if not w.is_constant or w.dtype != "int8":
        fail(op, f"weight {w.name!r} must be a constant int8 tensor")
    if np.any(w.zero_point != 0):
        fail(op, f"weight {w.name!r}: zero points must be 0 (symmetric), got {w.zero_point}")
    if w.per_channel:
        if w.quantized_dimension != channel_axis or w.scale.shape[0] != n_out:
            fail(op, f"weight {w.name!r}: per-channel scales must run along axis {channel_axis} "
                     f"with {n_out} entries, got {w.scale.shape[0]} along axis {w.quantized_dimension}")
        w_scales = w.scale.astype(np.float32)
    else:
        w_scales = np.full(n_out, w.scale, dtype=np.float32)
    bias = None
    if len(op.inputs) > 2:
        b = tensors[op.inputs[2]]
        want = BIAS_DTYPE.get(tensors[op.inputs[0]].dtype, "int32")
        if not b.is_constant or b.dtype != want or b.shape != (n_out,):
            fail(op, f"bias {b.name!r} must be a constant {want} tensor of shape ({n_out},), "
                     f"got {b.dtype} {b.shape}")
        if np.any(b.zero_point != 0):
            fail(op, f"bias {b.name!r}: zero points must be 0")
        bias = b
    return w, w_scales, bias


def check_bias_scale(op, bias, product_scales):
    """TFLite requires bias scale == s_in * s_w (GetQuantizedConvolutionMultipler, 1e-6 rel.)."""
    if bias is None:
        return
    bs = np.broadcast_to(bias.scale.astype(np.float64), product_scales.shape)
    if np.any(np.abs(bs - product_scales) > 1e-6 * np.minimum(bs, product_scales)):
        fail(op, f"bias {bias.name!r}: scale must equal input scale * weight scale "
                 f"(expected {product_scales[:4]}..., got {bs[:4]}...)")


def check_accumulator(op, w, bias, fan_in, dtype="int8"):
    """The int32 accumulator must not overflow for any input: with |w| <= 127 (128 if the
    weights hold -128) and |x + input_offset| <= 255, |acc| <= fan_in * 127 * 255 + |bias|.
    16x8: the int64 accumulator meets MultiplyByQuantizedMultiplier(int64_t, ...), which
    asserts |acc| < 2^47 (TFLM common.cc); |x| <= 32768."""
    wmax = max(127, int(np.abs(w.data.astype(np.int32)).max(initial=0)))
    bmax = int(np.abs(bias.data.astype(np.int64)).max(initial=0)) if bias is not None else 0
    xmax, limit, what = (32768, (1 << 47) - 1, "2^47 - 1") if dtype == "int16" else \
        (255, fp.INT32_MAX, "2^31 - 1")
    bound = fan_in * wmax * xmax + bmax
    if bound > limit:
        fail(op, f"the {'int64' if dtype == 'int16' else 'int32'} accumulator could overflow: "
                 f"fan-in {fan_in} * {wmax} * {xmax} + max|bias| {bmax} = {bound} > {what}")


def weighted_requantization(op, x, out, w, w_scales, bias, fan_in, single_rounding):
    """What dense, conv and depthwise share: the offsets, s_in * s_w / s_out as multiplier
    and shift (per channel when the weights are), the fused activation's clamp, and the
    checks. TFLM computes the scale in double (fully_connected_common.cc and kernel_util.cc
    PopulateConvolutionQuantizationParams; TFLite's older GetQuantizedConvolutionMultipler
    multiplied the two float32 scales in float32, the TFLM interpreter does not: the test
    test_multiplier_is_computed_in_double pins this)."""
    s_in, s_out = scale(x), scale(out)
    product = np.float64(s_in) * w_scales.astype(np.float64)
    real = product / np.float64(s_out)
    check_multiplier(op, real, "s_in * s_w / s_out")
    with np.errstate(over="ignore", under="ignore"):
        bias_scales = s_in * w_scales.astype(np.float32)      # what a bias tensor's float32 holds
    if not np.all(np.isfinite(bias_scales)) or np.any(bias_scales < np.finfo(np.float32).tiny):
        fail(op, f"the bias scale s_in * s_w = {product.ravel()[:4]} is not a normal float32 "
                 f"(a .tflite file stores it as one, even for a layer without bias): check the scales")
    check_bias_scale(op, bias, product)
    check_accumulator(op, w, bias, fan_in, x.dtype)
    mult, shift = fp.quantize_multiplier_array(real, single_rounding)
    if x.dtype == "int16" and np.any(shift >= 8):
        # MultiplyByQuantizedMultiplier(int64_t, ...) asserts shift < 8 (TFLM common.cc)
        fail(op, f"the multiplier s_in * s_w / s_out = {real.ravel()[:4]} reaches 2^7, where "
                 f"TFLM's 16x8 requantization stops (shift < 8): check the scales")
    act_min, act_max = activation_range(op.options.get("activation", "none"), s_out,
                                        out.zero_point, out.dtype)
    return dict(input_offset=-int(x.zero_point), output_offset=int(out.zero_point),
                output_multiplier=mult, output_shift=shift, per_channel=bool(w.per_channel),
                act_min=act_min, act_max=act_max)


def requantize(acc, p):
    """The epilogue every weighted sum shares: requantize, add the zero point, clamp, cast.
    16x8: the int64 accumulator's own MultiplyByQuantizedMultiplier, and int16 out."""
    if p["dtype"] == "int16":
        acc = fp.multiply_by_quantized_multiplier_int64(acc, p["output_multiplier"], p["output_shift"])
    else:
        acc = fp.multiply_by_quantized_multiplier(acc, p["output_multiplier"], p["output_shift"],
                                                  p["single_rounding"])
    return np.clip(acc + p["output_offset"], p["act_min"], p["act_max"]).astype(p["dtype"])


# -- the windowed ops (conv_2d, depthwise_conv_2d, the pools) ------------------------------
def spatial(op, x, out, k_h, k_w, n_out_c, dilated=False):
    """Output size and padding of a windowed op (minitiny.geometry, TFLM padding.h); checks
    them against the output tensor. `dilated` (the convolutions): the window's taps lie
    `dilation` rows / columns apart, so it spans (k - 1) * dilation + 1 of them."""
    stride = op.options.get("stride", (1, 1))
    if len(stride) != 2 or min(stride) < 1:
        fail(op, f"stride must be two positive integers, got {stride}")
    dilation = op.options.get("dilation", (1, 1)) if dilated else (1, 1)
    if len(dilation) != 2 or min(dilation) < 1:
        fail(op, f"dilation must be two positive integers, got {dilation}")
    padding = op.options.get("padding", "valid")
    h, w = x.shape[0], x.shape[1]
    out_h = geometry.out_size(padding, h, k_h, stride[0], dilation[0])
    out_w = geometry.out_size(padding, w, k_w, stride[1], dilation[1])
    if out_h <= 0 or out_w <= 0:
        fail(op, f"window {k_h}x{k_w} (dilation {dilation[0]}x{dilation[1]}) with '{padding}' "
                 f"padding gives an empty output on a {h}x{w} input")
    if out.shape != (out_h, out_w, n_out_c):
        fail(op, f"output {out.name!r} has shape {out.shape}, expected {(out_h, out_w, n_out_c)}")
    p = dict(in_h=h, in_w=w, out_h=out_h, out_w=out_w, stride_h=int(stride[0]),
             stride_w=int(stride[1]), pad_h=geometry.pad_before(padding, h, k_h, stride[0], dilation[0]),
             pad_w=geometry.pad_before(padding, w, k_w, stride[1], dilation[1]))
    if dilated:
        p.update(dilation_h=int(dilation[0]), dilation_w=int(dilation[1]))
    return p


def padded(x, p, k_h, k_w, value):
    """(N, H, W, C) -> padded with `value` so every window of the output fits: pad_h rows
    before, the rest after, as TF's 'same' rule puts them."""
    need_h = (p["out_h"] - 1) * p["stride_h"] + geometry.effective_kernel(k_h, p.get("dilation_h", 1))
    need_w = (p["out_w"] - 1) * p["stride_w"] + geometry.effective_kernel(k_w, p.get("dilation_w", 1))
    after_h = max(need_h - p["in_h"] - p["pad_h"], 0)
    after_w = max(need_w - p["in_w"] - p["pad_w"], 0)
    return np.pad(x, ((0, 0), (p["pad_h"], after_h), (p["pad_w"], after_w), (0, 0)),
                  constant_values=value)


def taps(xp, p, k_h, k_w):
    """Yield (filter_y, filter_x, (N, out_h, out_w, C) view of the input under that tap):
    tap (fy, fx) reads row y * stride_h + fy * dilation_h of the padded input."""
    sh, sw, oh, ow = p["stride_h"], p["stride_w"], p["out_h"], p["out_w"]
    dh, dw = p.get("dilation_h", 1), p.get("dilation_w", 1)
    for fy in range(k_h):
        for fx in range(k_w):
            y, x = fy * dh, fx * dw
            yield fy, fx, xp[:, y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw, :]


def batched(x, per_sample, fn):
    """fn over slices of the batch of ~2^22 / per_sample samples, so temporaries stay small."""
    step = max(1, (1 << 22) // max(per_sample, 1))
    if len(x) <= step:
        return fn(x)
    return np.concatenate([fn(x[i:i + step]) for i in range(0, len(x), step)])


# -- the binary element-wise ops (add, sub, mul, maximum, minimum, squared_difference) ------
def operand(op, tensors, name, role):
    """An operand of an element-wise op: an int8 (int16) activation, or an int8 (int16)
    constant with one scale (Keras' Rescaling becomes MUL and ADD by constants)."""
    t = tensors[name]
    if not t.is_constant:
        return activation_tensor(op, tensors, name, role)
    check_scales(op, t, role)
    if t.dtype not in LIMITS or t.per_channel:
        fail(op, f"{role} {name!r} must be an int8 constant with one scale (int16 in a 16x8 "
                 f"model), got {t.dtype} with {t.scale.size} scales")
    check_zero_point(op, t, role)
    return t


def file_shape(t):
    """The shape TFLite sees: an activation with its batch dimension of 1, a constant as stored."""
    return t.shape if t.is_constant else (1,) + t.shape


def binary_operands(op, tensors):
    """(input 1, input 2, output) of a two-input element-wise op, checked: at most one is a
    constant, and their shapes broadcast to the output's by NumPy's rule, which is TFLite's
    (dimensions aligned from the right, a dimension of 1 stretched; TFLM's NdArrayDesc)."""
    a = operand(op, tensors, op.inputs[0], "input 1")
    b = operand(op, tensors, op.inputs[1], "input 2")
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    if a.is_constant and b.is_constant:
        fail(op, "both inputs are constants: fold the op into a constant before converting")
    for t in (a, b):
        if t.dtype != out.dtype:
            fail(op, f"{t.name!r} is {t.dtype}, the output {out.name!r} {out.dtype}: one model "
                     f"holds int8 or (16x8) int16 values, not both")
    try:
        shape = np.broadcast_shapes(file_shape(a), file_shape(b))
    except ValueError:
        fail(op, f"input shapes {file_shape(a)} and {file_shape(b)} do not broadcast")
    if shape != file_shape(out):
        fail(op, f"inputs {file_shape(a)} and {file_shape(b)} broadcast to {shape}, the output "
                 f"{out.name!r} has {file_shape(out)} (shapes with the batch dimension)")
    if file_shape(a) != file_shape(b) and len(shape) > 4:
        fail(op, f"broadcasting over {len(shape)} dimensions: TFLM's broadcasting kernels stop at 4")
    return a, b, out


def broadcast_params(a, b, out):
    """What Eval needs to line the batched operands up: each one's TFLite shape and whether
    it is a constant; `broadcast` is TFLM's requires_broadcast (the shapes differ)."""
    return dict(input1_shape=file_shape(a), input2_shape=file_shape(b), output_shape=file_shape(out),
                input1_constant=a.is_constant, input2_constant=b.is_constant,
                broadcast=file_shape(a) != file_shape(b), size=size(out), macs=0)


def elementwise(p, a, b, fn):
    """fn(p, a, b) on int8 operands broadcast as TFLite broadcasts them; a batch (N, ...) of
    activations runs as N invocations would. The result depends only on each pair (a, b), so
    a large output is looked up in the table of all 256 x 256 pairs (the same integers)."""
    rank = len(p["output_shape"])

    def lined_up(x, shape, constant):
        if constant:                   # its own batch dimension, if it has one, is 1
            return x.reshape((1,) * (rank - len(shape)) + tuple(shape))
        return x.reshape((len(x),) + (1,) * (rank - len(shape)) + tuple(shape[1:]))
    a = lined_up(a, p["input1_shape"], p["input1_constant"])
    b = lined_up(b, p["input2_shape"], p["input2_constant"])
    if p["dtype"] != "int8" or int(np.prod(np.broadcast_shapes(a.shape, b.shape))) <= 1 << 16:
        return fn(p, a, b)
    q = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int8)
    table = fn(p, q[:, None], q[None, :])                             # (256, 256)
    return table[a.astype(np.int16) - INT8_MIN, b.astype(np.int16) - INT8_MIN]


def rescaled(q, offset, left_shift, multiplier, shift, single_rounding):
    """An input of ADD / SUB / SQUARED_DIFFERENCE brought to the common scale 2 * max(s_1, s_2)
    with `left_shift` bits of headroom: (q - z) * 2^left_shift * s / (2 * max(s_1, s_2))."""
    shifted = (q.astype(np.int64) + offset) * (1 << left_shift)
    return fp.multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift,
                                                                    single_rounding)


def rescaling_params(op, a, b, out, left_shift, reals, single_rounding, output_below_one=True):
    """What ADD, SUB and SQUARED_DIFFERENCE share (TFLM's ArithmeticParams): the offsets,
    each input's multiplier to the common scale, the output's multiplier (`reals`: the three
    real multipliers, computed by each kernel as its Prepare does), the fused clamp."""
    real_1, real_2, real_out = reals
    if output_below_one and not 0.0 < real_out < 1.0:
        fail(op, f"output scale {float(scale(out))} is too small for the input scales "
                 f"{float(scale(a))}, {float(scale(b))} (TFLM needs 2 * max / (2^{left_shift} * s_out) < 1)")
    m1, sh1 = fp.quantize_multiplier_smaller_than_one_exp(real_1)
    m2, sh2 = fp.quantize_multiplier_smaller_than_one_exp(real_2)
    if output_below_one:
        mo, sho = fp.quantize_multiplier_smaller_than_one_exp(real_out)
    else:
        mo, sho = fp.quantize_multiplier(real_out, single_rounding)
    act_min, act_max = activation_range(op.options.get("activation", "none"), scale(out),
                                        out.zero_point, out.dtype)
    return dict(broadcast_params(a, b, out),
                input1_offset=-int(a.zero_point), input2_offset=-int(b.zero_point),
                output_offset=int(out.zero_point), left_shift=left_shift,
                input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                output_multiplier=mo, output_shift=sho, act_min=act_min, act_max=act_max)


def rescaled_inputs(p, a, b):
    """Both inputs at the common scale (see `rescaled`), with the params of `rescaling_params`."""
    sr = p["single_rounding"]
    return (rescaled(a, p["input1_offset"], p["left_shift"], p["input1_multiplier"], p["input1_shift"], sr),
            rescaled(b, p["input2_offset"], p["left_shift"], p["input2_multiplier"], p["input2_shift"], sr))


def clamped(raw, p):
    """The epilogue of the element-wise ops: add the output zero point, clamp, cast."""
    return np.clip(raw + p["output_offset"], p["act_min"], p["act_max"]).astype(p["dtype"])


# -- the data-movement ops (concatenation, pack, split, split_v, unpack) ---------------------
def lookup(table, x):
    """TFLM's LookupTable (reference/integer_ops/lut.h): the output of every int8 value q at
    table[q + 128] (ELU, ABS, RSQRT, NEG, SQUARE: ops of one int8 input)."""
    return table[x.astype(np.int16) - INT8_MIN]


def check_axis(op, axis, rank, role="axis"):
    """An axis of a sample of rank `rank` (the batch dimension is not one of them)."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not 0 <= axis < rank:
        fail(op, f"{role} {axis!r} is not an axis of a rank-{rank} sample (0..{rank - 1})")
    return int(axis)


def check_rank(op, t, most, role):
    """TFLM's kernels stop at `most` dimensions counting the batch one (the file's rank)."""
    if len(t.shape) + 1 > most:
        fail(op, f"{role} {t.name!r} has {len(t.shape) + 1} dimensions with the batch one, "
                 f"TFLM's kernel takes at most {most}")


def blocks(shape, axis):
    """(outer, inner) of a shape around `axis`: the product of the dimensions before it and
    after it. Concatenating or splitting along `axis` moves runs of axis_size * inner values,
    outer times (TFLM reference_ops::Concatenation and Split walk the same blocks)."""
    return int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis + 1:], dtype=np.int64))
