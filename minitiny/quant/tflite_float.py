"""A float32 `.tflite` -> the float graph quant/lower.py runs (tf.lite.Interpreter on it).

TFLiteConverter without optimizations writes float32 tensors throughout (tflite_io.py
`to_tflite_float`, and TensorFlow's converter likewise). Reading one takes the int8
importer's steps (tflite_read.py: the flatbuffer checked, each operator mapped onto an op
kind with its options, whatever minitiny cannot run listed in one error) with float32
tensors where the int8 model has int8 and int32 ones, and no QUANTIZE / DEQUANTIZE at the
edges. The result is a `FloatGraph`, whose `run` computes every op with the float
engine's own ops (minitiny/ops.py), in float64.
"""
import os

import numpy as np
from tflite import BuiltinOperator as Op
from tflite import TensorType

from .lower import WEIGHTED, FloatGraph, FOp
from .tflite_read import BYTES_SOURCE, _Importer, _read_bytes, _Unsupported

# the op kinds lower.run_op computes in float
FLOAT_KINDS = WEIGHTED + ("max_pool_2d", "average_pool_2d", "mean", "add", "reshape", "softmax",
                          "logistic", "tanh", "relu", "relu6")


def is_float_model(tensors, ops):
    """True for a float model: an operator other than QUANTIZE / DEQUANTIZE writes float32
    (an int8 model's float32 tensors are its edges only). `tensors`, `ops`: the records of
    tflite_read.read_flatbuffer."""
    return any(tensors[t].type == TensorType.FLOAT32 for op in ops
               if op.code not in (Op.QUANTIZE, Op.DEQUANTIZE) for t in op.outputs)


class _FloatImporter(_Importer):
    WHAT = "float32 models (one input, one output)"

    def edges(self):
        return list(self.inputs), list(self.outputs), set()      # nothing to fold

    def qop(self, op):
        kind, ins, options = super().qop(op)
        if kind not in FLOAT_KINDS:
            raise _Unsupported(f"{kind} in a float model (minitiny's float ops: "
                               f"{', '.join(FLOAT_KINDS)})")
        if kind == "add" and any(self.tensors[t].data is not None for t in ins):
            raise _Unsupported("a constant operand (minitiny's float ADD adds two activations)")
        return kind, ins, options

    def tensor_problems(self, t, role):
        tensor = self.tensors[t]
        why = [f"{extra} tensor" for extra in tensor.extras]
        if tensor.type != TensorType.FLOAT32:
            why.append(f"type {tensor.type_name} (a float model's tensors are float32)")
        return [f"{tensor.label}: {w}" for w in why + self.shape_problems(tensor, role)]

    def values(self, t):
        tensor = self.tensors[t]
        return np.frombuffer(tensor.data, "<f4").reshape(tensor.shape).astype(np.float64)

    def build(self):
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            self.problems.append(f"{len(self.inputs)} inputs and {len(self.outputs)} outputs "
                                 "(minitiny runs float models with one of each)")
        inputs, outputs, mapped, roles = self.mapped()
        names, named_ops = self.named(inputs, mapped, roles)
        ops = []
        for operator, layer, kind, ins, options in named_ops:
            shape = self.tensors[operator.outputs[0]].shape[1:]          # without the batch
            op = FOp(kind, layer, [names[t] for t in ins if roles[t] == "activation"], shape,
                     options)
            if kind in WEIGHTED:                 # (filter, bias): TFLite's layouts, as lower's
                op.weight = self.values(ins[1])
                op.bias = self.values(ins[2]) if len(ins) > 2 else None
            ops.append(op)
        t = self.tensors[inputs[0]]
        return FloatGraph(self.name, names[inputs[0]], tuple(t.shape[1:]), ops,
                          names[outputs[0]])


def from_tflite_float(model, name=None):
    """A float32 `.tflite` model (a path or its bytes) -> FloatGraph; `.run(x)` gives every
    tensor's value. Raises TFLiteFormatError for malformed bytes, UnsupportedTFLiteError
    listing whatever minitiny cannot run."""
    data, source = _read_bytes(model)
    if name is None:
        name = "model" if source == BYTES_SOURCE else os.path.splitext(os.path.basename(source))[0]
    return _FloatImporter(data, source, name).build()
