"""DEQUANTIZE -> NEG or SQUARE -> QUANTIZE, imported as one int8 -> int8 operator.

TF's int8 converter has no integer kernel for NEG and SQUARE, so it leaves them in float32
with a DEQUANTIZE before and a QUANTIZE after (Keras' LayerNormalization negates its mean
so, UnitNormalization and GroupNormalization square). TFLM runs the three float kernels;
their int8 result depends on one int8 value, which is what kernels/float_unary.py computes
(the three kernels' arithmetic, as a table of the 256 outputs).

`fold_float_unary` rewrites every such chain in the operator list the importer reads into
one operator with the NEG's or SQUARE's code, reading the DEQUANTIZE's int8 input and
writing the QUANTIZE's int8 output, when the float tensors between are read by nothing else
and are no model outputs. A NEG or SQUARE it cannot fold stays, with the reason.
"""
from dataclasses import replace

from tflite import BuiltinOperator as Op
from tflite import TensorType

FOLDED = (Op.NEG, Op.SQUARE)


def _sole_reader(readers, outputs, t):
    ops = readers.get(t, ())
    return ops[0] if len(ops) == 1 and t not in outputs else None


def fold_float_unary(ops, tensors, outputs):
    """(operators, {operator index: why it stays}) with each DEQUANTIZE -> NEG/SQUARE ->
    QUANTIZE chain of int8 ends replaced by one NEG/SQUARE operator from int8 to int8."""
    readers, producer = {}, {}
    for op in ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
        for t in op.outputs:
            producer[t] = op
    outputs = set(outputs)
    dropped, folded, why = set(), {}, {}
    for op in ops:
        if op.code not in FOLDED:
            continue
        deq = producer.get(op.inputs[0]) if len(op.inputs) == 1 and len(op.outputs) == 1 else None
        quant = _sole_reader(readers, outputs, op.outputs[0]) if len(op.outputs) == 1 else None
        if (deq is None or deq.code != Op.DEQUANTIZE or quant is None or quant.code != Op.QUANTIZE
                or _sole_reader(readers, outputs, deq.outputs[0]) is not op
                or tensors[deq.inputs[0]].type != TensorType.INT8
                or tensors[quant.outputs[0]].type != TensorType.INT8):
            why[op.index] = ("minitiny runs it only as TF's converter writes it in an int8 model: "
                             "int8 -> DEQUANTIZE -> it -> QUANTIZE -> int8, the float tensors read by "
                             "nothing else")
            continue
        dropped.update((deq.index, quant.index))
        folded[op.index] = replace(op, inputs=[deq.inputs[0]], outputs=[quant.outputs[0]])
    return [folded.get(op.index, op) for op in ops if op.index not in dropped], why
