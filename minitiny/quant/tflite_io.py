"""`QModel` -> `.tflite`: the flatbuffer TFLite and TFLite Micro read.

A `.tflite` file is a FlatBuffer (schema: tensorflow/lite/schema/schema.fbs, accessors
and builders generated into the `tflite` package). Its shape, top down:

    Model  version 3, file identifier "TFL3"
      operator_codes  one per kind used: builtin_code (+ deprecated_builtin_code, an int8
                      that holds codes up to 127; larger codes store 127 there)
      subgraphs[0]    tensors, operators (opcode index, input/output tensor indices,
                      builtin options), input and output tensor indices
      buffers         raw little-endian bytes of the constants; buffer 0 is the empty
                      sentinel that every tensor without data points to

The file written here is a full-integer model as TFLite's converter makes one: int8
activations with batch dimension 1, weights with per-channel `quantized_dimension`. Its
input and output are int8, or (inference_input_type / inference_output_type, as the
converter offers them) meet the outside as another type through one op at the edge:

    float32 input  -> QUANTIZE   -> int8      q = z + round(r / s)
    uint8 input    -> QUANTIZE   -> int8      q = u - 128   (same scale, zero point z + 128)
    int8 output    -> DEQUANTIZE -> float32   r = s (q - z)
    int8 output    -> QUANTIZE   -> uint8     u = q + 128

A 16x8 model (int16 activations, zero point 0; int64 bias) is written the same way, with
int16 edges of its own or float32 ones (QUANTIZE float32 -> int16, DEQUANTIZE int16 ->
float32, as TFLite's 16x8 converter writes them).

A float model (TFLiteConverter without optimizations, `to_tflite_float`) is the same file
with float32 tensors and no quantization parameters: the lowered float graph
(quant/lower.py: BN folded, Rescaling folded, activations fused) with its float32 weights,
float32 edges, and every operator at version 1, the version of TFLite's float kernels.

FlatBuffers are built back to front, so every vector, string and child table is written
before the table that refers to it.
"""
import os
from dataclasses import dataclass

import flatbuffers
import numpy as np
import tflite as tfl
from tflite import ActivationFunctionType, BuiltinOperator, BuiltinOptions, Padding, TensorType

from .. import __version__
from ..files import atomic_write
from .graph import GraphError, QOp, QTensor
from .kernels import lstm, reduce

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# kind -> (builtin operator, operator version TFLite's converter gives the int8 kernel)
BUILTINS = {
    "fully_connected": (BuiltinOperator.FULLY_CONNECTED, 4),
    "conv_2d": (BuiltinOperator.CONV_2D, 3),
    "depthwise_conv_2d": (BuiltinOperator.DEPTHWISE_CONV_2D, 3),
    "transpose_conv": (BuiltinOperator.TRANSPOSE_CONV, 3),
    "batch_matmul": (BuiltinOperator.BATCH_MATMUL, 2),
    "arg_max": (BuiltinOperator.ARG_MAX, 2),
    "arg_min": (BuiltinOperator.ARG_MIN, 2),
    "resize_nearest_neighbor": (BuiltinOperator.RESIZE_NEAREST_NEIGHBOR, 3),
    "resize_bilinear": (BuiltinOperator.RESIZE_BILINEAR, 3),
    "max_pool_2d": (BuiltinOperator.MAX_POOL_2D, 2),
    "average_pool_2d": (BuiltinOperator.AVERAGE_POOL_2D, 2),
    "mean": (BuiltinOperator.MEAN, 2),
    "sum": (BuiltinOperator.SUM, 2),
    "reduce_max": (BuiltinOperator.REDUCE_MAX, 2),
    "reduce_min": (BuiltinOperator.REDUCE_MIN, 2),
    "add": (BuiltinOperator.ADD, 2),
    "sub": (BuiltinOperator.SUB, 2),
    "mul": (BuiltinOperator.MUL, 2),
    "maximum": (BuiltinOperator.MAXIMUM, 2),
    "minimum": (BuiltinOperator.MINIMUM, 2),
    "squared_difference": (BuiltinOperator.SQUARED_DIFFERENCE, 2),
    "reshape": (BuiltinOperator.RESHAPE, 1),
    "softmax": (BuiltinOperator.SOFTMAX, 2),
    "l2_normalization": (BuiltinOperator.L2_NORMALIZATION, 2),
    "logistic": (BuiltinOperator.LOGISTIC, 2),
    "tanh": (BuiltinOperator.TANH, 2),
    "relu": (BuiltinOperator.RELU, 2),
    "relu6": (BuiltinOperator.RELU6, 2),
    "leaky_relu": (BuiltinOperator.LEAKY_RELU, 2),
    "prelu": (BuiltinOperator.PRELU, 1),
    "hard_swish": (BuiltinOperator.HARD_SWISH, 1),
    "elu": (BuiltinOperator.ELU, 2),
    "abs": (BuiltinOperator.ABS, 2),
    "neg": (BuiltinOperator.NEG, 1),          # float32 kernels, between DEQUANTIZE and QUANTIZE
    "square": (BuiltinOperator.SQUARE, 1),
    "rsqrt": (BuiltinOperator.RSQRT, 2),
    "quantize": (BuiltinOperator.QUANTIZE, 2),
    "concatenation": (BuiltinOperator.CONCATENATION, 2),
    "pack": (BuiltinOperator.PACK, 2),
    "split": (BuiltinOperator.SPLIT, 2),
    "split_v": (BuiltinOperator.SPLIT_V, 2),
    "unpack": (BuiltinOperator.UNPACK, 2),
    "mirror_pad": (BuiltinOperator.MIRROR_PAD, 2),
    "pad": (BuiltinOperator.PAD, 2),          # PADV2 when the op has a constant (see builtin())
    "strided_slice": (BuiltinOperator.STRIDED_SLICE, 2),
    "slice": (BuiltinOperator.SLICE, 2),
    "transpose": (BuiltinOperator.TRANSPOSE, 2),
    "unidirectional_sequence_lstm": (BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM, 1),
    "depth_to_space": (BuiltinOperator.DEPTH_TO_SPACE, 2),
    "space_to_depth": (BuiltinOperator.SPACE_TO_DEPTH, 2),
}
ACTIVATION = {"none": ActivationFunctionType.NONE, "relu": ActivationFunctionType.RELU,
              "relu6": ActivationFunctionType.RELU6}
PADDING = {"same": Padding.SAME, "valid": Padding.VALID}
# kinds whose options table holds only the fused activation -> that table
ACTIVATION_ONLY_OPTIONS = {"fully_connected": "FullyConnectedOptions", "add": "AddOptions",
                           "sub": "SubOptions", "mul": "MulOptions"}
REDUCERS = ("mean", "sum", "reduce_max", "reduce_min")         # their axes are an int32 input tensor
RESIZE_OPTIONS = {"resize_nearest_neighbor": "ResizeNearestNeighborOptions",
                  "resize_bilinear": "ResizeBilinearOptions"}
FLOAT_UNARY = ("neg", "square")                  # written as DEQUANTIZE -> the op -> QUANTIZE
BLOCK_OPTIONS = {"depth_to_space": "DepthToSpaceOptions", "space_to_depth": "SpaceToDepthOptions"}
TENSOR_TYPE = {"int8": TensorType.INT8, "int16": TensorType.INT16, "int32": TensorType.INT32,
               "int64": TensorType.INT64, "float32": TensorType.FLOAT32}
# 'int8' (the default) and 'int16' both mean the model's own integer edge
EDGE_TYPES = {"int8": TensorType.INT8, "int16": TensorType.INT16, "uint8": TensorType.UINT8,
              "float32": TensorType.FLOAT32}
# the op at an edge of another type -> (builtin operator, version TFLite's converter writes)
EDGE_OPS = {"quantize": (BuiltinOperator.QUANTIZE, 2), "dequantize": (BuiltinOperator.DEQUANTIZE, 2)}
# a kind written as another builtin in some cases: a pad with its own constant is a PADV2
PADV2 = {"padv2": (BuiltinOperator.PADV2, 2)}
FLOAT_VERSION = 1           # every float kernel's operator version


def deprecated_builtin_code(code):
    """The int8 `deprecated_builtin_code` field: the code itself up to 127, else 127
    (PLACEHOLDER_FOR_GREATER_OP_CODES), so old readers see "look at builtin_code"."""
    return min(int(code), PLACEHOLDER_FOR_GREATER_OP_CODES)


def _int_vector(b, start_vector, values, prepend):
    start_vector(b, len(values))
    for v in reversed(values):
        prepend(int(v))
    return b.EndVector()


def _i32_vector(b, start_vector, values):
    return _int_vector(b, start_vector, list(values), b.PrependInt32)


def _bytes_vector(b, data, alignment=16):
    """A [ubyte] vector aligned to 16 bytes, as TFLite's converter aligns buffers."""
    b.StartVector(1, len(data), alignment)
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


class _Writer:
    """Collects tensors and buffers, then writes them in flatbuffer order."""

    def __init__(self, qmodel, input_type="int8", output_type="int8"):
        self.q = qmodel
        self.float = isinstance(qmodel, FloatModel)
        self.edge_types = (input_type, output_type)
        self.b = flatbuffers.Builder(1024 + 2 * qmodel.weight_bytes())
        self.tensor_index = {}      # name -> index in the subgraph's tensor list
        self.tensors = []           # (name, shape, type, buffer index, quantization or None)
        self.buffers = [b""]        # buffer 0: the empty sentinel

    def add_tensor(self, name, shape, ttype, data=None, quant=None):
        while name in self.tensor_index:          # a helper tensor whose name is taken
            name += "_"
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
            buf = len(self.buffers) - 1
        self.tensor_index[name] = len(self.tensors)
        self.tensors.append((name, tuple(int(d) for d in shape), ttype, buf, quant))
        return self.tensor_index[name]

    def lstm_inputs(self, inputs):
        """An LSTM's 15 inputs at their places among TFLite's 24, the optional ones left out (-1)."""
        full = [-1] * 24
        for place, index in zip(lstm.TFLITE_INPUTS, inputs):
            full[place] = index
        return full

    # -- leaves --------------------------------------------------------------------------
    def quantization(self, t):
        b = self.b
        scale = np.atleast_1d(t.scale).astype(np.float32)
        zp = np.atleast_1d(t.zero_point).astype(np.int64)
        tfl.QuantizationParametersStartScaleVector(b, len(scale))
        for v in reversed(scale):
            b.PrependFloat32(float(v))
        scale_off = b.EndVector()
        zp_off = _int_vector(b, tfl.QuantizationParametersStartZeroPointVector,
                             zp, b.PrependInt64)
        tfl.QuantizationParametersStart(b)
        tfl.QuantizationParametersAddScale(b, scale_off)
        tfl.QuantizationParametersAddZeroPoint(b, zp_off)
        tfl.QuantizationParametersAddQuantizedDimension(b, int(t.quantized_dimension) if t.per_channel else 0)
        return tfl.QuantizationParametersEnd(b)

    def tensor(self, name, shape, ttype, buf, quant):
        b = self.b
        name_off = b.CreateString(name)
        shape_off = _i32_vector(b, tfl.TensorStartShapeVector, shape)
        quant_off = self.quantization(quant) if quant is not None else None
        tfl.TensorStart(b)
        tfl.TensorAddShape(b, shape_off)
        tfl.TensorAddType(b, ttype)
        tfl.TensorAddBuffer(b, buf)
        tfl.TensorAddName(b, name_off)
        if quant is not None and getattr(quant, "variable", False):
            tfl.TensorAddIsVariable(b, True)        # state kept across invokes (an LSTM's)
        if quant_off is not None:
            tfl.TensorAddQuantization(b, quant_off)
        return tfl.TensorEnd(b)

    def options(self, op):
        """(BuiltinOptions type, offset) of an op's options table."""
        if op is None:                               # QUANTIZE and DEQUANTIZE take none
            return BuiltinOptions.NONE, None
        b, o = self.b, op.options
        act = ACTIVATION[o.get("activation", "none")]
        kind = op.kind
        if kind in ACTIVATION_ONLY_OPTIONS:           # a table holding just the fused activation
            table = ACTIVATION_ONLY_OPTIONS[kind]
            getattr(tfl, table + "Start")(b)
            getattr(tfl, table + "AddFusedActivationFunction")(b, act)
            if o.get("keep_num_dims", False):         # FullyConnectedOptions: rows of (..., C)
                tfl.FullyConnectedOptionsAddKeepNumDims(b, True)
            return getattr(BuiltinOptions, table), getattr(tfl, table + "End")(b)
        if kind == "conv_2d":
            tfl.Conv2DOptionsStart(b)
            tfl.Conv2DOptionsAddPadding(b, PADDING[o.get("padding", "valid")])
            tfl.Conv2DOptionsAddStrideH(b, int(o.get("stride", (1, 1))[0]))
            tfl.Conv2DOptionsAddStrideW(b, int(o.get("stride", (1, 1))[1]))
            tfl.Conv2DOptionsAddDilationHFactor(b, int(o.get("dilation", (1, 1))[0]))
            tfl.Conv2DOptionsAddDilationWFactor(b, int(o.get("dilation", (1, 1))[1]))
            tfl.Conv2DOptionsAddFusedActivationFunction(b, act)
            return BuiltinOptions.Conv2DOptions, tfl.Conv2DOptionsEnd(b)
        if kind == "depthwise_conv_2d":
            tfl.DepthwiseConv2DOptionsStart(b)
            tfl.DepthwiseConv2DOptionsAddPadding(b, PADDING[o.get("padding", "valid")])
            tfl.DepthwiseConv2DOptionsAddStrideH(b, int(o.get("stride", (1, 1))[0]))
            tfl.DepthwiseConv2DOptionsAddStrideW(b, int(o.get("stride", (1, 1))[1]))
            tfl.DepthwiseConv2DOptionsAddDepthMultiplier(b, int(o.get("depth_multiplier", 1)))
            tfl.DepthwiseConv2DOptionsAddDilationHFactor(b, int(o.get("dilation", (1, 1))[0]))
            tfl.DepthwiseConv2DOptionsAddDilationWFactor(b, int(o.get("dilation", (1, 1))[1]))
            tfl.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
            return BuiltinOptions.DepthwiseConv2DOptions, tfl.DepthwiseConv2DOptionsEnd(b)
        if kind == "transpose_conv":
            tfl.TransposeConvOptionsStart(b)
            tfl.TransposeConvOptionsAddPadding(b, PADDING[o.get("padding", "valid")])
            tfl.TransposeConvOptionsAddStrideH(b, int(o.get("stride", (1, 1))[0]))
            tfl.TransposeConvOptionsAddStrideW(b, int(o.get("stride", (1, 1))[1]))
            tfl.TransposeConvOptionsAddFusedActivationFunction(b, act)
            return BuiltinOptions.TransposeConvOptions, tfl.TransposeConvOptionsEnd(b)
        if kind in RESIZE_OPTIONS:                    # ResizeNearestNeighborOptions, ResizeBilinearOptions
            table = RESIZE_OPTIONS[kind]
            getattr(tfl, table + "Start")(b)
            getattr(tfl, table + "AddAlignCorners")(b, bool(o.get("align_corners", False)))
            getattr(tfl, table + "AddHalfPixelCenters")(b, bool(o.get("half_pixel_centers", False)))
            return getattr(BuiltinOptions, table), getattr(tfl, table + "End")(b)
        if kind in ("max_pool_2d", "average_pool_2d"):
            pool, stride = o.get("pool_size", (2, 2)), o.get("stride", (1, 1))
            tfl.Pool2DOptionsStart(b)
            tfl.Pool2DOptionsAddPadding(b, PADDING[o.get("padding", "valid")])
            tfl.Pool2DOptionsAddStrideH(b, int(stride[0]))
            tfl.Pool2DOptionsAddStrideW(b, int(stride[1]))
            tfl.Pool2DOptionsAddFilterHeight(b, int(pool[0]))
            tfl.Pool2DOptionsAddFilterWidth(b, int(pool[1]))
            tfl.Pool2DOptionsAddFusedActivationFunction(b, act)
            return BuiltinOptions.Pool2DOptions, tfl.Pool2DOptionsEnd(b)
        if kind in REDUCERS:
            tfl.ReducerOptionsStart(b)
            tfl.ReducerOptionsAddKeepDims(b, bool(o.get("keep_dims", False)))
            return BuiltinOptions.ReducerOptions, tfl.ReducerOptionsEnd(b)
        if kind == "reshape":
            shape = (1,) + self.q.tensors[op.outputs[0]].shape
            new_shape = _i32_vector(b, tfl.ReshapeOptionsStartNewShapeVector, shape)
            tfl.ReshapeOptionsStart(b)
            tfl.ReshapeOptionsAddNewShape(b, new_shape)
            return BuiltinOptions.ReshapeOptions, tfl.ReshapeOptionsEnd(b)
        if kind == "leaky_relu":
            tfl.LeakyReluOptionsStart(b)
            tfl.LeakyReluOptionsAddAlpha(b, float(o.get("alpha", 0.2)))
            return BuiltinOptions.LeakyReluOptions, tfl.LeakyReluOptionsEnd(b)
        if kind == "unidirectional_sequence_lstm":
            tfl.UnidirectionalSequenceLSTMOptionsStart(b)
            tfl.UnidirectionalSequenceLSTMOptionsAddFusedActivationFunction(b, ActivationFunctionType.TANH)
            tfl.UnidirectionalSequenceLSTMOptionsAddCellClip(b, float(o.get("cell_clip", 0.0)))
            tfl.UnidirectionalSequenceLSTMOptionsAddTimeMajor(b, False)
            return (BuiltinOptions.UnidirectionalSequenceLSTMOptions,
                    tfl.UnidirectionalSequenceLSTMOptionsEnd(b))
        if kind in ("arg_max", "arg_min"):         # ArgMaxOptions, ArgMinOptions: int32 indices
            table = "ArgMaxOptions" if kind == "arg_max" else "ArgMinOptions"
            getattr(tfl, table + "Start")(b)
            getattr(tfl, table + "AddOutputType")(b, TensorType.INT32)
            return getattr(BuiltinOptions, table), getattr(tfl, table + "End")(b)
        if kind == "l2_normalization":
            tfl.L2NormOptionsStart(b)
            tfl.L2NormOptionsAddFusedActivationFunction(b, ActivationFunctionType.NONE)
            return BuiltinOptions.L2NormOptions, tfl.L2NormOptionsEnd(b)
        if kind == "batch_matmul":
            tfl.BatchMatMulOptionsStart(b)
            tfl.BatchMatMulOptionsAddAdjX(b, bool(o.get("adj_x", False)))
            tfl.BatchMatMulOptionsAddAdjY(b, bool(o.get("adj_y", False)))
            return BuiltinOptions.BatchMatMulOptions, tfl.BatchMatMulOptionsEnd(b)
        if kind in BLOCK_OPTIONS:                     # DepthToSpaceOptions, SpaceToDepthOptions
            table = BLOCK_OPTIONS[kind]
            getattr(tfl, table + "Start")(b)
            getattr(tfl, table + "AddBlockSize")(b, int(o["block_size"]))
            return getattr(BuiltinOptions, table), getattr(tfl, table + "End")(b)
        if kind == "softmax":
            tfl.SoftmaxOptionsStart(b)
            tfl.SoftmaxOptionsAddBeta(b, float(o.get("beta", 1.0)))
            return BuiltinOptions.SoftmaxOptions, tfl.SoftmaxOptionsEnd(b)
        return self.movement_options(op)

    def movement_options(self, op):
        """The options of the data-movement ops; axes and masks gain the batch dimension
        (axis 0 of the file's tensors, where a QModel's sample starts at axis 1)."""
        b, o, kind = self.b, op.options, op.kind
        if kind == "concatenation":
            tfl.ConcatenationOptionsStart(b)
            tfl.ConcatenationOptionsAddAxis(b, int(o["axis"]) + 1)
            return BuiltinOptions.ConcatenationOptions, tfl.ConcatenationOptionsEnd(b)
        if kind == "pack":
            tfl.PackOptionsStart(b)
            tfl.PackOptionsAddValuesCount(b, len(op.inputs))
            tfl.PackOptionsAddAxis(b, int(o["axis"]) + 1)
            return BuiltinOptions.PackOptions, tfl.PackOptionsEnd(b)
        if kind == "unpack":
            tfl.UnpackOptionsStart(b)
            tfl.UnpackOptionsAddNum(b, len(op.outputs))
            tfl.UnpackOptionsAddAxis(b, int(o["axis"]) + 1)
            return BuiltinOptions.UnpackOptions, tfl.UnpackOptionsEnd(b)
        if kind in ("split", "split_v"):
            table = "SplitOptions" if kind == "split" else "SplitVOptions"
            getattr(tfl, table + "Start")(b)
            getattr(tfl, table + "AddNumSplits")(b, len(op.outputs))
            return getattr(BuiltinOptions, table), getattr(tfl, table + "End")(b)
        if kind == "mirror_pad":
            tfl.MirrorPadOptionsStart(b)
            tfl.MirrorPadOptionsAddMode(b, {"reflect": 0, "symmetric": 1}[o["mode"]])
            return BuiltinOptions.MirrorPadOptions, tfl.MirrorPadOptionsEnd(b)
        if kind == "strided_slice":
            tfl.StridedSliceOptionsStart(b)
            tfl.StridedSliceOptionsAddBeginMask(b, int(o.get("begin_mask", 0)) << 1)
            tfl.StridedSliceOptionsAddEndMask(b, int(o.get("end_mask", 0)) << 1)
            tfl.StridedSliceOptionsAddShrinkAxisMask(b, int(o.get("shrink_axis_mask", 0)) << 1)
            return BuiltinOptions.StridedSliceOptions, tfl.StridedSliceOptionsEnd(b)
        return BuiltinOptions.NONE, None     # logistic, tanh, relu, relu6, maximum, minimum,
        #               squared_difference, prelu, hard_swish, elu, abs, rsqrt, quantize, pad, slice, transpose

    # -- the model -----------------------------------------------------------------------
    def collect(self):
        """Every QTensor, plus the int32 constants TFLite wants as inputs (MEAN's, SUM's and REDUCE_MAX's axes,
        RESHAPE's new shape), each op's list of tensor indices."""
        q = self.q
        for t in q.tensors.values():
            shape = t.shape if t.is_constant else (1,) + t.shape      # batch 1 on activations
            index = not t.is_constant and t.dtype == "int32"           # ARG_MAX's indices: unquantized
            self.add_tensor(t.name, shape, TENSOR_TYPE[t.dtype], t.data,
                            None if self.float or index else t)
        op_io = []
        for op in q.ops:
            inputs = [self.tensor_index[n] for n in op.inputs]
            if op.kind == "fully_connected" and len(inputs) == 2:
                inputs.append(-1)                                      # optional bias absent
            if op.kind in ("conv_2d", "depthwise_conv_2d") and len(inputs) == 2:
                # TFLite's converter always gives convolutions a bias, and TFLM's depthwise
                # kernel crashes without one: write zeros (scale s_in * s_w, as a bias has).
                inputs.append(self.add_zero_bias(op))
            if op.kind in REDUCERS:                                   # axes past the batch
                # resolved and sorted; a float model's ops have no params
                axes = reduce.resolved_axes(op, q.tensors[op.inputs[0]].shape)
                axes = np.array([a + 1 for a in axes], dtype=np.int32)
                inputs.append(self.add_tensor(f"{op.name}/axes", axes.shape, TensorType.INT32, axes))
            if op.kind == "transpose_conv":    # TFLite's inputs: output shape, filter, input[, bias]
                shape = np.array((1,) + q.tensors[op.outputs[0]].shape, dtype=np.int32)
                inputs = [self.add_tensor(f"{op.name}/output_shape", shape.shape, TensorType.INT32, shape),
                          inputs[1], inputs[0]] + inputs[2:]
            if op.kind in RESIZE_OPTIONS:      # the new (height, width)
                size = np.array(q.tensors[op.outputs[0]].shape[:2], dtype=np.int32)
                inputs.append(self.add_tensor(f"{op.name}/size", size.shape, TensorType.INT32, size))
            if op.kind == "reshape":
                shape = np.array((1,) + q.tensors[op.outputs[0]].shape, dtype=np.int32)
                inputs.append(self.add_tensor(f"{op.name}/shape", shape.shape, TensorType.INT32, shape))
            if op.kind == "unidirectional_sequence_lstm":
                inputs = self.lstm_inputs(inputs)
            inputs = self.movement_inputs(op, inputs)
            if op.kind in FLOAT_UNARY and not self.float:
                op_io += self.float_unary(op, inputs[0], self.tensor_index[op.outputs[0]])
                continue
            op_io.append((self.builtin(op), op, inputs, [self.tensor_index[n] for n in op.outputs]))
        return self.edges(op_io)

    def float_unary(self, op, x, out):
        """NEG and SQUARE as TF's converter writes them in an int8 model (kernels/float_unary.py):
        int8 -> DEQUANTIZE -> float32 -> the op -> float32 -> QUANTIZE -> int8."""
        shape = (1,) + self.q.tensors[op.outputs[0]].shape
        dequantized = self.add_tensor(f"{op.name}/dequantized", shape, TensorType.FLOAT32)
        result = self.add_tensor(f"{op.name}/float", shape, TensorType.FLOAT32)
        return [("dequantize", None, [x], [dequantized]), (op.kind, None, [dequantized], [result]),
                ("quantize", None, [result], [out])]

    def int32_input(self, op, what, values):
        """A constant int32 input tensor of `op` (an axis, paddings, begin, ...)."""
        a = np.array(values, dtype=np.int32)
        return self.add_tensor(f"{op.name}/{what}", a.shape, TensorType.INT32, a)

    def movement_inputs(self, op, inputs):
        """The constant inputs TFLite gives the data-movement ops, with the batch dimension
        (size 1, taken whole) in front of the sample's."""
        o, kind = op.options, op.kind
        if kind == "split":          # SPLIT reads its axis first: (axis, input)
            return [self.int32_input(op, "axis", int(o["axis"]) + 1)] + inputs
        if kind in ("arg_max", "arg_min"):                       # (input, axis)
            return inputs + [self.int32_input(op, "axis", [int(o["axis"]) + 1])]
        if kind == "split_v":        # (input, size_splits, axis)
            return inputs + [self.int32_input(op, "size_splits", o["sizes"]),
                             self.int32_input(op, "axis", int(o["axis"]) + 1)]
        if kind == "mirror_pad":
            return inputs + [self.int32_input(op, "paddings", ((0, 0),) + tuple(o["paddings"]))]
        if kind == "pad":
            inputs = inputs + [self.int32_input(op, "paddings", ((0, 0),) + tuple(o["paddings"]))]
            if o.get("constant") is not None:          # PADV2: the value, quantized as the output
                out = self.q.tensors[op.outputs[0]]
                c = QTensor(f"{op.name}/constant_values", (), out.dtype, out.scale, out.zero_point,
                            np.array(o["constant"], dtype=out.dtype))      # int16 in a 16x8 model
                inputs.append(self.add_tensor(c.name, (), TENSOR_TYPE[out.dtype], c.data, c))
            return inputs
        if kind == "strided_slice":
            return inputs + [self.int32_input(op, "begin", (0,) + tuple(o["begin"])),
                             self.int32_input(op, "end", (1,) + tuple(o["end"])),
                             self.int32_input(op, "strides", (1,) + tuple(o["strides"]))]
        if kind == "slice":
            return inputs + [self.int32_input(op, "begin", (0,) + tuple(o["begin"])),
                             self.int32_input(op, "size", (1,) + tuple(o["size"]))]
        if kind == "transpose":
            return inputs + [self.int32_input(op, "perm", (0,) + tuple(d + 1 for d in o["perm"]))]
        return inputs

    @staticmethod
    def builtin(op):
        """The key of BUILTINS / EDGE_OPS an op is written as: its kind, but a pad with a
        constant is a PADV2."""
        return "padv2" if op.kind == "pad" and op.options.get("constant") is not None else op.kind

    def edges(self, op_io):
        """Put a QUANTIZE / DEQUANTIZE between the int8 edges and the outside types (see the
        module docstring); returns every operator, in order, and sets the subgraph's edges."""
        q, (in_type, out_type) = self.q, self.edge_types
        self.inputs = [self.tensor_index[n] for n in q.inputs]
        self.outputs = [self.tensor_index[n] for n in q.outputs]
        for ends, ttype, is_input in ((self.inputs, in_type, True), (self.outputs, out_type, False)):
            if ttype in ("int8", "int16") or self.float:    # the tensors are the edges
                continue
            for i, index in enumerate(ends):
                t = q.tensors[self.tensors[index][0]]
                if t.dtype == "int32":          # ARG_MAX's indices meet the outside as they are
                    continue
                quant = None if ttype == "float32" else QTensor(
                    t.name, t.shape, "int8", t.scale, t.zero_point + 128)   # uint8: z + 128
                ends[i] = self.add_tensor(f"{t.name}_{ttype}", (1,) + t.shape,
                                          EDGE_TYPES[ttype], quant=quant)
                kind = "dequantize" if ttype == "float32" and not is_input else "quantize"
                io = (kind, None, [ends[i]], [index]) if is_input else \
                    (kind, None, [index], [ends[i]])
                op_io.insert(0, io) if is_input else op_io.append(io)
        return op_io

    def add_zero_bias(self, op):
        x, w = self.q.tensors[op.inputs[0]], self.q.tensors[op.inputs[1]]
        n = w.shape[3] if op.kind == "depthwise_conv_2d" else w.shape[0]
        if self.float:
            return self.add_tensor(f"{op.name}/zero_bias", (n,), TensorType.FLOAT32,
                                   np.zeros(n, np.float32))
        scale = (np.float32(x.scale) * np.broadcast_to(w.scale, (n,))).astype(np.float32)
        dtype = "int64" if x.dtype == "int16" else "int32"          # 16x8: int64 bias
        bias = QTensor(f"{op.name}/zero_bias", (n,), dtype, scale, np.zeros(n, np.int32),
                       np.zeros(n, dtype))
        return self.add_tensor(bias.name, bias.shape, TENSOR_TYPE[dtype], bias.data, bias)

    def write(self):
        q, b = self.q, self.b
        for name, ttype in [(n, self.edge_types[0]) for n in q.inputs] + \
                [(n, self.edge_types[1]) for n in q.outputs]:
            dtype = q.tensors[name].dtype
            if self.float:
                if dtype != "float32":
                    raise GraphError(f"model {q.name!r}: input/output {name!r} must be float32")
                continue
            if dtype == "int32" and name in q.outputs and any(
                    op.kind in ("arg_max", "arg_min") and name in op.outputs for op in q.ops):
                continue                        # ARG_MAX's indices: an int32 output as TFLite writes it
            if dtype not in ("int8", "int16"):
                raise GraphError(f"model {q.name!r}: input/output {name!r} must be int8 or int16")
            if (ttype, dtype) in (("int16", "int8"), ("uint8", "int16")):
                raise GraphError(f"model {q.name!r}: a {dtype} input/output {name!r} cannot meet "
                                 f"the outside as {ttype}")
        op_io = self.collect()
        kinds = list(dict.fromkeys(kind for kind, _, _, _ in op_io))  # first-use order

        # buffers (the bulk of the file) first
        buffer_offs = []
        for data in self.buffers:
            data_off = _bytes_vector(b, data) if data else None
            tfl.BufferStart(b)
            if data_off is not None:
                tfl.BufferAddData(b, data_off)
            buffer_offs.append(tfl.BufferEnd(b))
        tensor_offs = [self.tensor(*t) for t in self.tensors]
        operator_offs = []
        for kind, op, ins, outs in op_io:
            in_off = _i32_vector(b, tfl.OperatorStartInputsVector, ins)
            out_off = _i32_vector(b, tfl.OperatorStartOutputsVector, outs)
            opt_type, opt_off = self.options(op)
            tfl.OperatorStart(b)
            tfl.OperatorAddOpcodeIndex(b, kinds.index(kind))
            tfl.OperatorAddInputs(b, in_off)
            tfl.OperatorAddOutputs(b, out_off)
            if opt_off is not None:
                tfl.OperatorAddBuiltinOptionsType(b, opt_type)
                tfl.OperatorAddBuiltinOptions(b, opt_off)
            operator_offs.append(tfl.OperatorEnd(b))
        code_offs = []
        for kind in kinds:
            code, version = {**BUILTINS, **EDGE_OPS, **PADV2}[kind]
            version = FLOAT_VERSION if self.float else version
            tfl.OperatorCodeStart(b)
            tfl.OperatorCodeAddDeprecatedBuiltinCode(b, deprecated_builtin_code(code))
            tfl.OperatorCodeAddBuiltinCode(b, code)
            tfl.OperatorCodeAddVersion(b, version)
            code_offs.append(tfl.OperatorCodeEnd(b))

        def offsets(start, offs):
            start(b, len(offs))
            for o in reversed(offs):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        tensors_vec = offsets(tfl.SubGraphStartTensorsVector, tensor_offs)
        ops_vec = offsets(tfl.SubGraphStartOperatorsVector, operator_offs)
        inputs_vec = _i32_vector(b, tfl.SubGraphStartInputsVector, self.inputs)
        outputs_vec = _i32_vector(b, tfl.SubGraphStartOutputsVector, self.outputs)
        sg_name = b.CreateString(q.name)
        tfl.SubGraphStart(b)
        tfl.SubGraphAddTensors(b, tensors_vec)
        tfl.SubGraphAddInputs(b, inputs_vec)
        tfl.SubGraphAddOutputs(b, outputs_vec)
        tfl.SubGraphAddOperators(b, ops_vec)
        tfl.SubGraphAddName(b, sg_name)
        subgraph = tfl.SubGraphEnd(b)

        codes_vec = offsets(tfl.ModelStartOperatorCodesVector, code_offs)
        subgraphs_vec = offsets(tfl.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = offsets(tfl.ModelStartBuffersVector, buffer_offs)
        description = b.CreateString(f"minitiny {__version__}")
        tfl.ModelStart(b)
        tfl.ModelAddVersion(b, SCHEMA_VERSION)
        tfl.ModelAddOperatorCodes(b, codes_vec)
        tfl.ModelAddSubgraphs(b, subgraphs_vec)
        tfl.ModelAddDescription(b, description)
        tfl.ModelAddBuffers(b, buffers_vec)
        b.Finish(tfl.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())


def to_tflite(qmodel, input_type="int8", output_type="int8"):
    """The `.tflite` flatbuffer of `qmodel`, as bytes. input_type / output_type: 'int8'
    (the model's own edges; 'int16' says the same of a 16x8 model), 'uint8' or 'float32'
    (one QUANTIZE / DEQUANTIZE op between)."""
    for what, ttype in (("input_type", input_type), ("output_type", output_type)):
        if ttype not in EDGE_TYPES:
            raise GraphError(f"{what} must be one of {', '.join(EDGE_TYPES)}, got {ttype!r}")
    for op in qmodel.ops:
        if op.kind not in BUILTINS:
            raise GraphError(f"op {op.name!r}: kind {op.kind!r} has no TFLite builtin here")
    return _Writer(qmodel, input_type, output_type).write()


def save_tflite(qmodel, path, input_type="int8", output_type="int8"):
    """Write `qmodel` as a `.tflite` file, atomically (minitiny/files.py); the edge types
    as `to_tflite` takes them.

        qmodel = minitiny.quantize(model, representative_data=x_train[:500])
        minitiny.save_tflite(qmodel, "model.tflite")       # TFLite Micro runs it as it is
    """
    return atomic_write(os.fspath(path), to_tflite(qmodel, input_type, output_type))


# ---- float32 models ---------------------------------------------------------------------
@dataclass
class FloatTensor:
    """A float32 tensor as the writer sees it: no quantization; data for constants only."""
    name: str
    shape: tuple            # activations: without batch; constants: full shape
    data: np.ndarray = None
    dtype = "float32"

    @property
    def is_constant(self):
        return self.data is not None


class FloatModel:
    """A lowered float graph (quant/lower.py FloatGraph) in the writer's terms: the names,
    tensors and ops a QModel has, every tensor float32."""

    def __init__(self, graph):
        self.name, self.inputs, self.outputs = graph.name, [graph.input], [graph.output]
        self.tensors = {graph.input: FloatTensor(graph.input, graph.input_shape)}
        self.ops = []
        for op in graph.ops:
            inputs = list(op.inputs)
            for role, data in (("weight", op.weight), ("bias", op.bias)):
                if data is not None:
                    name = f"{op.name}_{role}"
                    self.tensors[name] = FloatTensor(name, data.shape, data.astype(np.float32))
                    inputs.append(name)
            self.tensors[op.name] = FloatTensor(op.name, op.shape)
            self.ops.append(QOp(op.kind, op.name, inputs, [op.name], op.options))

    def weight_bytes(self):
        return sum(t.data.nbytes for t in self.tensors.values() if t.is_constant)


def to_tflite_float(graph):
    """The float32 `.tflite` flatbuffer of a lowered float graph (quant/lower.py `lower`),
    as bytes: what TFLiteConverter writes without optimizations."""
    model = FloatModel(graph)
    for op in model.ops:
        if op.kind not in BUILTINS:
            raise GraphError(f"op {op.name!r}: kind {op.kind!r} has no TFLite builtin here")
    return _Writer(model, "float32", "float32").write()
