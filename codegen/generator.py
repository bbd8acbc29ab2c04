"""QModel -> readable, dependency-free C99: `generate(qmodel, out_dir, name=...)`.

What is written (NAME is the model's C prefix):

    NAME_model.h          the public interface: sizes, scales, zero points, NAME_invoke()
    NAME_model.c          the kernels, weights, one static function per layer, the arena, NAME_invoke()
    NAME_manifest.json    shapes, sizes, per-layer MACs and bytes, the arena plan
    NAME.qmodel.npz       the QModel the C was generated from (QModel.load reads it back)

How. Every number the C needs was computed in Python already: `QModel.prepare()` fills
`op.params` (multipliers, shifts, offsets, clamps, paddings; minitiny/quant/kernels/) and
`planner.py` gives every activation an offset in the arena. This file only gathers those
numbers into a context and renders the Jinja2 templates in `templates/` (templating.py):
one per op kind and kernel variant (KERNEL_VARIANTS below), `model.c.j2` around them,
`fixedpoint.c.j2` with the integer helpers. The C is never assembled from strings here;
filters only format numbers (`c_int`, `c_row`, ...).

Files are rendered in memory, written to a temporary directory and moved into place only
when all of them succeeded, so a failure never leaves half a model behind.
"""
import copy
import hashlib
import json

import numpy as np

from minitiny.quant import fixedpoint as fp
from minitiny.quant.graph import QModel, QOp, QTensor
from minitiny.quant.threshold import ThresholdError, threshold_to_int8

from . import dsp, elementwise, fast16, inplace, lut, planner, resize, stream, transpose_conv
from .float_codegen import generate_float
from .names import Namer, c_comment, c_identifier, c_macro_prefix
from .output import GENERATOR, CodegenError, Generated, write_atomically
from .templating import environment, identifiers
from .windows import WINDOWED, window_edges

# -- the kernel variants: one template per op kind and variant ---------------------------
# Op kinds whose every variant shares one template (no variant has a faster form yet).
SHARED_TEMPLATES = {
    "reshape": "reshape.c.j2",
    "softmax": "softmax.c.j2",
    "logistic": "logistic_tanh.c.j2",
    "tanh": "logistic_tanh.c.j2",
    "relu": "relu.c.j2",
    "relu6": "relu.c.j2",       # one template for both: relu6 is a clamp to [lower, upper]
}
# Op kinds with a template per variant.
VARIANT_KINDS = ("fully_connected", "conv_2d", "depthwise_conv_2d", "transpose_conv", "resize_bilinear",
                 "max_pool_2d", "average_pool_2d", "mean", "add")
# The variants. Every one computes the same bits as QModel.predict_int8 (the tests run each
# against it); they differ in how the C reads and how fast it runs.
#   "reference" TFLM's reference kernels (tensorflow/lite/kernels/internal/reference/integer_ops):
#               their loop order and names, one generic static function per op kind called
#               by every layer of that kind with its constants; the C to read (the default).
#   "scalar"    portable C tuned per layer (four outputs at a time, the input offset folded
#               into the bias, windows clipped once per pixel): cores without the DSP
#               extension (Cortex-M0/M0+/M3). Here and in "dsp" and "auto", an op whose
#               output value depends on one input value is a table lookup (lut.py).
#   "dsp"       the DSP-SIMD kernels of dsp.py where an op kind has one, else "scalar":
#               Cortex-M4/M7/M33/M55 only (the C stops with #error without __ARM_FEATURE_DSP).
#   "auto"      "dsp" and "scalar" both, chosen by the compiler: the DSP kernels when
#               __ARM_FEATURE_DSP is defined and MINITINY_SCALAR is not (the fastest build
#               for any core), else the scalar ones.
# Data movement (and the requantization): one generic reference kernel per kind that every
# variant calls (nothing to tune: copies); kinds that move bytes the same way share one.
MOVEMENT_TEMPLATES = {
    "quantize": "reference/requantize.c.j2",
    "concatenation": "reference/concatenation.c.j2", "pack": "reference/concatenation.c.j2",
    "split": "reference/split.c.j2", "split_v": "reference/split.c.j2", "unpack": "reference/split.c.j2",
    "pad": "reference/pad.c.j2", "mirror_pad": "reference/mirror_pad.c.j2",
    "strided_slice": "reference/strided_slice.c.j2", "slice": "reference/strided_slice.c.j2",
    "transpose": "reference/transpose.c.j2",
    "depth_to_space": "reference/depth_to_space.c.j2", "space_to_depth": "reference/space_to_depth.c.j2",
}
# Op kinds every variant runs with the reference kernel (no tuned form yet; but the tuned
# variants compute a layer by table lookup where lut.py finds one).
REFERENCE_ONLY_TEMPLATES = {
    "maximum": "reference/maximum_minimum.c.j2", "minimum": "reference/maximum_minimum.c.j2",
    "squared_difference": "reference/squared_difference.c.j2",
    "leaky_relu": "reference/leaky_relu.c.j2", "prelu": "reference/prelu.c.j2",
    "hard_swish": "reference/hard_swish.c.j2",
    "elu": "reference/lookup_table.c.j2", "abs": "reference/lookup_table.c.j2",
    "rsqrt": "reference/lookup_table.c.j2", "neg": "reference/lookup_table.c.j2",
    "square": "reference/lookup_table.c.j2",
    **MOVEMENT_TEMPLATES,
    "sum": "reference/mean_or_sum.c.j2", "reduce_max": "reference/reduce_max.c.j2",
    "reduce_min": "reference/reduce_min.c.j2",
    "resize_nearest_neighbor": "reference/resize_nearest_neighbor.c.j2",
    "batch_matmul": "reference/batch_matmul.c.j2",
    "l2_normalization": "reference/l2_normalization.c.j2",
    "unidirectional_sequence_lstm": "reference/unidirectional_sequence_lstm.c.j2",
}
REFERENCE_TEMPLATES = {**{kind: f"reference/{kind}.c.j2" for kind in VARIANT_KINDS + ("sub", "mul")},
                       **REFERENCE_ONLY_TEMPLATES,
                       "mean": "reference/mean_or_sum.c.j2"}     # TFLM's QuantizedMeanOrSum
# add, sub and mul share one tuned template (constants in the code, the broadcast as few loops)
SCALAR_TEMPLATES = {**{kind: f"scalar/{kind}.c.j2" for kind in VARIANT_KINDS},
                    **{kind: "scalar/elementwise.c.j2" for kind in ("add", "sub", "mul")}}
KERNEL_VARIANTS = {
    "reference": {**SHARED_TEMPLATES, **REFERENCE_TEMPLATES},
    "scalar": {**SHARED_TEMPLATES, **SCALAR_TEMPLATES, **REFERENCE_ONLY_TEMPLATES},
    "dsp": {**SHARED_TEMPLATES, **SCALAR_TEMPLATES, **REFERENCE_ONLY_TEMPLATES, **dsp.TEMPLATES},
    "auto": {**SHARED_TEMPLATES, **SCALAR_TEMPLATES, **REFERENCE_ONLY_TEMPLATES, **dsp.TEMPLATES},
}
DEFAULT_VARIANT = "reference"
DSP_VARIANTS = {"dsp", "auto"}     # variants with DSP-SIMD kernels
BOTH_KERNELS = {"auto"}            # variants that emit the scalar kernel beside the DSP one
# The op kinds the C implements (the same in every variant).
TEMPLATES = KERNEL_VARIANTS[DEFAULT_VARIANT]
# The reference variant's generic kernels: templates rendered once (section "kernel") before
# the layers, in this order, for the kinds a model uses; each layer then renders its
# constants and its call (section "layer").
REFERENCE_KERNELS = {
    "fully_connected": ["reference/fully_connected.c.j2"],
    "conv_2d": ["reference/conv_2d.c.j2"],
    "depthwise_conv_2d": ["reference/depthwise_conv_2d.c.j2"],
    "transpose_conv": ["reference/transpose_conv.c.j2"],
    "batch_matmul": ["reference/batch_matmul.c.j2"],
    "l2_normalization": ["reference/l2_normalization.c.j2"],
    "resize_nearest_neighbor": ["reference/resize_nearest_neighbor.c.j2"],
    "resize_bilinear": ["reference/resize_bilinear.c.j2"],
    "max_pool_2d": ["reference/pool_params.c.j2", "reference/max_pool_2d.c.j2"],
    "average_pool_2d": ["reference/pool_params.c.j2", "reference/average_pool_2d.c.j2"],
    "mean": ["reference/reduce_params.c.j2", "reference/mean_or_sum.c.j2"],
    "sum": ["reference/reduce_params.c.j2", "reference/mean_or_sum.c.j2"],
    "reduce_max": ["reference/reduce_params.c.j2", "reference/reduce_max.c.j2"],
    "reduce_min": ["reference/reduce_params.c.j2", "reference/reduce_min.c.j2"],
    # the element-wise kinds: the shared loops (reference/elementwise.c.j2), then the op's function
    "add": ["reference/elementwise.c.j2", "reference/add.c.j2"],
    "sub": ["reference/elementwise.c.j2", "reference/sub.c.j2"],
    "mul": ["reference/elementwise.c.j2", "reference/mul.c.j2"],
    "maximum": ["reference/elementwise.c.j2", "reference/maximum_minimum.c.j2"],
    "minimum": ["reference/elementwise.c.j2", "reference/maximum_minimum.c.j2"],
    "squared_difference": ["reference/elementwise.c.j2", "reference/squared_difference.c.j2"],
    "prelu": ["reference/elementwise.c.j2", "reference/prelu.c.j2"],
    "leaky_relu": ["reference/leaky_relu.c.j2"],
    "hard_swish": ["reference/hard_swish.c.j2"],
    "elu": ["reference/lookup_table.c.j2"], "abs": ["reference/lookup_table.c.j2"],
    "rsqrt": ["reference/lookup_table.c.j2"], "neg": ["reference/lookup_table.c.j2"],
    "square": ["reference/lookup_table.c.j2"],
    **{kind: [template] for kind, template in MOVEMENT_TEMPLATES.items()},
    # the LSTM's gates call the int16 logistic and tanh of the 16x8 scheme, in either scheme
    "unidirectional_sequence_lstm": ["int16/sigmoid_table.c.j2", "int16/logistic_tanh.c.j2",
                                     "reference/unidirectional_sequence_lstm.c.j2"],
}

# A 16x8 model (int16 activations, int8 weights, int64 bias): the reference kernels above
# rendered with int16 types and int64 accumulators (the context's act_t, acc_t, bias_t,
# requantize), and three kernels of its own in templates/int16/. The other variants compute
# fully_connected, conv_2d and depthwise_conv_2d with the tuned kernels of codegen/fast16.py
# (templates/int16/scalar_*.c.j2, and dsp_*.c.j2 in "dsp" and "auto"); the rest with the reference ones.
INT16_TEMPLATES = {**REFERENCE_TEMPLATES, "reshape": "reshape.c.j2", "relu": "relu.c.j2", "relu6": "relu.c.j2",
                   "softmax": "int16/softmax.c.j2", "logistic": "int16/logistic_tanh.c.j2",
                   "tanh": "int16/logistic_tanh.c.j2"}
# ADD, SUB, MUL, the pools and the mean share the int8 tuned templates (the same arithmetic
# on int16_t as TFLM's int16 kernels: AddFunc, SubElementwise, MulElementwise, AveragePool,
# MaxPool, QuantizedMeanOrSum).
INT16_TUNED = {**fast16.SCALAR_TEMPLATES, **{kind: "scalar/elementwise.c.j2" for kind in ("add", "sub", "mul")},
               **{kind: f"scalar/{kind}.c.j2" for kind in ("max_pool_2d", "average_pool_2d", "mean")}}
INT16_VARIANTS = {
    "reference": INT16_TEMPLATES,
    "scalar": {**INT16_TEMPLATES, **INT16_TUNED},
    "dsp": {**INT16_TEMPLATES, **INT16_TUNED, **fast16.DSP_TEMPLATES},
    "auto": {**INT16_TEMPLATES, **INT16_TUNED, **fast16.DSP_TEMPLATES},
}
INT16_KERNELS = {**REFERENCE_KERNELS, "softmax": ["int16/softmax.c.j2"],
                 "logistic": ["int16/sigmoid_table.c.j2", "int16/logistic_tanh.c.j2"],
                 "tanh": ["int16/sigmoid_table.c.j2", "int16/logistic_tanh.c.j2"]}
# the C types of a model by its activations' dtype
C_TYPES = {
    "int8": dict(act_t="int8_t", act_lo=-128, act_hi=127, act_bytes=1, acc_t="int32_t",
                 bias_t="int32_t", requantize="MultiplyByQuantizedMultiplier", int16=False),
    "int16": dict(act_t="int16_t", act_lo=-32768, act_hi=32767, act_bytes=2, acc_t="int64_t",
                  bias_t="int64_t", requantize="MultiplyByQuantizedMultiplier64", int16=True),
}

# Which fixed-point helpers (fixedpoint.c.j2) each op kind calls directly; the helpers' own
# dependencies are in FIXEDPOINT_DEPENDS. Only what is used is emitted (-Wunused-function).
FIXEDPOINT_USES = {
    "fully_connected": ["MultiplyByQuantizedMultiplier"],
    "conv_2d": ["MultiplyByQuantizedMultiplier"],
    "depthwise_conv_2d": ["MultiplyByQuantizedMultiplier"],
    "transpose_conv": ["MultiplyByQuantizedMultiplier"],
    "batch_matmul": ["MultiplyByQuantizedMultiplier"],
    "l2_normalization": ["MultiplyByQuantizedMultiplier", "GetInvSqrtQuantizedMultiplierExp"],
    "mean": ["MultiplyByQuantizedMultiplier"],
    "sum": ["MultiplyByQuantizedMultiplier"],
    "add": ["MultiplyByQuantizedMultiplier"],
    "sub": ["MultiplyByQuantizedMultiplier"],
    "mul": ["MultiplyByQuantizedMultiplier"],
    "squared_difference": ["MultiplyByQuantizedMultiplier"],
    "leaky_relu": ["MultiplyByQuantizedMultiplier"],
    "prelu": ["MultiplyByQuantizedMultiplier"],
    "relu": ["MultiplyByQuantizedMultiplier"],
    "quantize": ["MultiplyByQuantizedMultiplier"],
    "softmax": ["MultiplyByQuantizedMultiplierGreaterThanOne", "exp_on_negative_values",
                "GetReciprocal", "RoundingDivideByPOT", "SaturatingRoundingDoublingHighMul"],
    "logistic": ["MultiplyByQuantizedMultiplier", "gemmlowp_logistic", "RoundingDivideByPOT"],
    "tanh": ["MultiplyByQuantizedMultiplier", "gemmlowp_tanh", "RoundingDivideByPOT"],
    # 16x8 (keys: kind + "_int16")
    "fully_connected_int16": ["MultiplyByQuantizedMultiplier64"],
    "conv_2d_int16": ["MultiplyByQuantizedMultiplier64"],
    "depthwise_conv_2d_int16": ["MultiplyByQuantizedMultiplier64"],
    "transpose_conv_int16": ["MultiplyByQuantizedMultiplier64"],
    "mean_int16": ["MultiplyByQuantizedMultiplier"],
    "sum_int16": ["MultiplyByQuantizedMultiplier"],
    "squared_difference_int16": ["MultiplyByQuantizedMultiplier"],
    "relu_int16": ["MultiplyByQuantizedMultiplier"],
    "leaky_relu_int16": ["MultiplyByQuantizedMultiplier"],
    "prelu_int16": ["MultiplyByQuantizedMultiplier"],
    "quantize_int16": ["MultiplyByQuantizedMultiplier"],
    "add_int16": ["MultiplyByQuantizedMultiplier"],
    "sub_int16": ["MultiplyByQuantizedMultiplier"],
    "mul_int16": ["MultiplyByQuantizedMultiplier"],
    "softmax_int16": ["MultiplyByQuantizedMultiplier", "CountLeadingZeros"],
    "unidirectional_sequence_lstm": ["MultiplyByQuantizedMultiplier"],
    "unidirectional_sequence_lstm_int16": ["MultiplyByQuantizedMultiplier64", "MultiplyByQuantizedMultiplier"],
}
FIXEDPOINT_DEPENDS = {
    "RoundingDivideByPOT": [],
    "SaturatingRoundingDoublingHighMul": [],
    "SaturatingRoundingMultiplyByPOT": ["RoundingDivideByPOT"],
    "MultiplyByQuantizedMultiplier": ["SaturatingRoundingDoublingHighMul", "RoundingDivideByPOT"],
    "MultiplyByQuantizedMultiplier64": [],
    "MultiplyByQuantizedMultiplierGreaterThanOne": ["SaturatingRoundingDoublingHighMul"],
    "RoundingHalfSum": [],
    "exp_on_interval_between_negative_one_quarter_and_0_excl":
        ["SaturatingRoundingDoublingHighMul", "SaturatingRoundingMultiplyByPOT"],
    "exp_on_negative_values": ["exp_on_interval_between_negative_one_quarter_and_0_excl",
                               "SaturatingRoundingDoublingHighMul", "SaturatingRoundingMultiplyByPOT"],
    "newton_raphson_reciprocal": ["SaturatingRoundingDoublingHighMul", "SaturatingRoundingMultiplyByPOT"],
    "one_over_one_plus_x_for_x_in_0_1": ["RoundingHalfSum", "newton_raphson_reciprocal",
                                         "SaturatingRoundingMultiplyByPOT"],
    "one_minus_x_over_one_plus_x_for_x_in_0_1": ["RoundingHalfSum", "newton_raphson_reciprocal",
                                                 "SaturatingRoundingMultiplyByPOT"],
    "CountLeadingZeros": [],
    "GetReciprocal": ["CountLeadingZeros", "one_over_one_plus_x_for_x_in_0_1"],
    "gemmlowp_logistic": ["exp_on_negative_values", "one_over_one_plus_x_for_x_in_0_1"],
    "gemmlowp_tanh": ["exp_on_negative_values", "one_minus_x_over_one_plus_x_for_x_in_0_1"],
    "GetInvSqrtQuantizedMultiplierExp": ["CountLeadingZeros", "SaturatingRoundingMultiplyByPOT",
                                         "SaturatingRoundingDoublingHighMul"],
}
# With TFLITE_SINGLE_ROUNDING, requantization is one 64-bit multiply and shift.
FIXEDPOINT_DEPENDS_SINGLE_ROUNDING = {
    "MultiplyByQuantizedMultiplier": [],
    "MultiplyByQuantizedMultiplierGreaterThanOne": ["MultiplyByQuantizedMultiplier"],
}

# Flash bytes of code, the estimate in the layer table and the manifest: Thumb-2 code of each
# kernel and helper under arm-none-eabi-gcc -Os -mcpu=cortex-m4 -fno-inline, as `python -m
# minitiny.codegen.sizes DIR` reads it on single-layer models (a per-layer kernel's size
# varies with its shapes; the firmware build reports the exact size of a linked image).
# CODE_BYTES: the scalar (and shared) kernels, one copy per layer.
CODE_BYTES = {
    "fully_connected": 250, "conv_2d": 340, "depthwise_conv_2d": 430, "transpose_conv": 500, "resize_bilinear": 260,
    "max_pool_2d": 160,
    "average_pool_2d": 270, "mean": 90, "add": 100, "sub": 100, "mul": 80, "reshape": 0, "softmax": 160,
    "logistic": 80, "tanh": 70, "relu": 60, "relu6": 40,
}
CODE_BYTES_HELPERS = {
    "SaturatingRoundingDoublingHighMul": 72, "RoundingDivideByPOT": 28,
    "SaturatingRoundingMultiplyByPOT": 50, "MultiplyByQuantizedMultiplier": 32,
    "MultiplyByQuantizedMultiplier64": 32,
    "MultiplyByQuantizedMultiplierGreaterThanOne": 10, "RoundingHalfSum": 54,
    "exp_on_interval_between_negative_one_quarter_and_0_excl": 82, "exp_on_negative_values": 104,
    "newton_raphson_reciprocal": 56, "one_over_one_plus_x_for_x_in_0_1": 18,
    "one_minus_x_over_one_plus_x_for_x_in_0_1": 22, "CountLeadingZeros": 30, "GetReciprocal": 30,
    "gemmlowp_logistic": 50, "gemmlowp_tanh": 32, "GetInvSqrtQuantizedMultiplierExp": 180,
}
CODE_BYTES_INVOKE, CODE_BYTES_PER_CALL = 56, 4      # NAME_invoke: copies, checks, one call per layer
# the table kernel (templates/scalar/lut.c.j2) of the tuned variants, without its table
LUT_TEMPLATE, CODE_BYTES_LUT = "scalar/lut.c.j2", 48
# The reference variant: each generic kernel once per model, and per layer the small function
# that calls it with the layer's constants; the constants' params struct in flash (int fields).
CODE_BYTES_REFERENCE = {
    "fully_connected": 140, "conv_2d": 390, "depthwise_conv_2d": 360, "max_pool_2d": 130,
    "average_pool_2d": 160, "mean": 150, "sum": 150, "reduce_max": 110, "reduce_min": 110,
    # measured on two-layer models, so the compiler keeps the kernel general (one caller
    # lets it fold the constants in: tests/test_codegen_models.py measures these again)
    "transpose_conv": 380, "resize_nearest_neighbor": 90, "resize_bilinear": 540,
    "batch_matmul": 200, "l2_normalization": 110,
    # the element-wise kinds: the op's function with one of the loops it shares (each counted
    # with every kind), measured on one-layer models with a broadcast
    "add": 170, "sub": 170, "mul": 150, "maximum": 110, "minimum": 110, "squared_difference": 175,
    "prelu": 165, "leaky_relu": 105, "hard_swish": 295, "elu": 28, "abs": 28, "rsqrt": 28, "neg": 28, "square": 28,
    # 16x8's own kernels, with their tables (512 bytes of sigmoid, 2 x 1026 of softmax LUTs)
    "softmax": 160 + 2052, "logistic": 80 + 512, "tanh": 70 + 512,
    "quantize": 64, "concatenation": 68, "pack": 68, "split": 68, "split_v": 68, "unpack": 68,
    "pad": 170, "strided_slice": 160, "slice": 160, "transpose": 244,
    "depth_to_space": 110, "space_to_depth": 110, "mirror_pad": 260,
    # the LSTM with the int16 logistic and tanh it calls and their 512-byte table
    "unidirectional_sequence_lstm": 560 + 512,
}
CODE_BYTES_CALL = 8
REFERENCE_PARAMS_BYTES = {
    "fully_connected": 7 * 4, "conv_2d": 18 * 4, "depthwise_conv_2d": 19 * 4, "max_pool_2d": 13 * 4,
    "average_pool_2d": 13 * 4, "mean": 24 * 4, "sum": 24 * 4, "reduce_max": 24 * 4, "reduce_min": 24 * 4, "add": 12 * 4,
    "transpose_conv": 16 * 4, "resize_nearest_neighbor": 4 * 4, "resize_bilinear": 8 * 4,
    "batch_matmul": 18 * 4, "l2_normalization": 0,
    "sub": 12 * 4, "mul": 12 * 4,
    "maximum": 12 * 4, "minimum": 12 * 4, "squared_difference": 12 * 4, "prelu": 7 * 4,
    "leaky_relu": 7 * 4, "hard_swish": 6 * 4, "elu": 256, "abs": 256, "rsqrt": 256, "neg": 256, "square": 256,   # tables
    "softmax": 4 * 4, "logistic": 0, "tanh": 0,
    "quantize": 5 * 4, "concatenation": 3 * 4, "pack": 3 * 4, "split": 3 * 4, "split_v": 3 * 4,
    "unpack": 3 * 4, "pad": 16 * 4, "strided_slice": 20 * 4, "slice": 20 * 4, "transpose": 10 * 4,
    "depth_to_space": 6 * 4, "space_to_depth": 6 * 4, "mirror_pad": 16 * 4,
    "unidirectional_sequence_lstm": 40 * 4,
}

# Names the generated .c declares itself: a layer may not take them (nor any identifier the
# templates spell out: locals such as out_y, helpers, types; see names.template_identifiers).
# <arm_acle.h>'s type names, declared in a model with DSP kernels.
RESERVED = {"arena", "stream_copy", "stream_fill"} | set(FIXEDPOINT_DEPENDS) | {"int16x2_t", "uint16x2_t", "int8x4_t", "uint8x4_t"}
LSTM_WEIGHTS = tuple(f"{src}_{gate}_weight" for src in ("input", "recurrent")
                     for gate in ("input", "forget", "cell", "output"))
LSTM_BIASES = tuple(f"{gate}_gate_bias" for gate in ("input", "forget", "cell", "output"))
LAYER_SUFFIXES = ("", "_weight", "_bias", "_output_multiplier", "_output_shift", "_rounding", "_channel",
                  "_params", "_shape", "_input1", "_input2", "_alpha", "_table", "_multiplier", "_offset",
                  "_weights") + tuple("_" + c for c in LSTM_WEIGHTS + LSTM_BIASES)


# -- hashing -------------------------------------------------------------------------------
def model_hash(qmodel):
    """SHA-256 over everything that defines the model: structure, options and every array."""
    h = hashlib.sha256()
    structure = {"name": qmodel.name, "inputs": qmodel.inputs, "outputs": qmodel.outputs,
                 "single_rounding": bool(getattr(qmodel, "single_rounding", False)),
                 "ops": [[op.kind, op.name, op.inputs, op.outputs, sorted(op.options.items())]
                         for op in qmodel.ops],
                 "tensors": [[t.name, list(t.shape), t.dtype, t.quantized_dimension, t.is_constant]
                             + (["variable"] if t.variable else [])       # state (an LSTM's)
                             for t in qmodel.tensors.values()]}
    h.update(json.dumps(structure, sort_keys=True, default=str).encode())
    for t in qmodel.tensors.values():
        for arr in (t.scale, t.zero_point) + ((t.data,) if t.is_constant else ()):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# -- the input offset folded into the bias (the scalar fully_connected and conv_2d) ----------
def folded_bias(kind, p, weight, bias):
    """bias + input_offset * (sum of each output channel's weights), or None to keep the
    offset in the inner loop. The identity, exact in integers:

        sum_k w_k (x_k + input_offset) + bias = sum_k w_k x_k + (bias + input_offset * sum_k w_k)

    It holds when every tap of the sum meets a real input value: always for
    fully_connected; for conv_2d only when every window lies inside the image (no padding
    before, pad_h = pad_w = 0, and none after: the last window ends inside), since at a
    padded border the kernel skips the taps outside the image and the folded bias would
    still count them. Overflow: with the offset folded, the partial sums are
    bias' + sum_{k<j} w_k x_k, |x| <= 128, so |partial sum| <= max|bias'| + 128 sum|w|; that
    must stay below 2^31 (the C adds in int32), else the offset stays in the loop (Prepare's
    own bound, kernels/common.py check_accumulator, is for the unfolded sums)."""
    if kind == "conv_2d" and (p["pad_h"] or p["pad_w"]
                              or (p["out_h"] - 1) * p["stride_h"] + p["kernel_h"] > p["in_h"]
                              or (p["out_w"] - 1) * p["stride_w"] + p["kernel_w"] > p["in_w"]):
        return None
    w = np.asarray(weight, dtype=np.int64).reshape(np.shape(weight)[0], -1)   # (out_c, fan_in)
    b = np.asarray(bias, dtype=np.int64) if bias is not None else np.zeros(w.shape[0], np.int64)
    folded = b + int(p["input_offset"]) * w.sum(axis=1)
    if int(np.abs(folded).max(initial=0) + 128 * np.abs(w).sum(axis=1).max(initial=0)) >= 1 << 31:
        return None
    return folded


# -- the context the templates read --------------------------------------------------------
def _plain(value):
    """op.params values for Jinja: NumPy scalars -> bool/int/float, arrays stay arrays."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return value
    value = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
    return value


def _tensor_view(t, offset=None):
    scale = t.scale if t.per_channel else float(t.scale)
    zero_point = t.zero_point if t.per_channel else int(t.zero_point)
    return {"label": c_comment(t.name), "shape": t.shape, "dtype": t.dtype,
            "size": int(np.prod(t.shape, dtype=np.int64)), "nbytes": t.nbytes,
            "scale": scale, "zero_point": zero_point, "per_channel": t.per_channel,
            "data": t.data, "offset": offset}


def io_tensors(qmodel, arena=None):
    """The model's inputs and outputs as the C names them: (inputs, outputs), lists of views
    with `role`, `arg` (the invoke parameter) and `macro` (its macros' stem). One input and
    one output keep the plain names (input, NAME_INPUT_SIZE, NAME_quantize_input); several
    are numbered in the model's order (input0, input1, NAME_INPUT0_SIZE, ...)."""
    views = []
    for role, names in (("input", qmodel.inputs), ("output", qmodel.outputs)):
        numbered = len(qmodel.inputs) > 1 or len(qmodel.outputs) > 1
        views.append([dict(_tensor_view(qmodel.tensors[n], arena.offsets[n] if arena else None),
                           name=n, role=role, index=i, arg=f"{role}{i if numbered else ''}",
                           macro=f"{role.upper()}{i if numbered else ''}")
                      for i, n in enumerate(names)])
    return views


def _layer(index, op, qmodel, arena, namer, variant, dsp_weights="int8", scalar=False):
    kind = op.kind
    int16 = (op.params or {}).get("dtype") == "int16"
    template = _int16_template(op, qmodel, variant) if int16 else KERNEL_VARIANTS[variant].get(kind)
    uses_dsp = _uses_dsp(op, qmodel, variant)
    if (scalar or scalar_is_faster(op)) and uses_dsp:   # no room for the DSP kernel's scratch, or slower
        template, uses_dsp = (fast16.SCALAR_TEMPLATES if int16 else SCALAR_TEMPLATES)[kind], False
    if reference_only(op) and not int16:
        template = REFERENCE_TEMPLATES[kind]
    # an op whose output value depends on one input value: a table lookup (codegen/lut.py)
    table = lut.layer_context(op, qmodel) if variant != "reference" and not int16 else None
    if table is not None:
        template = LUT_TEMPLATE
    dsp_template = None
    if variant in BOTH_KERNELS and uses_dsp:                         # "#if MINITINY_DSP ... #else ..."
        template, dsp_template = (fast16.SCALAR_TEMPLATES if int16 else SCALAR_TEMPLATES)[kind], template
    if template is None:
        raise CodegenError(f"model {qmodel.name!r}, layer {index} {op.name!r}: op kind {kind!r} "
                           f"has no C template; supported: {', '.join(sorted(TEMPLATES))}")
    if op.params is None:
        raise CodegenError(f"layer {op.name!r}: op.params is empty; call qmodel.prepare() first")
    p = {k: _plain(v) for k, v in op.params.items()}
    name = namer.claim(op.name, LAYER_SUFFIXES, fallback=kind)
    acts = [_tensor_view(t, arena.offsets[t.name]) for t in qmodel.activations(op)]
    consts = [_tensor_view(qmodel.tensors[n]) for n in op.inputs if qmodel.tensors[n].is_constant]
    outs = [_tensor_view(qmodel.tensors[n], arena.offsets[n]) for n in op.outputs]
    out = outs[0]
    # an element-wise op's constant operand is no weight: codegen/elementwise.py writes it
    ew = elementwise.layer_context(kind, p, qmodel, op) if kind in elementwise.ROLES and op.params and \
        table is None else None
    weight = consts[0] if consts and ew is None and table is None else None
    bias = consts[1] if len(consts) > 1 else None
    if weight is not None and kind == "depthwise_conv_2d":
        weight = dict(weight, data=weight["data"][0], shape=weight["shape"][1:])  # drop the leading 1
    per_channel = False
    if kind in ("fully_connected", "conv_2d", "depthwise_conv_2d", "transpose_conv"):
        per_channel = bool(len(set(p["output_multiplier"].tolist())) > 1
                           or len(set(p["output_shift"].tolist())) > 1)
    # bytes in flash: weights and bias, plus per-channel multipliers and shifts (int32 each);
    # a DSP kernel's weight layout may pad rows to a multiple of 4 (dsp.weight_bytes)
    dsp_weight_bytes = (None if not uses_dsp else fast16.weight_bytes(kind, p, qmodel.tensors[op.inputs[1]].data)
                        if int16 else dsp.weight_bytes(kind, p, dsp_weights))
    weight_bytes = (sum(c["nbytes"] for c in consts if table is None) + (8 * len(p["output_multiplier"]) if per_channel else 0)
                    + (dsp_weight_bytes - consts[0]["nbytes"] if dsp_weight_bytes is not None else 0))
    # the banner's integer parameters, a line per group (BANNER_GROUPS)
    integers = {k: v for k, v in p.items() if isinstance(v, int) and not isinstance(v, bool) and k != "macs"}
    if kind in ("fully_connected", "conv_2d", "depthwise_conv_2d", "transpose_conv") and not per_channel:
        integers.update(output_multiplier=int(p["output_multiplier"][0]), output_shift=int(p["output_shift"][0]))
    scalars = _banner_groups(integers)
    dsp_context = None
    if uses_dsp and int16:
        dsp_context = fast16.dsp_context(kind, p, qmodel.tensors[op.inputs[1]].data, arena.scratch.get(index))
    elif uses_dsp:
        dsp_context = dsp.layer_context(kind, p, qmodel.tensors[op.inputs[1]].data if weight is not None else None,
                                        bias["data"] if bias is not None else None,
                                        arena.scratch.get(index), dsp_weights)
    if per_channel and dsp_context is not None and dsp_context.get("rounding") is not None:
        weight_bytes += 4 * len(dsp_context["rounding"])   # requantize_doubled's rounding, an int32 per channel
        if kind == "conv_2d" and bias is None:                # conv_2d_dsp's per-channel table
            weight_bytes += 4 * len(dsp_context["rounding"])   # holds a bias of 0 too
    generic = template == REFERENCE_TEMPLATES.get(kind) or (int16 and template == INT16_TEMPLATES.get(kind)
                                                            and kind in INT16_KERNELS)
    # (the reference variant's kernel, shared by every layer of the kind)
    if int16 and kind in fast16.SCALAR_TEMPLATES and not generic:
        code_bytes = (fast16.DSP_CODE_BYTES if uses_dsp else fast16.CODE_BYTES)[kind]
    else:
        code_bytes = (dsp.CODE_BYTES[kind] if uses_dsp else CODE_BYTES_CALL if generic
                      else CODE_BYTES_LUT if table is not None else CODE_BYTES[kind])
    channel_multipliers = None
    if generic:
        weight_bytes += (REFERENCE_PARAMS_BYTES[kind] + (3 * 4 * 4 if ew and ew["shape"] else 0)
                         + 4 * len(p.get("copy_sizes", ())))     # concatenation's, split's sizes
        if kind in ("fully_connected", "conv_2d", "depthwise_conv_2d", "transpose_conv"):
            # the generic kernel takes a multiplier and a shift per output channel, as TFLM's
            channels = p["out_features"] if kind == "fully_connected" else p["out_c"]
            channel_multipliers = {k: np.broadcast_to(p[k], (channels,)) for k in ("output_multiplier", "output_shift")}
            weight_bytes += 0 if per_channel else 8 * channels
    # the scalar kernel's bias with the input offset folded in (None: the offset stays in the
    # loop); a layer without a bias gets one when the folded values are not all zero
    folded = None
    if kind in ("fully_connected", "conv_2d") and SCALAR_TEMPLATES[kind] in (template, dsp_template) and not int16:
        folded = folded_bias(kind, p, qmodel.tensors[op.inputs[1]].data, bias["data"] if bias else None)
        if folded is not None and bias is None and np.any(folded):
            weight_bytes += 4 * len(folded)
    gather = (transpose_conv.layer_context(p, qmodel.tensors[op.inputs[1]].data)
              if kind == "transpose_conv" and not generic else None)
    if gather is not None:                  # the taps' weight sums (int32) and ranges (int16 pairs)
        weight_bytes += 4 * gather["weight_sums"].size + 4 * (len(gather["rows"]) + len(gather["cols"]))
    lstm = lstm_context(op, qmodel, arena, index) if kind == "unidirectional_sequence_lstm" else None
    if lstm is not None:
        weight = bias = None               # its own constants: layer["lstm"]
    bilinear = resize.layer_context(p) if kind == "resize_bilinear" and not generic else None
    if bilinear is not None:                # its rows' and columns' tables (int16 quadruples)
        weight_bytes += 8 * (len(bilinear["rows"]) + len(bilinear["cols"]))
    return {"index": index, "name": name, "label": c_comment(op.name), "kind": kind, "int16": int16,
            "lstm": lstm,
            "template": template, "dsp_template": dsp_template, "generic": generic, "p": p,
            "channel_multipliers": channel_multipliers, "elementwise": ew, "lut": table, "gather": gather,
            "resize": bilinear,
            "dsp": dsp_context,
            "scratch_bytes": (fast16 if int16 else dsp).scratch_bytes(kind, p) if uses_dsp else 0, "options": op.options, "inputs": acts, "input": acts[0],
            "output": out, "outputs": outs, "weight": weight, "bias": bias, "per_channel": per_channel,
            "activation": op.options.get("activation", "none"), "macs": int(p.get("macs", 0)),
            "weight_bytes": int(weight_bytes), "code_bytes": code_bytes,
            "ram_bytes": arena.layer_bytes[index], "live_bytes": arena.live_bytes[index],
            "shared": arena.shared.get(op.name), "in_place": arena.in_place.get(op.name), "scalars": scalars,
            "folded_bias": folded, "window": window_edges(p) if kind in WINDOWED else None,
            "table_shapes": {"inputs": [t["shape"] for t in acts], "output": out["shape"]},
            "band": None, "stream_ops": None, "stream_lines": None,     # set for a streamed layer
            "scalar_for_ram": scalar and _uses_dsp(op, qmodel, variant),
            **_int16_sums(kind, qmodel, op, int16 and not generic, bias["data"] if bias is not None else None)}


def _int16_sums(kind, qmodel, op, tuned, bias):
    """A 16x8 weighted layer's sums in a tuned kernel (tuned: the layer has one): int32 or
    int64 (fast16.acc32), their bound, the requantization folded or not."""
    if not tuned or kind not in fast16.SCALAR_TEMPLATES:
        return {}
    weight = qmodel.tensors[op.inputs[1]].data
    bound = fast16.acc_bound(kind, weight)
    folded = fast16.folded_requantization(op.params, bias, bound)
    if folded is not None:        # one value for every channel: a constant in the code
        folded = dict(folded, per_channel=len(set(folded["multiplier"])) > 1 or len(set(folded["offset"])) > 1)
    return {"acc32": bound < fast16.INT32_LIMIT, "acc_bound": bound, "folded": folded}


def _int16_template(op, qmodel, variant):
    """The template of a 16x8 layer in `variant`: the DSP kernel where the variant has one and
    it applies (fast16.has_dsp), else the scalar one, else the reference kernel."""
    templates = INT16_VARIANTS[variant]
    if reference_only(op) or op.kind not in INT16_TUNED:
        return INT16_TEMPLATES.get(op.kind)
    if op.kind not in fast16.SCALAR_TEMPLATES:
        return templates[op.kind]
    if templates.get(op.kind) == fast16.DSP_TEMPLATES.get(op.kind) and \
            not fast16.has_dsp(op.kind, op.params, qmodel.tensors[op.inputs[1]].data):
        return fast16.SCALAR_TEMPLATES[op.kind]
    return templates[op.kind]


def _uses_dsp(op, qmodel, variant):
    """Whether the C of `variant` computes the op with a DSP-SIMD kernel."""
    if op.params is None or reference_only(op):
        return False
    if op.params.get("dtype") == "int16":
        return _int16_template(op, qmodel, variant) in fast16.DSP_TEMPLATES.values()
    return op.kind in _dsp_kinds(variant)


def lstm_context(op, qmodel, arena, index):
    """An LSTM layer's constants (8 weights, 4 biases, in the order of its inputs), where its
    state and scratch lie in the arena."""
    t = [qmodel.tensors[n] for n in op.inputs]
    hidden, cell = t[13], t[14]
    return {"weights": [{"what": c_name.replace("_", " "), "c_name": c_name, "shape": w.shape,
                         "scale": float(w.scale), "data": w.data} for c_name, w in zip(LSTM_WEIGHTS, t[1:9])],
            "biases": [{"c_name": c_name, "data": b.data} for c_name, b in zip(LSTM_BIASES, t[9:13])],
            "hidden_offset": arena.offsets[hidden.name], "hidden_bytes": hidden.nbytes,
            "cell_offset": arena.offsets[cell.name], "cell_bytes": cell.nbytes,
            "scratch": arena.scratch[index], "scratch_bytes": lstm_scratch_bytes(op.params)}


def lstm_scratch_bytes(p):
    """The LSTM kernel's working memory: four gates and one more row of int16 per unit."""
    return 5 * 2 * p["units"]


def scalar_is_faster(op):
    """A layer the DSP variants compute with the scalar kernel, as it is the faster there: a
    depthwise_conv_2d whose output is one pixel, or has fewer pixels than the filter has
    taps while the DSP kernel is off its fast paths (3x3, stride 1 or 2). The DSP kernel
    first copies each channel's padded input into an int16 plane, a cost per channel that
    only many outputs repay: MobileNets' last blocks (5x5 filters on 2x2 and 1x1 maps) run
    faster on the scalar kernel (bench/architectures.py measures the models)."""
    p = op.params or {}
    if op.kind != "depthwise_conv_2d" or "out_h" not in p or p.get("dtype") == "int16":
        return False
    outputs = p["out_h"] * p["out_w"]
    fast = dsp.depthwise_fast(p) or dsp.depthwise_fast_stride2(p)
    return outputs == 1 or (not fast and outputs < p["kernel_h"] * p["kernel_w"])


# The banner of a layer lists its integer parameters by meaning, one line per group; a
# parameter no group names goes on a last line, "other".
BANNER_GROUPS = (
    ("sizes", ("in_h", "in_w", "in_c", "channels", "in_features", "out_h", "out_w", "out_c",
               "out_features", "depth_multiplier", "size", "count")),
    ("window", ("kernel_h", "kernel_w", "pool_h", "pool_w", "stride_h", "stride_w", "pad_h", "pad_w")),
    ("zero points", ("input_offset", "input1_offset", "input2_offset", "input_zero_point",
                     "output_offset", "output_zero_point")),
    ("requantization", ("output_multiplier", "output_shift", "left_shift", "input1_multiplier",
                        "input1_shift", "input2_multiplier", "input2_shift")),
    ("clamp", ("act_min", "act_max", "lower", "upper")),
)


def _banner_groups(integers):
    """[(group, [(name, value), ...]), ...] for the layer banner, empty groups left out."""
    rows, named = [], set()
    for group, names in BANNER_GROUPS:
        row = [(k, integers[k]) for k in names if k in integers]
        named.update(names)
        if row:
            rows.append((group, row))
    other = [(k, v) for k, v in integers.items() if k not in named]
    return rows + ([("other", other)] if other else [])


def _kernels(variant, kind):
    """The kernels ('reference', 'scalar', 'dsp') the C of `variant` computes `kind` with."""
    if variant == "reference":
        return ["reference"]
    return (["dsp"] if kind in _dsp_kinds(variant) else []) + \
        (["scalar"] if variant in BOTH_KERNELS or kind not in _dsp_kinds(variant) else [])


def reference_only(op):
    """Layers that every variant computes with the reference kernel though their kind has a
    tuned one: what the scalar and DSP kernels do not handle. A dilated window (they assume
    neighbouring taps), a mean over other axes than H and W of (H, W, C), a fully_connected
    over several rows (keep_num_dims). The reference kernel computes the same bits, only slower."""
    p = op.params or {}
    return (op.kind == "mean" and "in_h" not in p
            or op.kind == "fully_connected" and p.get("rows", 1) != 1
            or op.kind in REFERENCE_KERNELS and (p.get("dilation_h", 1) != 1 or p.get("dilation_w", 1) != 1))


def _dsp_kinds(variant):
    """{op kind: DSP template} of the kinds the variant computes with DSP-SIMD kernels."""
    return dsp.TEMPLATES if variant in DSP_VARIANTS else {}


def _saturates_only(layer):
    """A logistic/tanh whose input scale leaves no int8 input inside the Q4 range: TFLM's
    input_range_radius is 0 and the kernel only saturates (templates/logistic_tanh.c.j2)."""
    return layer["kind"] in ("logistic", "tanh") and layer["p"].get("input_range_radius") == 0


def _helpers(kinds, single_rounding=False):
    """The fixed-point helpers the kinds use, with everything they call."""
    depends = dict(FIXEDPOINT_DEPENDS, **(FIXEDPOINT_DEPENDS_SINGLE_ROUNDING if single_rounding else {}))
    todo = [h for k in kinds for h in FIXEDPOINT_USES.get(k, ())]
    used = set()
    while todo:
        h = todo.pop()
        if h not in used:
            used.add(h)
            todo.extend(depends[h])
    return used


def _check_model(qmodel):
    """The model's activation dtype ('int8', 'int16' for 16x8) and whether it single-rounds;
    CodegenError names what the C cannot run."""
    dtype = qmodel.tensors[qmodel.inputs[0]].dtype
    for op in qmodel.ops:            # TFLM's QUANTIZE between the schemes: one arena type here
        types = [qmodel.tensors[n].dtype for n in op.inputs[:1] + op.outputs[:1]]
        if op.kind == "quantize" and types[0] != types[1]:
            raise CodegenError(f"model {qmodel.name!r}: op {op.name!r} (quantize) converts {types[0]} -> "
                               f"{types[1]}: the C holds one activation type per model, int8 or int16 "
                               f"(the NumPy reference and the .tflite writer run such a model)")
    # the kinds first: an op without C (ARG_MAX's int32 output too) is named as such
    templates = INT16_TEMPLATES if dtype == "int16" else TEMPLATES
    unsupported = sorted({op.kind for op in qmodel.ops} - set(templates))
    if unsupported:
        raise CodegenError(f"model {qmodel.name!r}: op kind(s) {', '.join(unsupported)} have no C "
                           f"template{' for 16x8' if dtype == 'int16' else ''}; supported: "
                           f"{', '.join(sorted(templates))}")
    for role, ends in (("input", qmodel.inputs), ("output", qmodel.outputs)):
        for name in ends:
            t = qmodel.tensors[name]
            if t.dtype not in C_TYPES or t.dtype != dtype or t.per_channel:
                raise CodegenError(f"model {qmodel.name!r}: {role} {t.name!r} must be int8 (or int16 "
                                   f"in a 16x8 model) with one scale, got {t.dtype} with scale shape "
                                   f"{t.scale.shape}")
    rounding = {bool(op.params.get("single_rounding", False)) for op in qmodel.ops if op.params}
    if len(rounding) > 1:
        raise CodegenError(f"model {qmodel.name!r}: ops mix single and double rounding")
    return dtype, rounding == {True}


def _threshold(qmodel, prefix, threshold, threshold_name):
    """The detector's decision on its int8 output, for the header: None without a threshold.

    score >= threshold  <=>  q >= t_q  for every int8 output q, with t_q computed by
    minitiny.quant.threshold.threshold_to_int8 (it compares all 256 dequantized values)."""
    if threshold is None:
        return None
    if len(qmodel.outputs) != 1:
        raise CodegenError(f"model {qmodel.name!r}: threshold= needs a detector with one output, "
                           f"this model has {len(qmodel.outputs)} ({', '.join(qmodel.outputs)})")
    y = qmodel.output
    size = int(np.prod(y.shape, dtype=np.int64))
    if size != 1:
        raise CodegenError(f"model {qmodel.name!r}: threshold= needs a detector with one output value "
                           f"(a score); the output {y.name!r} has shape {tuple(y.shape)}")
    if not isinstance(threshold_name, str) or not threshold_name or \
            c_identifier(threshold_name, whole_name=False) != threshold_name:
        raise CodegenError(f"threshold_name {threshold_name!r} is not a C identifier "
                           f"(letters, digits and single '_', not starting with a digit)")
    try:
        t_q = threshold_to_int8(threshold, y.scale, y.zero_point)
    except ThresholdError as e:
        raise CodegenError(f"model {qmodel.name!r}: threshold {threshold!r}: {e}") from None
    if t_q == -128:        # `q >= -128` always holds (and trips gcc's -Wtype-limits)
        raise CodegenError(f"model {qmodel.name!r}: threshold {float(threshold):.6g} is at or below the "
                           f"lowest int8 output ({float(y.dequantize(-128)):.6g}): the detector would "
                           f"always fire; choose a higher threshold")
    return {"name": threshold_name, "macro": f"{c_macro_prefix(prefix)}_{threshold_name.upper()}_Q",
            "value": float(threshold),
            "q": int(t_q), "scale": float(y.scale), "zero_point": int(y.zero_point)}


def depthwise_form(qmodel):
    """qmodel with each conv_2d on one input channel whose DSP depthwise kernel takes its fast
    path (dsp.depthwise_fast: 3x3, stride 1 along the plane's rows) written as the
    depthwise_conv_2d it equals, or qmodel itself when there is none; qmodel is not changed.

    On one input channel, conv_2d's output channel c sums w[c, fy, fx, 0] x[y + fy, x + fx],
    and so does depthwise_conv_2d's with depth_multiplier = out_c and the weight
    w'[0, fy, fx, c] = w[c, fy, fx, 0]: the same sums, per-channel scales, bias and
    requantization, so the same bits. The depthwise DSP kernel keeps a filter row of one
    channel in registers and slides it along a plane row (four outputs from nine words),
    where the conv kernel's im2col pads each 3-value filter row to 4 and copies every window
    (bench/cortexm_mac.py measures the difference)."""
    tensors, ops, changed = dict(qmodel.tensors), [], False
    for op in qmodel.ops:
        p = op.params
        if op.kind == "conv_2d" and p is not None and p["in_c"] == 1 and not reference_only(op):
            as_depthwise = dict(p, depth_multiplier=p["out_c"])
            if dsp.depthwise_fast(as_depthwise) and p["out_h"] * p["out_w"] > 1:
                w = qmodel.tensors[op.inputs[1]]
                tensors[w.name] = QTensor(w.name, (1, w.shape[1], w.shape[2], w.shape[0]), w.dtype, w.scale,
                                          w.zero_point, data=np.transpose(w.data, (3, 1, 2, 0)),
                                          quantized_dimension=3)
                op = QOp("depthwise_conv_2d", op.name, op.inputs, op.outputs,
                         dict(op.options, depth_multiplier=p["out_c"]))
                changed = True
        ops.append(op)
    if not changed:
        return qmodel
    return QModel(qmodel.name, tensors, ops, qmodel.inputs, qmodel.outputs, single_rounding=qmodel.single_rounding)


def _scratch(computed, variant, streams=(), scalar=()):
    """{op index: bytes} of the DSP kernels' scratch; a streamed op's for its band; none for
    the ops in `scalar` (op names), computed with the scalar kernel."""
    band = {i: s for s in streams for i in s.ops}
    scratch = {}
    for i, op in enumerate(computed.ops):
        if _uses_dsp(op, computed, variant) and op.name not in scalar and not scalar_is_faster(op):
            p = op.params if i not in band else stream.band_params(
                op, op.params, band[i].band, computed.tensors[op.outputs[0]].shape[0])
            scratch[i] = (fast16 if p.get("dtype") == "int16" else dsp).scratch_bytes(op.kind, p)
        if op.kind == "unidirectional_sequence_lstm":      # its gates, in every variant
            scratch[i] = lstm_scratch_bytes(op.params)
    return scratch


def plan_streams(computed, variant, in_place, ram_budget, streams=None):
    """(arena plan, [Stream], {op names computed with the scalar kernel}): the plain or
    in-place plan; the streams (stream.py) that bring it to ram_budget bytes (None: no
    streaming), after exactly `streams`, [(first op, last op, band)], when given; and, where
    the peak is a DSP kernel's scratch that no stream removes, that op computed with the
    scalar kernel instead (no scratch; more instructions: bench/arena.py counts them)."""
    scalar = set()
    kernels_of = lambda op: (["reference"] if reference_only(op) else
                             ["scalar"] if op.name in scalar or scalar_is_faster(op) else _kernels(variant, op.kind))

    def arena_of(streams):
        arena = planner.plan_qmodel(computed, scratch=_scratch(computed, variant, streams, scalar),
                                    in_place=inplace.candidates(computed, kernels_of) if in_place else None,
                                    streams=[stream.planned(computed, s) for s in streams])
        return arena.size, arena

    def peak_of(streams):
        steps, sizes = planner.qmodel_steps(computed)
        return planner.peak(steps, sizes, computed.inputs + computed.states, computed.outputs + computed.states,
                            _scratch(computed, variant, streams, scalar),
                            inplace.candidates(computed, kernels_of) if in_place else None,
                            [stream.planned(computed, s) for s in streams])
    chosen = []
    if streams is not None:
        try:
            chosen = [stream.build(computed, list(range(a, b + 1)), band) for a, b, band in streams]
        except stream.StreamError as e:
            raise CodegenError(f"model {computed.name!r}: {e}") from None
        taken = [i for s in chosen for i in s.ops]
        if len(taken) != len(set(taken)):
            raise CodegenError(f"model {computed.name!r}: streams={streams!r} overlap")
    if ram_budget is not None:
        if isinstance(ram_budget, bool) or not isinstance(ram_budget, (int, np.integer)) or ram_budget <= 0:
            raise CodegenError(f"ram_budget={ram_budget!r}: expected a positive number of bytes")
        while True:
            try:
                chosen = stream.choose(computed, int(ram_budget), arena_of, peak_of, chosen)
                break
            except stream.StreamError as e:
                op = computed.ops[e.peak_step] if e.peak_step is not None else None
                if op is None or op.name in scalar or not _scratch(computed, variant).get(e.peak_step):
                    raise CodegenError(f"model {computed.name!r}: {e}") from None
                scalar.add(op.name)
                chosen = e.chosen
    return arena_of(chosen)[1], chosen, scalar


def _stream_layer(index, op, computed, s, arena, namer, variant, dsp_weights):
    """The layer of a streamed op: its kernel rendered for one band (stream.band_params),
    reading and writing the buffers the stream gives it."""
    tensors, names = stream.band_tensors(computed, s, index)
    p = stream.band_params(op, op.params, s.band, computed.tensors[op.outputs[0]].shape[0])
    band_op = QOp(op.kind, op.name, [names.get(n, n) for n in op.inputs], [names[op.outputs[0]]], op.options)
    band_op.params = p
    view = copy.copy(computed)
    view.tensors = {**computed.tensors, **tensors}
    layer = _layer(index, band_op, view, arena, namer, variant, dsp_weights)
    layer.update(macs=int(op.params.get("macs", 0)), band=s.band, stream_ops=s.ops,
                 table_shapes={"inputs": [t.shape for t in computed.activations(op)],
                               "output": computed.tensors[op.outputs[0]].shape})
    return layer


def build_context(qmodel, name=None, variant=DEFAULT_VARIANT, threshold=None, threshold_name="THRESHOLD",
                  dsp_weights="int8", in_place=True, ram_budget=None, streams=None):
    """Everything the templates need, computed once: names, plan, layers, sizes."""
    from minitiny import __version__
    if variant not in KERNEL_VARIANTS:
        raise CodegenError(f"unknown kernel variant {variant!r}; known: {', '.join(KERNEL_VARIANTS)}")
    if dsp_weights not in dsp.DSP_WEIGHTS:
        raise CodegenError(f"dsp_weights={dsp_weights!r}: expected one of {', '.join(dsp.DSP_WEIGHTS)}")
    if dsp_weights != "int8" and variant not in DSP_VARIANTS:
        raise CodegenError(f"dsp_weights={dsp_weights!r} is for the DSP kernels; variant {variant!r} has "
                           f"none (use variant 'dsp' or 'auto')")
    dtype, single_rounding = _check_model(qmodel)
    if dtype == "int16" and dsp_weights != "int8":
        raise CodegenError(f"model {qmodel.name!r} is 16x8 (int16 activations): dsp_weights={dsp_weights!r} "
                           f"is for int8 models (its DSP kernels extend the int8 weights as they read them)")
    if dtype == "int16" and threshold is not None:
        raise CodegenError(f"model {qmodel.name!r}: threshold= needs an int8 output, this 16x8 "
                           f"model's is int16")
    # the model as the kernels compute it: the same tensors, a few ops in an equal form
    computed = depthwise_form(qmodel) if "depthwise_conv_2d" in _dsp_kinds(variant) and dtype == "int8" else qmodel
    prefix = c_identifier(name if name is not None else qmodel.name, "model", whole_name=False).lower()
    arena, streams, scalar = plan_streams(computed, variant, in_place, ram_budget, streams)
    inputs, outputs = io_tensors(qmodel, arena)
    namer = Namer(RESERVED | identifiers() | {prefix + "_invoke"}
                  | {f"{prefix}_quantize_{t['arg']}" for t in inputs}
                  | {f"{prefix}_dequantize_{t['arg']}" for t in outputs})
    stream_of = {i: s for s in streams for i in s.ops}
    layers = [_stream_layer(i, op, computed, stream_of[i], arena, namer, variant, dsp_weights) if i in stream_of
              else _layer(i, op, computed, arena, namer, variant, dsp_weights, op.name in scalar)
              for i, op in enumerate(computed.ops)]
    for s in streams:                       # the stream's calls, in invoke at its first layer
        layers[s.ops[0]]["stream_lines"] = [
            (code, c_comment(comment)) for code, comment in
            stream.c_actions(s, arena.offsets.__getitem__, lambda i: layers[i]["name"], computed)]
    for layer, op in zip(layers, qmodel.ops):
        layer["model_kind"] = op.kind       # the model's op; layer["kind"]: the kernel that computes it
    # the reference variant's generic kernels, each emitted once, its code counted at the first
    # layer that calls it
    kernels = []
    generic_kernels = INT16_KERNELS if dtype == "int16" else REFERENCE_KERNELS
    for layer in layers:
        if layer["generic"] and generic_kernels[layer["kind"]][-1] not in kernels:
            kernels += [t for t in generic_kernels[layer["kind"]] if t not in kernels]
            layer["code_bytes"] += CODE_BYTES_REFERENCE[layer["kind"]]
    # The fixed-point helpers the kernels call. A logistic/tanh whose every input saturates
    # (radius 0) calls none; a DSP kernel with the fast requantization (or none: pools) none
    # either. In "auto" the scalar kernels beside the DSP ones still call theirs: those only
    # they call are emitted under #if !MINITINY_DSP (clang warns about an unused static
    # function, and a DSP build compiles the scalar kernels out).
    called = [layer for layer in layers if not _saturates_only(layer) and layer["lut"] is None]
    # (a 16x8 layer whose requantization is folded, fast16.folded_requantization, calls none)
    called = [layer for layer in called if not layer.get("folded")]
    _share_tables(layers)
    scalar_helpers = _helpers((layer["kind"] + ("_int16" if layer["int16"] else "") for layer in called),
                              single_rounding)
    dsp_helpers = _helpers((layer["kind"] + ("_int16" if layer["int16"] else "") for layer in called
                            if not (layer["dsp"] and layer["dsp"].get("fast_requantize", True))),
                           single_rounding)
    helpers = dsp_helpers if any(layer["dsp"] for layer in layers) else scalar_helpers
    helpers_scalar_only = scalar_helpers - dsp_helpers if variant in BOTH_KERNELS else set()
    weight_bytes = sum(layer["weight_bytes"] for layer in layers)
    code_bytes = (sum(layer["code_bytes"] for layer in layers) + CODE_BYTES_INVOKE
                  + CODE_BYTES_PER_CALL * len(layers)
                  + sum(CODE_BYTES_HELPERS[h] for h in helpers | helpers_scalar_only))
    return {
        "generator": f"{GENERATOR} {__version__}", "model_name": c_comment(qmodel.name),
        "raw_model_name": qmodel.name, "model_hash": model_hash(qmodel),
        "prefix": prefix, "PREFIX": c_macro_prefix(prefix), "variant": variant,
        "dsp_weights": dsp_weights,
        "inputs": inputs, "outputs": outputs, "single_io": len(inputs) == len(outputs) == 1,
        "layers": layers, "kernels": kernels, "helpers": helpers, "helpers_scalar_only": helpers_scalar_only,
        "states": [dict(_tensor_view(qmodel.tensors[n], arena.offsets[n]), name=n) for n in qmodel.states],
        "single_rounding": single_rounding, "requantize_fast": variant != "reference",
        "dsp": any(layer["dsp"] is not None for layer in layers), "dsp_pixels": dsp.CONV_PIXELS,
        "dsp_helpers": dsp.helper_closure(h for layer in layers if layer["dsp"] is not None
                                          for h in (fast16.helpers(layer["kind"]) if layer["int16"] else
                                                    dsp.helpers(layer["kind"], layer["p"],
                                                                layer["dsp"]["fast_requantize"],
                                                                dsp_weights,
                                                                layer["dsp"].get("rounding") is not None))),
        "arena": arena, "arena_size": max(arena.size, 4), "streams": streams,
        "stream_helpers": {"copy" if a[0] == "slide" else a[0] for s in streams for a in s.actions} - {"call"},
        "plan": [dict(row, labels=[c_comment(t) for t in row["tensors"]]) for row in arena.rows()],
        "steps": [dict(row, labels=[c_comment(t) for t in row["tensors"]],
                       in_place=row["in_place"] and {"label": c_comment(row["in_place"]["input"]),
                                                     "why": c_comment(row["in_place"]["why"])},
                       streamed=row["streamed"] and c_comment(row["streamed"]))
                  for row in arena.steps()],
        "weight_bytes": weight_bytes, "code_bytes": code_bytes,
        "threshold": _threshold(qmodel, prefix, threshold, threshold_name),
        "dtype": dtype, **C_TYPES[dtype], **_int16_tables(layers),
    }


def _share_tables(layers):
    """Name each table layer's table (lut.py) and emit it once: a layer whose table has the
    same bytes as an earlier one's reads that one (the GRU's gates, MobileNetV3's hard_swish
    on equal scales); its flash is counted at the first."""
    first = {}
    for layer in layers:
        t = layer["lut"]
        if t is None:
            continue
        key = t["tables"].tobytes()
        t["owner"] = key not in first
        t["table"] = first.setdefault(key, f"{layer['name']}_table")
        if t["owner"]:
            layer["weight_bytes"] += t["tables"].size


def _int16_tables(layers):
    """The tables the 16x8 kernels read, for the templates: TFLM's sigmoid table (LOGISTIC,
    TANH) and the softmax LUTs (the same for every softmax layer, kernels/softmax.py)."""
    kinds = {layer["kind"] for layer in layers if layer["int16"]}
    if any(layer["kind"] == "unidirectional_sequence_lstm" for layer in layers):
        kinds |= {"logistic", "tanh"}             # its gates call both, in either scheme
    luts = next(({"exp": layer["p"]["exp_lut"].tolist(),
                  "one_over_one_plus_x": layer["p"]["one_over_one_plus_x_lut"].tolist()}
                 for layer in layers if layer["int16"] and layer["kind"] == "softmax"), None)
    return {"int16_kinds": kinds, "sigmoid_table": list(fp.SIGMOID_TABLE_UINT16), "softmax_luts": luts}


def manifest(context, qmodel):
    """The JSON summary the firmware harness and the reports read. "inputs" and "outputs"
    list every input and output in the model's order, as the C names them; a model with one
    of each also has the flat input_shape / output_shape / scale / zero point keys."""
    arena = context["arena"]
    ends = {role: [{"name": t["name"], "arg": t["arg"], "macro": t["macro"], "shape": list(t["shape"]),
                    "size": t["size"], "scale": float(t["scale"]), "zero_point": int(t["zero_point"])}
                   for t in context[role]] for role in ("inputs", "outputs")}
    single = {}
    if context["single_io"]:
        x, y = qmodel.input, qmodel.output
        single = {"input_shape": list(x.shape), "output_shape": list(y.shape),
                  "input_scale": float(x.scale), "input_zero_point": int(x.zero_point),
                  "output_scale": float(y.scale), "output_zero_point": int(y.zero_point)}
    return {
        "name": context["prefix"], "model_name": qmodel.name, "generator": context["generator"],
        "model_hash": context["model_hash"], "variant": context["variant"],
        "dsp_weights": context["dsp_weights"],
        "header": f"{context['prefix']}_model.h", "source": f"{context['prefix']}_model.c",
        "invoke": f"{context['prefix']}_invoke", **ends, **single,
        "arena_bytes": context["arena_size"], "arena_lower_bound": arena.lower_bound,
        "max_layer_bytes": max(arena.layer_bytes + [0]),     # max over layers of inputs + output
        "input_copied_into_arena": True,
        "weight_bytes": context["weight_bytes"], "code_bytes_estimate": context["code_bytes"],
        "macs": sum(layer["macs"] for layer in context["layers"]),
        "layers": [{"index": layer["index"], "name": qmodel.ops[layer["index"]].name,
                    "c_name": layer["name"], "kind": layer["model_kind"],
                    **({"kernel": layer["kind"]} if layer["kind"] != layer["model_kind"] else {}),
                    # the model's shapes (a streamed layer's function sees a band of them)
                    "input_shapes": [list(t.shape) for t in qmodel.activations(qmodel.ops[layer["index"]])],
                    "output_shape": list(qmodel.tensors[qmodel.ops[layer["index"]].outputs[0]].shape),
                    "macs": layer["macs"],
                    "weight_bytes": layer["weight_bytes"], "code_bytes_estimate": layer["code_bytes"],
                    "ram_bytes": layer["ram_bytes"], "scratch_bytes": layer["scratch_bytes"],
                    "activation": layer["activation"],
                    "shares_buffer": layer["shared"][0] if layer["shared"] else None,
                    "live_bytes": layer["live_bytes"],
                    "in_place": ({"input": layer["in_place"].input, "shift": layer["in_place"].shift,
                                  "why": layer["in_place"].why} if layer["in_place"] else None),
                    **({"band_rows": layer["band"]} if layer["band"] else {}),
                    **({"scalar_for_ram": True} if layer["scalar_for_ram"] else {})}
                   for layer in context["layers"]],
        "plan": arena.rows(),
        "steps": arena.steps(),
        "streams": [{"ops": [qmodel.ops[i].name for i in s.ops], "band": s.band,
                     "windows": {t: {"rows": rows, "bytes": rows * s.row_bytes[t]} for t, rows in s.windows.items()},
                     "output_shares": s.share, "calls": sum(a[0] == "call" for a in s.actions),
                     "copied_bytes": s.copied_bytes, "extra_macs": s.extra_macs}
                    for s in context["streams"]],
        # state kept across invokes (an LSTM's): where it lies; NAME_reset sets it to real 0
        **({"reset": f"{context['prefix']}_reset",
            "state": [{"name": t["name"], "offset": t["offset"], "bytes": t["nbytes"], "dtype": t["dtype"],
                       "zero_point": int(t["zero_point"])} for t in context["states"]]}
           if context["states"] else {}),
        **({"threshold": context["threshold"]} if context["threshold"] else {}),
        **({"dtype": "int16"} if context["dtype"] == "int16" else {}),
    }


def render(context):
    """{file name: text} for the header and the source."""
    env = environment()
    prefix = context["prefix"]
    return {f"{prefix}_model.h": env.get_template("model.h.j2").render(context),
            f"{prefix}_model.c": env.get_template("model.c.j2").render(context)}


def generate(model, out_dir, name=None, variant=DEFAULT_VARIANT, threshold=None, threshold_name="THRESHOLD",
             dsp_weights="int8", in_place=True, ram_budget=None, streams=None):
    """Write NAME_model.h, NAME_model.c, NAME_manifest.json and NAME.qmodel.npz to out_dir.

    model:   a QModel (int8: the C is bit-exact with qmodel.predict_int8) or an unquantized
             minitiny float model (float32 C, see float_codegen.py)
    name:    the C prefix (default: the model's name), sanitised into an identifier
    variant: the kernel variant (KERNEL_VARIANTS): "reference" (default), TFLM's reference
             kernels, the C to read; "auto", the fastest on every core (the DSP-SIMD kernels
             where __ARM_FEATURE_DSP is defined, the tuned scalar ones elsewhere); "scalar",
             the tuned portable kernels (cores without DSP: Cortex-M0/M3); "dsp", the
             DSP-SIMD kernels only (Cortex-M4/M7/M33/M55)
    dsp_weights: how the DSP fully_connected and conv_2d kernels store their weights:
             "int8" (default, the model's bytes) or "int16" (twice the flash of those
             weights, already extended for SMLAD: fewer instructions per MAC, see
             bench/cortexm_mac.py). The other kernels always keep int8.
    in_place: let kernels write their output over an input that dies at them, where their
             loop order allows it (codegen/inplace.py); False gives every output bytes of its
             own (elementwise ops and reshapes still share theirs): the plain schedule
    ram_budget: bytes of arena to fit: where the plan needs more, runs of convolutions are
             computed in bands of rows (codegen/stream.py), the planner choosing where and
             the band size; CodegenError names the smallest arena reachable when the budget
             cannot be met. None (default): no streaming
    streams: [(first op index, last op index, band rows)]: stream exactly these runs (a plan
             made by hand, or a test's), before any the budget adds
    threshold: for a detector with one output value (a score), the float score at which it
             fires; the header then defines NAME_<threshold_name>_Q, the int8 output value
             from which it fires (minitiny.quant.threshold.threshold_to_int8), and
             NAME_detect(output); the manifest records both under "threshold"
    """
    if not isinstance(model, QModel):
        if hasattr(model, "graph") or hasattr(model, "layers"):
            if ram_budget is not None or streams is not None:
                raise CodegenError("ram_budget= and streams= plan the arena of an int8 QModel; the "
                                   "float C of an unquantized model has no streamed schedule")
            return generate_float(model, out_dir, name=name)
        raise CodegenError(f"generate: expected a QModel or a minitiny float model, got "
                           f"{type(model).__name__}")
    if threshold is not None and not isinstance(model, QModel):
        raise CodegenError("threshold= needs an int8 QModel (the constant is an int8 output value)")
    context = build_context(model, name, variant, threshold, threshold_name, dsp_weights, in_place, ram_budget,
                            streams)
    files = {fname: text.encode() for fname, text in render(context).items()}
    info = manifest(context, model)
    prefix = context["prefix"]
    files[f"{prefix}_manifest.json"] = (json.dumps(info, indent=1) + "\n").encode()
    files[f"{prefix}.qmodel.npz"] = model.save      # QModel.save(path) writes the file itself
    out_dir = write_atomically(out_dir, files)
    return Generated(out_dir, sorted(files), info)
