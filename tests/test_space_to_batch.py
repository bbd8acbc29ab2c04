"""SPACE_TO_BATCH_ND -> convolution -> BATCH_TO_SPACE_ND, imported as one dilated convolution
(minitiny/quant/tflite_dilation.py).

Three oracles, none of them the folding code:
    the definition    SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND written here as TensorFlow
                      documents them (plain index loops), with the paddings and crops
                      TensorFlow's tf.nn.convolution chooses (required_space_to_batch_paddings):
                      an undilated convolution over the sub-images, interleaved and cropped,
                      must give the dilated convolution's integers, bit for bit
    the files         tests/data/architectures/dilated_unfused and dilated_tcn (made by
                      TensorFlow 2.21, outputs from TFLite's reference kernels), in
                      tests/test_architectures.py
    the folding       on the operator records TensorFlow writes, the chain becomes one
                      convolution with Keras' dilation and padding; whatever else stays,
                      refused with its reason
"""
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tflite import BuiltinOperator as Op
from tflite import TensorType

from minitiny.quant.graph import QModel, QOp, QTensor
from minitiny.quant.tflite_dilation import fold_space_to_batch
from minitiny.quant.tflite_read import UnsupportedTFLiteError, _Operator, _Tensor, from_tflite
from minitiny.testing.models import single_op_model

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
DATA = os.path.join(os.path.dirname(__file__), "data", "architectures")


# ---------------------------------------------------------------------------------------
# TensorFlow's side, written from its documentation
# ---------------------------------------------------------------------------------------
def tf_paddings(size, k, d, padding):
    """tf.nn.convolution's dilated path (with_space_to_batch): the base padding of the
    dilated window ('same': (k - 1) * d split with the odd one after), then
    required_space_to_batch_paddings: extra rows at the end so the block divides, cropped
    off again after. -> (pad_before, pad_after, crop_before, crop_after)."""
    total = (k - 1) * d if padding == "same" else 0
    before, after = total // 2, total - total // 2
    extra = (d - (size + before + after) % d) % d
    return before, after + extra, 0, extra


def space_to_batch(x, block, pads, value):
    """(N, H, W, C) -> (bh * bw * N, H' / bh, W' / bw, C): output batch (i * bw + j) * N + n
    holds rows i, i + bh, ... and columns j, j + bw, ... of the padded input."""
    (bh, bw), ((pt, pb), (pl, pr)) = block, pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)
    n = x.shape[0]
    out = np.empty((bh * bw * n, xp.shape[1] // bh, xp.shape[2] // bw, x.shape[3]), x.dtype)
    for i in range(bh):
        for j in range(bw):
            for b in range(n):
                out[(i * bw + j) * n + b] = xp[b, i::bh, j::bw]
    return out


def batch_to_space(y, block, crops):
    """The inverse interleaving, then the crops."""
    (bh, bw), ((ct, cb), (cl, cr)) = block, crops
    n = y.shape[0] // (bh * bw)
    full = np.empty((n, y.shape[1] * bh, y.shape[2] * bw, y.shape[3]), y.dtype)
    for i in range(bh):
        for j in range(bw):
            for b in range(n):
                full[b, i::bh, j::bw] = y[(i * bw + j) * n + b]
    return full[:, ct:full.shape[1] - cb, cl:full.shape[2] - cr]


def undilated(model, sub_shape):
    """The same convolution (weights, bias, quantization) without dilation or padding, over
    TensorFlow's sub-images."""
    op = model.ops[0]
    k_h, k_w = model.tensors[op.inputs[1]].shape[1:3]
    out_shape = (sub_shape[0] - k_h + 1, sub_shape[1] - k_w + 1, model.tensors[op.outputs[0]].shape[2])
    tensors = dict(model.tensors)
    for name, shape in ((op.inputs[0], sub_shape), (op.outputs[0], out_shape)):
        t = tensors[name]
        tensors[name] = QTensor(t.name, shape, t.dtype, t.scale, t.zero_point)
    options = dict(op.options, padding="valid")
    options.pop("dilation", None)
    return QModel("undilated", tensors, [QOp(op.kind, op.name, op.inputs, op.outputs, options)],
                  model.inputs, model.outputs)


@st.composite
def chains(draw, large=False):
    kind = draw(st.sampled_from(["conv_2d", "depthwise_conv_2d"]))
    hi = 40 if large else 12
    h, w = draw(st.integers(1, hi)), draw(st.integers(1, hi))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    block = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = draw(st.sampled_from(["same", "valid"]))
    if padding == "valid":        # the dilated window must fit
        h = max(h, (kernel[0] - 1) * block[0] + 1)
        w = max(w, (kernel[1] - 1) * block[1] + 1)
    c = draw(st.integers(1, 16 if large else 4))
    cfg = dict(kernel=kernel, dilation=block, padding=padding,
               activation=draw(st.sampled_from(["none", "relu", "relu6"])))
    if kind == "conv_2d":
        cfg["out_c"] = draw(st.integers(1, 8))
    else:
        cfg["depth_multiplier"] = draw(st.integers(1, 3))
    return kind, (h, w, c), cfg, draw(st.integers(0, 2 ** 32 - 1))


def check_chain(kind, shape, cfg, seed):
    model = single_op_model(seed, kind, shape, **cfg)
    (h, w, _), (k_h, k_w), block = shape, cfg["kernel"], cfg["dilation"]
    ph = tf_paddings(h, k_h, block[0], cfg["padding"])
    pw = tf_paddings(w, k_w, block[1], cfg["padding"])
    z = model.tensors[model.inputs[0]].zero_point
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (3,) + shape).astype(np.int8)
    x[0], x[1] = -128, 127                                      # the extremes, and random ones
    sub = space_to_batch(x, block, (ph[:2], pw[:2]), z)
    ys = undilated(model, sub.shape[1:]).predict_int8(sub)
    chained = batch_to_space(ys, block, (ph[2:], pw[2:]))
    direct = model.predict_int8(x)
    assert chained.shape == direct.shape, (chained.shape, direct.shape)
    bad = np.argwhere(chained != direct)
    assert not len(bad), f"{len(bad)} values differ, first at {tuple(bad[0])}"
    return ph, pw


@settings(max_examples=60 if THOROUGH else 15, deadline=None)
@given(chains())
def test_the_chain_is_the_dilated_convolution(chain):
    check_chain(*chain)


@pytest.mark.parametrize("case", range(8 if THOROUGH else 2))
def test_large_chains_are_the_dilated_convolution(case):
    """Where users go: DeepLab-like feature maps, dilation up to 4 in each axis."""
    kind = ("conv_2d", "depthwise_conv_2d")[case % 2]
    rng = np.random.default_rng(case)
    cfg = dict(kernel=(3, 3), dilation=(int(rng.integers(2, 5)), int(rng.integers(2, 5))),
               padding=("same", "valid")[case // 2 % 2], activation="relu")
    cfg.update(out_c=16) if kind == "conv_2d" else cfg.update(depth_multiplier=2)
    check_chain(kind, (33, 29, 8), cfg, case)


# ---------------------------------------------------------------------------------------
# The folding, on the records TensorFlow writes
# ---------------------------------------------------------------------------------------
class Records:
    """_Tensor and _Operator records as the importer reads them from a file."""

    def __init__(self):
        self.tensors, self.ops = [], []

    def tensor(self, shape, data=None, type=TensorType.INT8, scale=0.1, zp=3):
        i = len(self.tensors)
        q = (np.array([scale], np.float32), np.array([zp], np.int64)) if type == TensorType.INT8 \
            else (None, None)
        self.tensors.append(_Tensor(i, f"t{i}", tuple(shape), None, type, data, *q, 0, []))
        return i

    def ints(self, values):
        a = np.asarray(values, np.int32)
        return self.tensor(a.shape, a.astype("<i4").tobytes(), TensorType.INT32)

    def op(self, code, inputs, outputs, **options):
        self.ops.append(_Operator(len(self.ops), code, "", list(inputs), list(outputs), options))
        return self.ops[-1]


def conv_options(padding="valid", stride=1, **more):
    return dict(Padding={"same": 0, "valid": 1}[padding], StrideH=stride, StrideW=stride,
                DilationHFactor=1, DilationWFactor=1, FusedActivationFunction=0, **more)


def rank4_chain(h, w, c, k, block, padding, stride=1, crops_block=None):
    """The records tf.nn.convolution leaves for a dilated Conv2D with Keras' batch size."""
    r = Records()
    x = r.tensor((1, h, w, c))
    ph, pw = tf_paddings(h, k[0], block[0], padding), tf_paddings(w, k[1], block[1], padding)
    sub = ((h + ph[0] + ph[1]) // block[0], (w + pw[0] + pw[1]) // block[1])
    s = r.tensor((1,) + sub + (c,))
    r.op(Op.SPACE_TO_BATCH_ND, [x, r.ints(block), r.ints([ph[:2], pw[:2]])], [s])
    wt = r.tensor((5,) + tuple(k) + (c,), bytes(5 * k[0] * k[1] * c))
    y_sub = r.tensor((1, sub[0] - k[0] + 1, sub[1] - k[1] + 1, 5))
    r.op(Op.CONV_2D, [s, wt, -1], [y_sub], **conv_options(stride=stride))
    out_h = h if padding == "same" else h - (k[0] - 1) * block[0]
    out_w = w if padding == "same" else w - (k[1] - 1) * block[1]
    y = r.tensor((1, out_h, out_w, 5))
    r.op(Op.BATCH_TO_SPACE_ND, [y_sub, r.ints(crops_block or block), r.ints([ph[2:], pw[2:]])], [y])
    return r, x, y


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("h, w, k, block", [(16, 16, (3, 3), (2, 2)), (15, 13, (3, 2), (2, 3)),
                                            (9, 20, (1, 3), (1, 4)), (7, 7, (2, 2), (3, 3))])
def test_a_rank4_chain_folds_into_keras_dilated_convolution(padding, h, w, k, block):
    r, x, y = rank4_chain(h, w, 3, k, block, padding)
    ops, why = fold_space_to_batch(r.ops, r.tensors, [y])
    assert why == {} and [op.code for op in ops] == [Op.CONV_2D]
    conv = ops[0]
    assert conv.inputs[0] == x and conv.outputs == [y]
    assert (conv.options["DilationHFactor"], conv.options["DilationWFactor"]) == block
    # Keras' padding is what the file says, except where both rules agree (a 1-tap window)
    if k != (1, 1):
        assert conv.options["Padding"] == {"same": 0, "valid": 1}[padding]


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_a_conv1d_chain_folds_with_its_reshapes(padding):
    """Keras' Conv1D: [1, T, C] -> SPACE_TO_BATCH_ND (block [d]) -> EXPAND_DIMS (axis -3) ->
    CONV_2D (1 x k) -> RESHAPE -> BATCH_TO_SPACE_ND."""
    t, c, k, d = 20, 3, 3, 2
    r = Records()
    x = r.tensor((1, t, c))
    before, after, crop_b, crop_a = tf_paddings(t, k, d, padding)
    sub = (t + before + after) // d
    s = r.tensor((1, sub, c))
    r.op(Op.SPACE_TO_BATCH_ND, [x, r.ints([d]), r.ints([[before, after]])], [s])
    e = r.tensor((1, 1, sub, c))
    r.op(Op.EXPAND_DIMS, [s, r.ints(-3)], [e])
    wt = r.tensor((4, 1, k, c), bytes(4 * k * c))
    y4 = r.tensor((1, 1, sub - k + 1, 4))
    conv = r.op(Op.CONV_2D, [e, wt, -1], [y4], **conv_options())
    y3 = r.tensor((1, sub - k + 1, 4))
    r.op(Op.RESHAPE, [y4, r.ints([-1, sub - k + 1, 4])], [y3])
    y = r.tensor((1, t if padding == "same" else t - (k - 1) * d, 4))
    r.op(Op.BATCH_TO_SPACE_ND, [y3, r.ints([d]), r.ints([[crop_b, crop_a]])], [y])
    ops, why = fold_space_to_batch(r.ops, r.tensors, [y])
    assert why == {} and [op.code for op in ops] == [Op.EXPAND_DIMS, Op.CONV_2D, Op.RESHAPE]
    assert ops[0].inputs[0] == x and ops[2].outputs == [y]
    assert (conv.options["DilationHFactor"], conv.options["DilationWFactor"]) == (1, d)
    assert conv.options["Padding"] == {"same": 0, "valid": 1}[padding]
    assert r.tensors[e].shape == (1, 1, t, c)                   # the full sequence now
    assert r.tensors[y4].shape == (1, 1) + r.tensors[y].shape[1:]


def test_what_does_not_fold_stays_with_its_reason():
    r, _, y = rank4_chain(16, 16, 3, (3, 3), (2, 2), "same", stride=2)
    ops, why = fold_space_to_batch(r.ops, r.tensors, [y])
    assert [op.code for op in ops] == [Op.SPACE_TO_BATCH_ND, Op.CONV_2D, Op.BATCH_TO_SPACE_ND]
    assert "strides or dilation other than 1" in why[0] and 2 in why
    r, _, y = rank4_chain(16, 16, 3, (3, 3), (2, 2), "same", crops_block=(2, 1))
    assert "not one dilation" in fold_space_to_batch(r.ops, r.tensors, [y])[1][0]
    r, _, y = rank4_chain(16, 16, 3, (3, 3), (2, 2), "same")
    sub_output = r.ops[0].outputs[0]
    assert "model output" in fold_space_to_batch(r.ops, r.tensors, [y, sub_output])[1][0]


def _set_conv_stride(data, stride):
    """The file's first CONV_2D with StrideH set to `stride`, patched in the bytes (the
    field is stored: TensorFlow writes 1, not the schema's default 0)."""
    import tflite as tfl
    data = bytearray(data)
    model = tfl.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if model.OperatorCodes(op.OpcodeIndex()).BuiltinCode() == Op.CONV_2D:
            table = op.BuiltinOptions()
            o = table.Offset(6)                                 # Conv2DOptions.stride_h (field 1)
            assert o, "stride_h is not stored"
            struct.pack_into("<i", data, table.Pos + o, stride)
            return bytes(data)
    raise AssertionError("no CONV_2D")


def test_an_unfoldable_chain_in_a_file_is_refused_by_name():
    with open(os.path.join(DATA, "dilated_unfused.tflite"), "rb") as f:
        data = _set_conv_stride(f.read(), 2)
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(data)
    text = str(e.value)
    assert "SPACE_TO_BATCH_ND: minitiny runs it only around a convolution" in text
    assert "BATCH_TO_SPACE_ND" in text and "strides or dilation other than 1" in text
