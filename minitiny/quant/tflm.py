"""Run a `.tflite` model in TensorFlow Lite Micro's interpreter: minitiny's independent oracle.

The `tflite-micro` package (an optional test dependency) wraps the real TFLM C++ runtime
and its reference kernels. minitiny's NumPy int8 kernels and generated C must give the same
int8 outputs, bit for bit.
"""
import os
import re
import tempfile

import numpy as np
import tflite


class TFLMUnavailable(RuntimeError):
    """tflite-micro is not installed (pip install tflite-micro)."""


def _runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:
        raise TFLMUnavailable(f"TensorFlow Lite Micro's interpreter is not installed "
                              f"(pip install tflite-micro): {e}") from None
    return runtime


def available():
    try:
        _runtime()
        return True
    except TFLMUnavailable:
        return False


def _model_bytes(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    from .tflite_io import to_tflite
    return to_tflite(model)


def _arena_size(model_bytes):
    # The interpreter's own default (10x the file) is too small for models whose
    # activations are large next to their weights; the arena is only reserved memory.
    return max(10 * len(model_bytes), 1 << 20)


def interpreter(model, arena_size=None):
    """A TFLM interpreter for a QModel or `.tflite` bytes."""
    data = _model_bytes(model)
    return _runtime().Interpreter.from_bytes(data, arena_size=arena_size or _arena_size(data))


def run_tflm(model, x_int8):
    """int8 (N, *input_shape) -> int8 (N, *output_shape), one sample at a time in TFLM.

    `model` is a QModel or the bytes of a `.tflite` file with int8 inputs and one int8
    output; `x_int8` is one array, or a list of arrays for a model with several inputs.
    """
    interp = interpreter(model)
    xs = [np.asarray(a) for a in x_int8] if isinstance(x_int8, (list, tuple)) else [np.asarray(x_int8)]
    for i, x in enumerate(xs):
        if x.dtype != np.int8:
            raise ValueError(f"run_tflm: input {i} must be int8, got {x.dtype}")
        want = tuple(int(d) for d in interp.get_input_details(i)["shape"])[1:]
        if x.shape[1:] != want or len(x) != len(xs[0]):
            raise ValueError(f"run_tflm: input {i} has shape {x.shape}, expected "
                             f"({len(xs[0])}, {', '.join(map(str, want))})")
    outs = []
    for n in range(len(xs[0])):
        for i, x in enumerate(xs):
            interp.set_input(x[n:n + 1], i)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1))
    out_shape = tuple(int(d) for d in interp.get_output_details(0)["shape"])[1:]
    if not outs:
        return np.zeros((0,) + out_shape, np.int8)
    return np.stack(outs).reshape((len(outs),) + out_shape)


def tflm_arena_bytes(model):
    """The tensor arena TFLM used for one inference, from its allocation report, or None.

    The interpreter prints the report to the C stderr stream, so it is captured at the file
    descriptor level. The total is the arena's head (activations, planned by TFLM's memory
    planner) plus its tail (persistent tensor structs, op data).
    """
    data = _model_bytes(model)
    interp = interpreter(data)
    for i in range(tflite.Model.GetRootAs(data, 0).Subgraphs(0).InputsLength()):
        details = interp.get_input_details(i)
        interp.set_input(np.zeros(details["shape"], dtype=details["dtype"]), i)
    interp.invoke()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        report = tmp.read().decode(errors="replace")
    m = re.search(r"Arena allocation total (\d+) bytes", report)
    return int(m.group(1)) if m else None
