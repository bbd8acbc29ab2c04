"""ELU: x for x >= 0, exp(x) - 1 below, through a table of all 256 int8 inputs.

An int8 op of one input has only 256 possible inputs, so TFLM's Prepare computes the output
for each of them once, in float32, and Eval only looks it up:
    r = s_in * (q - z_in)                       (float32)
    e = r < 0 ? expf(r) - 1 : r                 (float32)
    table[q] = clamp(int32(round(e * (1 / s_out)) + z_out), -128, 127)
TFLM: micro/kernels/elu.cc PopulateLookupTable (Prepare; TfLiteRound is round half away
from zero) and reference_integer_ops::LookupTable (Eval). The C holds the same table in flash.
"""
import math

import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, fail, input_and_output, lookup, scale, size

KINDS = ("elu",)
INPUTS = (1, 1)


def expf(x):
    """expf, correctly rounded: exp in double, rounded once to float32 (TFLM's libm may be
    an ulp off in rare cases; tests/test_elu.py compares every table with TFLM's)."""
    with np.errstate(over="ignore"):
        return np.float32(math.exp(float(x)))


def table(s_in, z_in, s_out, z_out):
    """The 256 outputs, indexed by q + 128, or None with the first input whose rounded value
    leaves int32 (TFLM's cast is then undefined behaviour)."""
    inverse_scale = np.float32(1) / np.float32(s_out)
    out = np.empty(256, dtype=np.int8)
    for q in range(INT8_MIN, INT8_MAX + 1):
        dequantized = np.float32(s_in) * np.float32(q - z_in)
        transformed = expf(dequantized) - np.float32(1) if dequantized < 0 else dequantized
        with np.errstate(over="ignore"):
            product = np.float32(transformed * inverse_scale)
        if not np.isfinite(product):
            return None, q
        quantized = np.float32(np.float32(fp.tflite_round(float(product))) + np.float32(z_out))
        if not fp.INT32_MIN <= float(quantized) < 2.0 ** 31:
            return None, q
        out[q - INT8_MIN] = min(max(int(quantized), INT8_MIN), INT8_MAX)
    return out, None


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    lut, bad = table(scale(x), int(x.zero_point), scale(out), int(out.zero_point))
    if lut is None:
        fail(op, f"input {bad} (real {float(scale(x)) * (bad - int(x.zero_point)):.6g}) over the output "
                 f"scale {float(scale(out)):.6g} does not fit int32: TFLM's cast of it is undefined")
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                table=lut, size=size(x), macs=0)


def run(op, p, x):
    return lookup(p["table"], x)
