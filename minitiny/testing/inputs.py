"""Hypothesis strategies for a model's inputs, and for .tflite files.

    @given(int8_inputs(qmodel))            # one int8 input of qmodel's input shape
    @given(float_inputs(qmodel))           # one float32 input, inside and outside its range
    @given(tflite_files(["conv_2d", "fully_connected"]))    # the bytes of a .tflite model

int8 inputs are drawn as offsets from the input zero point (the real value 0), so hypothesis
shrinks a failing input toward all-zero-point, the smallest input there is. Besides uniform
values they mix in what random inputs rarely are: the extremes -128 and 127 and the zero
point, alone or as a pattern, and the targeted inputs of minitiny.testing.targets (the
accumulators of the first weighted layer exactly on a rounding tie or a clamp bound).
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minitiny.quant.tflite_io import to_tflite

from . import targets
from .models import qmodels


def special_inputs(qmodel):
    """(k, *input shape) int8: all -128, all 127, all zero point, and the two checkerboards
    of -128 and 127 (every value at an extreme, neighbours opposite). A model with several
    inputs gets them packed: (k, total size), each input's values back to back, each at
    its own zero point in the zero-point row."""
    rows = []
    dtype = qmodel.tensors[qmodel.inputs[0]].dtype       # int8, or int16 in a 16x8 model
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    for name in qmodel.inputs:
        t = qmodel.tensors[name]
        size = int(np.prod(t.shape))
        checker = np.where(np.arange(size) % 2 == 0, lo, hi)
        rows.append(np.stack([np.full(size, lo), np.full(size, hi), np.full(size, int(t.zero_point)),
                              checker, -1 - checker]))
    if len(rows) == 1:
        return rows[0].reshape((-1,) + tuple(qmodel.input.shape)).astype(dtype)
    return np.concatenate(rows, axis=1).astype(dtype)


def _from_zero_point(zp):
    return lambda d: (np.asarray(d, np.int16) + zp).astype(np.int8)


def int8_inputs(qmodel, targeted=True):
    """Strategy: one int8 input (array of qmodel.input.shape) for a QModel.

    A mix of: uniform values; every value one of {-128, zero point, 127}; the special
    patterns of special_inputs; and (targeted=True) inputs solved to put the first weighted
    layer's accumulators on their rounding ties and clamp bounds (targets.targeted_inputs).
    Shrinks toward the all-zero-point input. A model with several inputs gets a tuple, one
    array per input in `qmodel.inputs` order, each drawn the same way (no targeted inputs:
    they solve for one model input)."""
    if len(qmodel.inputs) > 1:
        return st.tuples(*[st.one_of(_int8_arrays(tuple(qmodel.tensors[n].shape), int(qmodel.tensors[n].zero_point)))
                           for n in qmodel.inputs])
    shape, zp = tuple(qmodel.input.shape), int(qmodel.input.zero_point)
    branches = _int8_arrays(shape, zp) + [st.sampled_from(list(special_inputs(qmodel)))]
    if targeted:
        aimed = targets.targeted_inputs(qmodel, n=64)
        if len(aimed):
            branches.append(st.sampled_from(list(aimed)))
    return st.one_of(branches)


def _int8_arrays(shape, zp):
    """[uniform values, every value one of {-128, zero point, 127}], drawn as offsets from zp."""
    uniform = arrays(np.int16, shape, elements=st.integers(-128 - zp, 127 - zp)).map(_from_zero_point(zp))
    extremes = arrays(np.int16, shape, elements=st.sampled_from([0, -128 - zp, 127 - zp])).map(_from_zero_point(zp))
    return [uniform, extremes]


def _input_range(model, calibration):
    """(lo, hi): the float range the model's input quantization covers (a QModel), or the
    range of the calibration data (any model)."""
    if calibration is not None:
        c = np.asarray(calibration, np.float64)
        return float(c.min()), float(c.max())
    t = getattr(model, "input", None)
    if t is None or not hasattr(t, "scale"):
        raise ValueError("float_inputs: pass calibration= (the data the model was quantized "
                         "with) for a float model; its input range is not stored in the model")
    s, zp = float(t.scale), int(t.zero_point)
    return s * (-128 - zp), s * (127 - zp)


def float_inputs(model, calibration=None, outside=0.5, shape=None):
    """Strategy: one float32 input for a model (a QModel, or a float model with
    `calibration` data), inside the calibration range and up to `outside` times its width
    beyond either end (where a quantized model saturates), with the ends themselves."""
    lo, hi = _input_range(model, calibration)
    if shape is None:
        shape = tuple(model.input.shape) if hasattr(model, "input") and hasattr(model.input, "shape") \
            else tuple(np.asarray(calibration).shape[1:])
    width = max(hi - lo, 1e-6)
    a, b = lo - outside * width, hi + outside * width
    value = st.one_of(st.floats(lo, hi, width=32), st.floats(a, b, width=32),
                      st.sampled_from([lo, hi, a, b, 0.0 if lo <= 0 <= hi else lo]))
    return arrays(np.float32, shape, elements=value)


def tflite_files(steps=None, **kwargs):
    """Strategy: the bytes of a random int8 .tflite model (qmodels(steps, ...) written by
    minitiny.quant.tflite_io.to_tflite)."""
    return (qmodels(**kwargs) if steps is None else qmodels(steps, **kwargs)).map(to_tflite)
