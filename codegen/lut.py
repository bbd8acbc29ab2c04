"""The table kernel of the tuned variants: an int8 op whose output value depends on one input
value only is a lookup in a table of its 256 outputs, computed here from the NumPy kernel.

An int8 input takes one of 256 values. When output[i] is a function of input[i] alone (an
activation: LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU, ELU, a requantizing QUANTIZE), or
of input[i] and the value of a constant operand at i (ADD, SUB, MUL, MAXIMUM, MINIMUM,
SQUARED_DIFFERENCE, PRELU with a constant: Keras' Rescaling, a normalization), the whole op
is `output[i] = table[input[i]]`, one table per value of the constant. TFLite builds such
tables for its int8 LOGISTIC and TANH (kernels/activations.cc, LUTPopulate in
kernels/internal/common.h) and TFLM for ELU (micro/kernels/elu.cc); here every such op of the
scalar, DSP and auto variants gets one, computed by running the op's own NumPy kernel
(minitiny/quant/kernels/, held to TFLite Micro bit for bit) over every input value, so the
table cannot disagree with it. The reference variant keeps each op's readable arithmetic.

    channels = 1   the constant is one value (or there is none): output[i] = table[input[i]]
    channels = C   the constant varies along the output's last axis only (C values, one per
                   channel, broadcast over the rest): output[i] = table[i % C][input[i]]

`table` below does not assume which case holds: it feeds the kernel inputs in which every
channel meets every int8 value, and keeps the tables only if every output agrees with them
(the same (channel, value) always gives the same output). Cost: 256 bytes of flash per
channel (identical tables of different layers are emitted once), against the arithmetic of
every value (bench/architectures.py measures both). A table is used where it saves work:
per-channel tables only up to MAX_CHANNELS and no larger than the tensor they map.

The C (templates/scalar/lut.c.j2) indexes the table by the input's byte, (uint8_t)q: entries
0..127 hold the outputs of q = 0..127, entries 128..255 those of q = -128..-1, so the loop
is a byte load, a table load and a byte store per value, and it runs in place.
"""
import numpy as np

from minitiny.quant import kernels

# the op kinds a table can compute (relu6 is a clamp in the input's quantization: as cheap)
UNARY = ("logistic", "tanh", "hard_swish", "leaky_relu", "relu", "elu", "quantize")
BINARY = ("add", "sub", "mul", "maximum", "minimum", "squared_difference", "prelu")
MAX_CHANNELS = 16          # per-channel tables: at most this many (4 KB of flash)


def byte_order(outputs):
    """(..., 256) outputs indexed by q + 128 -> indexed by the byte (uint8_t)q."""
    return np.roll(outputs, -128, axis=-1)


def _activation(op, qmodel):
    """The op's one int8 activation input and its output, or (None, None)."""
    acts = [qmodel.tensors[n] for n in op.inputs if not qmodel.tensors[n].is_constant]
    out = qmodel.tensors[op.outputs[0]]
    if len(acts) != 1 or len(op.outputs) != 1 or acts[0].dtype != "int8" or out.dtype != "int8":
        return None, None
    return acts[0], out


def channels(op, qmodel):
    """1 or C, the tables `table` tries for the op, or None when no table can compute it."""
    if op.kind not in UNARY + BINARY or op.params is None:
        return None
    x, out = _activation(op, qmodel)
    if x is None or x.shape != out.shape:              # the activation is not broadcast
        return None
    constants = [qmodel.tensors[n] for n in op.inputs if qmodel.tensors[n].is_constant]
    if not constants or constants[0].data.size == 1:
        return 1
    c = out.shape[-1] if out.shape else 1
    size = int(np.prod(out.shape, dtype=np.int64))
    try:                                               # the constant over the output: (pixels, C)
        spread = np.broadcast_to(constants[0].data, (1,) + tuple(out.shape)).reshape(-1, c)
    except ValueError:
        return None
    if not (spread == spread[:1]).all():               # it varies along other axes too
        return None
    return c if c <= MAX_CHANNELS and 256 * c <= size else None


def table(op, qmodel):
    """int8 (channels, 256), indexed by the input's byte (byte_order), with which the C's
    `output[i] = table[i % channels][(uint8_t)input[i]]` gives the NumPy kernel's bits, or
    None when the op is not such a function of its input."""
    c = channels(op, qmodel)
    if c is None:
        return None
    x, out = _activation(op, qmodel)
    size = int(np.prod(x.shape, dtype=np.int64))
    pixels = size // c
    # sample n, pixel p, channel k holds the value (n * pixels + p) mod 256 - 128: every
    # channel meets every value twice within ceil(512 / pixels) samples
    n = -(-512 // pixels)
    values = (np.arange(n * pixels).reshape(n, pixels) % 256 - 128)              # (N, pixels)
    inputs = np.repeat(values[:, :, None], c, axis=2).astype(np.int8)            # (N, pixels, C)
    args = [inputs.reshape((n,) + x.shape) if name == x.name else qmodel.tensors[name].data
            for name in op.inputs]
    outputs = kernels.run(op, qmodel.tensors, args).reshape(n, pixels, c)
    tables = np.zeros((c, 256), np.int8)
    tables[:, values.ravel() + 128] = outputs.reshape(-1, c).T
    # every output must be its (channel, value)'s table entry, else the op is no lookup
    if not np.array_equal(tables[:, values + 128].transpose(1, 2, 0), outputs):
        return None
    return byte_order(tables)


def layer_context(op, qmodel):
    """{"channels", "tables"} for templates/scalar/lut.c.j2, or None."""
    tables = table(op, qmodel)
    if tables is None:
        return None
    return {"channels": len(tables), "tables": tables,
            "pixels": int(np.prod(qmodel.tensors[op.outputs[0]].shape, dtype=np.int64)) // len(tables)}
