"""`.tflite` -> `QModel`: import a full-integer model converted anywhere.

    qmodel = minitiny.from_tflite("model.tflite")     # the object minitiny.quantize returns
    qmodel.predict(x); minitiny.codegen.generate(qmodel, "build/kws", name="kws")

A `.tflite` file is a FlatBuffer with TFLite's schema (tensorflow/lite/schema/schema.fbs);
the `tflite` package holds its generated accessors, which is all this file uses to read
bytes. `tflite_io.py` explains the layout; reading goes in three steps, each in its section:

1. The flatbuffer, checked (`read_flatbuffer`). Every table is copied into plain records and every
   index checked against the vector it points into (tensors, buffers, operator codes),
   every constant's byte count against its shape and type, every quantization array
   against the tensor. A vector may not claim more entries than the file has bytes, so a
   corrupted length can neither allocate gigabytes nor keep a loop running for hours.
   Anything wrong is a `TFLiteFormatError` naming the file and the table.
2. Operators -> `QOp`s (`_Importer`). Each TFLite builtin maps onto one QOp kind, with the
   fused activation as `activation`; SQUEEZE and RESHAPE become `reshape` (the output
   tensor's shape is the new shape: TFLM's reshape reads it from there too), and so does
   EXPAND_DIMS, which Keras' Conv1D puts before a CONV_2D. At the edges,
   a float32 input followed by QUANTIZE becomes the int8 input with the QUANTIZE output's
   scale and zero point (`QModel.predict` quantizes floats the same way), and a DEQUANTIZE
   feeding a float32 output is dropped: the int8 tensor before it is the model output
   (`QModel.predict` dequantizes it). Operators the outputs do not depend on are skipped,
   such as the SHAPE -> STRIDED_SLICE -> PACK chain Keras 3's `Flatten` leaves behind to
   compute RESHAPE's shape input, which nothing reads. Everything else minitiny cannot run
   (an operator, a float or int16 tensor, dilation, broadcasting, dynamic shapes, batch
   sizes other than 1, several subgraphs) is collected, and one `UnsupportedTFLiteError`
   lists all of it.
3. The `QModel` is built, and `QModel.prepare()` checks every operator against its tensors
   (kernels.py); a `GraphError` from there names the file too.

`run_tflm_int8` runs a `.tflite` file in TensorFlow Lite Micro on int8 inputs, whatever the
file's edges are (float edges are fed and read back exactly), so the oracle sees the very
inputs the NumPy reference and the generated C see.
"""
import os
import struct

import flatbuffers
import numpy as np
import tflite as tfl
from tflite import BuiltinOperator as Op
from tflite import BuiltinOptions, TensorType
from tflite.utils import BUILTIN_OPCODE2NAME

from .graph import GraphError, QModel, QOp, QTensor


class TFLiteFormatError(ValueError):
    """The bytes are not a well-formed `.tflite` model: names the file and what is wrong."""


class UnsupportedTFLiteError(ValueError):
    """A well-formed `.tflite` model that uses something minitiny cannot run.
    `problems` lists every unsupported operator and tensor, one string each."""

    def __init__(self, message, problems):
        super().__init__(message)
        self.problems = problems


FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_FILE_BYTES = 1 << 30       # flatbuffers stop at 2 GB; a microcontroller model is far smaller
MAX_ELEMENTS = 1 << 26         # per tensor: 64 MB of int8, beyond any microcontroller's RAM
MAX_RANK = 8                   # TFLite's kernels stop at 6 dimensions

TYPE_NAMES = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
ITEMSIZE = {TensorType.INT8: 1, TensorType.UINT8: 1, TensorType.BOOL: 1, TensorType.INT16: 2,
            TensorType.UINT16: 2, TensorType.FLOAT16: 2, TensorType.BFLOAT16: 2,
            TensorType.INT32: 4, TensorType.UINT32: 4, TensorType.FLOAT32: 4,
            TensorType.INT64: 8, TensorType.UINT64: 8, TensorType.FLOAT64: 8,
            TensorType.COMPLEX64: 8, TensorType.COMPLEX128: 16}
ACTIVATIONS = {0: "none", 1: "relu", 3: "relu6"}       # ActivationFunctionType NONE, RELU, RELU6
PADDINGS = {0: "same", 1: "valid"}                     # Padding SAME, VALID

# builtin -> (QOp kind, options table). QUANTIZE and DEQUANTIZE are read only at the edges.
KINDS = {
    Op.FULLY_CONNECTED: ("fully_connected", "FullyConnectedOptions"),
    Op.CONV_2D: ("conv_2d", "Conv2DOptions"),
    Op.DEPTHWISE_CONV_2D: ("depthwise_conv_2d", "DepthwiseConv2DOptions"),
    Op.MAX_POOL_2D: ("max_pool_2d", "Pool2DOptions"),
    Op.AVERAGE_POOL_2D: ("average_pool_2d", "Pool2DOptions"),
    Op.MEAN: ("mean", "ReducerOptions"),
    Op.ADD: ("add", "AddOptions"),
    Op.RESHAPE: ("reshape", None),
    Op.SQUEEZE: ("reshape", None),
    Op.EXPAND_DIMS: ("reshape", None),         # Keras' Conv1D: EXPAND_DIMS -> CONV_2D -> RESHAPE
    Op.SOFTMAX: ("softmax", "SoftmaxOptions"),
    Op.LOGISTIC: ("logistic", None),
    Op.TANH: ("tanh", None),
    Op.RELU: ("relu", None),
    Op.RELU6: ("relu6", None),
}
# The options fields each table holds that the mapping reads (accessor names of `tflite`).
OPTION_FIELDS = {
    "FullyConnectedOptions": ("FusedActivationFunction", "WeightsFormat", "KeepNumDims"),
    "Conv2DOptions": ("Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor",
                      "FusedActivationFunction"),
    "DepthwiseConv2DOptions": ("Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor",
                               "DepthMultiplier", "FusedActivationFunction"),
    "Pool2DOptions": ("Padding", "StrideH", "StrideW", "FilterHeight", "FilterWidth",
                      "FusedActivationFunction"),
    "ReducerOptions": ("KeepDims",),
    "AddOptions": ("FusedActivationFunction",),
    "SoftmaxOptions": ("Beta",),
}


def op_name(code):
    return BUILTIN_OPCODE2NAME.get(code, f"builtin operator #{code}")


# ---------------------------------------------------------------------------------------
# 1. The flatbuffer, checked, into plain records
# ---------------------------------------------------------------------------------------
class _Tensor:
    """One tensor of the subgraph: shape (with batch), type, constant bytes, quantization."""

    def __init__(self, index, name, shape, signature, ttype, data, scale, zero_point, qdim, extras):
        self.index, self.name, self.shape, self.signature = index, name, shape, signature
        self.type, self.data, self.scale, self.zero_point, self.qdim = ttype, data, scale, zero_point, qdim
        self.extras = extras           # unsupported features: 'sparse', 'variable', ...

    @property
    def type_name(self):
        return TYPE_NAMES.get(self.type, f"type #{self.type}").lower()


class _Operator:
    def __init__(self, index, code, custom, inputs, outputs, options):
        self.index, self.code, self.custom = index, code, custom
        self.inputs, self.outputs, self.options = inputs, outputs, options

    @property
    def label(self):
        what = f"CUSTOM {self.custom!r}" if self.code == Op.CUSTOM else op_name(self.code)
        return f"operator #{self.index} {what}"


def _empty_table(cls_name):
    """An options table with no fields set: its accessors return the schema's defaults,
    which is what an operator without an options table means."""
    b = flatbuffers.Builder(16)
    getattr(tfl, cls_name + "Start")(b)
    b.Finish(getattr(tfl, cls_name + "End")(b))
    return getattr(tfl, cls_name).GetRootAs(b.Output(), 0)


class _FileReader:
    """Reads the flatbuffer `data` into records; `where` says which table is being read,
    for the error message if the accessors meet garbage."""

    def __init__(self, data, source):
        self.data, self.source, self.where = data, source, "the header"

    def fail(self, message):
        raise TFLiteFormatError(f"{self.source}: {message}")

    def length(self, n, item_bytes, what):
        if n < 0 or n * item_bytes > len(self.data):
            self.fail(f"{what} claims {n} entries, more than the {len(self.data)}-byte file holds")
        return n

    def ints(self, obj, field, what, limit=None):
        """An int vector field as a list of Python ints (empty if absent)."""
        if getattr(obj, field + "IsNone")():
            return []
        n = self.length(getattr(obj, field + "Length")(), 4, what)
        if limit is not None and n > limit:
            self.fail(f"{what} has {n} entries (at most {limit} make sense)")
        return [int(v) for v in getattr(obj, field + "AsNumpy")()]

    def read(self):
        d = self.data
        if len(d) < 8:
            self.fail(f"only {len(d)} bytes: too short for a .tflite file")
        if d[4:8] != FILE_IDENTIFIER:
            self.fail(f"file identifier {bytes(d[4:8])!r}, expected {FILE_IDENTIFIER!r}: not a .tflite file")
        m = tfl.Model.GetRootAs(d, 0)
        if m.Version() != SCHEMA_VERSION:
            self.fail(f"schema version {m.Version()}, expected {SCHEMA_VERSION}")
        self.where = "the operator codes"
        codes = [self.opcode(m.OperatorCodes(i))
                 for i in range(self.length(m.OperatorCodesLength(), 4, "the operator code list"))]
        self.where = "the buffers"
        buffers = [self.buffer(m.Buffers(i), i) for i in range(self.length(m.BuffersLength(), 4, "the buffer list"))]
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
        for i in range(self.length(sg.OperatorsLength(), 4, "the operator list")):
            self.where = f"operator #{i}"
            ops.append(self.operator(sg.Operators(i), i, codes, n_tensors))
        self.where = "the subgraph's inputs and outputs"
        io = []
        for field in ("Inputs", "Outputs"):
            indices = self.ints(sg, field, f"the subgraph's {field.lower()}")
            for t in indices:
                if not 0 <= t < n_tensors:
                    self.fail(f"subgraph {field.lower()} name tensor {t}, but there are {n_tensors} tensors")
            io.append(indices)
        return tensors, ops, io[0], io[1], n_subgraphs

    def opcode(self, c):
        # TFLite's GetBuiltinCode: the larger of the two fields (deprecated_builtin_code is an
        # int8 that holds 127, PLACEHOLDER_FOR_GREATER_OP_CODES, for codes above 127).
        code = max(int(c.BuiltinCode()), int(c.DeprecatedBuiltinCode()))
        custom = c.CustomCode()
        return code, custom.decode("utf-8", "replace") if custom else None

    def buffer(self, b, i):
        offset, size = int(b.Offset()), int(b.Size())
        if offset > 1:            # data stored after the flatbuffer (models over 2 GB)
            if offset + size > len(self.data):
                self.fail(f"buffer #{i} points at bytes {offset}..{offset + size}, past the end of the file")
            return bytes(self.data[offset:offset + size])
        if b.DataIsNone():
            return None
        n = self.length(b.DataLength(), 1, f"buffer #{i}")
        return b.DataAsNumpy().tobytes() if n else None

    def tensor(self, t, i, buffers):
        raw = t.Name()
        name = raw.decode("utf-8", "replace") if raw else ""
        shape = tuple(self.ints(t, "Shape", f"tensor #{i}'s shape", MAX_RANK))
        signature = tuple(self.ints(t, "ShapeSignature", f"tensor #{i}'s shape signature", MAX_RANK)) or None
        label = f"tensor #{i} {name!r}"
        if any(d < 0 for d in shape):
            self.fail(f"{label} has a negative dimension in its shape {list(shape)}")
        ttype, buf = int(t.Type()), int(t.Buffer())
        if not 0 <= buf < len(buffers):
            self.fail(f"{label} uses buffer {buf}, but the file has {len(buffers)} buffers")
        data = buffers[buf]
        if data is not None:
            want = int(np.prod(shape, dtype=object)) * ITEMSIZE.get(ttype, 0)
            if ttype in ITEMSIZE and want != len(data):
                self.fail(f"{label}: buffer {buf} holds {len(data)} bytes, but shape {list(shape)} of "
                          f"{TYPE_NAMES.get(ttype, ttype).lower()} needs {want}")
        extras = [what for what, present in (("sparse", t.Sparsity() is not None),
                                             ("variable", bool(t.IsVariable()))) if present]
        scale = zero_point = None
        qdim = 0
        q = t.Quantization()
        if q is not None and not q.ScaleIsNone() and q.ScaleLength() > 0:
            n = self.length(q.ScaleLength(), 4, f"{label}'s scales")
            scale = q.ScaleAsNumpy().astype(np.float32)
            nz = 0 if q.ZeroPointIsNone() else self.length(q.ZeroPointLength(), 8, f"{label}'s zero points")
            if nz != n:
                self.fail(f"{label} has {n} scales but {nz} zero points")
            zero_point = q.ZeroPointAsNumpy().astype(np.int64)
            qdim = int(q.QuantizedDimension())
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                self.fail(f"{label}: quantization scales must be finite and > 0, got {scale[:4]}")
            if np.any(np.abs(zero_point) > 2 ** 31 - 1):
                self.fail(f"{label}: zero point {zero_point[np.argmax(np.abs(zero_point))]} does not fit int32")
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
        inputs = self.ints(o, "Inputs", f"operator #{i}'s inputs", 64)
        outputs = self.ints(o, "Outputs", f"operator #{i}'s outputs", 64)
        for t in inputs + outputs:
            if not -1 <= t < n_tensors or (t == -1 and t in outputs):
                self.fail(f"operator #{i} {op_name(code)} names tensor {t}, but there are {n_tensors} tensors")
        options = {}
        table = KINDS.get(code, (None, None))[1]
        if table is not None:
            ot = int(o.BuiltinOptionsType())
            if ot == BuiltinOptions.NONE:
                opts = _empty_table(table)
            elif ot != getattr(BuiltinOptions, table):
                self.fail(f"operator #{i} {op_name(code)} carries options of type #{ot}, expected {table}")
            else:
                opts = getattr(tfl, table)()
                u = o.BuiltinOptions()
                opts.Init(u.Bytes, u.Pos)
            options = {field: getattr(opts, field)() for field in OPTION_FIELDS[table]}
        return _Operator(i, code, custom, inputs, outputs, options)


def _read_bytes(model):
    """(bytes, label for messages) of a path or of bytes."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<.tflite bytes>"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"from_tflite: expected a path or bytes, got {type(model).__name__}")
    path = os.fspath(model)
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise TFLiteFormatError(f"{path}: {size} bytes, larger than any .tflite file minitiny "
                                f"reads ({MAX_FILE_BYTES} bytes)")
    with open(path, "rb") as f:
        return f.read(), path


def read_flatbuffer(data, source="<.tflite bytes>"):
    """(tensors, operators, input indices, output indices, number of subgraphs) of `data`,
    checked; a TFLiteFormatError for anything malformed."""
    reader = _FileReader(data, source)
    try:
        return reader.read()
    except TFLiteFormatError:
        raise
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, MemoryError,
            struct.error) as e:
        # the generated accessors follow offsets blindly: garbage ends up here
        raise TFLiteFormatError(f"{source}: not a valid .tflite flatbuffer (reading {reader.where}: "
                                f"{type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------
# 2. Operators -> QOps
# ---------------------------------------------------------------------------------------
class _Unsupported(Exception):
    """Raised inside a mapping function: the reason one operator cannot be imported."""


class _Importer:
    def __init__(self, data, source, name):
        self.source, self.name = source, name
        self.tensors, self.ops, self.inputs, self.outputs, n_subgraphs = read_flatbuffer(data, source)
        self.problems = []
        if n_subgraphs > 1:
            self.problems.append(f"{n_subgraphs} subgraphs (control flow such as IF or WHILE): "
                                 f"minitiny imports models with one")
        self.producer = {}                      # tensor index -> operator writing it
        for op in self.ops:
            if op.code in (Op.QUANTIZE, Op.DEQUANTIZE) and (
                    len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0):
                self.fail(f"{op.label} has inputs {op.inputs} and outputs {op.outputs}; "
                          f"expected one of each")
            for t in op.outputs:
                if t in self.producer:
                    self.fail(f"tensor #{t} {self.tensors[t].name!r} is written by operators "
                              f"#{self.producer[t].index} and #{op.index}")
                if self.tensors[t].data is not None:
                    self.fail(f"{op.label} writes tensor #{t} {self.tensors[t].name!r}, a constant")
                self.producer[t] = op

    def fail(self, message):
        raise TFLiteFormatError(f"{self.source}: {message}")

    def consumers(self, t):
        return [op for op in self.ops if t in op.inputs]

    # -- the edges -----------------------------------------------------------------------
    def edges(self):
        """Model inputs and outputs after QUANTIZE / DEQUANTIZE at the edges are folded away;
        returns (inputs, outputs, operators folded)."""
        inputs, outputs, folded = [], [], set()
        for t in self.inputs:
            if self.tensors[t].type == TensorType.FLOAT32:
                users = self.consumers(t)
                q = users[0] if len(users) == 1 else None
                if q is None or q.code != Op.QUANTIZE or self.tensors[q.outputs[0]].type != TensorType.INT8:
                    self.problems.append(f"float32 input #{t} {self.tensors[t].name!r} is not quantized "
                                         f"to int8 by one QUANTIZE operator")
                    inputs.append(t)
                    continue
                folded.add(q.index)
                t = q.outputs[0]
            inputs.append(t)
        for t in self.outputs:
            if self.tensors[t].type == TensorType.FLOAT32:
                d = self.producer.get(t)
                if d is None or d.code != Op.DEQUANTIZE or self.tensors[d.inputs[0]].type != TensorType.INT8:
                    self.problems.append(f"float32 output #{t} {self.tensors[t].name!r} is not "
                                         f"dequantized from int8 by a DEQUANTIZE operator")
                    outputs.append(t)
                    continue
                folded.add(d.index)
                t = d.inputs[0]
            outputs.append(t)
        return inputs, outputs, folded

    @staticmethod
    def data_inputs(op):
        """The inputs an operator's result depends on: the shape inputs of RESHAPE and
        EXPAND_DIMS are ignored (the output tensor holds the shape)."""
        ins = op.inputs[:1] if op.code in (Op.RESHAPE, Op.SQUEEZE, Op.EXPAND_DIMS) else op.inputs
        return [t for t in ins if t >= 0]

    def needed(self, inputs, outputs, folded):
        """The operators the outputs depend on, in file order; checks that every operator
        reads only tensors written before it (so the graph has no cycle)."""
        want, needed = set(outputs), []
        for op in reversed(self.ops):
            if op.index not in folded and want & set(op.outputs):
                needed.append(op)
                want.update(self.data_inputs(op))
        needed.reverse()
        written = set(inputs)
        for op in needed:
            for t in self.data_inputs(op):
                if t not in written and self.tensors[t].data is None:
                    writer = self.producer.get(t)
                    how = (f"operator #{writer.index} writes it later (operators out of order, or a cycle)"
                           if writer else "no operator writes it and it is not a model input")
                    self.fail(f"{op.label} reads tensor #{t} {self.tensors[t].name!r}, but {how}")
            written.update(op.outputs)
        for t in outputs:
            if t not in written:
                self.fail(f"model output #{t} {self.tensors[t].name!r} is never written")
        return needed

    # -- one operator ------------------------------------------------------------------------
    def activation_tensor(self, t, role):
        if t < 0:
            raise _Unsupported(f"the {role} is missing (tensor index -1)")
        tensor = self.tensors[t]
        if tensor.data is not None:
            raise _Unsupported(f"{role} #{t} {tensor.name!r} is a constant (minitiny's {role}s are activations)")
        return tensor

    def constant(self, t, role, rank):
        tensor = self.tensors[t] if t >= 0 else None
        if tensor is None or tensor.data is None or len(tensor.shape) != rank:
            raise _Unsupported(f"{role} must be a constant of rank {rank}")
        return tensor

    def activation(self, op, key="FusedActivationFunction"):
        code = op.options[key]
        if code not in ACTIVATIONS:
            raise _Unsupported(f"fused activation #{code} (only RELU and RELU6 fuse)")
        return ACTIVATIONS[code]

    def window(self, op):
        o = op.options
        if o["Padding"] not in PADDINGS:
            raise _Unsupported(f"padding #{o['Padding']} (SAME or VALID only)")
        if o.get("DilationHFactor", 1) != 1 or o.get("DilationWFactor", 1) != 1:
            raise _Unsupported(f"dilation {o['DilationHFactor']}x{o['DilationWFactor']} (only 1)")
        if o["StrideH"] < 1 or o["StrideW"] < 1:
            self.fail(f"{op.label}: stride {o['StrideH']}x{o['StrideW']} must be positive")
        return {"stride": (o["StrideH"], o["StrideW"]), "padding": PADDINGS[o["Padding"]],
                "activation": self.activation(op)}

    def qop(self, op):
        """(kind, input indices, options) of one operator, or _Unsupported."""
        if op.code == Op.QUANTIZE:
            types = [self.tensors[op.inputs[0]].type_name, self.tensors[op.outputs[0]].type_name]
            what = "a requantization" if types == ["int8", "int8"] else "a conversion"
            raise _Unsupported(f"{types[0]} -> {types[1]} ({what}) inside the graph; minitiny folds "
                               f"QUANTIZE only at a float32 model input")
        if op.code == Op.DEQUANTIZE:
            raise _Unsupported("inside the graph; minitiny folds DEQUANTIZE only at a float32 model output")
        if op.code not in KINDS:
            raise _Unsupported("not supported")
        kind = KINDS[op.code][0]
        n_in = {"fully_connected": (2, 3), "conv_2d": (2, 3), "depthwise_conv_2d": (2, 3),
                "add": (2, 2), "mean": (2, 2), "reshape": (1, 2)}.get(kind, (1, 1))
        if not n_in[0] <= len(op.inputs) <= n_in[1] or len(op.outputs) != 1 or op.inputs[0] < 0:
            self.fail(f"{op.label} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                      f"expected {n_in[0]}..{n_in[1]} inputs and 1 output")
        x = self.activation_tensor(op.inputs[0], "input")
        out = self.tensors[op.outputs[0]]
        inputs = op.inputs[:1]
        o = op.options
        if kind in ("fully_connected", "conv_2d", "depthwise_conv_2d"):
            rank = 2 if kind == "fully_connected" else 4
            w = self.constant(op.inputs[1], "the filter", rank)
            inputs = [op.inputs[0], op.inputs[1]] + ([op.inputs[2]] if len(op.inputs) == 3 and op.inputs[2] >= 0 else [])
            if len(inputs) == 3:
                self.constant(op.inputs[2], "the bias", 1)
        if kind == "fully_connected":
            if o["WeightsFormat"] != 0:
                raise _Unsupported(f"weights format #{o['WeightsFormat']} (only DEFAULT)")
            units, depth = w.shape
            size = int(np.prod(x.shape[1:], dtype=object))
            if size != depth:
                raise _Unsupported(f"input {list(x.shape)} holds {size} values per sample, the filter "
                                   f"expects {depth}: the product would run over several rows")
            if o["KeepNumDims"] and len(out.shape) != 2:
                raise _Unsupported(f"keep_num_dims with an output of shape {list(out.shape)}")
            return kind, inputs, {"activation": self.activation(op)}
        if kind == "conv_2d":
            if len(x.shape) == 4 and w.shape[3] != x.shape[3]:
                raise _Unsupported(f"grouped convolution: the filter has {w.shape[3]} input channels, "
                                   f"the input {x.shape[3]}")
            return kind, inputs, self.window(op)
        if kind == "depthwise_conv_2d":
            in_c, out_c = (x.shape[3] if len(x.shape) == 4 else 0), w.shape[3]
            if in_c == 0 or out_c % in_c:
                self.fail(f"{op.label}: filter {list(w.shape)} does not fit input {list(x.shape)}")
            if o["DepthMultiplier"] != out_c // in_c:
                self.fail(f"{op.label}: depth_multiplier {o['DepthMultiplier']} does not match the filter: "
                          f"{out_c} output channels from {in_c} input channels")
            return kind, inputs, dict(self.window(op), depth_multiplier=out_c // in_c)
        if kind in ("max_pool_2d", "average_pool_2d"):
            if o["FilterHeight"] < 1 or o["FilterWidth"] < 1:
                self.fail(f"{op.label}: pool size {o['FilterHeight']}x{o['FilterWidth']} must be positive")
            return kind, inputs, dict(self.window(op), pool_size=(o["FilterHeight"], o["FilterWidth"]))
        if kind == "mean":
            axes = self.tensors[op.inputs[1]] if op.inputs[1] >= 0 else None
            if axes is None or axes.data is None or axes.type not in (TensorType.INT32, TensorType.INT64):
                raise _Unsupported("the axes must be a constant int32 tensor")
            rank = len(x.shape)
            values = np.frombuffer(axes.data, "<i4" if axes.type == TensorType.INT32 else "<i8")
            axes_set = {int(a) + rank if a < 0 else int(a) for a in values}
            if rank != 4 or axes_set != {1, 2}:
                raise _Unsupported(f"mean over axes {sorted(int(a) for a in values)} of a rank-{rank} input "
                                   f"(only the global average over H and W of (N, H, W, C))")
            return kind, inputs, {"axes": (0, 1), "keep_dims": bool(o["KeepDims"])}
        if kind == "add":
            y = self.activation_tensor(op.inputs[1], "input")
            if x.shape != y.shape or x.shape != out.shape:
                raise _Unsupported(f"broadcasting {list(x.shape)} + {list(y.shape)} -> {list(out.shape)} "
                                   f"(only equal shapes)")
            return kind, op.inputs[:2], {"activation": self.activation(op)}
        if kind == "softmax":
            return kind, inputs, {"beta": float(o["Beta"])}
        return kind, inputs, {}                 # reshape, logistic, tanh, relu, relu6

    # -- tensors ----------------------------------------------------------------------------
    def tensor_problems(self, t, role):
        """Why tensor `t` cannot become a QTensor in role 'activation', 'weight' or 'bias'."""
        tensor = self.tensors[t]
        want = "int32" if role == "bias" else "int8"
        why = [f"{tensor.extras[0]} tensor"] if tensor.extras else []
        if tensor.type_name != want:
            why.append(f"type {tensor.type_name} (a {role} must be {want})")
        elif tensor.scale is None:
            why.append("no quantization parameters")
        if role == "activation":
            n = int(np.prod(tensor.shape, dtype=object))
            if len(tensor.shape) < 2 or tensor.shape[0] != 1:
                why.append(f"shape {list(tensor.shape)}: minitiny needs a batch dimension of 1, "
                           f"then the shape of one sample")
            elif n > MAX_ELEMENTS:
                why.append(f"{n} elements, more than {MAX_ELEMENTS}")
            sig = tensor.signature
            if sig is not None and (len(sig) != len(tensor.shape) or any(d < 0 for d in sig[1:])):
                why.append(f"dynamic shape {list(sig)}")
        return [f"tensor #{t} {tensor.name!r}: {w}" for w in why]

    def qtensor(self, t, name, role):
        tensor = self.tensors[t]
        per_channel = tensor.scale.shape[0] > 1
        scale = tensor.scale if per_channel else tensor.scale[0]
        zp = tensor.zero_point if per_channel else tensor.zero_point[0]
        if role == "activation":
            return QTensor(name, tensor.shape[1:], "int8", scale, zp)
        dtype = "int8" if role == "weight" else "int32"
        data = np.frombuffer(tensor.data, "<i1" if dtype == "int8" else "<i4").reshape(tensor.shape)
        return QTensor(name, tensor.shape, dtype, scale, zp, data.astype(dtype),
                       tensor.qdim if per_channel else 0)

    # -- the model ---------------------------------------------------------------------------
    def build(self):
        inputs, outputs, folded = self.edges()
        roles = {t: "activation" for t in inputs + outputs}     # tensor index -> role
        for t in inputs + outputs:
            why = self.tensor_problems(t, "activation")
            if why:
                self.problems.append(f"model {'input' if t in inputs else 'output'}: " + "; ".join(why))
        mapped = []                             # (operator, kind, input indices, options)
        for op in self.needed(inputs, outputs, folded):
            try:
                kind, ins, options = self.qop(op)
            except _Unsupported as e:
                self.problems.append(f"{op.label}: {e}")
                continue
            weighted = kind in ("fully_connected", "conv_2d", "depthwise_conv_2d")
            op_roles = [(t, ("activation", "weight", "bias")[i] if weighted else "activation")
                        for i, t in enumerate(ins)] + [(op.outputs[0], "activation")]
            why = [w for t, role in op_roles for w in self.tensor_problems(t, role)]
            if why:
                self.problems.append(f"{op.label}: " + "; ".join(why))
            roles.update(op_roles)
            mapped.append((op, kind, ins, options))
        if self.problems:
            problems = list(dict.fromkeys(self.problems))
            raise UnsupportedTFLiteError(
                f"{self.source}: minitiny cannot import this model ({len(problems)} unsupported "
                f"item{'s' if len(problems) > 1 else ''}; it runs full-integer int8 models with "
                f"{', '.join(sorted({op_name(c) for c in KINDS}))}, and QUANTIZE / DEQUANTIZE at "
                f"float edges):\n  " + "\n  ".join(problems), problems)
        # Names as the quantizer gives them: each activation after the layer that writes it,
        # constants '<layer>_weight' and '<layer>_bias', the model input 'input'.
        taken, names = set(), {}
        for i, t in enumerate(inputs):
            names[t] = _claim("input" if len(inputs) == 1 else f"input_{i}", taken)
        ops = []
        for op, kind, ins, options in mapped:
            layer = _claim(_layer_name(self.tensors[op.outputs[0]].name, kind, op.index), taken, kind)
            names[op.outputs[0]] = layer
            if kind in ("fully_connected", "conv_2d", "depthwise_conv_2d"):
                for role, t in zip(("weight", "bias"), ins[1:]):
                    if t not in names:
                        names[t] = _claim(f"{layer}_{role}", taken)
            ops.append(QOp(kind, layer, [names[t] for t in ins], [layer], options))
        tensors = {names[t]: self.qtensor(t, names[t], role) for t, role in roles.items()}
        return QModel(self.name, tensors, ops, [names[t] for t in inputs], [names[t] for t in outputs])


def _layer_name(tensor_name, kind, index):
    """Keras' layer name from the output tensor's name, else '<kind>_<index>'. TFLite's
    converter names a tensor after every op fused into it, joined by ';', each a path:
    'model/conv2d_1/Relu;model/conv2d_1/BiasAdd;...' -> 'conv2d_1'."""
    parts = tensor_name.split(";")[0].strip().split("/")
    return parts[-2] if len(parts) >= 2 and parts[-2] else f"{kind}_{index}"


def _claim(base, taken, kind=None):
    """`base`, or a variant no tensor or layer has yet: a second op of the same Keras layer
    (its activation, say) gets '<layer>_<kind>', then numbers."""
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
def from_tflite(model, name=None):
    """A `.tflite` file (path or bytes) -> `QModel`, the object `minitiny.quantize` returns.

    Raises TFLiteFormatError for malformed bytes, UnsupportedTFLiteError listing every
    operator and tensor minitiny cannot run, GraphError (naming the file) when the tensors
    do not fit an operator. `name` defaults to the file name without its extension.
    """
    data, source = _read_bytes(model)
    if name is None:
        name = os.path.splitext(os.path.basename(source))[0] if source != "<.tflite bytes>" else "model"
    try:
        return _Importer(data, source, name).build()
    except GraphError as e:
        raise GraphError(f"{source}: {e}") from None


def edge_quantization(model):
    """How the file's first input and output meet the outside:
    {'input': (scale, zero_point) or None, 'output': ...}; None for an int8 edge, the
    QUANTIZE output's / DEQUANTIZE input's parameters for a float32 edge."""
    data, source = _read_bytes(model)
    importer = _Importer(data, source, "model")
    inputs, outputs, _ = importer.edges()
    result = {}
    for key, raw, folded in (("input", importer.inputs[0], inputs[0]), ("output", importer.outputs[0], outputs[0])):
        t = importer.tensors[folded]
        float_edge = importer.tensors[raw].type == TensorType.FLOAT32 and raw != folded
        result[key] = (float(t.scale[0]), int(t.zero_point[0])) if float_edge else None
    return result


def run_tflm_int8(model, x_int8):
    """Run a `.tflite` file (path or bytes) in TensorFlow Lite Micro on int8 inputs
    (N, *input_shape) and return its int8 outputs, whatever the file's edges are.

    A float32 input is fed r = s * (q - z), which TFLM's QUANTIZE turns back into exactly q
    (|q - z| <= 255, far from a rounding boundary in float32); a float32 output is mapped
    back with q = z + round(r / s), exact for the same reason. So the interpreter runs on
    the very int8 values minitiny's NumPy reference and C get.
    """
    from . import tflm
    data, _ = _read_bytes(model)
    edges = edge_quantization(data)
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        raise ValueError(f"run_tflm_int8: inputs must be int8, got {x.dtype}")
    if edges["input"] is not None:
        s, z = edges["input"]
        x = (np.float32(s) * (x.astype(np.float32) - np.float32(z))).astype(np.float32)
    if edges["output"] is None and edges["input"] is None:
        return tflm.run_tflm(data, x)
    interp = tflm.interpreter(data)
    outs = []
    for n in range(len(x)):
        interp.set_input(x[n:n + 1], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    out_shape = tuple(int(d) for d in interp.get_output_details(0)["shape"])[1:]
    y = np.stack(outs).reshape((len(outs),) + out_shape) if outs else np.zeros((0,) + out_shape)
    if edges["output"] is not None:
        s, z = edges["output"]
        y = np.clip(np.round(y.astype(np.float64) / s) + z, -128, 127)
    return y.astype(np.int8)
