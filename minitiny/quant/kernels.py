"""The int8 reference operators: `prepare` (integer parameters, once) and `run` (NumPy, batched).

TFLite Micro splits every kernel in two: Prepare checks the tensors and turns the float
scales into integer constants once; Eval runs integer loops over them. minitiny does the
same: `prepare(op, tensors)` returns `op.params`, and both `run` below and the C generator
read only `op.params` and the arrays, so they cannot disagree about a constant. Each kernel
follows TFLM's reference integer kernel (tensorflow/lite/kernels/internal/reference/
integer_ops/*.h and tensorflow/lite/micro/kernels/*.cc) and matches the TFLM interpreter bit
for bit (tests/test_kernels.py). All fixed-point arithmetic comes from `fixedpoint.py`.

The quantization scheme (TFLite's int8 spec): r = s * (q - z). Activations are int8 with a
per-tensor scale and zero point; weights int8 in [-127, 127], zero point 0, one scale per
output channel (conv) or per tensor / per channel (dense); bias int32 with scale
s_input * s_weight[c] and zero point 0. A weighted sum then needs only integers:

    r_out = s_in * s_w * sum(w * (x - z_in)) + bias      so
    q_out = z_out + (s_in * s_w / s_out) * (sum(w * (x + input_offset)) + bias_q)
where input_offset = -z_in, and the real multiplier s_in * s_w / s_out is held as an
int32 Q31 significand and a power-of-two shift (fixedpoint.quantize_multiplier).

Keys of `op.params`, per kind (every shift is TFLM's signed exponent: positive = left):

| kind | keys |
| --- | --- |
| all kinds | `macs` (multiply-accumulates; pools: window reads; others 0), `single_rounding` (bool) |
| `fully_connected` | `input_offset` (-z_in), `output_offset` (z_out), `output_multiplier` int32[out], `output_shift` int32[out], `per_channel` (bool: the weights have one scale per unit; if not, every multiplier and shift is the same), `act_min`, `act_max`, `in_features`, `out_features`, `has_bias` |
| `conv_2d` | `input_offset`, `output_offset`, `output_multiplier` int32[C_out], `output_shift` int32[C_out], `per_channel`, `act_min`, `act_max`, `in_h`, `in_w`, `in_c`, `out_h`, `out_w`, `out_c`, `kernel_h`, `kernel_w`, `stride_h`, `stride_w`, `pad_h`, `pad_w` (rows/cols of padding before, TF 'same' rule), `has_bias` |
| `depthwise_conv_2d` | the `conv_2d` keys plus `depth_multiplier` (out_c = in_c * depth_multiplier; output channel = in_channel * depth_multiplier + m) |
| `max_pool_2d`, `average_pool_2d` | `in_h`, `in_w`, `channels`, `out_h`, `out_w`, `pool_h`, `pool_w`, `stride_h`, `stride_w`, `pad_h`, `pad_w`, `act_min`, `act_max` |
| `mean` | `in_h`, `in_w`, `channels`, `count` (H*W), `input_zero_point`, `output_zero_point`, `output_multiplier`, `output_shift` (these two already include the division by `count`) |
| `add` | `input1_offset`, `input2_offset` (-z), `output_offset` (z_out), `left_shift` (20), `input1_multiplier`, `input1_shift`, `input2_multiplier`, `input2_shift`, `output_multiplier`, `output_shift` (all shifts <= 0), `act_min`, `act_max`, `size` |
| `reshape` | `size` |
| `softmax` | `input_multiplier`, `input_left_shift` (>= 0), `diff_min` (negative), `depth` (last axis), `outer` (rows) |
| `logistic`, `tanh` | `input_zero_point`, `input_range_radius`, `input_multiplier`, `input_left_shift`, `size` |
| `relu` | `input_zero_point`, `output_zero_point`, `output_multiplier`, `output_shift`, `act_min`, `act_max`, `size` |
| `relu6` | `lower` (z_in: real 0), `upper` (real 6 in the input's quantization), `size` |
"""
import numpy as np

from . import fixedpoint as fp
from .graph import GraphError

INT8_MIN, INT8_MAX = -128, 127


# ---------------------------------------------------------------------------------------
# Shared Prepare helpers
# ---------------------------------------------------------------------------------------
def _fail(op, msg):
    raise GraphError(f"op {op.name!r} ({op.kind}): {msg}")


def _check_scales(op, t, role):
    scale = np.asarray(t.scale, dtype=np.float64)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        _fail(op, f"{role} {t.name!r}: scales must be finite and > 0, got {scale.ravel()[:4]}")


def _activation_tensor(op, tensors, name, role):
    t = tensors[name]
    _check_scales(op, t, role)
    if t.is_constant:
        _fail(op, f"{role} {name!r} must be an activation, not a constant")
    if t.dtype != "int8":
        _fail(op, f"{role} {name!r} must be int8, got {t.dtype}")
    if t.per_channel:
        _fail(op, f"{role} {name!r} must have one scale per tensor, got {t.scale.shape[0]}")
    if not INT8_MIN <= int(t.zero_point) <= INT8_MAX:
        _fail(op, f"{role} {name!r}: zero point {int(t.zero_point)} outside [-128, 127]")
    if any(d <= 0 for d in t.shape):
        _fail(op, f"{role} {name!r}: zero-size shape {t.shape}")
    return t


def _scale(t):
    """The per-tensor scale as TFLM holds it: a float32."""
    return np.float32(t.scale)


def activation_range(activation, scale, zero_point):
    """CalculateActivationRangeQuantized (TFLM kernel_util.cc): fold a fused ReLU/ReLU6
    into the int8 clamp. quantize(x) = z + (int) roundf(x / scale), in float32."""
    def quantize(x):
        q = fp.tflite_round(float(np.float32(x) / np.float32(scale)))
        return int(zero_point) + int(np.clip(q, -(1 << 31), (1 << 31) - 1))
    if activation == "relu":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "relu6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    return INT8_MIN, INT8_MAX


def _weights_and_bias(op, tensors, n_out, channel_axis):
    """Check weight (int8, symmetric) and bias (int32) tensors; return (w, w_scales, b)."""
    w = tensors[op.inputs[1]]
    _check_scales(op, w, "weight")
    if not w.is_constant or w.dtype != "int8":
        _fail(op, f"weight {w.name!r} must be a constant int8 tensor")
    if np.any(w.zero_point != 0):
        _fail(op, f"weight {w.name!r}: zero points must be 0 (symmetric), got {w.zero_point}")
    if w.per_channel:
        if w.quantized_dimension != channel_axis or w.scale.shape[0] != n_out:
            _fail(op, f"weight {w.name!r}: per-channel scales must run along axis {channel_axis} "
                      f"with {n_out} entries, got {w.scale.shape[0]} along axis {w.quantized_dimension}")
        w_scales = w.scale.astype(np.float32)
    else:
        w_scales = np.full(n_out, w.scale, dtype=np.float32)
    bias = None
    if len(op.inputs) > 2:
        b = tensors[op.inputs[2]]
        if not b.is_constant or b.dtype != "int32" or b.shape != (n_out,):
            _fail(op, f"bias {b.name!r} must be a constant int32 tensor of shape ({n_out},), "
                      f"got {b.dtype} {b.shape}")
        if np.any(b.zero_point != 0):
            _fail(op, f"bias {b.name!r}: zero points must be 0")
        bias = b
    return w, w_scales, bias


def _check_bias_scale(op, bias, product_scales):
    """TFLite requires bias scale == s_in * s_w (GetQuantizedConvolutionMultipler, 1e-6 rel.)."""
    if bias is None:
        return
    bs = np.broadcast_to(bias.scale.astype(np.float64), product_scales.shape)
    if np.any(np.abs(bs - product_scales) > 1e-6 * np.minimum(bs, product_scales)):
        _fail(op, f"bias {bias.name!r}: scale must equal input scale * weight scale "
                  f"(expected {product_scales[:4]}..., got {bs[:4]}...)")


def _check_accumulator(op, w, bias, fan_in):
    """The int32 accumulator must not overflow for any input: with |w| <= 127 (128 if the
    weights hold -128) and |x + input_offset| <= 255, |acc| <= fan_in * 127 * 255 + |bias|."""
    wmax = max(127, int(np.abs(w.data.astype(np.int32)).max(initial=0)))
    bmax = int(np.abs(bias.data.astype(np.int64)).max(initial=0)) if bias is not None else 0
    bound = fan_in * wmax * 255 + bmax
    if bound > fp.INT32_MAX:
        _fail(op, f"the int32 accumulator could overflow: fan-in {fan_in} * {wmax} * 255 + "
                  f"max|bias| {bmax} = {bound} > 2^31 - 1")


def _check_multiplier(op, real, formula):
    """The real multiplier must be finite, > 0 and < 2^31 (a larger one would shift the
    int32 accumulator left by 32 or more bits)."""
    real = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real <= 0) or np.any(real >= 2.0 ** 31):
        _fail(op, f"the multiplier {formula} = {real.ravel()[:4]} is out of range (0, 2^31): "
                  f"check the scales")


def _out_size(padding, size, k, stride):
    """ComputeOutSize (TFLM padding.h), C integer division."""
    if padding == "same":
        return (size + stride - 1) // stride
    return (size + stride - k) // stride if size >= k else 0


def _pad_before(size, k, stride, out):
    """ComputePaddingWithOffset (TFLM padding.h): total = max((out-1)*stride + k - in, 0),
    half of it before (the odd row/column goes after)."""
    return max((out - 1) * stride + k - size, 0) // 2


def _spatial(op, x, out, k_h, k_w, n_out_c):
    """Output size and padding of a windowed op; checks them against the output tensor."""
    stride = op.options.get("stride", (1, 1))
    if len(stride) != 2 or min(stride) < 1:
        _fail(op, f"stride must be two positive integers, got {stride}")
    padding = op.options.get("padding", "valid")
    h, w = x.shape[0], x.shape[1]
    out_h, out_w = _out_size(padding, h, k_h, stride[0]), _out_size(padding, w, k_w, stride[1])
    if out_h <= 0 or out_w <= 0:
        _fail(op, f"window {k_h}x{k_w} with '{padding}' padding gives an empty output on a "
                  f"{h}x{w} input")
    if out.shape != (out_h, out_w, n_out_c):
        _fail(op, f"output {out.name!r} has shape {out.shape}, expected {(out_h, out_w, n_out_c)}")
    return dict(in_h=h, in_w=w, out_h=out_h, out_w=out_w, stride_h=int(stride[0]),
                stride_w=int(stride[1]), pad_h=_pad_before(h, k_h, stride[0], out_h),
                pad_w=_pad_before(w, k_w, stride[1], out_w))


def _same_quantization(op, a, b):
    if float(a.scale) != float(b.scale) or int(a.zero_point) != int(b.zero_point):
        _fail(op, f"TFLM's kernel does not requantize: {a.name!r} (scale {float(a.scale)}, zero point "
                  f"{int(a.zero_point)}) and {b.name!r} (scale {float(b.scale)}, zero point "
                  f"{int(b.zero_point)}) must share scale and zero point")


# ---------------------------------------------------------------------------------------
# Prepare, one function per kind (TFLM's *Prepare / Calculate*OpData)
# ---------------------------------------------------------------------------------------
def _prepare_fully_connected(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    wt = tensors[op.inputs[1]]
    if len(wt.shape) != 2:
        _fail(op, f"weight {wt.name!r} must have shape (units, in_features), got {wt.shape}")
    units, in_features = wt.shape
    w, w_scales, bias = _weights_and_bias(op, tensors, units, 0)
    if int(np.prod(x.shape)) != in_features:
        _fail(op, f"input {x.name!r} of shape {x.shape} has {int(np.prod(x.shape))} values, the "
                  f"weight {w.name!r} expects {in_features}")
    if out.shape != (units,):
        _fail(op, f"output {out.name!r} has shape {out.shape}, expected ({units},)")
    return dict(_weighted_requantization(op, x, out, w, w_scales, bias, in_features, single_rounding),
                in_features=in_features, out_features=units, has_bias=bias is not None,
                macs=in_features * units)


def _weighted_requantization(op, x, out, w, w_scales, bias, fan_in, single_rounding):
    """What dense, conv and depthwise share: the offsets, s_in * s_w / s_out as multiplier
    and shift (per channel when the weights are), the fused activation's clamp, and the
    checks. TFLM computes the scale in double (fully_connected_common.cc and kernel_util.cc
    PopulateConvolutionQuantizationParams; TFLite's older GetQuantizedConvolutionMultipler
    multiplied the two float32 scales in float32, the TFLM interpreter does not: the test
    test_multiplier_is_computed_in_double pins this)."""
    s_in, s_out = _scale(x), _scale(out)
    product = np.float64(s_in) * w_scales.astype(np.float64)
    real = product / np.float64(s_out)
    _check_multiplier(op, real, "s_in * s_w / s_out")
    _check_bias_scale(op, bias, product)
    _check_accumulator(op, w, bias, fan_in)
    mult, shift = fp.quantize_multiplier_array(real, single_rounding)
    act_min, act_max = activation_range(op.options.get("activation", "none"), s_out, out.zero_point)
    return dict(input_offset=-int(x.zero_point), output_offset=int(out.zero_point),
                output_multiplier=mult, output_shift=shift, per_channel=bool(w.per_channel),
                act_min=act_min, act_max=act_max)


def _prepare_conv(op, tensors, single_rounding):
    depthwise = op.kind == "depthwise_conv_2d"
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    wt = tensors[op.inputs[1]]
    if len(x.shape) != 3:
        _fail(op, f"input {x.name!r} must be (H, W, C), got {x.shape}")
    in_c = x.shape[2]
    if len(wt.shape) != 4:
        _fail(op, f"weight {wt.name!r} must be 4-D, got {wt.shape}")
    if depthwise:
        m = op.options.get("depth_multiplier", 1)
        if wt.shape[0] != 1 or wt.shape[3] != in_c * m:
            _fail(op, f"weight {wt.name!r} has shape {wt.shape}, expected (1, kh, kw, {in_c * m}) "
                      f"for {in_c} input channels and depth_multiplier {m}")
        out_c, k_h, k_w = wt.shape[3], wt.shape[1], wt.shape[2]
        fan_in = k_h * k_w
        w, w_scales, bias = _weights_and_bias(op, tensors, out_c, 3)
    else:
        out_c, k_h, k_w = wt.shape[0], wt.shape[1], wt.shape[2]
        if wt.shape[3] != in_c:
            _fail(op, f"weight {wt.name!r} has {wt.shape[3]} input channels, input {x.name!r} has {in_c}")
        fan_in = k_h * k_w * in_c
        w, w_scales, bias = _weights_and_bias(op, tensors, out_c, 0)
    geometry = _spatial(op, x, out, k_h, k_w, out_c)
    params = dict(_weighted_requantization(op, x, out, w, w_scales, bias, fan_in, single_rounding),
                  in_c=in_c, out_c=out_c, kernel_h=k_h, kernel_w=k_w, has_bias=bias is not None,
                  macs=geometry["out_h"] * geometry["out_w"] * out_c * fan_in, **geometry)
    if depthwise:
        params["depth_multiplier"] = int(op.options.get("depth_multiplier", 1))
    return params


def _prepare_pool(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    if len(x.shape) != 3:
        _fail(op, f"input {x.name!r} must be (H, W, C), got {x.shape}")
    pool = op.options.get("pool_size", (2, 2))
    if len(pool) != 2 or min(pool) < 1:
        _fail(op, f"pool_size must be two positive integers, got {pool}")
    _same_quantization(op, x, out)
    geometry = _spatial(op, x, out, pool[0], pool[1], x.shape[2])
    act_min, act_max = activation_range(op.options.get("activation", "none"), _scale(out), out.zero_point)
    return dict(channels=x.shape[2], pool_h=int(pool[0]), pool_w=int(pool[1]), act_min=act_min,
                act_max=act_max, macs=geometry["out_h"] * geometry["out_w"] * x.shape[2] * pool[0] * pool[1],
                **geometry)


def _prepare_mean(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    axes = tuple(op.options.get("axes", (0, 1)))
    if len(x.shape) != 3 or axes != (0, 1):
        _fail(op, f"only the mean over H, W of an (H, W, C) input is supported (axes (0, 1)); "
                  f"got input {x.shape}, axes {axes}")
    h, w, c = x.shape
    want = (1, 1, c) if op.options.get("keep_dims", False) else (c,)
    if out.shape != want:
        _fail(op, f"output {out.name!r} has shape {out.shape}, expected {want}")
    if h * w * 255 > fp.INT32_MAX:
        _fail(op, f"the int32 sum over {h}x{w} values could overflow")
    # reduce_common.cc PrepareMeanOrSumHelper (TFLM): real = s_in / s_out, in double ...
    real = np.float64(_scale(x)) / np.float64(_scale(out))
    _check_multiplier(op, real, "s_in / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    # ... and reduce.h QuantizedMeanOrSum folds 1/count into the multiplier (at Eval, but it
    # is a constant): take s = floor(log2(count)) more bits, divide the significand by count.
    # TFLM uses this path whether or not input and output share scale and zero point.
    count = h * w
    s = min(count.bit_length() - 1, 32, 31 + shift)
    mean_mult = (mult << s) // count                 # int64 in C; both operands >= 0
    return dict(in_h=h, in_w=w, channels=c, count=count, input_zero_point=int(x.zero_point),
                output_zero_point=int(out.zero_point), output_multiplier=int(mean_mult),
                output_shift=shift - s, macs=0)


def _prepare_add(op, tensors, single_rounding):
    a = _activation_tensor(op, tensors, op.inputs[0], "input 1")
    b = _activation_tensor(op, tensors, op.inputs[1], "input 2")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    if not a.shape == b.shape == out.shape:
        _fail(op, f"inputs and output must have the same shape (no broadcasting), got "
                  f"{a.shape} + {b.shape} -> {out.shape}")
    # add.cc CalculateOpDataAdd (TFLM): both inputs are brought to a common scale,
    # 2 * max(s_a, s_b), with 20 bits of headroom, summed, then rescaled to the output.
    left_shift = 20
    s_a, s_b, s_out = np.float64(_scale(a)), np.float64(_scale(b)), np.float64(_scale(out))
    twice_max_input_scale = 2 * np.float64(max(_scale(a), _scale(b)))
    real_1 = s_a / twice_max_input_scale
    real_2 = s_b / twice_max_input_scale
    real_out = twice_max_input_scale / ((1 << left_shift) * s_out)
    if not 0.0 < real_out < 1.0:
        _fail(op, f"output scale {float(s_out)} is too small for the input scales "
                  f"{float(s_a)}, {float(s_b)} (TFLM needs 2 * max / (2^20 * s_out) < 1)")
    m1, sh1 = fp.quantize_multiplier_smaller_than_one_exp(real_1)
    m2, sh2 = fp.quantize_multiplier_smaller_than_one_exp(real_2)
    mo, sho = fp.quantize_multiplier_smaller_than_one_exp(real_out)
    act_min, act_max = activation_range(op.options.get("activation", "none"), s_out, out.zero_point)
    return dict(input1_offset=-int(a.zero_point), input2_offset=-int(b.zero_point),
                output_offset=int(out.zero_point), left_shift=left_shift,
                input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                output_multiplier=mo, output_shift=sho, act_min=act_min, act_max=act_max,
                size=int(np.prod(out.shape)), macs=0)


def _prepare_reshape(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    if int(np.prod(x.shape)) != int(np.prod(out.shape)):
        _fail(op, f"cannot reshape {x.shape} ({int(np.prod(x.shape))} values) to {out.shape}")
    _same_quantization(op, x, out)
    return dict(size=int(np.prod(out.shape)), macs=0)


def _check_output_quantization(op, out, scale, zero_point):
    if abs(float(out.scale) - scale) > 1e-3 * scale or int(out.zero_point) != zero_point:
        _fail(op, f"output {out.name!r} must have scale {scale} and zero point {zero_point} "
                  f"(TFLM's int8 kernel fixes them), got {float(out.scale)}, {int(out.zero_point)}")


def _prepare_softmax(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    if x.shape != out.shape:
        _fail(op, f"input shape {x.shape} != output shape {out.shape}")
    _check_output_quantization(op, out, 1 / 256, -128)
    beta = float(op.options.get("beta", 1.0))
    if not np.isfinite(beta) or beta <= 0:
        _fail(op, f"beta must be finite and > 0, got {beta}")
    # softmax_common.cc CalculateSoftmaxParams (TFLM): input differences x - max scaled into
    # Q5.26 (kScaledDiffIntegerBits = 5); differences below diff_min give exp() == 0.
    scaled_diff_integer_bits = 5
    if float(beta) * float(_scale(x)) * (1 << (31 - scaled_diff_integer_bits)) <= 1.0:
        _fail(op, f"beta * input scale = {beta * float(_scale(x))} is too small")
    mult, left_shift = fp.preprocess_softmax_scaling(beta, _scale(x), scaled_diff_integer_bits,
                                                     single_rounding)
    diff_min = -fp.calculate_input_radius(scaled_diff_integer_bits, left_shift)
    depth = x.shape[-1]
    if depth >= 4096:     # each exp() adds up to 2^19 to TFLM's int32 sum in Q12.19
        _fail(op, f"softmax over {depth} values would overflow TFLM's Q12.19 sum (at most 4095)")
    return dict(input_multiplier=mult, input_left_shift=left_shift, diff_min=diff_min,
                depth=depth, outer=int(np.prod(x.shape)) // depth, macs=0)


def _prepare_logistic_tanh(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    if x.shape != out.shape:
        _fail(op, f"input shape {x.shape} != output shape {out.shape}")
    if op.kind == "logistic":
        _check_output_quantization(op, out, 1 / 256, -128)
    else:
        _check_output_quantization(op, out, 1 / 128, 0)
    # logistic_common.cc / tanh.cc CalculateArithmeticOpData (TFLM): x - z_in rescaled into
    # Q4.27 (kInputIntegerBits = 4); beyond input_range_radius the output saturates.
    # frexp(s * 2^27) gives a negative left shift for s < 2^-28, and TFLM's
    # CalculateInputRadius then shifts by a negative count (undefined in C++): refuse it.
    # (Such an input moves the output by less than one step anyway: |x - z| * s < 2^-20.)
    if float(_scale(x)) < 2.0 ** -28:
        _fail(op, f"input {x.name!r}: scale {float(_scale(x)):.3g} is below 2^-28, which TFLM's "
                  f"{op.kind.upper()} cannot rescale (a negative shift); every output would be "
                  f"{'1/2' if op.kind == 'logistic' else '0'}")
    mult, left_shift, radius = fp.input_scale_multiplier(_scale(x), 4)
    # For input scales >= 4 the radius is <= 1: only x == z_in is multiplied (by 0), so the
    # large left shift never overflows.
    return dict(input_zero_point=int(x.zero_point), input_range_radius=radius,
                input_multiplier=mult, input_left_shift=left_shift,
                size=int(np.prod(x.shape)), macs=0)


def _prepare_relu(op, tensors, single_rounding):
    x = _activation_tensor(op, tensors, op.inputs[0], "input")
    out = _activation_tensor(op, tensors, op.outputs[0], "output")
    if x.shape != out.shape:
        _fail(op, f"input shape {x.shape} != output shape {out.shape}")
    if op.kind == "relu6":
        # activations.cc Relu6Prepare (TFLM): a clamp in the input's quantization, with no
        # requantization, so the output must share it.
        _same_quantization(op, x, out)
        # FloatToQuantizedType (TFLM micro_utils.h): round(6.0f / scale) in float32.
        six = int(x.zero_point) + fp.tflite_round(float(np.float32(6.0) / _scale(x)))
        return dict(lower=int(x.zero_point), upper=int(np.clip(six, INT8_MIN, INT8_MAX)),
                    size=int(np.prod(x.shape)), macs=0)
    # activations.cc CalculateReluOpData (TFLM): requantize s_in / s_out, clamp at real 0.
    real = np.float64(_scale(x)) / np.float64(_scale(out))
    _check_multiplier(op, real, "s_in / s_out")
    mult, shift = fp.quantize_multiplier(real, single_rounding)
    act_min, act_max = activation_range("relu", _scale(out), out.zero_point)
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                output_multiplier=mult, output_shift=shift, act_min=act_min, act_max=act_max,
                size=int(np.prod(x.shape)), macs=0)


_PREPARE = {
    "fully_connected": _prepare_fully_connected,
    "conv_2d": _prepare_conv,
    "depthwise_conv_2d": _prepare_conv,
    "max_pool_2d": _prepare_pool,
    "average_pool_2d": _prepare_pool,
    "mean": _prepare_mean,
    "add": _prepare_add,
    "reshape": _prepare_reshape,
    "softmax": _prepare_softmax,
    "logistic": _prepare_logistic_tanh,
    "tanh": _prepare_logistic_tanh,
    "relu": _prepare_relu,
    "relu6": _prepare_relu,
}


def prepare(op, tensors, single_rounding=False):
    """TFLM's Prepare: check `op` against its tensors, compute its integer parameters once.

    `single_rounding` selects TFLITE_SINGLE_ROUNDING's requantization (default: TFLM's
    default double rounding). Raises GraphError naming the op for anything out of range.
    """
    for name in op.inputs + op.outputs:
        if name not in tensors:
            _fail(op, f"tensor {name!r} does not exist")
    n_in = {"fully_connected": (2, 3), "conv_2d": (2, 3), "depthwise_conv_2d": (2, 3), "add": (2, 2)}
    lo, hi = n_in.get(op.kind, (1, 1))
    if not lo <= len(op.inputs) <= hi or len(op.outputs) != 1:
        _fail(op, f"expects {lo}..{hi} inputs and 1 output, got {len(op.inputs)} and {len(op.outputs)}")
    params = _PREPARE[op.kind](op, tensors, bool(single_rounding))
    params["single_rounding"] = bool(single_rounding)
    return params


# ---------------------------------------------------------------------------------------
# Run (TFLM's Eval), batched: every activation is (N, *shape) int8
# ---------------------------------------------------------------------------------------
def _requantize(acc, p, multiplier, shift, offset):
    """The epilogue every weighted sum shares: requantize, add the zero point, clamp, cast."""
    acc = fp.multiply_by_quantized_multiplier(acc, multiplier, shift, p["single_rounding"])
    return np.clip(acc + offset, p["act_min"], p["act_max"]).astype(np.int8)


def _run_fully_connected(op, p, x, w, b=None):
    n = x.shape[0]
    # (N, in) + input_offset, times (in, units): exact in float64 (|acc| < 2^31 < 2^53)
    xs = x.reshape(n, -1).astype(np.float64) + p["input_offset"]
    acc = (xs @ w.astype(np.float64).T).astype(np.int64)           # (N, units)
    if b is not None:
        acc += b
    return _requantize(acc, p, p["output_multiplier"], p["output_shift"], p["output_offset"])


def _padded(x, p, k_h, k_w, value):
    """(N, H, W, C) -> padded with `value` so every window of the output fits: pad_h rows
    before, the rest after, as TF's 'same' rule puts them."""
    need_h = (p["out_h"] - 1) * p["stride_h"] + k_h
    need_w = (p["out_w"] - 1) * p["stride_w"] + k_w
    after_h = max(need_h - p["in_h"] - p["pad_h"], 0)
    after_w = max(need_w - p["in_w"] - p["pad_w"], 0)
    return np.pad(x, ((0, 0), (p["pad_h"], after_h), (p["pad_w"], after_w), (0, 0)),
                  constant_values=value)


def _taps(xp, p, k_h, k_w):
    """Yield (filter_y, filter_x, (N, out_h, out_w, C) view of the input under that tap)."""
    sh, sw, oh, ow = p["stride_h"], p["stride_w"], p["out_h"], p["out_w"]
    for fy in range(k_h):
        for fx in range(k_w):
            yield fy, fx, xp[:, fy:fy + sh * (oh - 1) + 1:sh, fx:fx + sw * (ow - 1) + 1:sw, :]


def _batched(x, per_sample, fn):
    """fn over slices of the batch of ~2^22 / per_sample samples, so temporaries stay small."""
    step = max(1, (1 << 22) // max(per_sample, 1))
    if len(x) <= step:
        return fn(x)
    return np.concatenate([fn(x[i:i + step]) for i in range(0, len(x), step)])


def _run_conv_2d(op, p, x, w, b=None):
    k_h, k_w = p["kernel_h"], p["kernel_w"]
    w2 = w.reshape(p["out_c"], -1).astype(np.float64).T               # (kh*kw*in_c, out_c)

    def chunk(x):
        n = x.shape[0]
        # Padding with the input zero point makes padded taps contribute w * (z_in - z_in) = 0.
        xp = _padded(x, p, k_h, k_w, -p["input_offset"]).astype(np.float64) + p["input_offset"]
        # im2col: (n, out_h, out_w, kh*kw, in_c) -> (n*out_h*out_w, kh*kw*in_c), then one
        # matrix product; exact in float64 since every partial sum is an integer < 2^31.
        cols = np.stack([t for _, _, t in _taps(xp, p, k_h, k_w)], axis=3)
        acc = (cols.reshape(-1, w2.shape[0]) @ w2).astype(np.int64)    # (n*out_h*out_w, out_c)
        if b is not None:
            acc += b
        acc = acc.reshape(n, p["out_h"], p["out_w"], p["out_c"])
        return _requantize(acc, p, p["output_multiplier"], p["output_shift"], p["output_offset"])
    return _batched(x, p["out_h"] * p["out_w"] * max(k_h * k_w * p["in_c"], p["out_c"]), chunk)


def _run_depthwise_conv_2d(op, p, x, w, b=None):
    k_h, k_w, m = p["kernel_h"], p["kernel_w"], p["depth_multiplier"]
    wk = w.reshape(k_h, k_w, p["in_c"], m).astype(np.int32)            # (kh, kw, in_c, m)

    def chunk(x):
        n = x.shape[0]
        xp = _padded(x, p, k_h, k_w, -p["input_offset"]).astype(np.int32) + p["input_offset"]
        acc = np.zeros((n, p["out_h"], p["out_w"], p["in_c"], m), dtype=np.int32)
        for fy, fx, tap in _taps(xp, p, k_h, k_w):                      # int32 cannot overflow:
            acc += tap[..., None] * wk[fy, fx]                          # checked in prepare
        acc = acc.reshape(n, p["out_h"], p["out_w"], p["out_c"]).astype(np.int64)
        if b is not None:
            acc += b
        return _requantize(acc, p, p["output_multiplier"], p["output_shift"], p["output_offset"])
    return _batched(x, p["out_h"] * p["out_w"] * p["out_c"], chunk)


def _run_max_pool_2d(op, p, x):
    # Padded taps never win: they hold a value below every int8.
    xp = _padded(x.astype(np.int16), p, p["pool_h"], p["pool_w"], INT8_MIN - 1)
    result = np.full((x.shape[0], p["out_h"], p["out_w"], p["channels"]), INT8_MIN - 1, np.int16)
    for _, _, tap in _taps(xp, p, p["pool_h"], p["pool_w"]):
        np.maximum(result, tap, out=result)
    return np.clip(result, p["act_min"], p["act_max"]).astype(np.int8)


def _run_average_pool_2d(op, p, x):
    # reference_integer_ops::AveragePool: the mean of the in-bounds values only, rounded
    # half away from zero with C division:  (sum +- count/2) / count.
    xp = _padded(x.astype(np.int32), p, p["pool_h"], p["pool_w"], 0)
    inside = _padded(np.ones((1, p["in_h"], p["in_w"], 1), np.int32), p, p["pool_h"], p["pool_w"], 0)
    acc = np.zeros((x.shape[0], p["out_h"], p["out_w"], p["channels"]), np.int32)
    count = np.zeros((1, p["out_h"], p["out_w"], 1), np.int32)        # in-bounds taps per window
    for (_, _, tap), (_, _, ones) in zip(_taps(xp, p, p["pool_h"], p["pool_w"]),
                                         _taps(inside, p, p["pool_h"], p["pool_w"])):
        acc += tap
        count += ones
    # C's (acc + count/2) / count for acc > 0 and (acc - count/2) / count otherwise, written
    # on |acc| so NumPy's flooring // equals C's truncation.
    acc = np.sign(acc) * ((np.abs(acc) + count // 2) // count)
    return np.clip(acc, p["act_min"], p["act_max"]).astype(np.int8)


def _run_mean(op, p, x):
    # reduce.h QuantizedMeanOrSum (TFLM): requantize the sum with the zero point taken out,
    # by s_in / (s_out * count) (folded in prepare), then add the output zero point.
    n = x.shape[0]
    total = x.reshape(n, p["count"], p["channels"]).astype(np.int64).sum(axis=1)   # (N, C)
    shifted_sum = total - p["input_zero_point"] * p["count"]
    result = fp.multiply_by_quantized_multiplier(shifted_sum, p["output_multiplier"], p["output_shift"],
                                                 p["single_rounding"]) + p["output_zero_point"]
    return np.clip(result, INT8_MIN, INT8_MAX).astype(np.int8)


def _add_int8(p, a, b):
    """reference_integer_ops AddFunc (TFLM integer_ops/add.h) on int8 arrays a, b."""
    sr = p["single_rounding"]

    def rescale(q, offset, multiplier, shift):     # (q - z) * 2^20 * s_q / (2 * max(s_a, s_b))
        shifted = (q.astype(np.int64) + offset) * (1 << p["left_shift"])
        return fp.multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift, sr)
    raw_sum = (rescale(a, p["input1_offset"], p["input1_multiplier"], p["input1_shift"])
               + rescale(b, p["input2_offset"], p["input2_multiplier"], p["input2_shift"]))
    raw_out = fp.multiply_by_quantized_multiplier_smaller_than_one_exp(
        raw_sum, p["output_multiplier"], p["output_shift"], sr) + p["output_offset"]
    return np.clip(raw_out, p["act_min"], p["act_max"]).astype(np.int8)


def _run_add(op, p, a, b):
    # The output depends only on the pair (a, b): compute all 256 x 256 pairs once, then look
    # them up (the same integers as _add_int8 on the whole batch, much faster on large ones).
    if a.size <= 1 << 16:
        return _add_int8(p, a, b)
    q = np.arange(-128, 128, dtype=np.int8)
    table = _add_int8(p, q[:, None], q[None, :])                      # (256, 256)
    return table[a.astype(np.int16) + 128, b.astype(np.int16) + 128]


def _run_softmax(op, p, x):
    # reference_ops::Softmax (TFLM reference/softmax.h), quantized int8 -> int8.
    shape = x.shape
    x = x.reshape(-1, p["depth"]).astype(np.int64)                      # (rows, depth)
    diff = x - x.max(axis=1, keepdims=True)                             # <= 0
    used = diff >= p["diff_min"]
    scaled = fp.multiply_by_quantized_multiplier_greater_than_one(
        np.where(used, diff, 0), p["input_multiplier"], p["input_left_shift"],
        p["single_rounding"])                                           # Q5.26
    exp = fp.exp_on_negative_values(scaled, 5)                          # Q0.31
    sum_of_exps = np.where(used, fp.rounding_divide_by_pot(exp, 12), 0).sum(axis=1)   # Q12.19
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, 12)
    prob = fp.saturating_rounding_doubling_high_mul(shifted_scale[:, None], exp)  # Q0.31
    unsat = fp.rounding_divide_by_pot(prob, num_bits_over_unit[:, None] + 31 - 8)
    out = np.where(used, np.clip(unsat - 128, INT8_MIN, INT8_MAX), INT8_MIN)
    return out.astype(np.int8).reshape(shape)


def _run_logistic_tanh(op, p, x):
    # reference_integer_ops::Logistic / Tanh (TFLM integer_ops/logistic.h, tanh.h)
    xi = x.astype(np.int64) - p["input_zero_point"]
    radius = p["input_range_radius"]
    inside = np.where(np.abs(xi) < radius, xi, 0)
    q4 = fp.multiply_by_quantized_multiplier(inside, p["input_multiplier"], p["input_left_shift"],
                                             p["single_rounding"])        # Q4.27
    if op.kind == "logistic":
        q0 = fp.logistic(q4, 4)                                          # Q0.31 in (0, 1)
        y = np.clip(fp.rounding_divide_by_pot(q0, 31 - 8) - 128, INT8_MIN, INT8_MAX)
    else:
        q0 = fp.tanh(q4, 4)                                              # Q0.31 in (-1, 1)
        y = np.clip(fp.rounding_divide_by_pot(q0, 31 - 7), INT8_MIN, INT8_MAX)
    y = np.where(xi <= -radius, INT8_MIN, np.where(xi >= radius, INT8_MAX, y))
    return y.astype(np.int8)


def _run_relu(op, p, x):
    if op.kind == "relu6":
        return np.clip(x, p["lower"], p["upper"]).astype(np.int8)
    acc = fp.multiply_by_quantized_multiplier(x.astype(np.int64) - p["input_zero_point"],
                                              p["output_multiplier"], p["output_shift"],
                                              p["single_rounding"])
    return np.clip(acc + p["output_zero_point"], p["act_min"], p["act_max"]).astype(np.int8)


_RUN = {
    "fully_connected": _run_fully_connected,
    "conv_2d": _run_conv_2d,
    "depthwise_conv_2d": _run_depthwise_conv_2d,
    "max_pool_2d": _run_max_pool_2d,
    "average_pool_2d": _run_average_pool_2d,
    "mean": _run_mean,
    "add": _run_add,
    "softmax": _run_softmax,
    "logistic": _run_logistic_tanh,
    "tanh": _run_logistic_tanh,
    "relu": _run_relu,
    "relu6": _run_relu,
}


def run(op, tensors, args):
    """TFLM's Eval, batched: `args` are the arrays of `op.inputs` (activations (N, ...) int8,
    constants as stored); returns the int8 output (N, *output.shape)."""
    if op.params is None:
        raise GraphError(f"op {op.name!r}: prepare() has not been called")
    args = [np.asarray(a) for a in args]
    x = args[0]
    for name, a in zip(op.inputs, args):
        want = tensors[name].shape
        if not tensors[name].is_constant and (a.dtype != np.int8 or a.shape[1:] != want or len(a) != len(x)):
            raise GraphError(f"op {op.name!r} ({op.kind}): input {name!r} must be int8 "
                             f"(N, {', '.join(map(str, want))}), got {a.dtype} {a.shape}")
    out_shape = (x.shape[0],) + tensors[op.outputs[0]].shape
    if op.kind == "reshape":                       # a copy in TFLM: the bytes do not change
        return x.reshape(out_shape)
    return _RUN[op.kind](op, op.params, x, *args[1:]).reshape(out_shape)
