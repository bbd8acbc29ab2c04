"""Run a `.tflite` model in TensorFlow Lite Micro's interpreter: minitiny's independent oracle.

The `tflite-micro` package (an optional test dependency) wraps the real TFLM C++ runtime
and its reference kernels. minitiny's NumPy int8 kernels and generated C must give the same
int8 outputs, bit for bit.

TFLM stops its process when one of its own checks fails (gemmlowp's asserts, TF_LITE_CHECK):
a SIGABRT that no Python `except` catches. So the interpreter runs in a worker process of
its own (started on first use, kept for the next calls); if TFLM aborts there, the caller
gets a `TFLMCrashed` error naming the signal, and the next call starts a fresh worker.
Requests and replies cross a pipe as `.npz` bytes (NumPy arrays, never pickles).
"""
import atexit
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

import numpy as np
import tflite

from .tflite_io import to_tflite


class TFLMUnavailable(RuntimeError):
    """tflite-micro is not installed (pip install tflite-micro)."""


class TFLMCrashed(RuntimeError):
    """TFLM's interpreter stopped its process (an assert or check of its own failed)."""


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
    return to_tflite(model)


def _arena_size(model_bytes):
    # The interpreter's own default (10x the file) is too small for models whose
    # activations are large next to their weights; the arena is only reserved memory.
    return max(10 * len(model_bytes), 1 << 20)


def interpreter(model, arena_size=None):
    """A TFLM interpreter for a QModel or `.tflite` bytes, in THIS process: a failed check
    inside TFLM aborts the caller. `run_tflm` and `run_interpreter` run it in a worker."""
    data = _model_bytes(model)
    return _runtime().Interpreter.from_bytes(data, arena_size=arena_size or _arena_size(data))


# ---------------------------------------------------------------------------------------
# The worker process: what runs the interpreter
# ---------------------------------------------------------------------------------------
def _invoke(data, xs, stream=False):
    """One sample at a time through the interpreter -> every output stacked, [(N, *shape)].
    The interpreter is reset before each sample (its variable tensors, an LSTM's state, back
    to zero), unless `stream`: then the state carries from one sample to the next."""
    interp = interpreter(data)
    for i, x in enumerate(xs):
        want = tuple(int(d) for d in interp.get_input_details(i)["shape"])[1:]
        if x.shape[1:] != want or len(x) != len(xs[0]):
            raise ValueError(f"run_tflm: input {i} has shape {x.shape}, expected "
                             f"({len(xs[0])}, {', '.join(map(str, want))})")
    n_outputs = tflite.Model.GetRootAs(data, 0).Subgraphs(0).OutputsLength()
    details = [interp.get_output_details(j) for j in range(n_outputs)]
    shapes = [tuple(int(d) for d in d_j["shape"])[1:] for d_j in details]
    outs = [np.zeros((len(xs[0]),) + shape, d_j["dtype"]) for shape, d_j in zip(shapes, details)]
    for n in range(len(xs[0])):
        if not stream:
            interp.reset()
        for i, x in enumerate(xs):
            interp.set_input(x[n:n + 1], i)
        interp.invoke()
        for j, out in enumerate(outs):
            out[n] = np.array(interp.get_output(j)).reshape(shapes[j])
    return outs


def _invoke_on_zeros(data, arena_size=None):
    """An interpreter for `data` that has run one inference on all-zero inputs."""
    interp = interpreter(data, arena_size)
    for i in range(tflite.Model.GetRootAs(data, 0).Subgraphs(0).InputsLength()):
        details = interp.get_input_details(i)
        interp.set_input(np.zeros(details["shape"], dtype=details["dtype"]), i)
    interp.invoke()
    return interp


def _captured_stderr(action):
    """(action's result or the exception it raised, what it printed on the C stderr stream):
    TFLM prints there, so it is captured at the file descriptor level."""
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            try:
                result = action()
            except Exception as e:                   # noqa: BLE001 (returned to the caller)
                result = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode(errors="replace")


def _arena_report(data):
    """The interpreter's allocation report after one inference on zeros."""
    interp = _invoke_on_zeros(data)
    _, report = _captured_stderr(interp.print_allocations)
    return report


def _runs_in(data, arena_size):
    """Whether TFLM allocates its tensors and runs one inference in `arena_size` bytes
    (its complaints about a too-small arena are kept off stderr)."""
    result, _ = _captured_stderr(lambda: _invoke_on_zeros(data, arena_size))
    return not isinstance(result, Exception)


def _read_message(stream):
    size = stream.read(8)
    if len(size) < 8:
        return None
    body = stream.read(int.from_bytes(size, "little"))
    if len(body) < int.from_bytes(size, "little"):      # the writer stopped half-way
        return None
    return dict(np.load(io.BytesIO(body), allow_pickle=False))


def _write_message(stream, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    stream.write(len(buffer.getvalue()).to_bytes(8, "little") + buffer.getvalue())
    stream.flush()


def serve():
    """The worker's loop, on stdin and stdout: a request holds `task` ('run', 'arena' or
    'runs_in' with an `arena_size`), `model` (the .tflite bytes as uint8) and the inputs x0,
    x1, ...; the reply `result` ('arena', 'runs_in'), or `n_results` and the outputs
    result0, result1, ... ('run'), or `error` and `kind`. Anything TFLM prints goes to
    stderr, never into the replies."""
    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while (request := _read_message(requests)) is not None:
        data = request["model"].tobytes()
        try:
            if str(request["task"]) == "arena":
                _write_message(replies, result=np.array(_arena_report(data)))
            elif str(request["task"]) == "runs_in":
                _write_message(replies, result=np.array(_runs_in(data, int(request["arena_size"]))))
            else:
                xs = [request[f"x{i}"] for i in range(int(request["n_inputs"]))]
                outs = _invoke(data, xs, bool(request.get("streamed", False)))
                _write_message(replies, n_results=np.array(len(outs)),
                               **{f"result{j}": out for j, out in enumerate(outs)})
        except Exception as e:                       # noqa: BLE001 (sent back to the caller)
            _write_message(replies, error=np.array(str(e)), kind=np.array(type(e).__name__))


class _Worker:
    """The worker process and the lock that keeps one request on its pipe at a time."""
    process = None
    lock = threading.Lock()

    @classmethod
    def request(cls, task, data, xs=(), **extra):
        with cls.lock:
            if cls.process is None or cls.process.poll() is not None:
                cls.process = _start_worker()
            arrays = {f"x{i}": x for i, x in enumerate(xs)}
            arrays.update({k: np.array(v) for k, v in extra.items()})
            try:
                _write_message(cls.process.stdin, task=np.array(task), n_inputs=np.array(len(xs)),
                               model=np.frombuffer(data, np.uint8), **arrays)
                reply = _read_message(cls.process.stdout)
            except BrokenPipeError:
                reply = None
            if reply is None:
                code = cls.process.wait()
                cls.process = None
                raise TFLMCrashed(f"TensorFlow Lite Micro's interpreter stopped ({_describe(code)}) on "
                                  f"this model: one of its own checks failed (its message is on "
                                  f"stderr above); minitiny ran it in a separate process")
        if "error" in reply:
            error = ValueError if str(reply["kind"]) == "ValueError" else RuntimeError
            raise error(str(reply["error"]))
        if "n_results" in reply:
            return [reply[f"result{j}"] for j in range(int(reply["n_results"]))]
        return reply["result"]

    @classmethod
    def stop(cls):
        if cls.process is not None and cls.process.poll() is None:
            cls.process.stdin.close()
            cls.process.wait()


def _start_worker():
    # The worker imports this very package: put its parent directory on the path.
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.Popen([sys.executable, "-c", "from minitiny.quant.tflm import serve; serve()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)


def _describe(returncode):
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


atexit.register(_Worker.stop)


# ---------------------------------------------------------------------------------------
# The caller's side
# ---------------------------------------------------------------------------------------
def run_interpreter(model, xs, stream=False):
    """Inputs (a list of (N, ...) arrays in the model's input dtypes) -> every output
    (N, ...), a list in the file's order, one sample at a time in TFLM, in the worker: each
    from a reset interpreter (as QModel.predict_int8), or with `stream` one after another,
    state kept (as QModel.stream_int8)."""
    _runtime()                                     # TFLMUnavailable here, in the caller
    return _Worker.request("run", _model_bytes(model), [np.ascontiguousarray(x) for x in xs],
                           streamed=bool(stream))


def run_tflm(model, x_int8, stream=False):
    """int8 (N, *input_shape) -> int8 (N, *output_shape), one sample at a time in TFLM.

    `model` is a QModel or the bytes of a `.tflite` file with int8 inputs and outputs
    (a 16x8 model: int16);
    `x_int8` is one array, or a list of arrays for a model with several inputs. A model
    with several outputs gives a list of arrays in the file's order (as QModel.predict_int8).
    Each sample runs from a reset interpreter; `stream=True` carries a stateful model's
    state (an LSTM's) from one sample to the next instead, as QModel.stream_int8.
    """
    xs = [np.asarray(a) for a in x_int8] if isinstance(x_int8, (list, tuple)) else [np.asarray(x_int8)]
    for i, x in enumerate(xs):
        if x.dtype not in (np.int8, np.int16):
            raise ValueError(f"run_tflm: input {i} must be int8 (int16 for a 16x8 model), got {x.dtype}")
    outs = run_interpreter(model, xs, stream)
    return outs if len(outs) > 1 else outs[0]


def tflm_arena_bytes(model):
    """The tensor arena TFLM used for one inference, from its allocation report, or None.

    The total is the arena's head (activations, planned by TFLM's memory planner) plus its
    tail (persistent tensor structs, op data).
    """
    _runtime()
    report = str(_Worker.request("arena", _model_bytes(model)))
    m = re.search(r"Arena allocation total (\d+) bytes", report)
    return int(m.group(1)) if m else None


def tflm_min_arena(model):
    """TFLM's smallest working `arena_size` in bytes for a QModel or `.tflite` bytes: the
    interpreter allocates its tensors and runs one inference in it, and fails one byte below.

    Found by bisection (about 20 fresh interpreters), each in the worker process; a probe
    that makes TFLM abort counts as too small. The arena holds TFLM's planned activations
    (its head), the persistent tensor structs and op data (its tail) and the up to 15 bytes
    TFLM skips to align the buffer it is given, so the figure can move by those few bytes
    from one run to the next.
    """
    _runtime()
    data = _model_bytes(model)

    def runs_in(size):
        try:
            return bool(_Worker.request("runs_in", data, arena_size=size))
        except TFLMCrashed:
            return False

    works = _arena_size(data)
    if not runs_in(works):
        _Worker.request("arena", data)              # raises TFLM's own error for the model
        raise RuntimeError(f"TensorFlow Lite Micro does not run this model in an arena of "
                           f"{works} bytes")
    fails = 0                                         # invariant: fails < minimum <= works
    while works - fails > 1:
        middle = (fails + works) // 2
        if runs_in(middle):
            works = middle
        else:
            fails = middle
    return works
