"""The int8 reference operators, one module per op kind: `prepare` (integer parameters,
once) and `run` (NumPy, batched).

TFLite Micro splits every kernel in two: Prepare checks the tensors and turns the float
scales into integer constants once; Eval runs integer loops over them. minitiny does the
same, and keeps the two halves of an op side by side in one file:

    fully_connected.py    conv_2d.py    depthwise_conv_2d.py    transpose_conv.py
    batch_matmul.py
    pooling.py (max, average)    resize.py (nearest neighbour, bilinear)
    reduce.py (mean, sum, reduce_max, reduce_min)    arg_min_max.py (arg_max, arg_min: int32 indices)    add.py    sub.py    mul.py    maximum_minimum.py    squared_difference.py
    reshape.py    softmax.py    l2_normalization.py    logistic_tanh.py    activations.py (relu, relu6)
    leaky_relu.py    prelu.py    hard_swish.py    elu.py    abs_rsqrt.py (abs, rsqrt)
    float_unary.py (neg, square: TFLite's float32 kernels between DEQUANTIZE and QUANTIZE)
    quantize.py (int8 -> int8)
    concatenation.py (concatenation, pack)    split.py (split, split_v, unpack)
    pad.py (pad, padv2)    mirror_pad.py    strided_slice.py (strided_slice, slice)    transpose.py
    depth_space.py (depth_to_space, space_to_depth)
    lstm.py (unidirectional_sequence_lstm: its state kept from one invoke to the next)
    common.py             the shared checks, the requantization epilogue, the window and
                          broadcasting helpers

Each op module holds `KINDS` (the op kinds it runs), `INT16_KINDS` (those of them it also
runs in TFLite's 16x8 scheme: int16 activations, int8 weights, int64 bias; `params["dtype"]`
says which one an op runs in), `INPUTS` (how many inputs it takes),
`prepare(op, tensors, single_rounding)` -> params and `run(op, params, *arrays)`; `KERNELS`
below maps every kind to its module, so a new op arrives as one file and one line here.
`prepare(op, tensors)` returns `op.params`, and both `run` and the C generator read only
`op.params` and the arrays, so they cannot disagree about a constant. Each kernel follows
TFLM's reference integer kernel (tensorflow/lite/kernels/internal/reference/integer_ops/*.h
and tensorflow/lite/micro/kernels/*.cc) and matches the TFLM interpreter bit for bit
(tests/test_kernels.py). All fixed-point arithmetic comes from `quant/fixedpoint.py`.

The quantization scheme (TFLite's int8 spec): r = s * (q - z). Activations are int8 with a
per-tensor scale and zero point; weights int8 in [-127, 127], zero point 0, one scale per
output channel (conv) or per tensor / per channel (dense); bias int32 with scale
s_input * s_weight[c] and zero point 0. A weighted sum then needs only integers:

    r_out = s_in * s_w * sum(w * (x - z_in)) + bias      so
    q_out = z_out + (s_in * s_w / s_out) * (sum(w * (x + input_offset)) + bias_q)
where input_offset = -z_in, and the real multiplier s_in * s_w / s_out is held as an
int32 Q31 significand and a power-of-two shift (fixedpoint.quantize_multiplier).

Keys of `op.params`, per kind (every shift is TFLM's signed exponent: positive = left). The
element-wise kinds' `input1_shape`, `input2_shape`, `output_shape` are TFLite's shapes
(activations with the batch dimension 1, constants as stored), `input1_constant` and
`input2_constant` say which input is a constant, `broadcast` that the input shapes differ:

| kind | keys |
| --- | --- |
| all kinds | `macs` (multiply-accumulates; pools: window reads; others 0), `single_rounding` (bool), `dtype` ('int8', or 'int16' in the 16x8 scheme: the activations' type) |
| `fully_connected` | `input_offset` (-z_in), `output_offset` (z_out), `output_multiplier` int32[out], `output_shift` int32[out], `per_channel` (bool: the weights have one scale per unit; if not, every multiplier and shift is the same), `act_min`, `act_max`, `in_features`, `out_features`, `rows` (1, or with keep_num_dims the input's rows of in_features), `has_bias` |
| `conv_2d` | `input_offset`, `output_offset`, `output_multiplier` int32[C_out], `output_shift` int32[C_out], `per_channel`, `act_min`, `act_max`, `in_h`, `in_w`, `in_c`, `out_h`, `out_w`, `out_c`, `kernel_h`, `kernel_w`, `stride_h`, `stride_w`, `dilation_h`, `dilation_w` (taps that many rows/cols apart), `pad_h`, `pad_w` (rows/cols of padding before, TF 'same' rule over the dilated window), `has_bias` |
| `depthwise_conv_2d` | the `conv_2d` keys plus `depth_multiplier` (out_c = in_c * depth_multiplier; output channel = in_channel * depth_multiplier + m) |
| `batch_matmul` | `lhs_offset`, `rhs_offset` (-z), `output_offset`, `output_multiplier`, `output_shift` (s_lhs * s_rhs / s_out), `act_min`, `act_max`, `adj_x`, `adj_y` (bools), `rows`, `depth`, `cols` (of the product), `batch` (the output's batch dimensions, padded in front with 1 to two), `lhs_batch_stride`, `rhs_batch_stride` (each operand's step along them, 0 where it is broadcast), `size` |
| `transpose_conv` | `input_offset`, `output_offset`, `output_multiplier` int32[C_out], `output_shift` int32[C_out], `per_channel`, `act_min`, `act_max`, `in_h`, `in_w`, `in_c`, `out_h`, `out_w`, `out_c`, `kernel_h`, `kernel_w`, `stride_h`, `stride_w`, `pad_h`, `pad_w` (output rows/cols cut before the first: TF's 'same' rule for a conv from the output's size), `has_bias` |
| `resize_nearest_neighbor` | `in_h`, `in_w`, `channels`, `out_h`, `out_w`, `align_corners`, `half_pixel_centers` (bools), `in_y` int[out_h], `in_x` int[out_w] (the input row / column of each output one) |
| `resize_bilinear` | `in_h`, `in_w`, `channels`, `out_h`, `out_w`, `align_corners`, `half_pixel_centers`, `height_scale_10`, `width_scale_10` (input size / output size in 1/1024) |
| `max_pool_2d`, `average_pool_2d` | `in_h`, `in_w`, `channels`, `out_h`, `out_w`, `pool_h`, `pool_w`, `stride_h`, `stride_w`, `pad_h`, `pad_w`, `act_min`, `act_max` |
| `mean` | `axes` (sorted, of the input without the batch), `count` (values per output), `output_size`, `kept_extent`, `kept_stride`, `reduced_extent`, `reduced_stride` (4 each, padded in front with 1 and 0: a flat output index, or an index among the count values, unravelled over them gives its part of the input offset), `input_zero_point`, `output_zero_point`, `output_multiplier`, `output_shift` (with the division by count folded in); over H and W of (H, W, C) also `in_h`, `in_w`, `channels` (the tuned kernels' case) |
| `sum` | `axes`, `count`, `output_size`, `kept_extent`, `kept_stride`, `reduced_extent`, `reduced_stride`, `input_zero_point`, `output_zero_point`, `output_multiplier`, `output_shift` (s_in / s_out) |
| `reduce_max`, `reduce_min` | `axes`, `count`, `output_size`, `kept_extent`, `kept_stride`, `reduced_extent`, `reduced_stride` (input and output share one quantization) |
| `arg_max`, `arg_min` | `axis` (of the sample), `outer`, `axis_size`, `inner` (the input as (outer, axis_size, inner)), `size` (the output an int32 index, scale 1 and zero point 0) |
| `add`, `sub` | `input1_offset`, `input2_offset` (-z), `output_offset` (z_out), `left_shift` (20), `input1_multiplier`, `input1_shift`, `input2_multiplier`, `input2_shift`, `output_multiplier`, `output_shift` (all shifts <= 0), `act_min`, `act_max`; and as every element-wise kind below: `input1_shape`, `input2_shape`, `output_shape`, `input1_constant`, `input2_constant`, `broadcast`, `size` |
| `mul` | `input1_offset`, `input2_offset`, `output_offset`, `output_multiplier`, `output_shift` (s_1 * s_2 / s_out), `act_min`, `act_max`, `input1_shape`, `input2_shape`, `output_shape`, `input1_constant`, `input2_constant`, `broadcast`, `size` |
| `squared_difference` | `input1_offset`, `input2_offset`, `output_offset`, `left_shift` (7), `input1_multiplier`, `input1_shift`, `input2_multiplier`, `input2_shift`, `output_multiplier`, `output_shift` (either sign), `act_min`, `act_max`, `input1_shape`, `input2_shape`, `output_shape`, `input1_constant`, `input2_constant`, `broadcast`, `size` |
| `maximum`, `minimum` | `input1_shape`, `input2_shape`, `output_shape`, `input1_constant`, `input2_constant`, `broadcast`, `size` (inputs and output share one quantization) |
| `reshape` | `size` |
| `softmax` | `input_multiplier`, `input_left_shift` (>= 0), `diff_min` (negative), `depth` (last axis), `outer` (rows) |
| `l2_normalization` | `input_zero_point`, `depth` (the last axis), `outer` (rows), `size` (output scale 1/128, zero point 0) |
| `logistic`, `tanh` | `input_zero_point`, `input_range_radius`, `input_multiplier`, `input_left_shift`, `size` |
| `relu` | `input_zero_point`, `output_zero_point`, `output_multiplier`, `output_shift`, `act_min`, `act_max`, `size` |
| `relu6` | `lower` (z_in: real 0), `upper` (real 6 in the input's quantization), `size` |
| `leaky_relu` | `input_zero_point`, `output_zero_point`, `output_multiplier_alpha`, `output_shift_alpha` (alpha * s_in / s_out), `output_multiplier_identity`, `output_shift_identity` (s_in / s_out), `size` |
| `prelu` | `input_offset`, `alpha_offset` (-z), `output_offset`, `output_multiplier_1`, `output_shift_1` (s_in / s_out), `output_multiplier_2`, `output_shift_2` (s_in * s_alpha / s_out), `input1_shape`, `input2_shape`, `output_shape`, `input1_constant`, `input2_constant`, `broadcast`, `size` (input 2 is alpha) |
| `elu` | `input_zero_point`, `output_zero_point`, `table` int8[256] (the output of every input q at index q + 128), `size` |
| `neg`, `square` | `input_zero_point`, `output_zero_point`, `table` int8[256] (as elu's), `size` |
| `abs`, `rsqrt` | `input_zero_point`, `output_zero_point`, `needs_rescale` (abs: the scales differ), `output_multiplier`, `output_shift` (abs: s_in / s_out; rsqrt: 1 / (sqrt(s_in) s_out)), `table` int8[256] (as elu's), `size` |
| `hard_swish` | `input_zero_point`, `output_zero_point`, `output_multiplier_fixedpoint_int16`, `output_multiplier_exponent` (<= 0), `reluish_multiplier_fixedpoint_int16`, `reluish_multiplier_exponent` (int16 Q15 multipliers), `size` |
| `quantize` | `input_zero_point`, `output_zero_point`, `output_multiplier`, `output_shift` (s_in / s_out), `size` |
| `concatenation`, `pack` | `axis` (of the sample), `outer` (blocks: the product of the output's dimensions before the axis), `copy_sizes` (values each input gives a block), `inputs_count`, `size` |
| `split`, `split_v`, `unpack` | `axis`, `outer` (blocks of the input), `copy_sizes` (values of a block each output takes), `outputs_count`, `size` (the input's) |
| `pad` | `in_shape`, `out_shape`, `before` (entries in front, per dimension), `pad_value` (int8), `size` |
| `mirror_pad` | `in_shape`, `out_shape`, `before` (entries in front, per dimension), `offset` (REFLECT 1, SYMMETRIC 0), `input_index` (per dimension, the input index each output index copies), `size` |
| `strided_slice`, `slice` | `in_shape`, `start`, `stride`, `count` (entries taken, per input dimension; a shrunk one counts 1), `size` |
| `transpose` | `in_shape`, `perm` (output dimension d is input dimension perm[d]), `size` |
| `depth_to_space`, `space_to_depth` | `block_size`, `in_h`, `in_w`, `in_c`, `out_h`, `out_w`, `out_c`, `size` |
| `unidirectional_sequence_lstm` | `time_steps`, `features`, `units`, `input_offset` (-z_x), `hidden_offset` (-z_h), `input_multiplier`, `input_shift`, `recurrent_multiplier`, `recurrent_shift` (4 each, gates input, forget, cell, output: s_x * s_W / 2^-12 and s_h * s_R / 2^-12), `forget_mul_multiplier`, `forget_mul_shift` (2^-15), `input_mul_multiplier`, `input_mul_shift` (2^-30 / s_c), `hidden_mul_multiplier`, `hidden_mul_shift` (2^-30 / s_h), `hidden_zero_point`, `hidden_min`, `hidden_max`, `cell_tanh_multiplier`, `cell_tanh_left_shift` (c to Q3.12 for tanh), `clip_cell` (bool: the op has a cell clip), `cell_clip` (+-its int16 bound) |

Data movement (concatenation.py, split.py, pad.py, strided_slice.py, transpose.py) counts the
dimensions of one sample: axis 0 is the first after the batch (the `.tflite` importer and
writer shift TFLite's axes, masks and permutations by the batch dimension). With several
outputs (SPLIT, SPLIT_V, UNPACK) `run` returns a list, and `run_outputs` one array per output.

In the 16x8 scheme the keys are the same (squared_difference's left_shift is 0 there), but
for three kinds: softmax holds
input_multiplier, input_left_shift (either sign), exp_lut and one_over_one_plus_x_lut
(int16[513] tables), depth and outer; logistic and tanh hold input_multiplier (0 for a
power-of-two input scale), input_left_shift (>= 0) and size.
"""
import numpy as np

from ..errors import GraphError
from . import (abs_rsqrt, activations, add, arg_min_max, batch_matmul, concatenation, conv_2d, depth_space, depthwise_conv_2d,
               elu, float_unary, fully_connected, hard_swish, l2_normalization, leaky_relu, logistic_tanh, lstm,
               maximum_minimum, mirror_pad, mul, pad, pooling,
               prelu, quantize, reduce, reshape, resize, softmax, split, squared_difference,
               strided_slice, sub, transpose, transpose_conv)
from .common import ActivationRangeError, fail

# kind -> the module that prepares and runs it, in the order docs/READING.md meets them.
KERNELS = {kind: module
           for module in (fully_connected, conv_2d, depthwise_conv_2d, transpose_conv, batch_matmul,
                          pooling, resize,
                          reduce, arg_min_max, add, sub,
                          mul, maximum_minimum, squared_difference, reshape, softmax, l2_normalization,
                          logistic_tanh, activations, leaky_relu, prelu, hard_swish, elu, abs_rsqrt, float_unary,
                          quantize, concatenation, split, pad, mirror_pad, strided_slice, transpose, depth_space,
                          lstm)
           for kind in module.KINDS}
# the kinds that also run with int16 activations (TFLite's 16x8 scheme)
INT16_KINDS = tuple(kind for kind, module in KERNELS.items() if kind in getattr(module, "INT16_KINDS", ()))


def activation_dtype(op, tensors):
    """'int16' if the op's activations are int16 (the 16x8 scheme), else 'int8'; an op
    mixing the two is refused (TFLite's kernels take one type in and out), but for QUANTIZE,
    TFLM's requantization between them (the op's type is its output's)."""
    # an LSTM's cell state is int16 in either scheme: its input and output say which
    names = op.inputs[:1] + op.outputs if op.kind in lstm.KINDS else \
        op.outputs if op.kind == "quantize" else op.inputs + op.outputs
    types = {tensors[n].dtype for n in names
             if not tensors[n].is_constant and tensors[n].dtype in ("int8", "int16")}
    if len(types) > 1:
        fail(op, "mixes int8 and int16 activations; a 16x8 model's activations are all int16")
    dtype = types.pop() if types else "int8"
    if dtype == "int16" and op.kind not in INT16_KINDS:
        fail(op, f"no 16x8 (int16 activation) kernel for this kind; 16x8 runs: {', '.join(INT16_KINDS)}")
    return dtype


def prepare(op, tensors, single_rounding=False):
    """TFLM's Prepare: check `op` against its tensors, compute its integer parameters once.

    `single_rounding` selects TFLITE_SINGLE_ROUNDING's requantization (default: TFLM's
    default double rounding). Raises GraphError naming the op for anything out of range.
    """
    for name in op.inputs + op.outputs:
        if name not in tensors:
            fail(op, f"tensor {name!r} does not exist")
    if op.kind not in KERNELS:
        fail(op, f"no int8 kernel for this kind (known: {', '.join(KERNELS)})")
    kernel = KERNELS[op.kind]
    lo, hi = kernel.INPUTS
    n_out = getattr(kernel, "OUTPUTS", (1, 1))       # SPLIT, SPLIT_V, UNPACK: several
    if not lo <= len(op.inputs) <= hi or not n_out[0] <= len(op.outputs) <= n_out[1]:
        fail(op, f"expects {lo}..{hi} inputs and {n_out[0]}..{n_out[1]} outputs, got "
                 f"{len(op.inputs)} and {len(op.outputs)}")
    dtype = activation_dtype(op, tensors)
    try:
        params = kernel.prepare(op, tensors, bool(single_rounding))
    except ActivationRangeError as e:
        fail(op, str(e))
    params["single_rounding"] = bool(single_rounding)
    params["dtype"] = dtype
    return params


def run(op, tensors, args):
    """TFLM's Eval, batched: `args` are the arrays of `op.inputs` (activations (N, ...) int8,
    or int16 in the 16x8 scheme; constants as stored); returns the output (N, *output.shape)
    of a one-output op."""
    if len(op.outputs) != 1:
        raise GraphError(f"op {op.name!r} ({op.kind}) has {len(op.outputs)} outputs: use run_outputs")
    return run_outputs(op, tensors, args)[0]


def run_outputs(op, tensors, args):
    """As `run`, for any number of outputs: [(N, *shape) per name in op.outputs]."""
    if op.params is None:
        raise GraphError(f"op {op.name!r}: prepare() has not been called")
    args = [np.asarray(a) for a in args]
    # the batch comes from the first activation (an element-wise op's input 1 may be a constant)
    x = next(a for name, a in zip(op.inputs, args) if not tensors[name].is_constant)
    for name, a in zip(op.inputs, args):
        want, dtype = tensors[name].shape, tensors[name].dtype
        if not tensors[name].is_constant and (a.dtype != dtype or a.shape[1:] != want or len(a) != len(x)):
            raise GraphError(f"op {op.name!r} ({op.kind}): input {name!r} must be {dtype} "
                             f"(N, {', '.join(map(str, want))}), got {a.dtype} {a.shape}")
    result = KERNELS[op.kind].run(op, op.params, *args)
    results = result if isinstance(result, list) else [result]    # a list: several outputs
    return [r.reshape((x.shape[0],) + tensors[name].shape) for r, name in zip(results, op.outputs)]
