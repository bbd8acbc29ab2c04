"""The int8 model: a graph of TFLite-style operators over named, quantized tensors.

This is the one contract in the middle of minitiny. The quantizer and the `.tflite`
importer build a `QModel`; the NumPy int8 reference (`kernels/`, one module per op), the
`.tflite` writer, the C generator and the firmware harness read it. Layouts are TFLite's (see docs/DESIGN.md):

    fully_connected    weight (out, in)               bias (out,) int32
    conv_2d            weight (out, kh, kw, in)       bias (out,) int32
    depthwise_conv_2d  weight (1, kh, kw, in * m)     bias (in * m,) int32

A quantized value q stands for the real number  r = scale * (q - zero_point).

Activations are int8 (TFLite's full-integer scheme), or int16 with zero point 0 and int8
weights and int64 bias (TFLite's "16x8" scheme, `DTYPES` below); one model uses one of the two.
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from minitiny.files import atomic_write

from . import kernels
from .errors import GraphError

# Every operator kind the graph may hold, with the options each one takes.
OP_OPTIONS = {
    "fully_connected": ("activation", "keep_num_dims"),
    "conv_2d": ("stride", "padding", "dilation", "activation"),
    "depthwise_conv_2d": ("stride", "padding", "dilation", "depth_multiplier", "activation"),
    "max_pool_2d": ("pool_size", "stride", "padding", "activation"),
    "average_pool_2d": ("pool_size", "stride", "padding", "activation"),
    "transpose_conv": ("stride", "padding", "activation"),
    "batch_matmul": ("adj_x", "adj_y"),
    "resize_nearest_neighbor": ("align_corners", "half_pixel_centers"),
    "resize_bilinear": ("align_corners", "half_pixel_centers"),
    "mean": ("axes", "keep_dims"),
    "sum": ("axes", "keep_dims"),
    "reduce_max": ("axes", "keep_dims"),
    "reduce_min": ("axes", "keep_dims"),
    "arg_max": ("axis",),
    "arg_min": ("axis",),
    "add": ("activation",),
    "sub": ("activation",),
    "mul": ("activation",),
    "maximum": (),
    "minimum": (),
    "squared_difference": (),
    "reshape": (),
    "softmax": ("beta",),
    "l2_normalization": (),
    "logistic": (),
    "tanh": (),
    "relu": (),
    "relu6": (),
    "leaky_relu": ("alpha",),
    "prelu": (),
    "hard_swish": (),
    "elu": (),
    "abs": (),
    "neg": (),
    "square": (),
    "rsqrt": (),
    # data movement (kernels/concatenation.py, split.py, pad.py, strided_slice.py,
    # transpose.py, quantize.py); axes count the dimensions of one sample, without the batch
    "concatenation": ("axis",),
    "pack": ("axis",),
    "split": ("axis",),
    "split_v": ("axis", "sizes"),
    "unpack": ("axis",),
    "pad": ("paddings", "constant"),
    "mirror_pad": ("paddings", "mode"),
    "strided_slice": ("begin", "end", "strides", "begin_mask", "end_mask", "shrink_axis_mask"),
    "slice": ("begin", "size"),
    "transpose": ("perm",),
    "depth_to_space": ("block_size",),
    "space_to_depth": ("block_size",),
    "quantize": (),
    # recurrent (kernels/lstm.py): the hidden and cell state are variable tensors
    "unidirectional_sequence_lstm": ("cell_clip",),
}
ACTIVATIONS = ("none", "relu", "relu6")
# dtype -> bytes per value. Activations int8 or int16; weights int8; bias int32 (int8
# activations) or int64 (int16 activations).
DTYPES = {"int8": 1, "int16": 2, "int32": 4, "int64": 8}
PADDINGS = ("same", "valid")


def _exact(values, dtype, what):
    """values as `dtype` (one of DTYPES), refusing values a cast would change (wrap or
    truncate) instead of changing them silently."""
    a = np.asarray(values)
    if a.dtype == dtype:
        return a
    info = np.iinfo(dtype)
    if a.dtype.kind not in "iufb" or (a.size and (
            not np.all(np.isfinite(a)) if a.dtype.kind == "f" else False)):
        raise GraphError(f"{what}: expected {dtype} values, got {a.dtype}")
    if a.size and (a.min() < info.min or a.max() > info.max or np.any(a != np.round(a))):
        raise GraphError(f"{what}: values must be integers in [{info.min}, {info.max}], "
                         f"got [{a.min()}, {a.max()}]")
    return a.astype(dtype)


@dataclass
class QTensor:
    name: str
    shape: tuple            # activations: without batch, e.g. (28, 28, 1); constants: full shape
    dtype: str              # 'int8' or 'int16' (activations, weights), 'int32' or 'int64' (bias)
    scale: np.ndarray       # float32, () per tensor or (C,) per channel
    zero_point: np.ndarray  # int32, same shape as scale
    data: np.ndarray = None  # constants only (weights, bias); None for activations
    quantized_dimension: int = 0  # axis the per-channel scales run along
    variable: bool = False  # state kept across invokes (an LSTM's): see QModel.states

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        self.scale = np.asarray(self.scale, dtype=np.float32)
        self.zero_point = _exact(self.zero_point, "int32", f"tensor {self.name!r}: zero point")
        if self.dtype not in DTYPES:
            raise GraphError(f"tensor {self.name!r}: dtype must be one of {', '.join(DTYPES)}, "
                             f"got {self.dtype!r}")
        if self.scale.shape != self.zero_point.shape:
            raise GraphError(f"tensor {self.name!r}: scale shape {self.scale.shape} "
                             f"!= zero_point shape {self.zero_point.shape}")
        if not np.all(np.isfinite(self.scale)) or np.any(self.scale <= 0):
            raise GraphError(f"tensor {self.name!r}: scales must be finite and > 0, got {self.scale}")
        if self.data is not None:
            self.data = _exact(self.data, self.dtype, f"tensor {self.name!r}: data")
            if self.data.shape != self.shape:
                raise GraphError(f"tensor {self.name!r}: data shape {self.data.shape} != shape {self.shape}")
        if self.variable and self.data is not None:
            raise GraphError(f"tensor {self.name!r}: a variable tensor (state) holds no constant data")

    @property
    def is_constant(self):
        return self.data is not None

    @property
    def per_channel(self):
        return self.scale.ndim == 1

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * DTYPES[self.dtype]

    def quantize(self, real):
        """float -> this tensor's integers (int8 or int16), with its per-tensor scale and
        zero point (round half away)."""
        # np.round is half-to-even; TFLite's converter rounds half away from zero.
        x = np.asarray(real, dtype=np.float64) / float(self.scale)
        q = np.sign(x) * np.floor(np.abs(x) + 0.5) + int(self.zero_point)
        info = np.iinfo(self.dtype)
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, q):
        """int8 / int16 -> float32: r = scale * (q - zero_point)."""
        return (self.scale * (np.asarray(q, dtype=np.int32) - self.zero_point)).astype(np.float32)

    def reset_value(self, n=1):
        """A variable tensor's value after a reset, for n samples: the real number 0, its
        zero point (TFLM's ResetVariableTensors fills int8 tensors with their zero point)."""
        return np.full((n,) + self.shape, int(self.zero_point), dtype=self.dtype)


def _tuples(value):
    """Lists (nested too, as pad's paddings) as tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass
class QOp:
    kind: str
    name: str
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)
    params: dict = None  # integer parameters, filled once by QModel.prepare()

    def __post_init__(self):
        self.inputs, self.outputs = list(self.inputs), list(self.outputs)
        # JSON round trips turn tuples into lists: keep one form (tuples) for every option
        self.options = {k: _tuples(v) for k, v in self.options.items()}
        if self.kind not in OP_OPTIONS:
            raise GraphError(f"op {self.name!r}: unsupported kind {self.kind!r}; "
                             f"supported: {', '.join(OP_OPTIONS)}")
        unknown = set(self.options) - set(OP_OPTIONS[self.kind])
        if unknown:
            raise GraphError(f"op {self.name!r} ({self.kind}): unknown options {sorted(unknown)}")
        act = self.options.get("activation", "none")
        if act not in ACTIVATIONS:
            raise GraphError(f"op {self.name!r}: activation {act!r} is not one of {ACTIVATIONS}")
        pad = self.options.get("padding", "valid")
        if pad not in PADDINGS:
            raise GraphError(f"op {self.name!r}: padding {pad!r} is not one of {PADDINGS}")


class QModel:
    """An int8 model. `ops` run in list order; `inputs`/`outputs` name activation tensors."""

    def __init__(self, name, tensors, ops, inputs, outputs, single_rounding=False):
        # single_rounding: requantize with TFLITE_SINGLE_ROUNDING's one rounding step instead
        # of gemmlowp's two (TFLM's default, and minitiny's). The C generator follows it.
        self.single_rounding = bool(single_rounding)
        self.name = name
        self.tensors = dict(tensors)
        self.ops = list(ops)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.validate()
        self.prepare()

    # -- structure ---------------------------------------------------------------------
    def validate(self):
        """Every name resolves, every activation is written once before it is read."""
        for name, t in self.tensors.items():
            if name != t.name:
                raise GraphError(f"tensor key {name!r} != tensor.name {t.name!r}")
        written = set(self.inputs)
        if len(written) != len(self.inputs):
            raise GraphError(f"model {self.name!r}: inputs {self.inputs} name a tensor twice")
        for name in self.inputs + self.outputs:
            if name not in self.tensors:
                raise GraphError(f"model {self.name!r}: input/output {name!r} is not a tensor")
            if self.tensors[name].variable:
                raise GraphError(f"model {self.name!r}: input/output {name!r} is a variable tensor "
                                 f"(state), which the model keeps and no caller passes")
        written.update(self.states)         # state holds a value from the start (a reset)
        seen_ops = set()
        for op in self.ops:
            if op.name in seen_ops:
                raise GraphError(f"two ops are named {op.name!r}")
            seen_ops.add(op.name)
            for name in op.inputs:
                if name not in self.tensors:
                    raise GraphError(f"op {op.name!r}: input {name!r} is not a tensor")
                if not self.tensors[name].is_constant and name not in written:
                    raise GraphError(f"op {op.name!r}: input {name!r} is read before it is written")
            for name in op.outputs:
                if name not in self.tensors:
                    raise GraphError(f"op {op.name!r}: output {name!r} is not a tensor")
                if name in written:
                    raise GraphError(f"op {op.name!r}: tensor {name!r} is written twice")
                written.add(name)
        for name in self.outputs:
            if name not in written:
                raise GraphError(f"model output {name!r} is never written")

    def prepare(self):
        """Compute every op's integer parameters once (TFLM's Prepare)."""
        for op in self.ops:
            op.params = kernels.prepare(op, self.tensors, single_rounding=self.single_rounding)

    @property
    def states(self):
        """The variable tensors: state an op (an LSTM) reads and updates in place, kept from
        one invoke to the next until `reset_state()`, as TFLM keeps its variable tensors."""
        return [name for name, t in self.tensors.items() if t.variable]

    def reset_state(self):
        """Set every state tensor to its reset value (real 0), as TFLM's interpreter reset()
        and the generated C's NAME_reset() do; `stream_int8` starts from here again."""
        self._state = {name: self.tensors[name].reset_value() for name in self.states}

    def activations(self, op):
        """The non-constant input tensors of `op`, in order."""
        return [self.tensors[n] for n in op.inputs if not self.tensors[n].is_constant]

    @property
    def input(self):
        """The input tensor of a model with one input (`inputs` names them all)."""
        return self.tensors[self._only("input", self.inputs)]

    @property
    def output(self):
        """The output tensor of a model with one output (`outputs` names them all)."""
        return self.tensors[self._only("output", self.outputs)]

    def _only(self, role, names):
        if len(names) != 1:
            raise GraphError(f"model {self.name!r} has {len(names)} {role}s ({', '.join(names)}): "
                             f"use qmodel.{role}s and qmodel.tensors[name], not qmodel.{role}")
        return names[0]

    # -- running the NumPy int8 reference ----------------------------------------------
    # A model with several inputs takes them as a list in the order of `inputs` (or a dict
    # by name); one with several outputs returns a list in the order of `outputs`, which is
    # the file's order for an imported .tflite. One input, one output: plain arrays.
    def _batches(self, x, what):
        """The inputs `x` as one (N, *shape) array per model input, in `inputs` order. A
        single sample without the batch dimension becomes a batch of one."""
        names = self.inputs
        if isinstance(x, dict):
            unknown = sorted(set(x) - set(names))
            missing = [n for n in names if n not in x]
            if unknown or missing:
                raise GraphError(f"model {self.name!r}: {what} got inputs {sorted(x)}; the model's "
                                 f"inputs are {names}" + (f" (missing {missing})" if missing else ""))
            xs = [x[n] for n in names]
        elif len(names) == 1:
            xs = [x]
        elif isinstance(x, (list, tuple)) and len(x) == len(names):
            xs = list(x)
        else:
            got = f"{len(x)} arrays" if isinstance(x, (list, tuple)) else "one array"
            raise GraphError(f"model {self.name!r} has {len(names)} inputs ({', '.join(names)}): "
                             f"{what} takes a list of {len(names)} arrays in that order, or a "
                             f"dict by name; got {got}")
        batches = []
        for name, a in zip(names, xs):
            a, want = np.asarray(a), self.tensors[name].shape
            if a.shape[1:] != want:
                if a.shape != want:
                    raise GraphError(f"model {self.name!r}: input {name!r} has shape {a.shape}, "
                                     f"which does not fit (N, {', '.join(map(str, want))})")
                a = a[None]
            batches.append(a)
        if len({len(a) for a in batches}) > 1:
            raise GraphError(f"model {self.name!r}: the inputs hold different numbers of samples: "
                             + ", ".join(f"{n!r} {len(a)}" for n, a in zip(names, batches)))
        return batches

    def _results(self, values):
        """One array per model output: a list when there are several, else the array."""
        outs = [values[name] for name in self.outputs]
        return outs if len(outs) > 1 else outs[0]

    def run_ops(self, values):
        """Run every op in list order on `values` ({input name: int8 (N, ...)}), adding each
        op's output; returns `values`, every activation of the model by name. State tensors
        missing from `values` start from their reset value, one per sample; an op updates
        the state arrays in `values` in place."""
        samples = len(values[self.inputs[0]]) if self.inputs else 1
        for name in self.states:
            if name not in values:
                values[name] = self.tensors[name].reset_value(samples)
        for op in self.ops:
            args = [values[n] if n in values else self.tensors[n].data for n in op.inputs]
            values.update(zip(op.outputs, kernels.run_outputs(op, self.tensors, args)))
        return values

    def predict_int8(self, x, return_all=False):
        """int8 (N, *input.shape) -> int8 (N, *output.shape); a dict of all tensors if return_all.

        Several inputs: a list of arrays in `inputs` order, or a dict by name. Several
        outputs: a list of arrays in `outputs` order (always all of them). A 16x8 model
        takes and returns int16 (each input's dtype); an ARG_MAX / ARG_MIN output is int32
        indices.

        A model with state (an LSTM's, `states`) runs every sample from the reset state,
        independently, as Keras' predict on a stateless layer; the state `stream_int8`
        carries is left as it is. To run samples one after another with the state kept,
        as TFLM and the generated C do across invokes, use `stream_int8`."""
        values = self.run_ops(dict(zip(self.inputs, self._int_batches(x, "predict_int8"))))
        return values if return_all else self._results(values)

    def _int_batches(self, x, what):
        """The integer inputs `x` as one (N, *shape) array per model input, checked."""
        batches = []
        for name, a in zip(self.inputs, self._batches(x, what)):
            dtype = self.tensors[name].dtype
            if a.dtype.kind not in "iu":
                raise GraphError(f"model {self.name!r}: {what} takes {dtype} input, got {a.dtype} "
                                 f"for input {name!r}; for float input use predict(x), or "
                                 f"quantize_input(x) first")
            if a.dtype != dtype:
                info = np.iinfo(dtype)
                if a.size and (a.min() < info.min or a.max() > info.max):
                    raise GraphError(f"model {self.name!r}: {dtype} input {name!r} out of range "
                                     f"[{a.min()}, {a.max()}]")
                a = a.astype(dtype)
            batches.append(a)
        return batches

    def stream_int8(self, x):
        """Invoke the model once per sample of x, in order, the state carried from each
        invoke to the next and across calls (TFLM's interpreter, the generated C's
        NAME_invoke) until `reset_state()`. Inputs and outputs as `predict_int8` takes them."""
        if not hasattr(self, "_state"):
            self.reset_state()
        batches = self._int_batches(x, "stream_int8")
        outs = []
        for i in range(len(batches[0])):
            # the state arrays (1, ...) are updated in place by the ops that hold state
            values = self.run_ops(dict(zip(self.inputs, [a[i:i + 1] for a in batches]), **self._state))
            outs.append([values[name] for name in self.outputs])
        return self._results({name: np.concatenate([o[k] for o in outs]) if outs else
                              np.zeros((0,) + self.tensors[name].shape, self.tensors[name].dtype)
                              for k, name in enumerate(self.outputs)})

    def quantize_input(self, x):
        """float -> int8 with each input's scale and zero point (a list for several inputs)."""
        if len(self.inputs) == 1 and not isinstance(x, dict):
            return self.input.quantize(x)
        qs = [self.tensors[n].quantize(a) for n, a in zip(self.inputs, self._batches(x, "quantize_input"))]
        return qs

    def dequantize_output(self, q):
        """int8 -> float with each output's scale and zero point (a list for several outputs)."""
        if len(self.outputs) == 1:
            return self.output.dequantize(q)
        if not isinstance(q, (list, tuple)) or len(q) != len(self.outputs):
            raise GraphError(f"model {self.name!r} has {len(self.outputs)} outputs: "
                             f"dequantize_output takes a list of {len(self.outputs)} arrays")
        return [self.tensors[n].dequantize(a) for n, a in zip(self.outputs, q)]

    def predict(self, x, batch_size=256):
        """Float in, float out, like Keras' predict: quantize, run int8, dequantize.
        Inputs and outputs as predict_int8 takes and gives them."""
        if len(self.inputs) == 1 and not isinstance(x, dict):
            x = np.asarray(x, dtype=np.float32)
            if x.ndim == 1 and self.input.shape == (1,):
                x = x[:, None]
        xs = [np.asarray(a, dtype=np.float32) for a in self._batches(x, "predict")]
        n = len(xs[0])
        outs = [[] for _ in self.outputs]
        for i in range(0, n, batch_size):
            q = [self.tensors[name].quantize(a[i:i + batch_size]) for name, a in zip(self.inputs, xs)]
            values = self.run_ops(dict(zip(self.inputs, q)))
            for k, name in enumerate(self.outputs):
                outs[k].append(self.tensors[name].dequantize(values[name]))
        return self._results({name: np.concatenate(o) if o else
                              np.zeros((0,) + self.tensors[name].shape, np.float32)
                              for name, o in zip(self.outputs, outs)})

    def evaluate(self, x, y, metric=None):
        """Accuracy for classifiers (integer or one-hot labels), mean squared error otherwise;
        for several outputs, y is a list (one target per output) and so is the result."""
        pred = self.predict(x)
        if len(self.outputs) == 1:
            return _score(pred, y, metric)
        if not isinstance(y, (list, tuple)) or len(y) != len(self.outputs):
            raise GraphError(f"model {self.name!r} has {len(self.outputs)} outputs "
                             f"({', '.join(self.outputs)}): evaluate takes y as a list of "
                             f"{len(self.outputs)} targets in that order")
        return [_score(p, t, metric) for p, t in zip(pred, y)]

    # -- files: one .npz, arrays plus a JSON description; never pickle ------------------
    FORMAT = "minitiny.qmodel/1"

    def save(self, path):
        """Write the model to `path` (.npz) atomically: a crash never leaves half a file."""
        arrays, tensors = {}, []
        for i, t in enumerate(self.tensors.values()):
            arrays[f"scale_{i}"], arrays[f"zero_point_{i}"] = t.scale, t.zero_point
            if t.is_constant:
                arrays[f"data_{i}"] = t.data
            tensors.append({"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                            "quantized_dimension": t.quantized_dimension, "constant": t.is_constant,
                            "variable": t.variable})
        config = {"format": self.FORMAT, "name": self.name, "tensors": tensors,
                  "ops": [{"kind": op.kind, "name": op.name, "inputs": op.inputs, "outputs": op.outputs,
                           "options": op.options} for op in self.ops],
                  "inputs": self.inputs, "outputs": self.outputs,
                  "single_rounding": self.single_rounding}
        arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
        atomic_write(path, lambda f: np.savez(f, **arrays))     # minitiny/files.py

    @classmethod
    def load(cls, path):
        """Read a model written by `save`. Never unpickles: a model file cannot run code.
        Every field is checked before use; a damaged or forged file raises GraphError
        naming the file and the field."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                magic = f.read(4)
            if not magic.startswith(b"PK"):
                raise ValueError(f"not a .npz (zip) archive, it starts with {magic!r}")
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except GraphError:
            raise
        except OSError as e:
            raise GraphError(f"{path}: cannot read the int8 model ({e})") from None
        except Exception as e:      # noqa: BLE001  zip, zlib and .npy header errors of a damaged file
            raise GraphError(f"{path}: not a readable minitiny int8 model "
                             f"({type(e).__name__}: {e})") from None
        try:
            config = _read_config(arrays)
            tensors = {}
            for i, t in enumerate(config["tensors"]):
                tensors[t["name"]] = QTensor(
                    t["name"], t["shape"], t["dtype"], _array(arrays, f"scale_{i}", "f"),
                    _array(arrays, f"zero_point_{i}", "iu"),
                    _array(arrays, f"data_{i}", t["dtype"]) if t["constant"] else None,
                    t["quantized_dimension"], t["variable"])
            ops = [QOp(o["kind"], o["name"], o["inputs"], o["outputs"], o["options"]) for o in config["ops"]]
            return cls(config["name"], tensors, ops, config["inputs"], config["outputs"],
                       single_rounding=config["single_rounding"])
        except GraphError as e:
            raise GraphError(f"{path}: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise GraphError(f"{path}: corrupted minitiny int8 model ({type(e).__name__}: {e})") from None

    # -- sizes ---------------------------------------------------------------------------
    def weight_bytes(self):
        return sum(t.nbytes for t in self.tensors.values() if t.is_constant)

    def summary(self):
        lines = [f"QModel {self.name!r}: {len(self.ops)} ops, {self.weight_bytes()} weight bytes"]
        for i, op in enumerate(self.ops):
            ins = ", ".join(f"{n}{list(self.tensors[n].shape)}" for n in op.inputs)
            outs = ", ".join(str(list(self.tensors[n].shape)) for n in op.outputs)
            lines.append(f"{i:3d} {op.kind:18s} {op.name:20s} {ins} -> {outs}")
        return "\n".join(lines)


def _score(pred, y, metric):
    y = np.asarray(y)
    if metric is None:
        metric = "accuracy" if pred.shape[-1] > 1 else "mse"
    if metric == "accuracy":
        labels = y.argmax(-1) if y.ndim == pred.ndim else y.reshape(len(y))
        return float(np.mean(pred.argmax(-1) == labels))
    if metric == "mse":
        return float(np.mean((pred.reshape(len(pred), -1) - y.reshape(len(y), -1)) ** 2))
    raise GraphError(f"unknown metric {metric!r}: use 'accuracy' or 'mse'")


# -- reading a saved model: every field checked before it is used ---------------------------
def _fields(obj, where, spec):
    """obj must be a dict holding each key of spec with a value of its type(s)."""
    if not isinstance(obj, dict):
        raise GraphError(f"{where} must be a JSON object, got {type(obj).__name__}")
    for key, kind in spec.items():
        if key not in obj:
            raise GraphError(f"{where} has no {key!r}")
        value = obj[key]
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise GraphError(f"{where}: {key!r} must be {kind.__name__}, got "
                             f"{type(value).__name__} {str(value)[:40]!r}")
    return obj


def _names(value, where):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GraphError(f"{where} must be a list of tensor names, got {str(value)[:60]}")
    return value


def _read_config(arrays):
    """The JSON description of a saved QModel, its structure checked."""
    raw = arrays.get("config")
    if raw is None:
        raise GraphError("no 'config' entry: not a minitiny int8 model")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise GraphError(f"config is {raw.dtype} {raw.shape}, expected 1-D uint8 (JSON text)")
    try:
        config = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise GraphError(f"config is not JSON text ({e})") from None
    if not isinstance(config, dict) or config.get("format") != QModel.FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise GraphError(f"format {got!r}, expected {QModel.FORMAT!r}")
    config.setdefault("single_rounding", False)
    _fields(config, "config", {"name": str, "tensors": list, "ops": list, "inputs": list,
                               "outputs": list, "single_rounding": bool})
    for i, t in enumerate(config["tensors"]):
        if isinstance(t, dict):
            t.setdefault("variable", False)         # files written before state existed
        _fields(t, f"tensor {i}", {"name": str, "shape": list, "dtype": str,
                                   "quantized_dimension": int, "constant": bool, "variable": bool})
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2 ** 31
                   for d in t["shape"]):
            raise GraphError(f"tensor {t['name']!r}: shape {t['shape']} must be sizes in [0, 2^31)")
    for i, o in enumerate(config["ops"]):
        _fields(o, f"op {i}", {"kind": str, "name": str, "inputs": list, "outputs": list,
                               "options": dict})
        _names(o["inputs"], f"op {o['name']!r} inputs")
        _names(o["outputs"], f"op {o['name']!r} outputs")
    _names(config["inputs"], "model inputs")
    _names(config["outputs"], "model outputs")
    return config


def _array(arrays, key, kind):
    """arrays[key], required to be of a dtype kind ('f', 'iu') or exactly one of DTYPES."""
    if key not in arrays:
        raise GraphError(f"array {key!r} is missing")
    a = arrays[key]
    ok = a.dtype == np.dtype(kind) if kind in DTYPES else a.dtype.kind in kind
    if not ok:
        raise GraphError(f"array {key!r} has dtype {a.dtype}, expected "
                         f"{kind if kind in DTYPES else 'float' if kind == 'f' else 'integer'}")
    return a
