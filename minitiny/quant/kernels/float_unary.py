"""NEG and SQUARE as TFLite runs them in an int8 model: in float32, between a DEQUANTIZE and a
QUANTIZE (TF's converter has no int8 kernel for them and leaves them so; Keras'
LayerNormalization negates its mean this way, UnitNormalization and GroupNormalization
square). minitiny imports the three operators as one int8 -> int8 op of the NEG's or SQUARE's
kind (minitiny/quant/tflite_float_unary.py) and computes what TFLM's three kernels compute:

    r = float32(double(s_in) * (q - z_in))          DEQUANTIZE (reference dequantize.h)
    f = -r   or   f = float32(r * r)                NEG, SQUARE (micro/kernels/neg.cc, elementwise.cc)
    q_out = clamp(int32(round(f / s_out)) + z_out, -128, 127)
                                                    QUANTIZE (AffineQuantize: the quotient in
                                                    float32, rounded half away from zero)
An int8 input takes 256 values, so `prepare` computes the output of each once (`table`), as
TFLM's ELU does, and `run` and the C (reference/lookup_table.c.j2) read it.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, fail, input_and_output, lookup, scale, size

KINDS = ("neg", "square")
INPUTS = (1, 1)
FUNCTIONS = {"neg": lambda r: -r, "square": lambda r: np.float32(r * r)}


def table(kind, s_in, z_in, s_out, z_out):
    """The 256 outputs, indexed by q + 128, or (None, q) for the first input whose rounded
    quotient leaves int32 (TFLM's cast of it is undefined)."""
    out = np.empty(256, dtype=np.int8)
    for q in range(INT8_MIN, INT8_MAX + 1):
        r = np.float32(float(s_in) * (q - z_in))                    # double product, one rounding
        with np.errstate(over="ignore"):
            f = FUNCTIONS[kind](r)
        with np.errstate(over="ignore"):
            quotient = float(np.float32(f) / np.float32(s_out))     # float32, as TFLM divides
        if not np.isfinite(quotient) or not fp.INT32_MIN <= fp.tflite_round(quotient) <= fp.INT32_MAX - z_out:
            return None, q
        out[q - INT8_MIN] = min(max(fp.tflite_round(quotient) + z_out, INT8_MIN), INT8_MAX)
    return out, None


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    if x.dtype != "int8":
        fail(op, f"input {x.name!r} must be int8, got {x.dtype}")
    lut, bad = table(op.kind, scale(x), int(x.zero_point), scale(out), int(out.zero_point))
    if lut is None:
        fail(op, f"input {bad}: its {op.kind} over the output scale {float(scale(out)):.6g} does not fit "
                 f"int32 (TFLM's QUANTIZE casts it: undefined)")
    return dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
                table=lut, size=size(x), macs=0)


def run(op, p, x):
    return lookup(p["table"], x)
