"""MAX_POOL_2D and AVERAGE_POOL_2D: a window over each channel, no requantization (the
output keeps the input's scale and zero point), then the fused activation's clamp.

TFLM: micro/kernels/pooling_common.cc (Prepare), reference/integer_ops/pooling.h (Eval).
"""
import numpy as np

from .common import (LIMITS, activation_range, fail, input_and_output, padded, same_quantization,
                     scale, spatial, taps)

KINDS = ("max_pool_2d", "average_pool_2d")
INT16_KINDS = KINDS                   # 16x8: the same loops on int16
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    if len(x.shape) != 3:
        fail(op, f"input {x.name!r} must be (H, W, C), got {x.shape}")
    pool = op.options.get("pool_size", (2, 2))
    if len(pool) != 2 or min(pool) < 1:
        fail(op, f"pool_size must be two positive integers, got {pool}")
    same_quantization(op, x, out)
    geometry = spatial(op, x, out, pool[0], pool[1], x.shape[2])
    act_min, act_max = activation_range(op.options.get("activation", "none"), scale(out),
                                        out.zero_point, out.dtype)
    return dict(channels=x.shape[2], pool_h=int(pool[0]), pool_w=int(pool[1]), act_min=act_min,
                act_max=act_max, macs=geometry["out_h"] * geometry["out_w"] * x.shape[2] * pool[0] * pool[1],
                **geometry)


def run(op, p, x):
    if op.kind == "max_pool_2d":
        return run_max_pool_2d(p, x)
    return run_average_pool_2d(p, x)


def run_max_pool_2d(p, x):
    # Padded taps never win: they hold a value below every int8 (int16).
    below = LIMITS[p["dtype"]][0] - 1
    xp = padded(x.astype(np.int32), p, p["pool_h"], p["pool_w"], below)
    result = np.full((x.shape[0], p["out_h"], p["out_w"], p["channels"]), below, np.int32)
    for _, _, tap in taps(xp, p, p["pool_h"], p["pool_w"]):
        np.maximum(result, tap, out=result)
    return np.clip(result, p["act_min"], p["act_max"]).astype(p["dtype"])


def run_average_pool_2d(p, x):
    # reference_integer_ops::AveragePool: the mean of the in-bounds values only, rounded
    # half away from zero with C division:  (sum +- count/2) / count.
    xp = padded(x.astype(np.int32), p, p["pool_h"], p["pool_w"], 0)
    inside = padded(np.ones((1, p["in_h"], p["in_w"], 1), np.int32), p, p["pool_h"], p["pool_w"], 0)
    acc = np.zeros((x.shape[0], p["out_h"], p["out_w"], p["channels"]), np.int32)
    count = np.zeros((1, p["out_h"], p["out_w"], 1), np.int32)        # in-bounds taps per window
    for (_, _, tap), (_, _, ones) in zip(taps(xp, p, p["pool_h"], p["pool_w"]),
                                         taps(inside, p, p["pool_h"], p["pool_w"])):
        acc += tap
        count += ones
    # C's (acc + count/2) / count for acc > 0 and (acc - count/2) / count otherwise, written
    # on |acc| so NumPy's flooring // equals C's truncation.
    acc = np.sign(acc) * ((np.abs(acc) + count // 2) // count)
    return np.clip(acc, p["act_min"], p["act_max"]).astype(p["dtype"])
