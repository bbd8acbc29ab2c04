"""The one table of the TFLite builtin operators minitiny runs, and in which modes.

The `.tflite` importer maps a builtin onto a QOp kind through this table and names it when
it refuses a model; docs/OPS.md and `minitiny import --help` print it. Adding an op means
adding its row here, its kernel module in `kernels/`, and its options in the writer.

A mode is TFLite's quantization scheme for the op's tensors:
    int8      int8 activations and weights, int32 bias (TFLite's full-integer scheme)
    int16x8   int16 activations with zero point 0, int8 weights, int64 bias (the "16x8"
              scheme; kernels/ INT16_KINDS, which a test holds to this column)
A kind of None marks the operators minitiny folds away rather than runs: at the model's
edges, or into the dilated convolution they surround.
Not here because TFLite Micro has no kernel for it (a model using it does not run on a
microcontroller with TFLM either; its op resolver registers none): RELU_N1_TO_1. Without
int16x8 because TFLM's kernel refuses int16 activations (so must the importer; each checked
by running it): HARD_SWISH, ELU, RESIZE_BILINEAR, REDUCE_MAX, RSQRT, MIRROR_PAD,
DEPTH_TO_SPACE, SPACE_TO_DEPTH. TFLM runs ABS and BATCH_MATMUL on int16 too, minitiny not yet
(ARG_MAX, ARG_MIN and L2_NORMALIZATION are not checked). A 16x8 model using any of them is
refused by name.
`NOT_SUPPORTED` lists the builtins a Keras model converted to int8 can still contain, with
the reason minitiny refuses each (docs/OPS.md prints it under the table).
"""
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    name: str          # TFLite's BuiltinOperator name
    kind: str          # the QOp kind it becomes (None: folded at the edges)
    options: str       # its options table in TFLite's schema, None if it has none minitiny reads
    modes: tuple       # ("int8",), ...
    notes: str
    c: bool = True     # the C generator has a kernel for it (else: NumPy reference and .tflite only)


OPS = (
    Builtin("FULLY_CONNECTED", "fully_connected", "FullyConnectedOptions", ("int8", "int16x8"),
            "one row per sample (the input flattened), or with keep_num_dims one per (..., C) "
            "position of any rank; per-tensor or per-channel weights, fused RELU/RELU6"),
    Builtin("CONV_2D", "conv_2d", "Conv2DOptions", ("int8", "int16x8"),
            "SAME/VALID padding, any stride and dilation, fused RELU/RELU6"),
    Builtin("DEPTHWISE_CONV_2D", "depthwise_conv_2d", "DepthwiseConv2DOptions", ("int8", "int16x8"),
            "any depth multiplier, stride and dilation, fused RELU/RELU6"),
    Builtin("TRANSPOSE_CONV", "transpose_conv", "TransposeConvOptions", ("int8", "int16x8"),
            "SAME/VALID padding, any stride, per-channel weights, bias or none, fused RELU/RELU6; "
            "the output shape a constant"),
    Builtin("BATCH_MATMUL", "batch_matmul", "BatchMatMulOptions", ("int8",),
            "two activations of rank 3 to 5 (Keras' Attention, MultiHeadAttention, Dot), adj_x, "
            "adj_y, batch dimensions broadcast; a constant operand is refused (TF's converter "
            "makes that product a FULLY_CONNECTED)"),
    Builtin("RESIZE_NEAREST_NEIGHBOR", "resize_nearest_neighbor", "ResizeNearestNeighborOptions",
            ("int8", "int16x8"),
            "align_corners, half_pixel_centers; the size a constant; input and output share one "
            "quantization"),
    Builtin("RESIZE_BILINEAR", "resize_bilinear", "ResizeBilinearOptions", ("int8",),
            "TFLM's integer kernel, align_corners or half_pixel_centers; the size a constant; input "
            "and output share one quantization; int8 only (TFLM's refuses int16)"),
    Builtin("MAX_POOL_2D", "max_pool_2d", "Pool2DOptions", ("int8", "int16x8"), "SAME/VALID, any stride"),
    Builtin("AVERAGE_POOL_2D", "average_pool_2d", "Pool2DOptions", ("int8", "int16x8"), "SAME/VALID, any stride"),
    Builtin("MEAN", "mean", "ReducerOptions", ("int8", "int16x8"),
            "over one or two axes (not the batch) of a rank 2..5 input, keep_dims or not"),
    Builtin("SUM", "sum", "ReducerOptions", ("int8", "int16x8"),
            "over one or two axes (not the batch) of a rank 2..5 input, keep_dims or not"),
    Builtin("REDUCE_MAX", "reduce_max", "ReducerOptions", ("int8",),
            "over any axes but the batch of a rank 2..5 input, keep_dims or not; input and output "
            "share one quantization; int8 only (TFLM's refuses int16)"),
    Builtin("REDUCE_MIN", "reduce_min", "ReducerOptions", ("int8",),
            "over any axes but the batch of a rank 2..5 input, keep_dims or not; input and output "
            "share one quantization; int8 only (TFLM's refuses int16)"),
    Builtin("ARG_MAX", "arg_max", "ArgMaxOptions", ("int8",),
            "a constant axis but the batch one; int32 output (tf.argmax(..., output_type=tf.int32); "
            "TFLM stops on the default int64); the first index of equal values. No C yet: the C "
            "API carries int8 (int16) outputs only", c=False),
    Builtin("ARG_MIN", "arg_min", "ArgMinOptions", ("int8",), "as ARG_MAX", c=False),
    Builtin("ADD", "add", "AddOptions", ("int8", "int16x8"),
            "broadcasting, a constant operand, fused RELU/RELU6"),
    Builtin("SUB", "sub", "SubOptions", ("int8", "int16x8"),
            "broadcasting, a constant operand, fused RELU/RELU6"),
    Builtin("MUL", "mul", "MulOptions", ("int8", "int16x8"),
            "broadcasting, a constant operand, fused RELU/RELU6"),
    Builtin("MAXIMUM", "maximum", None, ("int8", "int16x8"),
            "broadcasting, a constant operand; inputs and output share one quantization"),
    Builtin("MINIMUM", "minimum", None, ("int8", "int16x8"),
            "broadcasting, a constant operand; inputs and output share one quantization"),
    Builtin("SQUARED_DIFFERENCE", "squared_difference", None, ("int8", "int16x8"),
            "broadcasting, a constant operand"),
    Builtin("RESHAPE", "reshape", None, ("int8", "int16x8"), "a copy (the output tensor holds the shape)"),
    Builtin("SQUEEZE", "reshape", None, ("int8", "int16x8"), "as RESHAPE"),
    Builtin("EXPAND_DIMS", "reshape", None, ("int8", "int16x8"), "as RESHAPE"),
    Builtin("SOFTMAX", "softmax", "SoftmaxOptions", ("int8", "int16x8"),
            "over the last axis; output scale 1/256, zero point -128 (16x8: 1/32768, 0)"),
    Builtin("L2_NORMALIZATION", "l2_normalization", "L2NormOptions", ("int8",),
            "over the last axis (tf.math.l2_normalize), rank <= 4; output scale 1/128, zero point 0; "
            "no fused activation"),
    Builtin("LOGISTIC", "logistic", None, ("int8", "int16x8"),
            "output scale 1/256, zero point -128 (16x8: 1/32768, 0)"),
    Builtin("TANH", "tanh", None, ("int8", "int16x8"), "output scale 1/128, zero point 0 (16x8: 1/32768, 0)"),
    Builtin("RELU", "relu", None, ("int8", "int16x8"), ""),
    Builtin("RELU6", "relu6", None, ("int8", "int16x8"), "input and output share scale and zero point"),
    Builtin("LEAKY_RELU", "leaky_relu", "LeakyReluOptions", ("int8", "int16x8"), "alpha > 0"),
    Builtin("PRELU", "prelu", None, ("int8", "int16x8"),
            "alpha a constant that broadcasts (Keras' PReLU: one per channel); alpha int8 (16x8 "
            "too, as TFLM's kernel takes it)"),
    Builtin("HARD_SWISH", "hard_swish", None, ("int8",),
            "TFLM's int16 fixed-point kernel; int8 only (TFLM has no 16x8 HARD_SWISH)"),
    Builtin("ELU", "elu", None, ("int8",),
            "TFLM's table of the 256 outputs, computed in float32; int8 only (TFLM's refuses int16)"),
    Builtin("NEG", "neg", None, ("int8",),
            "only as TF's converter writes it in an int8 model, in float32 between a DEQUANTIZE and a "
            "QUANTIZE (Keras' LayerNormalization): the three imported as one int8 op computing what "
            "TFLM's three kernels compute"),
    Builtin("SQUARE", "square", None, ("int8",),
            "as NEG (Keras' UnitNormalization and GroupNormalization)"),
    Builtin("ABS", "abs", None, ("int8",), "requantized to the output's scale"),
    Builtin("RSQRT", "rsqrt", None, ("int8",),
            "TFLM's integer 1/sqrt (LayerNormalization's); an input below the zero point (a "
            "negative real) is refused at run time, as TFLM stops there"),
    Builtin("CONCATENATION", "concatenation", "ConcatenationOptions", ("int8", "int16x8"),
            "any axis but the batch one, up to 10 inputs, rank <= 6, no fused activation; the "
            "inputs share the output's scale and zero point (TFLM copies bytes, it does not "
            "requantize)"),
    Builtin("PACK", "pack", "PackOptions", ("int8", "int16x8"),
            "any axis but the batch one, up to 10 inputs of one shape and quantization"),
    Builtin("UNPACK", "unpack", "UnpackOptions", ("int8", "int16x8"),
            "any axis but the batch one, also of a time-major [T, 1, F] tensor (an unrolled RNN's)"),
    Builtin("SPLIT", "split", "SplitOptions", ("int8", "int16x8"),
            "equal parts along any axis but the batch one (a constant axis)"),
    Builtin("SPLIT_V", "split_v", "SplitVOptions", ("int8", "int16x8"),
            "parts of given sizes (constant, one may be -1) along any axis but the batch one"),
    Builtin("PAD", "pad", None, ("int8", "int16x8"),
            "constant paddings >= 0, none on the batch, rank <= 5; pads with the zero point (16x8: 0)"),
    Builtin("PADV2", "pad", None, ("int8", "int16x8"),
            "as PAD, with a constant pad value in the output's quantization"),
    Builtin("MIRROR_PAD", "mirror_pad", "MirrorPadOptions", ("int8",),
            "REFLECT or SYMMETRIC (tf.pad), constant paddings within TF's limits, none on the "
            "batch, rank <= 5; input and output share one quantization"),
    Builtin("STRIDED_SLICE", "strided_slice", "StridedSliceOptions", ("int8", "int16x8"),
            "constant begin/end/strides (negative too), begin, end and shrink_axis masks, rank "
            "<= 4; the batch taken whole; no ellipsis, new-axis or offset (TFLM ignores them)"),
    Builtin("SLICE", "slice", None, ("int8", "int16x8"),
            "constant begin and size (-1: to the end), rank <= 5, the batch taken whole"),
    Builtin("TRANSPOSE", "transpose", None, ("int8", "int16x8"),
            "a constant permutation that keeps the batch first, rank <= 5"),
    Builtin("UNIDIRECTIONAL_SEQUENCE_LSTM", "unidirectional_sequence_lstm",
            "UnidirectionalSequenceLSTMOptions", ("int8", "int16x8"),
            "Keras' LSTM (tf_keras): TFLM's integer kernel (int16 gates and cell state), batch 1, "
            "not time-major, cell clip; no peephole, projection or "
            "layer norm (TFLM refuses them). The hidden and cell state are variable tensors kept "
            "from one invoke to the next until a reset. 16x8: TFLM's kernel (int16 hidden "
            "state, int64 bias); TensorFlow 2.21's converter does not write it"),
    Builtin("DEPTH_TO_SPACE", "depth_to_space", "DepthToSpaceOptions", ("int8",),
            "(H, W, C) -> (H b, W b, C / b^2); input and output share one quantization"),
    Builtin("SPACE_TO_DEPTH", "space_to_depth", "SpaceToDepthOptions", ("int8",),
            "(H, W, C) -> (H / b, W / b, C b^2); input and output share one quantization"),
    Builtin("QUANTIZE", "quantize", None, ("int8", "int16x8"),
            "int8 -> int8 (16x8: int16 -> int16) inside the graph (TFLM's Requantize); at the "
            "edges folded: after a float32 or uint8 model input, before a uint8 output (16x8: "
            "folded after a float32 input, the model's input then int16). int8 <-> int16 too, "
            "inside a model or at its edges, in NumPy and the writer (the C holds one type)"),
    Builtin("DEQUANTIZE", None, None, ("int8", "int16x8"),
            "only at the edges: before a float32 model output"),
    Builtin("SPACE_TO_BATCH_ND", None, None, ("int8", "int16x8"),
            "only before a CONV_2D or DEPTHWISE_CONV_2D (an EXPAND_DIMS between for Conv1D) whose "
            "BATCH_TO_SPACE_ND follows: the chain, a dilated convolution TensorFlow left unfused, "
            "is imported as one dilated convolution (its SAME or VALID padding)"),
    Builtin("BATCH_TO_SPACE_ND", None, None, ("int8", "int16x8"),
            "only as the end of such a chain (SPACE_TO_BATCH_ND above)"),
)
MODES = ("int8", "int16x8")


@dataclass(frozen=True)
class Refused:
    names: str         # TFLite builtins
    source: str        # the Keras layer or tf op that produces them in TF 2.21's int8 converter
    why: str


# What TF 2.21's int8 converter makes of ordinary Keras code beyond OPS, found by converting a
# small model per layer or tf op (Keras 3, batch size fixed to 1) and running it in TFLM.
NOT_SUPPORTED = (
    Refused("ARG_MAX, ARG_MIN with an int64 output", "tf.argmax / tf.argmin (the default output_type)",
            "TFLM stops at run time on them (int32 outputs import and run)"),
    Refused("GATHER, GATHER_ND", "tf.gather, tf.gather_nd; keras Embedding",
            "not yet (TFLM runs int8 GATHER and GATHER_ND). Embedding's int32 input comes with LESS, "
            "SELECT_V2 and int32 arithmetic on the indices, which TFLM cannot allocate"),
    Refused("LOG_SOFTMAX, REVERSE_V2, BROADCAST_TO", "tf.nn.log_softmax, tf.reverse, tf.broadcast_to",
            "not yet: TFLM runs each in int8"),
    Refused("DIV", "x / y, tf.math.divide",
            "TFLM's int8 DivElementwise shifts the quotient right by 32 bits or more for a small "
            "numerator (0 / y always: the numerator's headroom is 31 bits), undefined in C; TFLM on "
            "x86 then gives host-dependent values (0 / y = 1, -4 / 148 = -128 for one scale), which "
            "no kernel can match across hosts"),
    Refused("SELECT_V2, GREATER, LESS, EQUAL, CAST", "tf.where, comparisons, tf.cast of a bool",
            "bool tensors: minitiny's graph holds int8 (and int16) activations only"),
    Refused("ADD_N, FLOOR, SIN, CUMSUM, SIGN", "tf.math.add_n, tf.floor, tf.sin, tf.cumsum, tf.sign",
            "the converter leaves them in float32 between DEQUANTIZE and QUANTIZE (no int8 kernel in "
            "TFLite); minitiny imports such float islands for NEG and SQUARE only"),
    Refused("EXP, GELU, SQRT, LOG, TILE", "tf.exp, tf.nn.gelu, tf.sqrt, tf.math.log, keras "
            "RepeatVector and tf.tile",
            "TFLM refuses the converted int8 model (allocating or invoking it fails): it does not run "
            "on a microcontroller with TFLM either"),
    Refused("RELU_N1_TO_1", "a standalone clip to [-1, 1] (the converter fuses one after a layer)",
            "TFLM's op resolver registers no kernel for it"),
    Refused("SHAPE, GATHER, REDUCE_PROD, ... before RESHAPE", "Keras 3 models with batch size None "
            "(Attention, Dot, LayerNormalization, rank-3 Dense)",
            "a shape computed at run time, which TFLM cannot allocate either: give the model's "
            "Input batch_size=1 before converting"),
)
BY_NAME = {op.name: op for op in OPS}


def kinds():
    """Every QOp kind some builtin becomes, in table order."""
    return list(dict.fromkeys(op.kind for op in OPS if op.kind))


def names():
    """The builtin names, for a message: 'ADD, AVERAGE_POOL_2D, ...'."""
    return ", ".join(sorted(BY_NAME))


def text_table():
    """The table as plain text (`minitiny import --help`)."""
    width = max(len(op.name) for op in OPS) + 2
    lines = [f"{'builtin':{width}s}{'modes':14s}{'C':4s}notes"]
    for op in OPS:
        head = f"{op.name:{width}s}{','.join(op.modes):14s}{'yes' if op.c else 'no':4s}"
        notes = textwrap.wrap(op.notes, 90 - len(head)) or [""]
        lines.append((head + notes[0]).rstrip())
        lines += [" " * len(head) + more for more in notes[1:]]
    return "\n".join(lines)


def markdown():
    """docs/OPS.md, whole (tests/test_supported_ops.py checks the file is this)."""
    rows = ["| builtin | minitiny kind | " + " | ".join(MODES) + " | C | notes |",
            "| --- | --- | " + " | ".join("---" for _ in MODES) + " | --- | --- |"]
    for op in OPS:
        marks = " | ".join("yes" if m in op.modes else "" for m in MODES)
        kind = f"`{op.kind}`" if op.kind else "(folded)"
        rows.append(f"| `{op.name}` | {kind} | {marks} | {'yes' if op.c else 'no'} | {op.notes} |")
    refused = ["| builtins | from | why not |", "| --- | --- | --- |"]
    refused += [f"| {r.names} | {r.source} | {r.why} |" for r in NOT_SUPPORTED]
    return ("# Supported TFLite operators\n\n"
            "Generated from `minitiny/quant/supported.py` (`python -m minitiny.quant.supported "
            "> docs/OPS.md`); a test checks this file against it. `minitiny import --help` prints "
            "the same table, and the importer names every operator, type or shape outside it. "
            "Column C: the C generator has a kernel for the op (without one, the NumPy int8 "
            "reference runs it and the `.tflite` writer writes it; `generate` refuses it by name). "
            "Every row and mode appears in a model TensorFlow 2.21 converted from Keras code, "
            "imported and compared bit for bit in the tests (tests/test_op_models.py lists the few "
            "TensorFlow never writes, and why).\n\n"
            "Recurrent layers: Keras' LSTM (tf_keras, Keras 2) converts to the fused "
            "`UNIDIRECTIONAL_SEQUENCE_LSTM` below, its state kept across invokes (in C until "
            "`NAME_reset()`); Keras 3's LSTM becomes a WHILE loop (several subgraphs: refused). "
            "A GRU has no fused op: with `unroll=True` it becomes `FULLY_CONNECTED`, `SPLIT`, "
            "`UNPACK`, `STRIDED_SLICE`, `ADD`, `SUB`, `MUL`, `LOGISTIC` and `TANH` rows of this "
            "table, one set per time step (tests/data/architectures/gru_unrolled.tflite).\n\n"
            + "\n".join(rows) + "\n\n## Not supported, and why\n\n"
            "What TensorFlow 2.21's int8 converter makes of ordinary Keras code beyond the table above "
            "(one small model per layer or tf op, converted and run in TFLite Micro):\n\n"
            + "\n".join(refused) + "\n")


if __name__ == "__main__":
    print(markdown(), end="")
