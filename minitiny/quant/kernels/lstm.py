"""UNIDIRECTIONAL_SEQUENCE_LSTM: Keras' LSTM over a sequence, in TFLM's integer form.

For each time step t of the input x (T, F), with the hidden state h (S,) and the cell
state c (S,) carried from step to step (and from one invoke to the next, until a reset):

    gate_g = act_g(W_g x_t + b_g + R_g h)      g = input, forget, cell, output
             act: sigmoid, tanh for the cell gate
    c      = forget * c + input * cell         (clipped to +-cell_clip if cell_clip > 0)
    h      = output * tanh(c)                  out[t] = h

The integers (TFLM micro/kernels/lstm_eval.h LstmStep, lstm_eval_common.cc
PrepareGateParametersInteger, unidirectional_sequence_lstm.cc):
- W_g x_t + b_g and R_g h are two fully-connected layers (int8 weights, one scale per
  tensor; int32 bias, or int64 in the 16x8 scheme) requantized to int16 with scale 2^-12
  (Q3.12), then added with int16 saturation;
- sigmoid and tanh are the int16 kernels (logistic_tanh.py) giving Q0.15 (scale 2^-15);
- c is int16 with a power-of-two scale 2^p; the products are MulElementwise requantizations:
  forget * c by 2^-15, input * cell by 2^-30 / s_c, output * tanh(c) by 2^-30 / s_h plus
  the zero point of h (int8, or int16 in the 16x8 scheme);
- tanh(c) rescales c from 2^p to Q3.12 by a left shift 15 + p - 3 (TFLM's Tanh wrapper:
  when that is negative, multiplier 3 and a right shift instead).

The hidden and cell state are the QOp's last two inputs: variable tensors (`QTensor.variable`),
which `run` updates in place, as TFLM updates its variable tensors. Inputs, in TFLite's
order without the optional ones TFLM refuses (peephole, projection, layer norm):
x, W_i, W_f, W_c, W_o, R_i, R_f, R_c, R_o, b_i, b_f, b_c, b_o, h, c.
"""
import numpy as np

from .. import fixedpoint as fp
from .common import (LIMITS, activation_tensor, check_accumulator, check_scales, fail, scale)
from .logistic_tanh import logistic_int16, tanh_int16

KINDS = ("unidirectional_sequence_lstm",)
INT16_KINDS = KINDS                # 16x8: int16 x and h, int64 bias
INPUTS = (15, 15)
STATE_INPUTS = (13, 14)            # h, c: read and updated in place
GATES = ("input", "forget", "cell", "output")
# where the 15 inputs sit among the 24 of TFLite's operator (TFLM lstm_shared.h): 9-11
# (peephole), 16-17 (projection) and 20-23 (layer norm) are the optional ones TFLM refuses
TFLITE_INPUTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 18, 19)
GATE_INPUT_LOG2 = -12              # the gates' fully-connected outputs: Q3.12
GATE_OUTPUT_LOG2 = -15             # sigmoid / tanh outputs: Q0.15


def prepare(op, tensors, single_rounding):
    x = activation_tensor(op, tensors, op.inputs[0], "input")
    h, c = tensors[op.inputs[13]], tensors[op.inputs[14]]
    out = activation_tensor(op, tensors, op.outputs[0], "output")
    if len(x.shape) != 2:
        fail(op, f"input {x.name!r} must be (time steps, features), got {x.shape}")
    steps, features = x.shape
    units = h.shape[-1] if h.shape else 0
    for t, role, dtype in ((h, "hidden state", x.dtype), (c, "cell state", "int16")):
        check_scales(op, t, role)
        if not t.variable or t.dtype != dtype or t.shape != (units,) or t.per_channel:
            fail(op, f"{role} {t.name!r} must be a variable {dtype} tensor of shape ({units},) "
                     f"with one scale, got {'variable ' if t.variable else ''}{t.dtype} {t.shape}")
    if out.shape != (steps, units):
        fail(op, f"output {out.name!r} must be (time steps, units) = {(steps, units)}, got {out.shape}")
    if int(c.zero_point) != 0 or (x.dtype == "int16" and int(h.zero_point) != 0):
        fail(op, "the cell state (and a 16x8 hidden state) must have zero point 0")
    bias_dtype = "int64" if x.dtype == "int16" else "int32"
    params = dict(time_steps=steps, features=features, units=units, input_offset=-int(x.zero_point),
                  hidden_offset=-int(h.zero_point),
                  macs=steps * 4 * units * (features + units))
    # -- the four gates: two fully-connected layers each, into Q3.12 -----------------------
    gate_scale = 2.0 ** GATE_INPUT_LOG2
    mults = {"input": [], "recurrent": []}
    for g, gate in enumerate(GATES):
        for kind, i, t, fan_in in (("input", 1 + g, x, features), ("recurrent", 5 + g, h, units)):
            w = tensors[op.inputs[i]]
            check_scales(op, w, f"{gate} {kind} weight")
            want = (units, fan_in)
            if not w.is_constant or w.dtype != "int8" or w.shape != want or w.per_channel \
                    or int(w.zero_point) != 0:
                fail(op, f"{gate} {kind} weight {w.name!r} must be a constant int8 tensor {want} "
                         f"with one scale and zero point 0, got {w.dtype} {w.shape}")
            bias = tensors[op.inputs[9 + g]] if kind == "input" else None
            if bias is not None and (not bias.is_constant or bias.dtype != bias_dtype
                                     or bias.shape != (units,)):
                fail(op, f"{gate} gate bias {bias.name!r} must be a constant {bias_dtype} tensor "
                         f"({units},), got {bias.dtype} {bias.shape}")
            check_accumulator(op, w, bias, fan_in, x.dtype)
            # CalculateOpDataFullyConnected: s_in * s_w / s_out, in double
            real = np.float64(scale(t)) * np.float64(scale(w)) / gate_scale
            mults[kind].append(fp.quantize_multiplier(real, single_rounding))
    for kind, pairs in mults.items():
        params[f"{kind}_multiplier"] = [m for m, _ in pairs]
        params[f"{kind}_shift"] = [s for _, s in pairs]
    # -- the products: CreateInterGateMulParams, in double ---------------------------------
    s_gate_out, s_c, s_h = 2.0 ** GATE_OUTPUT_LOG2, np.float64(scale(c)), np.float64(scale(h))
    for name, real in (("forget", s_gate_out * s_c / s_c), ("input", s_gate_out * s_gate_out / s_c),
                       ("hidden", s_gate_out * s_gate_out / s_h)):
        params[f"{name}_mul_multiplier"], params[f"{name}_mul_shift"] = fp.quantize_multiplier(
            real, single_rounding)
    params["hidden_zero_point"] = int(h.zero_point)
    params["hidden_min"], params["hidden_max"] = LIMITS[h.dtype]
    # -- tanh(c): CreateLstmCellStateInfo takes round(log2 s_c), a power of two or not ------
    _, power = fp.checked_log2(scale(c))
    left_shift, multiplier = 15 + power - 3, 0
    if left_shift < 0:
        left_shift, multiplier = -left_shift, 3
    if not -40 <= power <= 2:
        fail(op, f"cell state {c.name!r}: scale {float(scale(c)):.3g} (2^{power}) is outside "
                 f"[2^-40, 4], where TFLM's int16 tanh shifts overflow int32 (undefined in C++)")
    params["cell_tanh_multiplier"], params["cell_tanh_left_shift"] = multiplier, left_shift
    # cell_clip > 0: clip c to +-min(cell_clip / s_c, 32767), truncated to int16 (it may be 0)
    clip = float(op.options.get("cell_clip", 0.0))
    params["clip_cell"] = clip > 0
    params["cell_clip"] = int(np.clip(np.float64(np.float32(clip)) / s_c, -32768, 32767)) if clip > 0 else 0
    return params


def fully_connected_int16(p, x, w, b, offset, multiplier, shift):
    """One gate's fully-connected layer (TFLM reference_integer_ops::FullyConnected with an
    int16 output): (N, in) x (units, in) -> int16 (N, units), scale 2^-12."""
    acc = (x.astype(np.int64) + offset) @ w.astype(np.int64).T
    if b is not None:
        acc = acc + b
    if p["dtype"] == "int16":
        acc = fp.multiply_by_quantized_multiplier_int64(acc, multiplier, shift)
    else:
        acc = fp.multiply_by_quantized_multiplier(acc, multiplier, shift, p["single_rounding"])
    return np.clip(acc, fp.INT16_MIN, fp.INT16_MAX)


def mul(p, name, a, b, offset, lo, hi):
    """MulElementwise of two int16 arrays (TFLM integer_ops/mul.h), zero points 0."""
    raw = fp.multiply_by_quantized_multiplier(a.astype(np.int64) * b, p[f"{name}_mul_multiplier"],
                                              p[f"{name}_mul_shift"], p["single_rounding"])
    return np.clip(raw + offset, lo, hi)


def step(p, x_t, weights, biases, h, c):
    """One time step on a batch: x_t (N, F), h (N, S), c (N, S) -> new h, new c (int64)."""
    gates = []
    for g in range(4):
        # CalculateLstmGate: input FC (with bias) + recurrent FC (without), saturating
        total = fully_connected_int16(p, x_t, weights[g], biases[g], p["input_offset"],
                                      p["input_multiplier"][g], p["input_shift"][g]) + \
            fully_connected_int16(p, h, weights[4 + g], None, p["hidden_offset"],
                                  p["recurrent_multiplier"][g], p["recurrent_shift"][g])
        total = np.clip(total, fp.INT16_MIN, fp.INT16_MAX)
        if GATES[g] == "cell":
            gates.append(tanh_int16(total, 0, 0).astype(np.int64))     # Q3.12 -> Q0.15
        else:
            gates.append(logistic_int16(total, 0, 0).astype(np.int64))
    gate_i, gate_f, gate_c, gate_o = gates
    # UpdateLstmCell: c = forget * c + input * cell, saturating, clipped
    c = np.clip(mul(p, "forget", gate_f, c, 0, fp.INT16_MIN, fp.INT16_MAX) +
                mul(p, "input", gate_i, gate_c, 0, fp.INT16_MIN, fp.INT16_MAX),
                fp.INT16_MIN, fp.INT16_MAX)
    if p["clip_cell"]:
        c = np.clip(c, -p["cell_clip"], p["cell_clip"])
    # UpdateLstmHidden: h = output * tanh(c)
    tanh_c = tanh_int16(c, p["cell_tanh_multiplier"], p["cell_tanh_left_shift"]).astype(np.int64)
    h = mul(p, "hidden", tanh_c, gate_o, p["hidden_zero_point"], p["hidden_min"], p["hidden_max"])
    return h, c


def run(op, p, x, *rest):
    """x (N, T, F); the state arrays h (N, S) and c (N, S) are updated in place."""
    weights, biases, (h, c) = rest[:8], rest[8:12], rest[12:14]
    hs, cs = h.astype(np.int64), c.astype(np.int64)
    out = np.empty((len(x), p["time_steps"], p["units"]), dtype=p["dtype"])
    for t in range(p["time_steps"]):
        hs, cs = step(p, x[:, t], weights, biases, hs.astype(np.int64), cs)
        out[:, t] = hs
    h[...] = hs.reshape(h.shape)
    c[...] = cs.reshape(c.shape)
    return out
