"""ABS and RSQRT: |x| and 1/sqrt(x) of an int8 activation, requantized to the output.

    ABS:    q_out = z_out + (s_in / s_out) * |q - z_in|          (no rescale when the scales match)
    RSQRT:  q_out = z_out + (1 / (sqrt(s_in) s_out)) * 1/sqrt(q - z_in)
RSQRT takes 1/sqrt of the integer v = q - z_in as a multiplier and a shift
(fixedpoint.inv_sqrt_quantized_multiplier_exp), applies it to 1 with 20 bits of headroom,
then the output multiplier, 20 bits lower again. v = 0 gives 127 (TFLM: "any value close to
0 represents the max output value"). TFLM stops with an error on an input below the zero
point (a negative real: "Rsqrt is only defined for positive values"); `run` refuses such an
input, naming it.
TFLM: micro/kernels/elementwise.cc PrepareAbsRsqrt, AbsEvalQuantized, RsqrtEvalQuantized.

An int8 input takes 256 values, so the C reads each op's outputs from a table of all of
them (`table`, computed here by `run` itself; reference/lookup_table.c.j2), as ELU does.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import INT8_MAX, INT8_MIN, check_multiplier, fail, input_and_output, scale, size

KINDS = ("abs", "rsqrt")
INPUTS = (1, 1)
RSQRT_SHIFT = 20                          # kShift: "to keep value integer"
ALL_INT8 = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int8)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors, same_shape=True)
    s_in, s_out = float(scale(x)), float(scale(out))            # float32 scales, in double
    real = s_in / s_out if op.kind == "abs" else 1.0 / (np.sqrt(s_in) * s_out)
    check_multiplier(op, real, "s_in / s_out" if op.kind == "abs" else "1 / (sqrt(s_in) * s_out)")
    multiplier, shift = fp.quantize_multiplier(real, single_rounding)
    if op.kind == "rsqrt" and shift - RSQRT_SHIFT < -31:
        fail(op, f"the multiplier 1 / (sqrt(s_in) * s_out) = {real:.6g} is too small: its right "
                 f"shift {RSQRT_SHIFT - shift} passes 31 bits")
    p = dict(input_zero_point=int(x.zero_point), output_zero_point=int(out.zero_point),
             needs_rescale=bool(scale(x) != scale(out)), output_multiplier=multiplier,
             output_shift=shift, size=size(x), macs=0, single_rounding=bool(single_rounding))
    valid = ALL_INT8 if op.kind == "abs" else ALL_INT8[ALL_INT8 >= p["input_zero_point"]]
    table = np.full(256, INT8_MAX, dtype=np.int8)             # (RSQRT's invalid inputs: 127)
    table[valid.astype(np.int16) - INT8_MIN] = run(op, p, valid)
    return dict(p, table=table)


def run(op, p, x):
    v = x.astype(np.int64) - p["input_zero_point"]
    m, shift, sr = p["output_multiplier"], p["output_shift"], p["single_rounding"]
    if op.kind == "abs":
        v = np.abs(v)
        out = fp.multiply_by_quantized_multiplier(v, m, shift, sr) if p["needs_rescale"] else v
    else:
        if np.any(v < 0):
            bad = int(x.ravel()[np.argmax(v.ravel() < 0)])
            fail(op, f"input {bad} lies below the zero point {p['input_zero_point']} (a negative "
                     f"real): TFLM's RSQRT stops with 'Rsqrt is only defined for positive values'")
        inverse = {int(u): fp.inv_sqrt_quantized_multiplier_exp(u, -1) for u in np.unique(v)}
        inv_m = np.vectorize(lambda u: inverse[u][0], otypes=[np.int64])(v)
        inv_shift = np.vectorize(lambda u: inverse[u][1], otypes=[np.int64])(v)
        data = fp.multiply_by_quantized_multiplier(1, inv_m, inv_shift + RSQRT_SHIFT, sr)
        out = fp.multiply_by_quantized_multiplier(data, m, shift - RSQRT_SHIFT, sr)
        out = np.where(v == 0, INT8_MAX - p["output_zero_point"], out)
    return np.clip(out + p["output_zero_point"], INT8_MIN, INT8_MAX).astype(np.int8)
