"""SPACE_TO_BATCH_ND -> convolution -> BATCH_TO_SPACE_ND, imported as one dilated convolution.

TensorFlow computes a dilated convolution it cannot fuse (Keras' default, a batch size left
open) the way tf.nn.atrous_conv2d describes: SPACE_TO_BATCH_ND cuts the padded image into
d x d sub-images (every d-th row and column, one per batch entry), an ordinary convolution
runs over each, and BATCH_TO_SPACE_ND interleaves their outputs again and crops the extra:

    padded row    Y = q * d + r          (sub-image r, its row q)
    output row    y + crop_before        reads sub-image rows q - pad_inner + t, t < k,
                                         padded rows y + crop_before - d * pad_inner + t * d

so output row y reads input rows y - P + t * d with P = pad_before + d * pad_inner -
crop_before: a convolution with dilation d and P rows of padding before. The padding on
both sides is the zero point (SPACE_TO_BATCH_ND pads with it, the convolution's own
padding contributes w * (z - z) = 0), which is what minitiny's dilated kernels do with a
tap outside the image, so the integers are the same. The batch, which minitiny keeps at 1
inside a model, never grows. Keras' Conv1D goes through the same chain on a rank-3 tensor
with an EXPAND_DIMS before the CONV_2D and a RESHAPE after it.

`fold_space_to_batch` rewrites every such chain in the operator list the importer reads,
when P and the output size are exactly TensorFlow's SAME or VALID rule for the dilated
window (a TFLite convolution has no other padding). A SPACE_TO_BATCH_ND or
BATCH_TO_SPACE_ND it cannot fold stays, with the reason the importer reports.
"""
import numpy as np
from tflite import BuiltinOperator as Op
from tflite import TensorType

from ..geometry import out_size, pad_before

_SAME, _VALID = 0, 1                            # tflite.Padding
_PADDING_NAME = {_SAME: "same", _VALID: "valid"}
_RESHAPES = (Op.EXPAND_DIMS, Op.RESHAPE, Op.SQUEEZE)
_CONVS = (Op.CONV_2D, Op.DEPTHWISE_CONV_2D)


class _NoFold(Exception):
    pass


def _int_constant(tensors, t, what):
    if t < 0 or tensors[t].data is None or tensors[t].type != TensorType.INT32:
        raise _NoFold(f"its {what} is not a constant int32 tensor")
    return np.frombuffer(tensors[t].data, "<i4").reshape(tensors[t].shape).astype(np.int64)


def _sole_reader(readers, outputs, t, what):
    if t in outputs or len(readers.get(t, ())) != 1:
        raise _NoFold(f"{what} is read by {len(readers.get(t, ()))} operators or is a model output "
                      f"(the chain must run straight to a BATCH_TO_SPACE_ND)")
    return readers[t][0]


def _chain(ops, tensors, outputs, readers, s2b):
    """(before, conv, after, b2s) around SPACE_TO_BATCH_ND `s2b`: the reshapes before and
    after the convolution (at most one each), or _NoFold saying why not."""
    op = _sole_reader(readers, outputs, s2b.outputs[0], "its output")
    before = []
    if op.code in _RESHAPES:
        before.append(op)
        op = _sole_reader(readers, outputs, op.outputs[0], f"the output of operator #{op.index}")
    if op.code not in _CONVS or not op.inputs or op.inputs[0] != (before or [s2b])[-1].outputs[0]:
        raise _NoFold(f"it is followed by operator #{op.index}, not a CONV_2D or DEPTHWISE_CONV_2D")
    conv, o = op, op.options
    if (o.get("StrideH"), o.get("StrideW"), o.get("DilationHFactor", 1), o.get("DilationWFactor", 1)) \
            != (1, 1, 1, 1) or o.get("Padding") not in _PADDING_NAME:
        raise _NoFold(f"its convolution (operator #{conv.index}) has strides or dilation other than 1")
    op = _sole_reader(readers, outputs, conv.outputs[0], f"the output of operator #{conv.index}")
    after = []
    if op.code in _RESHAPES:
        after.append(op)
        op = _sole_reader(readers, outputs, op.outputs[0], f"the output of operator #{op.index}")
    if op.code != Op.BATCH_TO_SPACE_ND or op.inputs[:1] != [(after or [conv])[-1].outputs[0]]:
        raise _NoFold(f"operator #{op.index} after its convolution is not a BATCH_TO_SPACE_ND")
    return before, conv, after, op


def _conv_axes(tensors, x, before, after, m):
    """The convolution axes (1 = H, 2 = W) the SPACE_TO_BATCH_ND's spatial axes 1..m land on,
    and the axis a reshape inserts (None for a rank-4 chain)."""
    rank = len(tensors[x].shape)
    if rank == 4 and not before and not after:
        return list(range(1, m + 1)), None
    if rank == 3 and m == 1 and len(before) == 1 and len(after) == 1:
        # [1, W, C] -> [1, 1, W, C] (axis 1 inserted: W is the conv's W) or [1, W, 1, C]
        seq = tensors[before[0].inputs[0]].shape[1:]
        expanded = tensors[before[0].outputs[0]].shape[1:]
        for inserted, conv_axis in ((1, 2), (2, 1)):
            if len(expanded) == 3 and expanded[inserted - 1] == 1 and \
                    tuple(np.delete(expanded, inserted - 1)) == tuple(seq):
                return [conv_axis], inserted
    raise _NoFold("its reshapes do not only add and remove one axis of size 1 around the convolution")


def _fold_one(ops, tensors, outputs, readers, s2b):
    """Rewrite one chain in place; returns the two operators to drop."""
    x = s2b.inputs[0]
    if x < 0 or tensors[x].data is not None or len(s2b.inputs) != 3:
        raise _NoFold("its input is not an activation with block shape and paddings")
    block = _int_constant(tensors, s2b.inputs[1], "block shape").reshape(-1)
    pads = _int_constant(tensors, s2b.inputs[2], "paddings")
    before, conv, after, b2s = _chain(ops, tensors, outputs, readers, s2b)
    if len(b2s.inputs) != 3:
        raise _NoFold(f"BATCH_TO_SPACE_ND (operator #{b2s.index}) lacks its block shape or crops")
    crops = _int_constant(tensors, b2s.inputs[2], "crops")
    m = block.size
    if not np.array_equal(_int_constant(tensors, b2s.inputs[1], "block shape").reshape(-1), block) \
            or pads.shape != (m, 2) or crops.shape != (m, 2) or m not in (1, 2) \
            or (block < 1).any() or (pads < 0).any() or (crops < 0).any():
        raise _NoFold(f"block shape {block.tolist()}, paddings {pads.tolist()} and crops "
                      f"{crops.tolist()} are not one dilation over the spatial axes")
    y = b2s.outputs[0]
    for a, b, what in ((x, s2b.outputs[0], "SPACE_TO_BATCH_ND"), (conv.outputs[0], y, "BATCH_TO_SPACE_ND")):
        ta, tb = tensors[a], tensors[b]
        if ta.scale is None or tb.scale is None or not (
                np.array_equal(ta.scale, tb.scale) and np.array_equal(ta.zero_point, tb.zero_point)):
            raise _NoFold(f"{what}'s input and output are quantized differently")
    axes, inserted = _conv_axes(tensors, x, before, after, m)
    w = tensors[conv.inputs[1]] if len(conv.inputs) > 1 and conv.inputs[1] >= 0 else None
    if w is None or len(w.shape) != 4:
        raise _NoFold(f"its convolution (operator #{conv.index}) has no 4-D filter")
    inner = _PADDING_NAME[conv.options["Padding"]]
    x_shape = list(tensors[x].shape)
    conv_in = x_shape if inserted is None else x_shape[:inserted] + [1] + x_shape[inserted:]
    dilation, fits, out_hw = [1, 1], {"same", "valid"}, [conv_in[1], conv_in[2]]
    for i, conv_axis in enumerate(axes):
        size, d, k = x_shape[1 + i], int(block[i]), w.shape[conv_axis]
        padded = size + pads[i, 0] + pads[i, 1]
        if padded % d:
            raise _NoFold(f"the padded size {padded} is not a multiple of the block {d}")
        sub = padded // d
        out = d * out_size(inner, sub, k, 1) - crops[i, 0] - crops[i, 1]
        first = pads[i, 0] + d * pad_before(inner, sub, k, 1) - crops[i, 0]
        fits &= {p for p in ("same", "valid")
                 if out == out_size(p, size, k, 1, d) and first == pad_before(p, size, k, 1, d)}
        dilation[conv_axis - 1], out_hw[conv_axis - 1] = d, int(out)
    for conv_axis in (1, 2):                    # an axis the block leaves alone keeps the inner rule
        if conv_axis not in axes:
            k = w.shape[conv_axis]
            fits &= {p for p in ("same", "valid") if
                     out_size(p, conv_in[conv_axis], k, 1) == out_size(inner, conv_in[conv_axis], k, 1)
                     and pad_before(p, conv_in[conv_axis], k, 1) == pad_before(inner, conv_in[conv_axis], k, 1)}
            out_hw[conv_axis - 1] = out_size(inner, conv_in[conv_axis], k, 1)
    if not fits:
        raise _NoFold(f"paddings {pads.tolist()} and crops {crops.tolist()} make neither TensorFlow's "
                      f"SAME nor its VALID rule for the dilated window")
    conv_out = [1] + out_hw + [w.shape[0] if conv.code == Op.CONV_2D else w.shape[3]]
    want = conv_out if inserted is None else conv_out[:inserted] + conv_out[inserted + 1:]
    if list(tensors[y].shape) != want:
        raise _NoFold(f"its output {list(tensors[y].shape)} is not the dilated convolution's {want}")
    # The rewrite: the chain reads x, its last operator writes y, every tensor is full size.
    padding = inner if inner in fits else sorted(fits)[0]
    conv.options = dict(conv.options, Padding=_SAME if padding == "same" else _VALID,
                        DilationHFactor=dilation[0], DilationWFactor=dilation[1])
    (before or [conv])[0].inputs[0] = x
    if before:
        tensors[before[0].outputs[0]].shape = tuple(conv_in)
        tensors[before[0].outputs[0]].signature = None
    tensors[conv.outputs[0]].shape = tuple(conv_out)
    tensors[conv.outputs[0]].signature = None
    (after or [conv])[-1].outputs[0] = y
    return s2b, b2s


def fold_space_to_batch(ops, tensors, outputs):
    """(operators, {operator index: why it stays}): every SPACE_TO_BATCH_ND -> [reshape] ->
    CONV_2D / DEPTHWISE_CONV_2D -> [reshape] -> BATCH_TO_SPACE_ND chain of `ops` rewritten
    as one dilated convolution (the operators and tensors are changed in place); the
    SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND left over, with the reason for each."""
    dropped, why = set(), {}
    for s2b in ops:
        if s2b.code != Op.SPACE_TO_BATCH_ND or not s2b.inputs or not s2b.outputs:
            continue
        readers = {}
        for op in ops:
            if op.index not in dropped:
                for t in op.inputs:
                    readers.setdefault(t, []).append(op)
        try:
            dropped.update(op.index for op in _fold_one(ops, tensors, set(outputs), readers, s2b))
        except _NoFold as e:
            why[s2b.index] = str(e)
    for op in ops:
        if op.code in (Op.SPACE_TO_BATCH_ND, Op.BATCH_TO_SPACE_ND) and op.index not in dropped:
            why.setdefault(op.index, "no SPACE_TO_BATCH_ND -> convolution chain ends here")
    return [op for op in ops if op.index not in dropped], why
