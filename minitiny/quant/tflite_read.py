"""`.tflite` -> `QModel`: import a full-integer model converted anywhere.

    qmodel = minitiny.from_tflite("model.tflite")     # the object minitiny.quantize returns
    qmodel.predict(x); minitiny.codegen.generate(qmodel, "build/kws", name="kws")

A `.tflite` file is a FlatBuffer with TFLite's schema (tensorflow/lite/schema/schema.fbs);
the `tflite` package holds its generated accessors, and they are all this file uses to
read bytes (`tflite_io.py`, the writer, describes the layout). Reading takes three steps:

1. The flatbuffer, checked (`read_flatbuffer`). Every table is copied into plain records,
   every index checked against the vector it points into (tensors, buffers, operator
   codes), every constant's byte count against its shape and type, every quantization
   array against its tensor. No vector may claim more entries than the file has bytes, so
   a corrupted length can neither allocate gigabytes nor keep a loop running for hours.
   The accessors follow offsets blindly; whatever they raise on garbage is caught. Every
   problem is a `TFLiteFormatError` naming the file and the table.
2. Operators -> `QOp`s (`_Importer`). Each TFLite builtin maps onto one QOp kind, its fused
   activation onto `activation`. RESHAPE, SQUEEZE and EXPAND_DIMS (Keras' Conv1D puts one
   before a CONV_2D) all become `reshape`: the output tensor holds the new shape, which is
   also where TFLM's reshape takes it from. At the edges, a float32 input followed by
   QUANTIZE becomes the int8 input with the QUANTIZE output's scale and zero point (as
   `QModel.predict` quantizes floats), and a DEQUANTIZE before a float32 output is dropped:
   the int8 tensor it reads is the model output (`QModel.predict` dequantizes it).
   Operators the outputs do not depend on are skipped, such as the SHAPE -> STRIDED_SLICE
   -> PACK chain Keras 3's Flatten leaves behind to compute RESHAPE's unused shape input.
   The element-wise ops (ADD, SUB, MUL, ...) take either input as a constant and broadcast.
   The data-movement ops (CONCATENATION, PACK, SPLIT, SPLIT_V, UNPACK, PAD, PADV2,
   STRIDED_SLICE, SLICE, TRANSPOSE) read their axes, paddings, begins and permutations from
   constant inputs or options; those count the batch dimension, a QModel's do not, so each
   is shifted by one, and an op that would cut, pad or move the batch is refused. SPLIT,
   SPLIT_V and UNPACK keep their several outputs. A time-major tensor [T, 1, F] (the
   converter reshapes a sequence so before an unrolled GRU) has its batch at axis 1:
   RESHAPE and the axis-only ops (CONCATENATION, PACK, SPLIT, SPLIT_V, UNPACK) read it,
   with their axes shifted around it (`batch_axis`); any other op reading one is refused. An int8 -> int8 QUANTIZE inside the
   graph is a requantization (kind `quantize`). A SPACE_TO_BATCH_ND -> convolution ->
   BATCH_TO_SPACE_ND chain (a dilated convolution TensorFlow did not fuse) is imported as
   one dilated convolution first (`tflite_dilation.py`), and a DEQUANTIZE -> NEG or SQUARE
   -> QUANTIZE chain (float32 kernels TF's converter leaves in an int8 model) as one int8
   operator (`tflite_float_unary.py`).
   A 16x8 model (TFLite's EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8: int16
   activations with zero point 0, int8 weights, int64 bias) imports the same way, its
   edges int16 or float32; the model input's type says which scheme the file uses.
   The operators minitiny runs are the table in `supported.py`. Whatever else minitiny cannot
   run (an operator, a float tensor, a dynamic shape, a batch size other
   than 1, a variable tensor, several subgraphs) is collected, and one `UnsupportedTFLiteError`
   lists every item with its operator index. Several inputs and outputs are kept, in the
   file's order: `QModel.inputs` / `outputs` list them, `predict_int8` returns every output.
3. The `QModel` is built, named as the quantizer names its tensors, and its `prepare()`
   checks each operator against its tensors (quant/kernels/): a `GraphError` names the file too.

`run_tflm_int8` runs a `.tflite` file in TensorFlow Lite Micro on int8 inputs whatever its
edges are, so the oracle sees the very inputs the NumPy reference and the generated C see.
"""
import os
import struct
from dataclasses import dataclass

import flatbuffers
import numpy as np
import tflite as tfl
from tflite import ActivationFunctionType, BuiltinOptions, TensorType
from tflite import BuiltinOperator as Op
from tflite.utils import BUILTIN_OPCODE2NAME

from ..geometry import effective_kernel, out_size
from . import kernels, supported, tflm
from .graph import GraphError, QModel, QOp, QTensor
from .tflite_dilation import fold_space_to_batch
from .tflite_float_unary import fold_float_unary


class TFLiteFormatError(ValueError):
    """The bytes are not a well-formed `.tflite` model: names the file and what is wrong."""


class UnsupportedTFLiteError(ValueError):
    """A well-formed `.tflite` model that uses something minitiny cannot run;
    `problems` lists every unsupported item, one string each."""

    def __init__(self, message, problems):
        super().__init__(message)
        self.problems = problems


FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_FILE_BYTES = 1 << 30       # flatbuffers stop at 2 GB; a microcontroller model is far smaller
MAX_ELEMENTS = 1 << 26         # per activation: 64 MB of int8, beyond any microcontroller's RAM
MAX_RANK = 8                   # TFLite's kernels stop at 6 dimensions
BYTES_SOURCE = "<.tflite bytes>"

TYPE_NAMES = {v: k.lower() for k, v in vars(TensorType).items() if not k.startswith("_")}
ITEMSIZE = {TensorType.INT8: 1, TensorType.UINT8: 1, TensorType.BOOL: 1, TensorType.INT16: 2,
            TensorType.UINT16: 2, TensorType.FLOAT16: 2, TensorType.BFLOAT16: 2,
            TensorType.INT32: 4, TensorType.UINT32: 4, TensorType.FLOAT32: 4,
            TensorType.INT64: 8, TensorType.UINT64: 8, TensorType.FLOAT64: 8,
            TensorType.COMPLEX64: 8, TensorType.COMPLEX128: 16}
ACTIVATION_NAMES = {v: k for k, v in vars(ActivationFunctionType).items() if not k.startswith("_")}
ACTIVATIONS = {ActivationFunctionType.NONE: "none", ActivationFunctionType.RELU: "relu",
               ActivationFunctionType.RELU6: "relu6"}
PADDINGS = {0: "same", 1: "valid"}                 # tflite.Padding SAME, VALID

# builtin -> (QOp kind, its options table), from the one table of supported ops. QUANTIZE /
# DEQUANTIZE (kind None there) are folded at the edges only.
KINDS = {getattr(Op, b.name): (b.kind, b.options) for b in supported.OPS if b.kind}
# The fields of each options table the mapping reads (accessor names in `tflite`).
OPTION_FIELDS = {
    "FullyConnectedOptions": ("FusedActivationFunction", "WeightsFormat", "KeepNumDims"),
    "Conv2DOptions": ("Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor",
                      "FusedActivationFunction"),
    "DepthwiseConv2DOptions": ("Padding", "StrideH", "StrideW", "DilationHFactor",
                               "DilationWFactor", "DepthMultiplier", "FusedActivationFunction"),
    "Pool2DOptions": ("Padding", "StrideH", "StrideW", "FilterHeight", "FilterWidth",
                      "FusedActivationFunction"),
    "ReducerOptions": ("KeepDims",),
    "ArgMaxOptions": ("OutputType",),
    "ArgMinOptions": ("OutputType",),
    "TransposeConvOptions": ("Padding", "StrideH", "StrideW", "FusedActivationFunction"),
    "ResizeNearestNeighborOptions": ("AlignCorners", "HalfPixelCenters"),
    "ResizeBilinearOptions": ("AlignCorners", "HalfPixelCenters"),
    "AddOptions": ("FusedActivationFunction",),
    "SubOptions": ("FusedActivationFunction",),
    "MulOptions": ("FusedActivationFunction",),
    "SoftmaxOptions": ("Beta",),
    "L2NormOptions": ("FusedActivationFunction",),
    "LeakyReluOptions": ("Alpha",),
    "ConcatenationOptions": ("Axis", "FusedActivationFunction"),
    "PackOptions": ("ValuesCount", "Axis"),
    "UnpackOptions": ("Num", "Axis"),
    "SplitOptions": ("NumSplits",),
    "SplitVOptions": ("NumSplits",),
    "BatchMatMulOptions": ("AdjX", "AdjY"),
    "DepthToSpaceOptions": ("BlockSize",),
    "MirrorPadOptions": ("Mode",),
    "SpaceToDepthOptions": ("BlockSize",),
    "StridedSliceOptions": ("BeginMask", "EndMask", "EllipsisMask", "NewAxisMask",
                            "ShrinkAxisMask", "Offset"),
    "UnidirectionalSequenceLSTMOptions": ("FusedActivationFunction", "CellClip", "ProjClip",
                                          "TimeMajor", "AsymmetricQuantizeInputs",
                                          "DiagonalRecurrentTensors"),
}
# kind -> (fewest, most) inputs in the file (RESHAPE's and MEAN's second input is a shape / axes)
ELEMENTWISE = ("add", "sub", "mul", "maximum", "minimum", "squared_difference")
REDUCERS = ("mean", "sum", "reduce_max", "reduce_min")
ARITY = {"fully_connected": (2, 3), "conv_2d": (2, 3), "depthwise_conv_2d": (2, 3),
         **{kind: (2, 2) for kind in REDUCERS}, "transpose_conv": (3, 4),
         "resize_nearest_neighbor": (2, 2), "resize_bilinear": (2, 2), "reshape": (1, 2), "prelu": (2, 2),
         **{kind: (2, 2) for kind in ELEMENTWISE},
         "concatenation": (1, 10), "pack": (1, 10), "split": (2, 2), "split_v": (3, 3),
         "pad": (2, 3), "mirror_pad": (2, 2), "strided_slice": (4, 4), "slice": (3, 3), "transpose": (2, 2),
         "batch_matmul": (2, 2), "arg_max": (2, 2), "arg_min": (2, 2),
         "unidirectional_sequence_lstm": (24, 24)}
MULTI_OUTPUT = ("split", "split_v", "unpack")
TIME_MAJOR_OK = ("reshape", "concatenation", "pack", "split", "split_v", "unpack")
MOVEMENT = ("concatenation", "pack", "split", "split_v", "unpack", "pad", "mirror_pad", "strided_slice",
            "slice", "transpose")
WEIGHTED = ("fully_connected", "conv_2d", "depthwise_conv_2d", "transpose_conv")   # input, weight[, bias]
FUSES_ACTIVATION = ("add", "sub", "mul")            # of ELEMENTWISE
INDEX_OUTPUT = ("arg_max", "arg_min")               # an int32 output of indices, no quantization
# UNIDIRECTIONAL_SEQUENCE_LSTM's 24 inputs -> the QOp's 15 (kernels/lstm.py) and their
# roles: input, 8 weights (input then recurrent, gates i f c o), 4 biases, hidden and cell
# state (variable tensors); the optional inputs TFLM's kernel refuses, named.
LSTM_INPUTS = kernels.lstm.TFLITE_INPUTS
LSTM_ROLES = ("activation",) + ("weight",) * 8 + ("bias",) * 4 + ("state", "cell")
LSTM_NAMES = tuple(f"{src}_{gate}_weight" for src in ("input", "recurrent")
                   for gate in ("input", "forget", "cell", "output")) + \
    tuple(f"{gate}_gate_bias" for gate in ("input", "forget", "cell", "output")) + ("hidden_state", "cell_state")
LSTM_ABSENT = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection",
               17: "projection", 20: "layer norm", 21: "layer norm", 22: "layer norm",
               23: "layer norm"}


def op_name(code):
    return BUILTIN_OPCODE2NAME.get(code, f"builtin operator #{code}")


# ---------------------------------------------------------------------------------------
# 1. The flatbuffer, checked, into plain records
# ---------------------------------------------------------------------------------------
@dataclass
class _Tensor:
    index: int
    name: str
    shape: tuple            # as in the file: activations start with the batch dimension
    signature: tuple        # shape_signature (-1 = dynamic), or None
    type: int               # tflite.TensorType
    data: bytes             # the constant's bytes, None for an activation
    scale: np.ndarray       # float32 (n,), or None without quantization
    zero_point: np.ndarray  # int64 (n,)
    qdim: int               # quantized_dimension
    extras: list            # features minitiny does not run: 'sparse', 'variable', ...

    @property
    def type_name(self):
        return TYPE_NAMES.get(self.type, f"type #{self.type}")

    @property
    def label(self):
        return f"tensor #{self.index} {self.name!r}"


@dataclass
class _Operator:
    index: int
    code: int               # tflite.BuiltinOperator
    custom: str             # custom_code of a CUSTOM operator
    inputs: list            # tensor indices; -1 = an optional input left out
    outputs: list
    options: dict           # OPTION_FIELDS of its options table

    @property
    def label(self):
        what = f"CUSTOM {self.custom!r}" if self.code == Op.CUSTOM else op_name(self.code)
        return f"operator #{self.index} {what}"


def _empty_table(cls_name):
    """An options table with no field set: its accessors return the schema's defaults,
    which is what an operator without options means."""
    b = flatbuffers.Builder(16)
    getattr(tfl, cls_name + "Start")(b)
    b.Finish(getattr(tfl, cls_name + "End")(b))
    return getattr(tfl, cls_name).GetRootAs(b.Output(), 0)


class _FileReader:
    """Copies the flatbuffer into records; `where` names the table being read, for the
    message when an accessor meets garbage."""

    def __init__(self, data, source):
        self.data, self.source, self.where = data, source, "the header"

    def fail(self, message):
        raise TFLiteFormatError(f"{self.source}: {message}")

    def length(self, n, item_bytes, what):
        if n < 0 or n * item_bytes > len(self.data):
            self.fail(f"{what} claims {n} entries, more than the {len(self.data)}-byte file holds")
        return n

    def ints(self, obj, field, what, limit):
        """An int vector field as a list of Python ints (empty if absent)."""
        if getattr(obj, field + "IsNone")():
            return []
        n = self.length(getattr(obj, field + "Length")(), 4, what)
        if n > limit:
            self.fail(f"{what} has {n} entries (at most {limit} make sense)")
        return [int(v) for v in getattr(obj, field + "AsNumpy")()]

    def vector(self, length_method, what):
        return range(self.length(length_method(), 4, what))

    def read(self):
        d = self.data
        if len(d) < 8:
            self.fail(f"only {len(d)} bytes: too short for a .tflite file")
        if d[4:8] != FILE_IDENTIFIER:
            self.fail(f"file identifier {bytes(d[4:8])!r}, expected {FILE_IDENTIFIER!r}: "
                      f"not a .tflite file")
        m = tfl.Model.GetRootAs(d, 0)
        if m.Version() != SCHEMA_VERSION:
            self.fail(f"schema version {m.Version()}, expected {SCHEMA_VERSION}")
        self.where = "the operator codes"
        codes = [self.opcode(m.OperatorCodes(i))
                 for i in self.vector(m.OperatorCodesLength, "the operator code list")]
        self.where = "the buffers"
        buffers = [self.buffer(m.Buffers(i), i) for i in self.vector(m.BuffersLength, "the buffer list")]
        n_subgraphs = self.length(m.SubgraphsLength(), 4, "the subgraph list")
        if n_subgraphs == 0:
            self.fail("the model has no subgraph")
        self.where = "subgraph 0"
        sg = m.Subgraphs(0)
        n_tensors = self.length(sg.TensorsLength(), 4, "the tensor list")
        tensors = []
        for i in range(n_tensors):
            self.where = f"tensor #{i}"
            tensors.append(self.tensor(sg.Tensors(i), i, buffers))
        ops = []
        for i in self.vector(sg.OperatorsLength, "the operator list"):
            self.where = f"operator #{i}"
            ops.append(self.operator(sg.Operators(i), i, codes, n_tensors))
        self.where = "the subgraph's inputs and outputs"
        io = []
        for field in ("Inputs", "Outputs"):
            indices = self.ints(sg, field, f"the subgraph's {field.lower()}", 1 << 16)
            if not indices:
                self.fail(f"the subgraph has no {field.lower()}")
            for t in indices:
                if not 0 <= t < n_tensors:
                    self.fail(f"the subgraph's {field.lower()} name tensor {t}, but there are "
                              f"{n_tensors} tensors")
            io.append(indices)
        return tensors, ops, io[0], io[1], n_subgraphs

    def opcode(self, c):
        # GetBuiltinCode (TFLite schema_utils.cc): the larger of the two fields, since
        # deprecated_builtin_code, an int8, holds 127 for every code above 127.
        code = max(int(c.BuiltinCode()), int(c.DeprecatedBuiltinCode()))
        custom = c.CustomCode()
        return code, custom.decode("utf-8", "replace") if custom else None

    def buffer(self, b, i):
        offset, size = int(b.Offset()), int(b.Size())
        if offset > 1:            # the data follows the flatbuffer (files over 2 GB do this)
            if offset + size > len(self.data):
                self.fail(f"buffer #{i} points at bytes {offset}..{offset + size}, past the end of the file")
            return bytes(self.data[offset:offset + size])
        if b.DataIsNone() or self.length(b.DataLength(), 1, f"buffer #{i}") == 0:
            return None
        return b.DataAsNumpy().tobytes()

    def tensor(self, t, i, buffers):
        raw = t.Name()
        name = raw.decode("utf-8", "replace") if raw else ""
        label = f"tensor #{i} {name!r}"
        shape = tuple(self.ints(t, "Shape", f"the shape of {label}", MAX_RANK))
        signature = tuple(self.ints(t, "ShapeSignature", f"the shape signature of {label}", MAX_RANK)) or None
        if any(d < 0 for d in shape):
            self.fail(f"{label} has a negative dimension in its shape {list(shape)}")
        ttype, buf = int(t.Type()), int(t.Buffer())
        if not 0 <= buf < len(buffers):
            self.fail(f"{label} uses buffer {buf}, but the file has {len(buffers)} buffers")
        data = buffers[buf]
        if data is not None and ttype in ITEMSIZE:
            want = int(np.prod(shape, dtype=object)) * ITEMSIZE[ttype]
            if want != len(data):
                self.fail(f"{label}: buffer {buf} holds {len(data)} bytes, but shape {list(shape)} of "
                          f"{TYPE_NAMES[ttype]} needs {want}")
        extras = [what for what, present in (("sparse", t.Sparsity() is not None),
                                             ("variable", bool(t.IsVariable()))) if present]
        scale = zero_point = None
        qdim = 0
        q = t.Quantization()
        if q is not None and not q.ScaleIsNone() and q.ScaleLength() > 0:
            n = self.length(q.ScaleLength(), 4, f"the scales of {label}")
            nz = 0 if q.ZeroPointIsNone() else self.length(q.ZeroPointLength(), 8,
                                                           f"the zero points of {label}")
            if nz != n:
                self.fail(f"{label} has {n} scales but {nz} zero points")
            scale = q.ScaleAsNumpy().astype(np.float32)
            zero_point = q.ZeroPointAsNumpy().astype(np.int64)
            qdim = int(q.QuantizedDimension())
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                self.fail(f"{label}: quantization scales must be finite and > 0, got {scale[:4]}")
            if np.any(np.abs(zero_point) > 2 ** 31 - 1):
                self.fail(f"{label}: a zero point does not fit int32: {zero_point[:4]}")
            if n > 1 and not (0 <= qdim < len(shape) and shape[qdim] == n):
                self.fail(f"{label}: {n} per-channel scales along dimension {qdim} of shape {list(shape)}")
            if q.DetailsType() != 0:
                extras.append("custom quantization")
        return _Tensor(i, name, shape, signature, ttype, data, scale, zero_point, qdim, extras)

    def operator(self, o, i, codes, n_tensors):
        k = int(o.OpcodeIndex())
        if not 0 <= k < len(codes):
            self.fail(f"operator #{i} uses operator code {k}, but the file has {len(codes)}")
        code, custom = codes[k]
        inputs = self.ints(o, "Inputs", f"the inputs of operator #{i}", 64)
        outputs = self.ints(o, "Outputs", f"the outputs of operator #{i}", 64)
        for t in inputs + outputs:
            if not -1 <= t < n_tensors or (t == -1 and t in outputs):
                self.fail(f"operator #{i} {op_name(code)} names tensor {t}, but there are "
                          f"{n_tensors} tensors")
        options = {}
        table = KINDS.get(code, (None, None))[1]
        if table is not None:
            kind = int(o.BuiltinOptionsType())
            if kind == BuiltinOptions.NONE:
                opts = _empty_table(table)
            elif kind != getattr(BuiltinOptions, table):
                self.fail(f"operator #{i} {op_name(code)} carries options of type #{kind}, expected {table}")
            else:
                opts, union = getattr(tfl, table)(), o.BuiltinOptions()
                opts.Init(union.Bytes, union.Pos)
            options = {field: getattr(opts, field)() for field in OPTION_FIELDS[table]}
        return _Operator(i, code, custom, inputs, outputs, options)


def read_flatbuffer(data, source=BYTES_SOURCE):
    """(tensors, operators, input indices, output indices, number of subgraphs) of the
    `.tflite` bytes `data`, checked; TFLiteFormatError for anything malformed."""
    reader = _FileReader(data, source)
    try:
        return reader.read()
    except TFLiteFormatError:
        raise
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, MemoryError,
            struct.error) as e:
        raise TFLiteFormatError(f"{source}: not a valid .tflite flatbuffer: reading {reader.where}, "
                                f"an offset or a length leads outside the file "
                                f"({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------
# 2. Operators -> QOps
# ---------------------------------------------------------------------------------------
class _Unsupported(Exception):
    """Raised while mapping one operator: why minitiny cannot run it."""


class _Importer:
    def __init__(self, data, source, name):
        self.source, self.name = source, name
        self.tensors, self.ops, self.inputs, self.outputs, n_subgraphs = read_flatbuffer(data, source)
        self.problems = []
        # A dilated convolution TensorFlow left unfused becomes one operator (tflite_dilation.py)
        self.ops, self.unfolded = fold_space_to_batch(self.ops, self.tensors, self.outputs)
        # NEG and SQUARE the converter left in float32 become int8 -> int8 (tflite_float_unary.py)
        self.ops, self.unfolded_unary = fold_float_unary(self.ops, self.tensors, self.outputs)
        if n_subgraphs > 1:
            self.problems.append(f"{n_subgraphs} subgraphs (control flow such as IF or WHILE): "
                                 f"minitiny imports models with one")
        self.producer = {}                      # tensor index -> the operator writing it
        for op in self.ops:
            if op.code in (Op.QUANTIZE, Op.DEQUANTIZE) and (
                    len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0):
                self.fail(f"{op.label} has inputs {op.inputs} and outputs {op.outputs}, "
                          f"expected one of each")
            for t in op.outputs:
                if t in self.producer:
                    self.fail(f"{self.tensors[t].label} is written by operators "
                              f"#{self.producer[t].index} and #{op.index}")
                if self.tensors[t].data is not None:
                    self.fail(f"{op.label} writes {self.tensors[t].label}, a constant")
                self.producer[t] = op

    def fail(self, message):
        raise TFLiteFormatError(f"{self.source}: {message}")

    # -- which operators to import ----------------------------------------------------------
    def edges(self):
        """(inputs, outputs, folded operators) once QUANTIZE after a float32 or uint8 input,
        DEQUANTIZE before a float32 output and QUANTIZE before a uint8 output (the edges
        TFLite's converter writes for inference_input_type / inference_output_type) are
        folded away."""
        inputs, outputs, folded = [], [], set()
        for t in self.inputs:
            users = [op for op in self.ops if t in op.inputs]
            if self.tensors[t].type in (TensorType.FLOAT32, TensorType.UINT8):
                q = users[0] if len(users) == 1 else None
                # a float32 edge meets int8, or int16 in a 16x8 model; a uint8 edge int8
                to = (TensorType.INT8, TensorType.INT16) if self.tensors[t].type == TensorType.FLOAT32 \
                    else (TensorType.INT8,)
                if q is None or q.code != Op.QUANTIZE or self.tensors[q.outputs[0]].type not in to:
                    self.problems.append(f"{self.tensors[t].type_name} input {self.tensors[t].label} "
                                         f"is not quantized to int8 by one QUANTIZE operator")
                else:
                    folded.add(q.index)
                    t = q.outputs[0]
            inputs.append(t)
        for t in self.outputs:
            if self.tensors[t].type in (TensorType.FLOAT32, TensorType.UINT8):
                d = self.producer.get(t)
                op, how = (Op.DEQUANTIZE, "dequantized") if self.tensors[t].type == TensorType.FLOAT32 \
                    else (Op.QUANTIZE, "requantized")
                to = (TensorType.INT8, TensorType.INT16) if op == Op.DEQUANTIZE else (TensorType.INT8,)
                if d is None or d.code != op or self.tensors[d.inputs[0]].type not in to:
                    self.problems.append(f"{self.tensors[t].type_name} output {self.tensors[t].label} "
                                         f"is not {how} from int8 by a {op_name(op)} operator")
                else:
                    folded.add(d.index)
                    t = d.inputs[0]
            outputs.append(t)
        return inputs, outputs, folded

    @staticmethod
    def data_inputs(op):
        """The inputs an operator's result depends on (not the shape input of a reshape, nor
        TRANSPOSE_CONV's output shape: the output tensor holds both, and TFLM reads them there)."""
        ins = op.inputs[:1] if op.code in (Op.RESHAPE, Op.SQUEEZE, Op.EXPAND_DIMS) else \
            op.inputs[1:] if op.code == Op.TRANSPOSE_CONV else op.inputs
        return [t for t in ins if t >= 0]

    def needed(self, inputs, outputs, folded):
        """The operators the outputs depend on, in file order. Each may read only tensors
        written before it, so the graph has no cycle and runs in this order."""
        want, needed = set(outputs), []
        for op in reversed(self.ops):
            if op.index not in folded and want & set(op.outputs):
                needed.append(op)
                want.update(self.data_inputs(op))
        needed.reverse()
        written = set(inputs)
        for op in needed:
            for t in self.data_inputs(op):
                if t not in written and "variable" in self.tensors[t].extras and \
                        op.code == Op.UNIDIRECTIONAL_SEQUENCE_LSTM and t in op.inputs[18:20]:
                    continue                    # its state: read and updated in place
                if t not in written and "variable" in self.tensors[t].extras:
                    # TFLite's variable tensors hold state across invocations (an LSTM's cell
                    # and output state): read and updated in place by their operator, written
                    # by none. Well-formed, but not something minitiny runs.
                    self.problems.append(f"{op.label}: reads {self.tensors[t].label}, a variable "
                                         f"tensor (state kept across invocations, as an LSTM's): "
                                         f"minitiny does not support variable tensors")
                elif t not in written and self.tensors[t].data is None:
                    writer = self.producer.get(t)
                    how = (f"operator #{writer.index} writes it later (operators out of order, or a cycle)"
                           if writer else "no operator writes it and it is not a model input")
                    self.fail(f"{op.label} reads {self.tensors[t].label}, but {how}")
            written.update(op.outputs)
        for t in outputs:
            if t not in written:
                self.fail(f"model output {self.tensors[t].label} is never written")
        return needed

    # -- one operator: its kind, inputs and options (TFLM's kernel Init/Prepare read the same)
    def activation_input(self, op, i):
        t = op.inputs[i] if i < len(op.inputs) else -1
        if t < 0:
            self.fail(f"{op.label}: input {i} is missing")
        if self.tensors[t].data is not None:
            raise _Unsupported(f"input {i}, {self.tensors[t].label}, is a constant (minitiny's "
                               f"operators read activations)")
        return self.tensors[t]

    def constant(self, op, i, role, rank):
        t = op.inputs[i]
        if t < 0 or self.tensors[t].data is None or len(self.tensors[t].shape) != rank:
            raise _Unsupported(f"the {role} must be a constant of rank {rank}")
        return self.tensors[t]

    def activation(self, op):
        code = op.options["FusedActivationFunction"]
        if code not in ACTIVATIONS:
            raise _Unsupported(f"fused activation {ACTIVATION_NAMES.get(code, f'#{code}')} "
                               f"(only RELU and RELU6 fuse)")
        return ACTIVATIONS[code]

    def window(self, op, k_h, k_w):
        """Stride, padding, dilation (the convolutions, when not 1) and activation of a
        windowed op (a k_h x k_w filter or pool)."""
        o = op.options
        if o["Padding"] not in PADDINGS:
            raise _Unsupported(f"padding #{o['Padding']} (SAME or VALID only)")
        dilation = (o.get("DilationHFactor", 1), o.get("DilationWFactor", 1))
        if o["StrideH"] < 1 or o["StrideW"] < 1 or k_h < 1 or k_w < 1 or min(dilation) < 1:
            self.fail(f"{op.label}: window {k_h}x{k_w}, stride {o['StrideH']}x{o['StrideW']} and "
                      f"dilation {dilation[0]}x{dilation[1]} must be positive")
        x = self.tensors[op.inputs[0]]
        if len(x.shape) == 4:
            # The input padded so every window fits, (out - 1) * stride + k per side, is what
            # the NumPy reference allocates: refuse a window of a million rows here.
            padded = x.shape[3]
            for size, k, stride, d in ((x.shape[1], k_h, o["StrideH"], dilation[0]),
                                       (x.shape[2], k_w, o["StrideW"], dilation[1])):
                out = max(out_size(PADDINGS[o["Padding"]], size, k, stride, d), 1)
                padded *= max((out - 1) * stride + effective_kernel(k, d), size)
            if padded > MAX_ELEMENTS:
                raise _Unsupported(f"a {k_h}x{k_w} window pads input {list(x.shape)} to {padded} "
                                   f"elements, more than {MAX_ELEMENTS}")
        return {"stride": (o["StrideH"], o["StrideW"]), "padding": PADDINGS[o["Padding"]],
                **({"dilation": dilation} if dilation != (1, 1) else {}),
                "activation": self.activation(op)}

    def map_weighted(self, op, kind, x, out):
        w = self.constant(op, 1, "filter", 2 if kind == "fully_connected" else 4)
        inputs = op.inputs[:2]
        if len(op.inputs) == 3 and op.inputs[2] >= 0:          # the bias is optional
            self.constant(op, 2, "bias", 1)
            inputs = op.inputs[:3]
        o = op.options
        if kind == "fully_connected":
            if o["WeightsFormat"] != 0:
                raise _Unsupported(f"weights format #{o['WeightsFormat']} (only DEFAULT)")
            size = int(np.prod(x.shape[1:], dtype=object))
            if o["KeepNumDims"] and len(x.shape) > 2:   # a row per (..., C): out (..., units)
                if x.shape[-1] != w.shape[1] or out.shape != x.shape[:-1] + (w.shape[0],):
                    self.fail(f"{op.label}: keep_num_dims maps input {list(x.shape)} with filter "
                              f"{list(w.shape)} to {list(x.shape[:-1]) + [w.shape[0]]}, the output has "
                              f"{list(out.shape)}")
                return inputs, {"activation": self.activation(op), "keep_num_dims": True}
            if size != w.shape[1]:
                raise _Unsupported(f"input {list(x.shape)} holds {size} values per sample, the filter "
                                   f"{list(w.shape)} takes {w.shape[1]}: it would run over several rows "
                                   f"(without keep_num_dims, rows beside the batch)")
            return inputs, {"activation": self.activation(op)}
        in_c = x.shape[3] if len(x.shape) == 4 else 0
        if kind == "conv_2d":
            if w.shape[3] != in_c:
                raise _Unsupported(f"filter {list(w.shape)} over input {list(x.shape)}: a grouped "
                                   f"convolution, or a mismatch")
            return inputs, self.window(op, w.shape[1], w.shape[2])
        out_c = w.shape[3]                                      # depthwise: (1, kh, kw, in * m)
        if in_c == 0 or out_c % in_c:
            self.fail(f"{op.label}: filter {list(w.shape)} does not fit input {list(x.shape)}")
        if o["DepthMultiplier"] != out_c // in_c:
            self.fail(f"{op.label}: depth_multiplier {o['DepthMultiplier']} does not match the "
                      f"filter: {out_c} output channels from {in_c} input channels")
        return inputs, dict(self.window(op, w.shape[1], w.shape[2]), depth_multiplier=out_c // in_c)

    def constant_values(self, op, i, role, want):
        """Input i, a constant int32 vector that must hold `want` (a shape the output tensor
        has too: TFLM reads neither at run time)."""
        t = self.tensors[op.inputs[i]] if op.inputs[i] >= 0 else None
        if t is None or t.data is None or t.type != TensorType.INT32:
            raise _Unsupported(f"the {role} must be a constant int32 tensor")
        values = np.frombuffer(t.data, "<i4").tolist()
        if values != want:
            self.fail(f"{op.label}: the {role} {values} does not match the output's {want}")

    def map_transpose_conv(self, op, out):
        """TRANSPOSE_CONV's inputs are (output shape, filter, input[, bias]); the QOp's are
        (input, filter[, bias]), as a convolution's."""
        x = self.activation_input(op, 2)
        w = self.constant(op, 1, "filter", 4)
        if op.inputs[0] >= 0 and self.tensors[op.inputs[0]].data is not None:
            self.constant_values(op, 0, "output shape", list(out.shape))
        # else computed at run time (Keras with batch None: SHAPE -> STRIDED_SLICE -> PACK),
        # which TFLM does not read either: the output tensor's static shape is the one
        inputs = [op.inputs[2], op.inputs[1]]
        if len(op.inputs) == 4 and op.inputs[3] >= 0:
            self.constant(op, 3, "bias", 1)
            inputs.append(op.inputs[3])
        o = op.options
        if o["Padding"] not in PADDINGS:
            raise _Unsupported(f"padding #{o['Padding']} (SAME or VALID only)")
        if o["StrideH"] < 1 or o["StrideW"] < 1:
            self.fail(f"{op.label}: stride {o['StrideH']}x{o['StrideW']} must be positive")
        if len(x.shape) != 4 or w.shape[3] != x.shape[3]:
            self.fail(f"{op.label}: filter {list(w.shape)} does not fit input {list(x.shape)}")
        return inputs, {"stride": (o["StrideH"], o["StrideW"]), "padding": PADDINGS[o["Padding"]],
                        "activation": self.activation(op)}

    def map_reducer(self, op, x):
        """MEAN, SUM, REDUCE_MAX: the axes (a constant int32 tensor, as TFLM requires) past
        the batch dimension, which they may not reduce (the output keeps the batch of 1)."""
        axes = self.tensors[op.inputs[1]] if op.inputs[1] >= 0 else None
        if axes is None or axes.data is None or axes.type != TensorType.INT32:
            raise _Unsupported("the axes must be a constant int32 tensor")
        values = np.frombuffer(axes.data, "<i4").tolist()
        rank = len(x.shape)
        if not values or any(not -rank <= a < rank for a in values):
            self.fail(f"{op.label}: axes {values} are not axes of input {list(x.shape)}")
        resolved = sorted({a % rank for a in values})
        if resolved[0] == 0:
            raise _Unsupported(f"axes {values} reduce the batch dimension of input {list(x.shape)}")
        return {"axes": tuple(a - 1 for a in resolved), "keep_dims": bool(op.options["KeepDims"])}

    def int_constant(self, op, i, role):
        """The values of input i, a constant int32 (or int64) tensor, as a list of ints."""
        t = self.tensors[op.inputs[i]] if i < len(op.inputs) and op.inputs[i] >= 0 else None
        if t is None or t.data is None or t.type not in (TensorType.INT32, TensorType.INT64):
            raise _Unsupported(f"the {role} must be a constant int32 tensor")
        return np.frombuffer(t.data, "<i4" if t.type == TensorType.INT32 else "<i8").astype(np.int64).tolist()

    @staticmethod
    def sample_axis(axis, rank, what="axis", batch=0):
        """A file's axis (negative from the end) as an axis of the sample: the axes after the
        batch dimension (at `batch`: 0, or 1 in a time-major tensor) move down by one."""
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise _Unsupported(f"{what} {axis} outside the {rank} dimensions")
        if a == batch:
            raise _Unsupported(f"{what} {axis}: along the batch dimension (minitiny runs one "
                               f"sample of batch 1 at a time)")
        return a - (a > batch)

    def map_movement(self, op, kind):
        """(input tensor indices, options) of the data-movement ops; every axis, begin, size
        and permutation drops the file's batch dimension (which must be taken whole)."""
        o = op.options
        most = kernels.KERNELS[kind].MAX_DIMS
        most = most[kind] if isinstance(most, dict) else most
        for t in op.inputs + op.outputs:
            if t >= 0 and self.tensors[t].data is None and len(self.tensors[t].shape) > most:
                raise _Unsupported(f"{self.tensors[t].label} has {len(self.tensors[t].shape)} "
                                   f"dimensions; TFLM's kernel takes at most {most}")
        if kind in ("concatenation", "pack"):
            xs = [self.activation_input(op, i) for i in range(len(op.inputs))]
            if kind == "concatenation" and o["FusedActivationFunction"] != ActivationFunctionType.NONE:
                raise _Unsupported("a fused activation (TFLM's kernel refuses one)")
            if kind == "pack" and o["ValuesCount"] != len(xs):
                self.fail(f"{op.label}: values_count {o['ValuesCount']} but {len(xs)} inputs")
            out = self.tensors[op.outputs[0]].shape
            return op.inputs, {"axis": self.sample_axis(o["Axis"], len(out), batch=batch_axis(out))}
        if kind in ("split", "split_v", "unpack"):
            data = {"split": 1, "split_v": 0, "unpack": 0}[kind]
            x = self.activation_input(op, data)
            rank, batch = len(x.shape), batch_axis(x.shape)
            if kind == "unpack":
                if o["Num"] != len(op.outputs):
                    self.fail(f"{op.label}: num {o['Num']} but {len(op.outputs)} outputs")
                return op.inputs[:1], {"axis": self.sample_axis(o["Axis"], rank, batch=batch)}
            if o["NumSplits"] != len(op.outputs):
                self.fail(f"{op.label}: num_splits {o['NumSplits']} but {len(op.outputs)} outputs")
            axis_values = self.int_constant(op, 0 if kind == "split" else 2, "axis")
            if len(axis_values) != 1:
                raise _Unsupported(f"axis {axis_values}: one axis")
            axis = self.sample_axis(axis_values[0], rank, batch=batch)
            if kind == "split":
                return op.inputs[1:2], {"axis": axis}
            sizes = self.int_constant(op, 1, "size_splits")
            if sizes.count(-1) == 1:              # one size left to fill the axis
                sizes[sizes.index(-1)] = x.shape[axis + (axis >= batch)] - (sum(sizes) + 1)
            return op.inputs[:1], {"axis": axis, "sizes": tuple(sizes)}
        x = self.activation_input(op, 0)
        rank = len(x.shape)
        if kind in ("pad", "mirror_pad"):
            pairs = self.int_constant(op, 1, "paddings")
            if len(pairs) != 2 * rank:
                self.fail(f"{op.label}: {len(pairs)} paddings for {rank} dimensions (two each)")
            if pairs[:2] != [0, 0]:
                raise _Unsupported(f"paddings {pairs[:2]} of the batch dimension (only 0)")
            if min(pairs) < 0:
                raise _Unsupported(f"negative paddings {pairs}")
            options = {"paddings": tuple(zip(pairs[2::2], pairs[3::2])), "constant": None}
            if kind == "mirror_pad":                             # MirrorPadMode: REFLECT 0, SYMMETRIC 1
                if o["Mode"] not in (0, 1):
                    raise _Unsupported(f"mirror pad mode #{o['Mode']} (REFLECT or SYMMETRIC only)")
                return op.inputs[:1], {"paddings": options["paddings"],
                                       "mode": ("reflect", "symmetric")[o["Mode"]]}
            if len(op.inputs) == 3 and op.inputs[2] >= 0:        # PADV2's constant_values
                c, dtype = self.tensors[op.inputs[2]], self.dtypes["operand"]    # int16 in 16x8
                if c.data is None or c.type_name != dtype or len(c.data) != np.dtype(dtype).itemsize:
                    raise _Unsupported(f"constant_values must be one constant {dtype} value")
                out = self.tensors[op.outputs[0]]
                if c.scale is None or out.scale is None or c.scale[0] != out.scale[0] \
                        or c.zero_point[0] != out.zero_point[0]:
                    raise _Unsupported("constant_values must share the output's scale and zero "
                                       "point (TFLM's PadPrepare)")
                options["constant"] = int(np.frombuffer(c.data, np.dtype(dtype).newbyteorder("<"))[0])
            return op.inputs[:1], options
        if kind == "transpose":
            perm = self.int_constant(op, 1, "permutation")
            if sorted(perm) != list(range(rank)):
                self.fail(f"{op.label}: perm {perm} is not an order of {rank} dimensions")
            if perm[0] != 0:
                raise _Unsupported(f"perm {perm} moves the batch dimension")
            return op.inputs[:1], {"perm": tuple(p - 1 for p in perm[1:])}
        if kind == "slice":
            begin, size = self.int_constant(op, 1, "begin"), self.int_constant(op, 2, "size")
            if len(begin) != rank or len(size) != rank:
                self.fail(f"{op.label}: begin {begin} and size {size} for {rank} dimensions")
            if begin[0] != 0 or size[0] not in (1, -1):
                raise _Unsupported(f"begin {begin} and size {size}: the batch dimension must be taken whole")
            return op.inputs[:1], {"begin": tuple(begin[1:]), "size": tuple(size[1:])}
        # strided_slice
        for field, name in (("EllipsisMask", "ellipsis_mask"), ("NewAxisMask", "new_axis_mask")):
            if o[field]:
                raise _Unsupported(f"{name} {o[field]} (TFLM's kernel ignores it)")
        if o["Offset"]:
            raise _Unsupported("offset=True (TFLM's kernel ignores it)")
        begin, end, strides = (self.int_constant(op, i, role) for i, role in
                               ((1, "begin"), (2, "end"), (3, "strides")))
        if not len(begin) == len(end) == len(strides) == rank:
            raise _Unsupported(f"begin {begin}, end {end}, strides {strides} for {rank} dimensions "
                               f"(TFLM needs one entry per dimension)")
        masks = {f: o[f] for f in ("BeginMask", "EndMask", "ShrinkAxisMask")}
        batch_whole = strides[0] == 1 and not masks["ShrinkAxisMask"] & 1 and \
            (masks["BeginMask"] & 1 or begin[0] in (0, -1)) and (masks["EndMask"] & 1 or end[0] >= 1)
        for d, stride in enumerate(strides):
            if masks["ShrinkAxisMask"] >> d & 1 and stride < 0:
                raise _Unsupported(f"shrink_axis_mask {masks['ShrinkAxisMask']} on dimension {d} "
                                   f"with stride {stride} (TFLM's kernel leaves the output unwritten)")
        if not batch_whole:
            raise _Unsupported(f"begin {begin}, end {end}, strides {strides}, masks {masks}: the "
                               f"batch dimension must be taken whole")
        return op.inputs[:1], {"begin": tuple(begin[1:]), "end": tuple(end[1:]), "strides": tuple(strides[1:]),
                               "begin_mask": masks["BeginMask"] >> 1, "end_mask": masks["EndMask"] >> 1,
                               "shrink_axis_mask": masks["ShrinkAxisMask"] >> 1}

    def map_batch_matmul(self, op, lhs):
        """BATCH_MATMUL of two activations, each of rank 3 to 5 (the batch, then matrices)."""
        rhs = self.activation_input(op, 1)
        for t in (lhs, rhs):
            if not 3 <= len(t.shape) <= 5:
                raise _Unsupported(f"{t.label} of shape {list(t.shape)}: minitiny multiplies "
                                   f"operands of rank 3 to 5 (a batch of 1, then the matrices)")
        return {"adj_x": bool(op.options["AdjX"]), "adj_y": bool(op.options["AdjY"])}

    def map_elementwise(self, op, kind, out):
        """ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE: two inputs, either one a
        constant, whose shapes broadcast (NumPy's rule, TFLite's) to the output's."""
        if min(op.inputs[:2]) < 0:
            self.fail(f"{op.label}: inputs {op.inputs}: one is missing")
        a, b = (self.tensors[t] for t in op.inputs[:2])
        if a.data is not None and b.data is not None:
            raise _Unsupported("both inputs are constants (a constant result: fold it before converting)")
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            self.fail(f"{op.label}: input shapes {list(a.shape)} and {list(b.shape)} do not broadcast")
        if shape != out.shape:
            self.fail(f"{op.label}: inputs {list(a.shape)} and {list(b.shape)} broadcast to "
                      f"{list(shape)}, but the output has shape {list(out.shape)}")
        if a.shape != b.shape and len(shape) > 4:
            raise _Unsupported(f"broadcasting {list(a.shape)} with {list(b.shape)}: over "
                               f"{len(shape)} dimensions (TFLM's broadcasting stops at 4)")
        return {"activation": self.activation(op)} if kind in FUSES_ACTIVATION else {}

    def map_lstm(self, op):
        """UNIDIRECTIONAL_SEQUENCE_LSTM as TFLM's kernel takes it (unidirectional_sequence_lstm.cc
        Prepare, lstm_eval.cc ValidateTensorStatus): the standard Keras LSTM, its state in
        two variable tensors, batch 1."""
        o = op.options
        absent = sorted({why for i, why in LSTM_ABSENT.items() if op.inputs[i] >= 0})
        if absent:
            raise _Unsupported(f"{' and '.join(absent)} inputs (TFLM's kernel runs the standard "
                               f"LSTM without them)")
        missing = [i for i in LSTM_INPUTS if op.inputs[i] < 0]
        if missing:
            raise _Unsupported(f"inputs {missing} are absent (no input gate, CIFG?): TFLM's "
                               f"kernel needs every gate's weights and bias")
        for i in (18, 19):
            if "variable" not in self.tensors[op.inputs[i]].extras:
                raise _Unsupported(f"{self.tensors[op.inputs[i]].label}, the "
                                   f"{'hidden' if i == 18 else 'cell'} state, is not a variable tensor")
        if o["TimeMajor"]:
            raise _Unsupported("time_major=True (minitiny runs batch-major sequences [1, T, F])")
        if o["ProjClip"] or o["AsymmetricQuantizeInputs"] or o["DiagonalRecurrentTensors"]:
            raise _Unsupported("proj_clip, asymmetric_quantize_inputs or diagonal recurrent "
                               "tensors (not in TFLM's integer kernel)")
        act = o["FusedActivationFunction"]
        if act != ActivationFunctionType.TANH:      # TFLM's CalculateLstmGate asserts it
            raise _Unsupported(f"cell activation {ACTIVATION_NAMES.get(act, f'#{act}')} (TFLM's "
                               f"kernel runs TANH)")
        x = self.tensors[op.inputs[0]]
        if len(x.shape) != 3 or x.shape[0] != 1:
            raise _Unsupported(f"input {x.label} of shape {list(x.shape)} (minitiny runs [1, T, F])")
        if o["CellClip"] < 0:
            self.fail(f"{op.label}: cell_clip {o['CellClip']} is negative")
        options = {"cell_clip": float(o["CellClip"])} if o["CellClip"] > 0 else {}
        return [op.inputs[i] for i in LSTM_INPUTS], options

    def qop(self, op):
        """(kind, input tensor indices, options) of one operator; _Unsupported if minitiny
        cannot run it."""
        if op.code == Op.QUANTIZE:
            types = [self.tensors[op.inputs[0]].type_name, self.tensors[op.outputs[0]].type_name]
            # TFLM's Requantize between int8 and int16 either way (a 16x8 part of a model)
            if not set(types) <= {"int8", "int16"}:
                raise _Unsupported(f"{types[0]} -> {types[1]} (a conversion) inside the graph; "
                                   f"minitiny requantizes between int8 and int16 there, and folds "
                                   f"QUANTIZE after a float32 or uint8 model input")
        if op.code == Op.DEQUANTIZE:
            raise _Unsupported("inside the graph; minitiny folds DEQUANTIZE only before a "
                               "float32 model output")
        if op.index in self.unfolded:
            raise _Unsupported(f"minitiny runs it only around a convolution, imported with it as one "
                               f"dilated convolution; here {self.unfolded[op.index]}")
        if op.index in self.unfolded_unary:
            raise _Unsupported(self.unfolded_unary[op.index])
        if op.code not in KINDS:
            raise _Unsupported("not supported (not among the operators `minitiny import --help` lists)")
        kind = KINDS[op.code][0]
        lo, hi = ARITY.get(kind, (1, 1))
        if not lo <= len(op.inputs) <= hi or (len(op.outputs) != 1 and kind not in MULTI_OUTPUT) \
                or not op.outputs:
            self.fail(f"{op.label} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                      f"expected {lo}..{hi} inputs and {'outputs' if kind in MULTI_OUTPUT else '1 output'}")
        out = self.tensors[op.outputs[0]]
        if kind not in TIME_MAJOR_OK:
            for t in op.inputs + op.outputs:
                shape = self.tensors[t].shape if t >= 0 else ()
                if t >= 0 and self.tensors[t].data is None and batch_axis(shape) not in (0, None):
                    raise _Unsupported(f"{self.tensors[t].label} of shape {list(shape)} is time-major "
                                       f"(its batch at axis {batch_axis(shape)}): only RESHAPE, "
                                       f"CONCATENATION, PACK, SPLIT, SPLIT_V and UNPACK read such tensors")
        if kind in MOVEMENT:
            return (kind,) + self.map_movement(op, kind)
        if kind == "unidirectional_sequence_lstm":
            return (kind,) + self.map_lstm(op)
        if kind in ELEMENTWISE:                 # either input may be a constant
            return kind, op.inputs[:2], self.map_elementwise(op, kind, out)
        if kind == "transpose_conv":            # its input 0 is the output's shape
            return (kind,) + self.map_transpose_conv(op, out)
        x = self.activation_input(op, 0)
        if kind in WEIGHTED:
            return (kind,) + self.map_weighted(op, kind, x, out)
        if kind in ("max_pool_2d", "average_pool_2d"):
            k_h, k_w = op.options["FilterHeight"], op.options["FilterWidth"]
            return kind, op.inputs[:1], dict(self.window(op, k_h, k_w), pool_size=(k_h, k_w))
        if kind in REDUCERS:
            return kind, op.inputs[:1], self.map_reducer(op, x)
        if kind in ("resize_nearest_neighbor", "resize_bilinear"):
            self.constant_values(op, 1, "size", list(out.shape[1:3]))
            return kind, op.inputs[:1], {"align_corners": bool(op.options["AlignCorners"]),
                                         "half_pixel_centers": bool(op.options["HalfPixelCenters"])}
        if kind == "softmax":
            return kind, op.inputs[:1], {"beta": float(op.options["Beta"])}
        if kind == "leaky_relu":
            return kind, op.inputs[:1], {"alpha": float(op.options["Alpha"])}
        if kind == "batch_matmul":
            return kind, op.inputs[:2], self.map_batch_matmul(op, x)
        if kind in INDEX_OUTPUT:                # ARG_MAX, ARG_MIN: int32 indices out
            if op.options["OutputType"] != TensorType.INT32:
                raise _Unsupported(f"output type {TYPE_NAMES.get(op.options['OutputType'], '?')} (TFLM "
                                   f"stops at run time on anything but int32)")
            axis = self.int_constant(op, 1, "axis")
            if len(axis) != 1:
                raise _Unsupported(f"axis {axis}: one axis")
            return kind, op.inputs[:1], {"axis": self.sample_axis(axis[0], len(x.shape))}
        if kind == "l2_normalization" and op.options["FusedActivationFunction"] != ActivationFunctionType.NONE:
            raise _Unsupported("a fused activation (TFLM's kernel refuses one)")
        if kind in ("depth_to_space", "space_to_depth"):
            return kind, op.inputs[:1], {"block_size": int(op.options["BlockSize"])}
        if kind == "prelu":
            alpha = self.tensors[op.inputs[1]] if op.inputs[1] >= 0 else None
            if alpha is None or alpha.data is None:
                raise _Unsupported("alpha must be a constant")
            try:
                np.broadcast_shapes(x.shape, alpha.shape)
            except ValueError:
                self.fail(f"{op.label}: alpha {list(alpha.shape)} does not broadcast over input {list(x.shape)}")
            return kind, op.inputs[:2], {}
        return kind, op.inputs[:1], {}          # reshape, logistic, tanh, relu, relu6, hard_swish, elu,
        #                                         abs, rsqrt, l2_normalization, neg, square

    # -- tensors -------------------------------------------------------------------------
    def tensor_problems(self, t, role):
        """Why tensor `t` cannot be a QTensor in role 'activation', 'weight' or 'bias'."""
        tensor = self.tensors[t]
        want = self.dtypes[role]
        why = [f"{extra} tensor" for extra in tensor.extras
               if not (extra == "variable" and role in ("state", "cell"))]
        if tensor.type_name != want:
            article = "an" if role in ("activation", "operand", "index", "alpha") else "a"
            why.append(f"type {tensor.type_name} ({article} {role} must be {want})")
        elif tensor.scale is None and role != "index":
            why.append("no quantization parameters")
        elif role in ("operand", "alpha") and tensor.scale.shape[0] > 1:
            why.append(f"{tensor.scale.shape[0]} scales (a constant operand has one)")
        return [f"{tensor.label}: {w}" for w in why + self.shape_problems(tensor, role)]

    @staticmethod
    def shape_problems(tensor, role):
        """An activation needs batch 1, a bounded size and a static shape."""
        why = []
        if role in ("activation", "state", "cell", "index"):
            n = int(np.prod(tensor.shape, dtype=object))
            if batch_axis(tensor.shape) is None:
                why.append(f"shape {list(tensor.shape)}: minitiny needs a batch dimension of 1, "
                           f"then the shape of one sample")
            elif n > MAX_ELEMENTS:
                why.append(f"{n} elements, more than {MAX_ELEMENTS}")
            sig = tensor.signature
            if sig is not None and (len(sig) != len(tensor.shape) or any(d < 0 for d in sig[1:])):
                why.append(f"dynamic shape {list(sig)}")
        return why

    def qtensor(self, t, name, role):
        """The QTensor of tensor `t`: activations lose the batch dimension; one scale is
        per tensor (a single channel's scale is the same thing)."""
        tensor = self.tensors[t]
        if role == "index":                     # ARG_MAX's int32 output: indices, unquantized
            b = batch_axis(tensor.shape)
            return QTensor(name, tensor.shape[:b] + tensor.shape[b + 1:], "int32", 1.0, 0)
        per_channel = tensor.scale.shape[0] > 1
        scale = tensor.scale if per_channel else tensor.scale[0]
        zero_point = tensor.zero_point if per_channel else tensor.zero_point[0]
        dtype = tensor.type_name                # the role's type (tensor_problems checked it)
        if role in ("activation", "state", "cell"):
            b = batch_axis(tensor.shape)
            return QTensor(name, tensor.shape[:b] + tensor.shape[b + 1:], dtype, scale, zero_point,
                           variable=role in ("state", "cell"))
        data = np.frombuffer(tensor.data, np.dtype(dtype).newbyteorder("<")).reshape(tensor.shape)
        return QTensor(name, tensor.shape, dtype, scale, zero_point, data.astype(dtype),
                       tensor.qdim if per_channel else 0)

    @staticmethod
    def role_dtypes(scheme):
        """role -> the tensor type it must have in an operator of `scheme`: 'int8', int8
        activations, constant operands and weights with int32 bias; 'int16' (16x8), int16
        activations and operands, int8 weights, int64 bias. A PRELU's alpha is int8 in both."""
        if scheme == "int16":
            return {"activation": "int16", "operand": "int16", "weight": "int8", "bias": "int64",
                    "state": "int16", "cell": "int16", "index": "int32", "alpha": "int8"}
        return {"activation": "int8", "operand": "int8", "weight": "int8", "bias": "int32",
                "state": "int8", "cell": "int16", "index": "int32", "alpha": "int8"}

    # -- the model ---------------------------------------------------------------------------
    WHAT = "full-integer int8 models"           # what the importer runs, for its errors

    def mapped(self):
        """(inputs, outputs, [(operator, kind, input indices, options)], {tensor: role}) of
        the operators the outputs need; UnsupportedTFLiteError lists whatever it cannot run."""
        inputs, outputs, folded = self.edges()
        roles = {}                                              # tensor index -> role
        mapped = []                                             # (operator, kind, inputs, options)
        # each activation's scheme, 'int8' or 'int16' (16x8): a model input's is its type, an
        # operator's outputs take its first activation input's, but a QUANTIZE's output its own
        # type (TFLM's requantization between the two)
        scheme = {t: "int16" if self.tensors[t].type == TensorType.INT16 else "int8" for t in inputs}
        model_scheme = scheme[inputs[0]] if inputs else "int8"
        for op in self.needed(inputs, outputs, folded):
            first = next((t for t in op.inputs if t >= 0 and self.tensors[t].data is None), None)
            op_scheme = scheme.get(first, model_scheme)
            scheme.update((t, op_scheme) for t in op.outputs)
            self.dtypes = self.role_dtypes(op_scheme)
            try:
                kind, ins, options = self.qop(op)
            except _Unsupported as e:
                self.problems.append(f"{op.label}: {e}")
                continue
            if self.dtypes["activation"] == "int16" and kind not in kernels.INT16_KINDS:
                self.problems.append(f"{op.label}: not in the 16x8 scheme (int16 activations): "
                                     f"minitiny runs it on int8 only (docs/OPS.md)")
                continue
            op_roles = [(t, ("activation", "weight", "bias")[i] if kind in WEIGHTED else
                         LSTM_ROLES[i] if kind == "unidirectional_sequence_lstm" else
                         "alpha" if kind == "prelu" and i == 1 else
                         "operand" if self.tensors[t].data is not None else "activation")
                        for i, t in enumerate(ins)] + [(t, "index" if kind in INDEX_OUTPUT else "activation")
                                                       for t in op.outputs]
            why = [w for t, role in op_roles if not (kind == "quantize" and t in op.outputs)
                   for w in self.tensor_problems(t, role)]
            if kind == "quantize":                              # its output in its own scheme
                out = op.outputs[0]
                scheme[out] = "int16" if self.tensors[out].type == TensorType.INT16 else "int8"
                self.dtypes = self.role_dtypes(scheme[out])
                why += self.tensor_problems(out, "activation")
            if why:
                self.problems.append(f"{op.label}: " + "; ".join(why))
            roles.update(op_roles)
            mapped.append((op, kind, ins, options))
        for t in inputs + outputs:
            if t not in roles:                                  # read or written by no operator
                roles[t] = "activation"
                self.dtypes = self.role_dtypes(scheme.get(t, model_scheme))
                why = self.tensor_problems(t, "activation")
                if why:
                    self.problems.append(f"model {'input' if t in inputs else 'output'}: " + "; ".join(why))
        for t in inputs + outputs:
            shape = self.tensors[t].shape
            if batch_axis(shape) not in (0, None):
                self.problems.append(f"model {'input' if t in inputs else 'output'}: {self.tensors[t].label}: "
                                     f"shape {list(shape)}: minitiny needs a batch dimension of 1 first")
        if self.problems:
            # model-wide items first, then by operator index (stable: each op's own order)
            problems = sorted(dict.fromkeys(self.problems), key=_operator_index)
            raise UnsupportedTFLiteError(
                f"{self.source}: minitiny cannot import this model ({len(problems)} unsupported "
                f"item{'s' if len(problems) > 1 else ''}; it runs {self.WHAT} with "
                f"the operators `minitiny import --help` lists: {supported.names()}):\n  "
                + "\n  ".join(problems), problems)
        return inputs, outputs, mapped, roles

    def named(self, inputs, mapped, roles):
        """{tensor index: name} and [(operator, layer name, kind, input indices, options)]."""
        # Names as the quantizer gives them: each activation after the layer that writes it,
        # constants '<layer>_weight' and '<layer>_bias'; the input keeps a plain identifier
        # for a name, or becomes 'input'.
        taken, names = set(), {}
        for i, t in enumerate(inputs):
            name = self.tensors[t].name
            names[t] = _claim(name if name.isidentifier() else "input" if len(inputs) == 1 else f"input_{i}",
                              taken)
        ops = []
        for op, kind, ins, options in mapped:
            layer = _claim(_layer_name(self.tensors[op.outputs[0]].name, kind, op.index), taken, kind)
            names[op.outputs[0]] = layer
            for j, t in enumerate(op.outputs[1:], 1):     # SPLIT's, UNPACK's further outputs
                names[t] = _claim(f"{layer}_{j}", taken)
            for j, t in enumerate(ins):
                if t not in names:           # a constant (the first of those two layers share)
                    role = roles[t] if roles[t] not in ("operand", "alpha") else "constant"
                    if kind == "unidirectional_sequence_lstm":
                        role = LSTM_NAMES[j - 1]
                    names[t] = _claim(f"{layer}_{role}", taken)
            ops.append((op, layer, kind, ins, options))
        return names, ops

    def build(self):
        inputs, outputs, mapped, roles = self.mapped()
        names, named_ops = self.named(inputs, mapped, roles)
        ops = [QOp(kind, layer, [names[t] for t in ins], [names[t] for t in op.outputs], options)
               for op, layer, kind, ins, options in named_ops]
        tensors = {names[t]: self.qtensor(t, names[t], role) for t, role in roles.items()}
        return QModel(self.name, tensors, ops, [names[t] for t in inputs], [names[t] for t in outputs])


def batch_axis(shape):
    """Where an activation's batch dimension of 1 is: axis 0, or, in a time-major tensor
    ([T, 1, F]: the converter reshapes a sequence so before unrolling a Keras GRU or RNN), the
    first axis of size 1; None if no axis has size 1. Only RESHAPE (bytes, any shape) and the
    axis-only data movement (CONCATENATION, PACK, SPLIT, SPLIT_V, UNPACK) read a tensor whose
    batch is not first; the model's inputs and outputs have it first."""
    shape = tuple(shape)
    return next((a for a, d in enumerate(shape) if d == 1), None)


def _operator_index(problem):
    """N of a problem that starts 'operator #N ...', -1 for one about the whole model."""
    head = problem.split(" ", 2)
    return int(head[1][1:]) if head[0] == "operator" and head[1][1:].isdigit() else -1


def _layer_name(tensor_name, kind, index):
    """The Keras layer name in a tensor name, else '<kind>_<index>'. TFLite's converter names
    a tensor after every op fused into it, joined by ';', each a path:
    'model/conv2d_1/Relu;model/conv2d_1/BiasAdd;...' -> 'conv2d_1'. A plain identifier
    (as minitiny's writer leaves) is kept as it is."""
    parts = tensor_name.split(";")[0].strip().split("/")
    if len(parts) >= 2 and parts[-2]:
        return parts[-2]
    return parts[0] if parts[0].isidentifier() else f"{kind}_{index}"


def _claim(base, taken, kind=None):
    """`base`, or a variant no tensor or layer has taken yet: a second op of the same Keras
    layer (its activation, say) gets '<layer>_<kind>', then numbers."""
    candidates = [base] + ([f"{base}_{kind}"] if kind and not base.startswith(kind) else [])
    name = next((c for c in candidates if c not in taken), None)
    i = 1
    while name is None:
        if f"{candidates[-1]}_{i}" not in taken:
            name = f"{candidates[-1]}_{i}"
        i += 1
    taken.add(name)
    return name


# ---------------------------------------------------------------------------------------
# 3. The public functions
# ---------------------------------------------------------------------------------------
def _read_bytes(model):
    """(bytes, the label errors use) of a path or of bytes."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), BYTES_SOURCE
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"expected the path or the bytes of a .tflite file, got {type(model).__name__}")
    path = os.fspath(model)
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise TFLiteFormatError(f"{path}: {size} bytes, larger than any .tflite file minitiny "
                                f"reads ({MAX_FILE_BYTES})")
    with open(path, "rb") as f:
        return f.read(), path


def from_tflite(model, name=None):
    """A full-integer `.tflite` model (a path or its bytes) -> `QModel`, the object
    `minitiny.quantize` returns: `predict`, `evaluate`, `codegen.generate` all take it.

    Raises TFLiteFormatError for malformed bytes, UnsupportedTFLiteError listing every
    operator and tensor minitiny cannot run, GraphError (naming the file) when tensors do
    not fit their operator. `name` defaults to the file name without its extension.
    """
    data, source = _read_bytes(model)
    if name is None:
        name = "model" if source == BYTES_SOURCE else os.path.splitext(os.path.basename(source))[0]
    try:
        return _Importer(data, source, name).build()
    except GraphError as e:
        raise GraphError(f"{source}: {e}") from None


def edge_quantization(model):
    """How the file's inputs and outputs meet the outside: {'inputs': [...], 'outputs': [...]}
    in the file's order, each None for an int8 edge, or (scale, zero point) of the int8
    tensor behind a float32 or uint8 edge (the QUANTIZE output, the DEQUANTIZE input);
    'input' and 'output' are the first of each."""
    data, source = _read_bytes(model)
    importer = _Importer(data, source, "model")
    inputs, outputs, _ = importer.edges()
    result = {}
    for key, in_file, folded in (("inputs", importer.inputs, inputs), ("outputs", importer.outputs, outputs)):
        result[key] = [None if f == t else (float(importer.tensors[f].scale[0]),
                                            int(importer.tensors[f].zero_point[0]))
                       for t, f in zip(in_file, folded)]
    result["input"], result["output"] = result["inputs"][0], result["outputs"][0]
    return result


def run_tflm_int8(model, x_int8):
    """Run a `.tflite` file (path or bytes) in TensorFlow Lite Micro on int8 inputs
    (N, *input_shape) -> int8 outputs (N, *output_shape), whatever the file's edges are.
    Several inputs: a list of arrays in the file's order; several outputs: a list too.

    A float32 input is fed r = s * (q - z), which TFLM's QUANTIZE, q = z + round(r / s) in
    float32, turns back into exactly q: |q - z| <= 255 is far from any rounding boundary.
    A float32 output r = s * (q - z) is mapped back the same way; uint8 edges are q + 128
    (TFLite's converter gives them the int8 scale and zero point + 128). So the interpreter runs
    on the very int8 values minitiny's NumPy reference and generated C get. A 16x8 model
    takes and gives int16 the same way (its float32 edges: r = s * q, zero point 0).
    """
    data, _ = _read_bytes(model)
    edges = edge_quantization(data)
    xs = list(x_int8) if isinstance(x_int8, (list, tuple)) else [x_int8]
    if len(xs) != len(edges["inputs"]):
        raise ValueError(f"run_tflm_int8: the model has {len(edges['inputs'])} inputs, got "
                         f"{len(xs)} arrays")
    graph = tfl.Model.GetRootAs(data, 0).Subgraphs(0)         # the edge types, from the file
    feed, dtype = [], np.asarray(xs[0]).dtype if xs else np.int8
    for i, (x, edge) in enumerate(zip(xs, edges["inputs"])):
        x = np.asarray(x)
        if x.dtype not in (np.int8, np.int16):
            raise ValueError(f"run_tflm_int8: input {i} must be int8 (int16 for a 16x8 model), "
                             f"got {x.dtype}")
        if graph.Tensors(graph.Inputs(i)).Type() == TensorType.UINT8:   # the converter's uint8 edge: u = q + 128
            x = (x.astype(np.int16) + 128).astype(np.uint8)
        elif edge is not None:
            s, z = edge
            x = np.float32(s) * (x.astype(np.float32) - np.float32(z))
        feed.append(x)
    ys = []
    for j, (y, edge) in enumerate(zip(tflm.run_interpreter(data, feed), edges["outputs"])):
        if graph.Tensors(graph.Outputs(j)).Type() == TensorType.UINT8:
            y = y.astype(np.int16) - 128
        elif edge is not None:
            s, z = edge
            info = np.iinfo(dtype)
            y = np.clip(np.round(y.astype(np.float64) / s) + z, info.min, info.max)
        ys.append(y.astype(dtype))
    return ys if len(ys) > 1 else ys[0]
