"""tf.lite's converter and interpreter, for a program that does `import minitiny as tf`.

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_data_gen    # yields [x] batches
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8                      # or tf.int8, tf.float32
    converter.inference_output_type = tf.uint8
    tflite_model = converter.convert()                             # the .tflite bytes

    # TFLite's 16x8 scheme (int16 activations, int8 weights): minitiny.quantize(...,
    # activations="int16"); its edges int16 (inference_*_type = tf.int16) or float32
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]

    interpreter = tf.lite.Interpreter(model_content=tflite_model)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()[0]
    interpreter.set_tensor(details["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

`convert` is minitiny.quantize (TFLite's full-integer scheme) followed by the `.tflite`
writer (quant/tflite_io.py), which puts a QUANTIZE / DEQUANTIZE at each edge of another
type. TFLite Micro runs the file as it is. Without `optimizations` the converter writes a
float32 model instead, as TensorFlow's does (the lowered float graph: BatchNormalization
and Rescaling folded into the weights, activations fused). A dynamic-range conversion
(optimizations without a representative_dataset) and float16 are refused, not approximated.

The Interpreter runs minitiny's NumPy int8 reference (minitiny/quant/kernels/), which gives TFLite
Micro's integers bit for bit; a float32 file runs on the float engine's own ops. TensorFlow's own desktop interpreter uses other (optimized)
kernels that can differ from TFLM by one step of rounding, so this one is the closer
stand-in for the microcontroller.
"""
import os

import numpy as np
import tflite as tfl

from minitiny.quant.quantizer import quantize
from minitiny.quant.lower import LoweringError, lower
from minitiny.quant.tflite_float import from_tflite_float, is_float_model
from minitiny.quant.tflite_io import EDGE_TYPES, to_tflite, to_tflite_float
from minitiny.quant.tflite_read import from_tflite, read_flatbuffer


class NotInMinitinyLite(NotImplementedError):
    """A tf.lite feature minitiny does not implement; the message says what it offers."""


def _type_name(value, what):
    """tf.int8 / np.int8 / 'int8' -> 'int8'; refuse what the writer has no edge for."""
    try:
        name = np.dtype(getattr(value, "as_numpy_dtype", value)).name
    except TypeError:
        name = str(value)
    if name not in EDGE_TYPES:
        raise NotInMinitinyLite(f"{what} = {value!r}: minitiny's .tflite edges are "
                                f"{', '.join(EDGE_TYPES)}")
    return name


# ---- the converter's settings, under TensorFlow's names ------------------------------------
class Optimize:
    DEFAULT = "DEFAULT"
    OPTIMIZE_FOR_SIZE = "OPTIMIZE_FOR_SIZE"          # deprecated aliases of DEFAULT in TF
    OPTIMIZE_FOR_LATENCY = "OPTIMIZE_FOR_LATENCY"
    EXPERIMENTAL_SPARSITY = "EXPERIMENTAL_SPARSITY"


class OpsSet:
    TFLITE_BUILTINS = "TFLITE_BUILTINS"
    TFLITE_BUILTINS_INT8 = "TFLITE_BUILTINS_INT8"
    SELECT_TF_OPS = "SELECT_TF_OPS"
    EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 = \
        "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"


class TargetSpec:
    def __init__(self):
        self.supported_ops = {OpsSet.TFLITE_BUILTINS}
        self.supported_types = []


class RepresentativeDataset:
    """TF's older wrapper: RepresentativeDataset(generator_function)."""

    def __init__(self, input_gen):
        self.input_gen = input_gen


class TFLiteConverter:
    """A trained minitiny model -> the bytes of a full-integer `.tflite` (see the module
    docstring). Settings minitiny does not implement are refused by name at convert()."""
    SETTINGS = ("optimizations", "representative_dataset", "target_spec",
                "inference_input_type", "inference_output_type", "allow_custom_ops",
                "experimental_new_converter", "experimental_new_quantizer",
                "exclude_conversion_metadata")

    def __init__(self, model):
        object.__setattr__(self, "model", model)
        self.optimizations, self.representative_dataset = [], None
        self.target_spec = TargetSpec()
        self.inference_input_type = self.inference_output_type = np.float32
        self.allow_custom_ops = False
        self.experimental_new_converter = self.experimental_new_quantizer = True
        self.exclude_conversion_metadata = False

    def __setattr__(self, name, value):
        if name not in self.SETTINGS:
            raise NotInMinitinyLite(f"TFLiteConverter.{name} is not a setting minitiny "
                                    f"implements; it has: {', '.join(self.SETTINGS)}")
        object.__setattr__(self, name, value)

    @classmethod
    def from_keras_model(cls, model):
        return cls(model)

    @classmethod
    def from_saved_model(cls, saved_model_dir, signature_keys=None, tags=None):
        raise NotInMinitinyLite("minitiny has no SavedModel: load the model with "
                                "keras.models.load_model, then use from_keras_model")

    @classmethod
    def from_concrete_functions(cls, funcs, trackable_obj=None):
        raise NotInMinitinyLite("minitiny has no concrete functions: use from_keras_model")

    def _int16(self):
        """The 16x8 scheme was asked for (int16 activations, int8 weights)."""
        return OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 in set(
            self.target_spec.supported_ops)

    def _check(self):
        ops = set(self.target_spec.supported_ops)
        unknown = ops - {OpsSet.TFLITE_BUILTINS, OpsSet.TFLITE_BUILTINS_INT8,
                         OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8}
        if unknown:
            raise NotInMinitinyLite(f"target_spec.supported_ops {sorted(unknown)}: minitiny "
                                    "writes TFLite builtin int8 ops (TFLITE_BUILTINS_INT8) or "
                                    "16x8 ones (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)")
        for t, what in ((self.inference_input_type, "inference_input_type"),
                        (self.inference_output_type, "inference_output_type")):
            name = _type_name(t, what)
            if self._int16() and name not in ("int16", "float32"):
                raise NotInMinitinyLite(f"{what} = {name} with 16x8 ops: a 16x8 model's edges "
                                        f"are int16 or float32")
            if not self._int16() and name == "int16":
                raise NotInMinitinyLite(f"{what} = int16 needs the 16x8 scheme: set "
                                        f"target_spec.supported_ops = [tf.lite.OpsSet."
                                        f"EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]")
        types = [_type_name(t, "target_spec.supported_types") for t in
                 self.target_spec.supported_types]
        if any(t != "int8" for t in types):
            raise NotInMinitinyLite(f"target_spec.supported_types {types}: minitiny quantizes "
                                    "to int8 only (float16 quantization is not implemented)")
        if set(self.optimizations) - {Optimize.DEFAULT, Optimize.OPTIMIZE_FOR_SIZE,
                                      Optimize.OPTIMIZE_FOR_LATENCY}:
            raise NotInMinitinyLite(f"optimizations {self.optimizations}: minitiny implements "
                                    "Optimize.DEFAULT (full-integer int8) only")
        if not self.optimizations:
            edges = [_type_name(t, what) for t, what in (
                (self.inference_input_type, "inference_input_type"),
                (self.inference_output_type, "inference_output_type"))]
            if edges != ["float32", "float32"] or OpsSet.TFLITE_BUILTINS not in ops:
                raise NotInMinitinyLite(
                    f"a float conversion (no optimizations) has float32 edges and "
                    f"TFLITE_BUILTINS ops, got inference types {edges} and supported_ops "
                    f"{sorted(ops)}: for an int8 model set converter.optimizations = "
                    "[tf.lite.Optimize.DEFAULT] and a representative_dataset")
        elif self.representative_dataset is None:
            raise NotInMinitinyLite(
                "optimizations without a representative_dataset asks for dynamic-range "
                "quantization, which minitiny does not implement: add "
                "converter.representative_dataset (a function yielding [x] batches) for a "
                "full-integer int8 model, or leave optimizations empty for a float32 one")
        if self.allow_custom_ops:
            raise NotInMinitinyLite("allow_custom_ops=True: minitiny writes builtin ops only")

    def convert(self):
        """-> bytes of the .tflite file: int8 ops with edges as inference_*_type say, or
        without optimizations float32 ops throughout."""
        self._check()
        if not self.optimizations:
            try:
                graph = lower(self.model)
            except LoweringError as e:   # its message speaks of int8: say what was asked
                raise LoweringError(f"float conversion: {e} (the float32 .tflite has the same "
                                    f"TFLite ops as the int8 one, so the same layers are refused)") from None
            return to_tflite_float(graph)
        data = self.representative_dataset
        data = getattr(data, "input_gen", data)
        qmodel = quantize(self.model, representative_data=data,
                          activations="int16" if self._int16() else "int8")
        return to_tflite(qmodel, _type_name(self.inference_input_type, "inference_input_type"),
                         _type_name(self.inference_output_type, "inference_output_type"))


# ---- the interpreter -----------------------------------------------------------------------
_NUMPY_TYPE = {tfl.TensorType.INT8: np.int8, tfl.TensorType.UINT8: np.uint8,
               tfl.TensorType.INT16: np.int16, tfl.TensorType.FLOAT32: np.float32}


class Interpreter:
    """tf.lite.Interpreter over minitiny's int8 reference: every input and output of the
    file, in its order, with the shapes it declares (batch 1, as TFLite's interpreter);
    resize_tensor_input changes the batch size, as TFLite's does for a batch dimension.
    A float32 file (one input, one output) runs on the float engine (tflite_float.py)."""

    def __init__(self, model_path=None, model_content=None, experimental_delegates=None,
                 num_threads=None, **kwargs):
        if kwargs:
            raise NotInMinitinyLite(f"Interpreter({', '.join(sorted(kwargs))}=...) is not "
                                    "implemented in minitiny")
        if experimental_delegates:
            raise NotInMinitinyLite("experimental_delegates: minitiny's interpreter runs its "
                                    "own int8 reference kernels, it takes no delegates")
        if (model_path is None) == (model_content is None):
            raise ValueError("Interpreter needs exactly one of model_path= and model_content=")
        if model_path is not None:
            model_path = os.fspath(model_path)
            if not os.path.exists(model_path):
                raise ValueError(f"Could not open {model_path!r}: no such file")
        source = model_path if model_content is None else bytes(model_content)
        data = source if model_content is not None else open(model_path, "rb").read()
        tensors, ops, inputs, outputs, _ = read_flatbuffer(data, model_path or "<model_content>")
        # the file's edges, in its order
        self._inputs = [self._details(tensors[i]) for i in inputs]
        self._outputs = [self._details(tensors[i]) for i in outputs]
        self._values, self._allocated = {}, False
        if is_float_model(tensors, ops):                 # float32 throughout: the float engine
            self._float, self._qmodel, self._behind = from_tflite_float(source), None, {}
            return
        self._float, self._qmodel = None, from_tflite(source)   # checks the file thoroughly
        # the QModel's int8 tensors behind the edges
        self._behind = {d["index"]: self._qmodel.tensors[name] for d, name in
                        zip(self._inputs + self._outputs, self._qmodel.inputs + self._qmodel.outputs)}

    @staticmethod
    def _details(t):
        scale = np.asarray(t.scale if t.scale is not None else [], dtype=np.float32)
        zero = np.asarray(t.zero_point if t.zero_point is not None else [], dtype=np.int32)
        return {"name": t.name, "index": t.index,
                "shape": np.array(t.shape, dtype=np.int32),
                "shape_signature": np.array(t.signature or t.shape, dtype=np.int32),
                "dtype": _NUMPY_TYPE[t.type],
                "quantization": (float(scale[0]), int(zero[0])) if scale.size else (0.0, 0),
                "quantization_parameters": {"scales": scale, "zero_points": zero,
                                            "quantized_dimension": int(t.qdim)},
                "sparsity_parameters": {}}

    def allocate_tensors(self):
        """Fix the shapes: the outputs take the batch size the inputs were resized to."""
        batches = {int(d["shape"][0]) for d in self._inputs}
        if len(batches) > 1:
            raise ValueError("allocate_tensors: the inputs were resized to different batch sizes "
                             + ", ".join(f"{d['name']!r} {int(d['shape'][0])}" for d in self._inputs)
                             + "; minitiny runs one batch size for all of them")
        batch = batches.pop()
        for d in self._outputs:
            d["shape"] = np.array((batch,) + tuple(d["shape"][1:]), np.int32)
            if d["index"] in self._values and len(self._values[d["index"]]) != batch:
                del self._values[d["index"]]          # an output of the old batch size
        self._allocated = True

    def resize_tensor_input(self, input_index, tensor_size, strict=False):
        """Change an input's batch size (its first dimension), as TFLite does; call
        allocate_tensors() again before invoke(). Other dimensions are fixed in an int8
        model (its kernels were prepared for them), so changing them is refused."""
        d = self._edge(input_index, self._inputs)
        new = tuple(int(n) for n in np.asarray(tensor_size).reshape(-1))
        old = tuple(int(n) for n in d["shape"])
        if len(new) != len(old) or new[1:] != old[1:] or new[0] < 1:
            raise ValueError(f"resize_tensor_input: input {d['name']!r} has shape {list(old)}; "
                             f"minitiny's interpreter changes its batch size (the first "
                             f"dimension) only, got {list(new)}")
        if strict and new[0] != old[0] and d["shape_signature"][0] != -1:
            raise ValueError(f"resize_tensor_input(strict=True): dimension 0 of input "
                             f"{d['name']!r} is not dynamic in its shape signature "
                             f"{d['shape_signature'].tolist()}")
        d["shape"] = np.array(new, np.int32)
        if new != old:
            self._values.pop(d["index"], None)
        self._allocated = False

    def get_input_details(self):
        return [dict(d) for d in self._inputs]

    def get_output_details(self):
        return [dict(d) for d in self._outputs]

    def _edge(self, index, where):
        for d in where:
            if d["index"] == index:
                return d
        raise ValueError(f"tensor index {index} is not an input or output of this model "
                         f"(inputs {[d['index'] for d in self._inputs]}, outputs "
                         f"{[d['index'] for d in self._outputs]}); minitiny's interpreter "
                         "keeps only those")

    def set_tensor(self, tensor_index, value):
        d = self._edge(tensor_index, self._inputs)
        value = np.asarray(value)
        if value.dtype != d["dtype"]:
            raise ValueError(f"Cannot set tensor: got value of type {value.dtype} but expected "
                             f"type {np.dtype(d['dtype'])} for input {d['name']!r}")
        if value.shape != tuple(d["shape"]):
            raise ValueError(f"Cannot set tensor: dimension mismatch, got shape {value.shape} "
                             f"but expected {tuple(d['shape'])} for input {d['name']!r}"
                             + ("" if value.shape[1:] != tuple(d["shape"][1:]) else
                                " (resize_tensor_input, then allocate_tensors, changes the batch size)"))
        self._values[tensor_index] = value.copy()

    def invoke(self):
        if not self._allocated:
            raise RuntimeError("Invoke called before allocate_tensors()")
        missing = [d["name"] for d in self._inputs if d["index"] not in self._values]
        if missing:
            raise ValueError(f"input(s) {missing} have not been set: call set_tensor first")
        if self._float is not None:                  # one input, one output (tflite_float.py)
            y = self._float.run(self._values[self._inputs[0]["index"]])[self._float.output]
            out = self._outputs[0]
            self._values[out["index"]] = y.astype(np.float32).reshape(tuple(out["shape"]))
            return
        xs = [_to_int8(self._values[d["index"]], d, self._behind[d["index"]]) for d in self._inputs]
        ys = self._qmodel.predict_int8(xs if len(xs) > 1 else xs[0])
        for out, y in zip(self._outputs, ys if len(self._outputs) > 1 else [ys]):
            self._values[out["index"]] = _from_int8(y, out, self._behind[out["index"]]).reshape(
                tuple(out["shape"]))

    def get_tensor(self, tensor_index):
        self._edge(tensor_index, self._inputs + self._outputs)
        if tensor_index not in self._values:
            raise ValueError(f"tensor {tensor_index} holds no value yet: set the input and "
                             "invoke() first")
        return self._values[tensor_index].copy()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotInMinitinyLite(f"Interpreter.{name} is not implemented in minitiny; it has "
                                "allocate_tensors, resize_tensor_input, get_input_details, "
                                "get_output_details, set_tensor, invoke, get_tensor")


def _to_int8(value, edge, t):
    """An edge value -> the int8 input: float32 q = z + round(r / s) (TFLM's QUANTIZE);
    uint8 q = u - z_u + z (the same scale: TFLite's converter writes it so)."""
    if edge["dtype"] == np.float32:
        return t.quantize(value)
    if edge["dtype"] == np.uint8:
        return _shift(value, edge, t, -1)
    return value


def _from_int8(q, edge, t):
    if edge["dtype"] == np.float32:
        return t.dequantize(q)                          # r = s (q - z)
    if edge["dtype"] == np.uint8:
        return _shift(q, edge, t, +1)
    return q


def _shift(values, edge, t, sign):
    """uint8 <-> int8 at one scale: the values move by the difference of the zero points."""
    scale, zero = edge["quantization"]
    if not np.isclose(scale, float(t.scale), rtol=1e-6, atol=0):
        raise NotInMinitinyLite(f"the uint8 edge {edge['name']!r} has scale {scale}, the int8 "
                                f"tensor behind it {float(t.scale)}: minitiny runs uint8 edges "
                                "of the int8 scale only (as TFLite's converter writes them)")
    lo, hi, dtype = (-128, 127, np.int8) if sign < 0 else (0, 255, np.uint8)
    moved = values.astype(np.int32) + sign * (zero - int(t.zero_point))
    return np.clip(moved, lo, hi).astype(dtype)


__all__ = ["TFLiteConverter", "Interpreter", "Optimize", "OpsSet", "TargetSpec",
           "RepresentativeDataset", "NotInMinitinyLite"]
