"""What values each tensor of an int8 model can take: bounds propagated through the graph.

Interval arithmetic, one [lo, hi] per value (per element, batch of one):

  - the model input: the whole int8 (int16) range;
  - a weighted layer: acc[e] = bias + sum_t w[e, t] * (x[t] + z) is smallest with every x at
    its low end where w > 0 and at its high end where w < 0, largest the other way round;
    the epilogue (MultiplyByQuantizedMultiplier, + z_out, clamp) is non-decreasing in acc
    for a positive multiplier, so the output bounds are the epilogue of the acc bounds;
  - an op that is non-decreasing in every input (pooling, MEAN, ADD, ReLU, copies, ...):
    the op itself run on the low ends and on the high ends;
  - any other op (SOFTMAX, MUL, ...): its output type's whole range.

The bounds hold for every input (a superset of the values reached). What they buy: a
deeper layer's accumulators over the inputs its predecessor can produce (a ReLU output is
never below its zero point), not over all of int8, and a channel no input can lift off its
clamp (a dead ReLU) is seen as constant.
"""
import numpy as np

from minitiny.quant import fixedpoint as fp, kernels

from .targets import INT32_MAX, WEIGHTED, LinearLayer

# the kinds whose output never decreases when an input value increases (positive scales)
MONOTONE = {"reshape", "max_pool_2d", "average_pool_2d", "mean", "sum", "reduce_max", "relu", "relu6",
            "logistic", "tanh", "elu", "add", "maximum", "minimum", "concatenation", "pad", "slice",
            "strided_slice", "transpose", "resize_nearest_neighbor", "resize_bilinear", "split", "split_v",
            "pack", "unpack", "quantize"}


def _full(tensor):
    info = np.iinfo(tensor.dtype)
    shape = (1,) + tuple(tensor.shape)
    return np.full(shape, info.min, np.int64), np.full(shape, info.max, np.int64)


def _epilogue_bounds(layer, acc_lo, acc_hi):
    """The output bounds of a weighted layer from its accumulator bounds (the epilogue is
    monotone unless acc * 2^left leaves int32 and wraps: then the whole clamp range)."""
    p = layer.p
    m = np.broadcast_to(np.asarray(p["output_multiplier"]).reshape(-1), (int(layer.channel.max()) + 1,))
    s = np.broadcast_to(np.asarray(p["output_shift"]).reshape(-1), m.shape)
    y_lo, y_hi = np.empty_like(acc_lo), np.empty_like(acc_hi)
    for c in np.unique(layer.channel):
        at = layer.channel == c
        for acc, y in ((acc_lo, y_lo), (acc_hi, y_hi)):
            y[at] = fp.multiply_by_quantized_multiplier(acc[at], int(m[c]), int(s[c]), p["single_rounding"])
    y_lo = np.clip(y_lo + p["output_offset"], p["act_min"], p["act_max"])
    y_hi = np.clip(y_hi + p["output_offset"], p["act_min"], p["act_max"])
    left = np.maximum(s[layer.channel], 0)
    wraps = np.maximum(np.abs(acc_lo), np.abs(acc_hi)) * 2.0 ** left > INT32_MAX
    y_lo[wraps], y_hi[wraps] = p["act_min"], p["act_max"]
    return y_lo, y_hi


def tensor_bounds(qmodel):
    """{tensor name: (lo, hi)}, each int64 (1, *shape): bounds on every activation's values
    over all model inputs."""
    if any(op.params is None for op in qmodel.ops):
        qmodel.prepare()
    bounds = {name: _full(qmodel.tensors[name]) for name in qmodel.inputs}
    for op in qmodel.ops:
        outs = [qmodel.tensors[n] for n in op.outputs]
        if op.kind in WEIGHTED and op.params.get("rows", 1) == 1 and outs[0].dtype == "int8":
            layer = LinearLayer(qmodel, op, bounds[op.inputs[0]])
            y_lo, y_hi = _epilogue_bounds(layer, *layer.acc_range())
            shape = (1,) + tuple(outs[0].shape)
            bounds[op.outputs[0]] = (y_lo.reshape(shape), y_hi.reshape(shape))
        elif op.kind in MONOTONE and all(n in bounds or qmodel.tensors[n].is_constant for n in op.inputs):
            ends = []
            for k in (0, 1):
                args = [bounds[n][k].astype(qmodel.tensors[n].dtype) if n in bounds else qmodel.tensors[n].data
                        for n in op.inputs]
                ends.append([np.asarray(y, np.int64) for y in kernels.run_outputs(op, qmodel.tensors, args)])
            for name, lo, hi in zip(op.outputs, *ends):
                bounds[name] = (np.minimum(lo, hi), np.maximum(lo, hi))
        else:
            bounds.update((t.name, _full(t)) for t in outs)
    return bounds
