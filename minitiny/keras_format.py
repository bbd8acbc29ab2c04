"""Keras' own model files: `.keras` and legacy `.h5`, written and read (h5py does HDF5).

A `.keras` file (Keras 3) is a zip of three entries:

    metadata.json      {"keras_version": ..., "date_saved": ...}
    config.json        {"module": "keras", "class_name": "Sequential" | "Functional",
                        "config": {"name", "layers": [{"module": "keras.layers",
                                   "class_name": "Dense", "config": {units, activation, ...},
                                   "build_config": {"input_shape": [null, ...]},
                                   ("name", "inbound_nodes": functional models)}, ...],
                                   ("input_layers", "output_layers": functional models)}}
    model.weights.h5   layers/<key>/vars/0, 1, ...   each layer's weights in Keras' order;
                       <key> is the layer's class in snake_case, numbered in layer order
                       (dense, dense_1, ...), NOT the layer's name

A legacy `.h5` file (Keras 2, and Keras 3's model.save('m.h5')) holds the model config as
the root attribute `model_config`, and each layer's weights under
model_weights/<name>/<name>/<weight>, listed in order by the group's `weight_names`
attribute; model_weights' `layer_names` lists the layers (a functional model's input
layer too). minitiny writes Keras 2's form of it (batch_input_shape, inbound nodes as
[[[name, 0, 0, {}]]], weights 'dense/kernel:0'), which both Keras 2 and Keras 3 load.

minitiny's layers take Keras' arguments under Keras' names, so a layer's config passes
through as it is. Reading, a Keras argument minitiny lacks is dropped only when it holds
Keras' default (data_format='channels_last', kernel_regularizer=None, ...); any other value,
and any layer class minitiny does not have, is refused by name (all of them at once).
A model read from a Keras file comes back uncompiled (Keras' compile_config is not read):
call compile before fit. minitiny writes no compile_config either.
"""
import inspect
import io
import json
import os
import time
import zipfile

import numpy as np

from minitiny import initializers
from minitiny.files import atomic_write
from minitiny.layers import LAYERS, _snake_case

KERAS_VERSION = "3.0.0"      # the format version written (Keras 3's zip layout)
KERAS2_VERSION = "2.15.0"    # the version a legacy .h5 file names (Keras 2's layout)

# Keras arguments minitiny's layers lack, and the values that mean "not used" (dropped)
KERAS_DEFAULTS = {
    "data_format": ("channels_last", None), "dilation_rate": ([1, 1], 1, (1, 1)),
    "groups": (1,), "activity_regularizer": (None,), "kernel_constraint": (None,),
    "bias_constraint": (None,), "depthwise_constraint": (None,), "kernel_regularizer": (None,),
    "bias_regularizer": (None,), "depthwise_regularizer": (None,), "axis": (-1, [-1], [3]),
    "center": (True,), "beta_initializer": ("zeros",), "gamma_initializer": ("ones",),
    "moving_mean_initializer": ("zeros",), "moving_variance_initializer": ("ones",),
    "beta_regularizer": (None,), "gamma_regularizer": (None,), "beta_constraint": (None,),
    "gamma_constraint": (None,), "synchronized": (False,), "renorm": (False,),
    "renorm_clipping": (None,), "renorm_momentum": (0.99,), "noise_shape": (None,),
    "seed": (None,), "lora_rank": (None,), "lora_alpha": (None,), "keepdims": (False,),
    "negative_slope": (0.0,), "threshold": (0.0,), "quantization_config": (None,),
    "sparse": (False,), "ragged": (False,), "optional": (False,), "scale": (True,),
    "pad_to_aspect_ratio": (False,), "crop_to_aspect_ratio": (False,),
}


class KerasFileError(ValueError):
    """A Keras file minitiny cannot read: names the file and every problem."""


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras' .keras and .h5 files are HDF5 inside: reading and writing "
                          "them needs h5py, minitiny's optional 'keras' extra: pip install "
                          "'minitiny[keras]' (or save as .npz, minitiny's own format)") from None
    return h5py


# ---- writing .keras ----------------------------------------------------------------------------
def _tensor(name, shape):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None] + list(shape), "dtype": "float32",
                       "keras_history": [name, 0, 0]}}


def _layer_entry(layer, input_shape, inputs=None):
    entry = {"module": "keras.layers", "class_name": type(layer).__name__,
             "config": layer.get_config(), "registered_name": None}
    if input_shape is not None:
        shape = [[None] + list(s) for s in input_shape] if layer.n_inputs != 1 else \
            [None] + list(input_shape)
        entry["build_config"] = {"input_shape": shape}
    if inputs is not None:                                     # functional: who feeds it
        args = [_tensor(n, s) for n, s in inputs]
        entry["name"] = layer.name
        entry["inbound_nodes"] = [{"args": [args if layer.n_inputs != 1 else args[0]],
                                   "kwargs": {}}]
    return entry


def _sequential(model):
    return type(model).__name__ == "Sequential"


def keras_config(model):
    """model -> the dict Keras writes as config.json."""
    inp = model._input_layer
    input_entry = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                   "config": {"batch_shape": [None] + list(model.input_shape),
                              "dtype": inp.dtype, "sparse": False, "name": inp.name}}
    shapes = {inp.name: model.input_shape}
    layers = []
    for node in model.graph:
        ins = [(n, shapes[n]) for n in node.inputs]
        in_shape = [s for _, s in ins] if node.layer.n_inputs != 1 else ins[0][1]
        functional = not _sequential(model)
        layers.append(_layer_entry(node.layer, in_shape, ins if functional else None))
        shapes[node.name] = node.layer.output_shape
    if _sequential(model):
        config = {"name": model.name, "trainable": True, "layers": [input_entry] + layers}
        kind = "Sequential"
    else:
        input_entry.update(name=inp.name, inbound_nodes=[])
        config = {"name": model.name, "trainable": True, "layers": [input_entry] + layers,
                  "input_layers": [inp.name, 0, 0],
                  "output_layers": [model.graph[-1].name, 0, 0]}
        kind = "Functional"
    # Keras serializes its functional class by its own module path, Sequential by 'keras'
    module = "keras" if kind == "Sequential" else "keras.src.models.functional"
    return {"module": module, "class_name": kind, "config": config,
            "registered_name": None if kind == "Sequential" else kind,
            "build_config": {"input_shape": [None] + list(model.input_shape)}}


def _weight_keys(model):
    """Each layer (Keras' model.layers order) -> its model.weights.h5 group name."""
    layers = list(model.layers)
    if not _sequential(model):
        layers = [model._input_layer] + layers
    counts, keys = {}, []
    for layer in layers:
        base = _snake_case(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        keys.append((layer, base if n == 0 else f"{base}_{n}"))
    return keys


def _weights_h5(model):
    """The bytes of a Keras 3 weights file (model.weights.h5, or save_weights' .weights.h5)."""
    h5py = _h5py()
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        f.create_group("vars")
        for layer, key in _weight_keys(model):
            group = f.create_group(f"layers/{key}/vars")
            for i, a in enumerate(layer.get_weights()):
                group.create_dataset(str(i), data=a)
    return weights.getvalue()


def save_keras(model, path):
    """Write `model` as a Keras 3 `.keras` file (atomically); Keras' load_model reads it."""
    weights = _weights_h5(model)
    metadata = {"keras_version": KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}

    def write(f):
        with zipfile.ZipFile(f, "w") as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(keras_config(model)))
            z.writestr("model.weights.h5", weights)
    atomic_write(os.fspath(path), write)
    return path


def _keras2_entry(entry, functional):
    """A layer entry of keras_config -> Keras 2's form (tf.keras), which Keras 3 reads too:
    no module / registered_name / build_config, the input's batch_input_shape, inbound
    nodes as [[[name, 0, 0, {}], ...]]."""
    config = dict(entry["config"])
    if entry["class_name"] == "InputLayer":
        config["batch_input_shape"] = config.pop("batch_shape")
    out = {"class_name": entry["class_name"], "config": config}
    if functional:
        nodes = entry.get("inbound_nodes") or []
        out["name"] = entry.get("name", config.get("name"))
        out["inbound_nodes"] = [[[n, 0, 0, {}] for n in _sources(nodes[0])]] if nodes else []
    return out


def save_h5(model, path):
    """Write `model` as a legacy `.h5` model file, in Keras 2's layout and config form
    (atomically); Keras 2 (tf.keras) and Keras 3 load it."""
    h5py = _h5py()
    cfg, functional = keras_config(model), not _sequential(model)
    config = dict(cfg["config"], layers=[_keras2_entry(e, functional)
                                         for e in cfg["config"]["layers"]])
    if functional:
        config["input_layers"] = [config["input_layers"]]
        config["output_layers"] = [config["output_layers"]]
    legacy = {"class_name": "Functional" if functional else "Sequential", "config": config,
              "keras_version": KERAS2_VERSION, "backend": "tensorflow"}
    layers = [model._input_layer] + model.layers if functional else list(model.layers)
    data = io.BytesIO()
    with h5py.File(data, "w") as f:
        f.attrs["backend"], f.attrs["keras_version"] = "tensorflow", KERAS2_VERSION
        f.attrs["model_config"] = json.dumps(legacy)
        group = f.create_group("model_weights")
        group.attrs["backend"], group.attrs["keras_version"] = "tensorflow", KERAS2_VERSION
        group.attrs["layer_names"] = [layer.name.encode("utf-8") for layer in layers]
        for layer in layers:
            g = group.create_group(layer.name)
            names = [f"{layer.name}/{n}:0" for n in layer.weights]     # Keras 2's names
            g.attrs["weight_names"] = [n.encode("utf-8") for n in names] if names else \
                np.zeros(0)
            for name, t in zip(names, layer.weights.values()):
                g.create_dataset(name, data=t.data)
    atomic_write(os.fspath(path), data.getvalue())
    return path


def save_weights(model, path):
    """model.save_weights('x.weights.h5'): Keras 3's weights file, which Keras reads too."""
    weights = _weights_h5(model)
    atomic_write(os.fspath(path), lambda f: f.write(weights))
    return path


def load_weights(model, path):
    """model.load_weights('x.weights.h5') from Keras 3 or minitiny: layers matched in order,
    every shape checked."""
    source, f = _open_h5(path)
    with f:
        _set_weights(model, _vars_of(f), source)


def _open_h5(path):
    """(the path as text, the open HDF5 file), or KerasFileError naming the file."""
    h5py = _h5py()
    source = os.fspath(path)
    try:
        return source, h5py.File(source, "r")
    except OSError as e:
        raise KerasFileError(f"{source}: not a readable HDF5 file: {e}") from None


# ---- reading .keras and .h5 --------------------------------------------------------------------
def _plain(value):
    """Keras' serialized objects -> the plain values minitiny's layers take: a DTypePolicy
    -> 'float32', an initializer {'class_name': 'GlorotUniform'} -> 'glorot_uniform'."""
    if isinstance(value, dict) and "class_name" in value:
        if value["class_name"] in ("DTypePolicy", "Policy"):
            return value.get("config", {}).get("name", "float32")
        if value.get("module", "keras.initializers") == "keras.initializers" and \
                not any(v is not None for v in value.get("config", {}).values()
                        if not isinstance(v, (str,))):
            return _snake_case(value["class_name"])
    return value


def _layer_kwargs(entry, problems):
    """A Keras layer entry -> (minitiny class, its arguments); problems collected."""
    kind = entry.get("class_name")
    cls = LAYERS.get(kind)
    config = dict(entry.get("config", {}))
    name = config.get("name", "?")
    if cls is None:
        problems.append(f"layer {name!r}: class {kind} (minitiny has no such layer)")
        return None, None
    takes = set()
    for c in cls.__mro__:
        if "__init__" in c.__dict__:
            takes |= set(inspect.signature(c.__dict__["__init__"]).parameters)
    kwargs = {}
    for key, value in config.items():
        value = _plain(value)
        if key in takes and key not in ("unsupported", "kw", "kwargs"):
            kwargs[key] = value
        elif key in KERAS_DEFAULTS and value in KERAS_DEFAULTS[key]:
            continue                                       # Keras' default: nothing to do
        elif key == "batch_input_shape":                   # Keras 2's shape on a first layer
            kwargs["input_shape"] = value[1:]
        else:
            problems.append(f"layer {name!r} ({kind}): {key}={value!r} is not implemented "
                            "in minitiny")
    for key, value in kwargs.items():
        if isinstance(value, dict) and not (key.endswith("_initializer") and
                                            value.get("class_name") in initializers.CLASSES):
            problems.append(f"layer {name!r} ({kind}): {key}={value!r} is not implemented "
                            "in minitiny")
    return cls, kwargs


def _input_shape(entry):
    c = entry.get("config", {})
    shape = c.get("batch_shape") or c.get("batch_input_shape")
    return None if shape is None else [int(d) for d in shape[1:]]


def _sources(node):
    """A functional entry's inbound node -> the names of the layers feeding it."""
    if isinstance(node, dict):                                   # Keras 3
        def names(a):
            if isinstance(a, dict):
                return [a["config"]["keras_history"][0]]
            if isinstance(a, (list, tuple)):
                return [n for item in a for n in names(item)]
            return []
        return names(node.get("args", []))
    return [item[0] for item in node]                             # Keras 2: [[name, 0, 0, {}]]


def minitiny_config(cfg, source):
    """config.json (or the .h5 model_config) -> minitiny's own model config (the one
    Model.get_config() writes and saving.model_from_config builds); every layer class and
    argument minitiny lacks is named in one KerasFileError."""
    kind, config = cfg.get("class_name"), cfg.get("config", {})
    entries = config.get("layers") if isinstance(config, dict) else config
    if kind not in ("Sequential", "Functional", "Model") or not isinstance(entries, list):
        raise KerasFileError(f"{source}: a Keras {kind!r} model; minitiny reads Sequential "
                             "and functional models")
    problems, layers, inputs = [], [], []
    for entry in entries:
        if entry.get("class_name") == "InputLayer":
            inputs.append((entry["config"].get("name", "input_layer"), _input_shape(entry)))
            continue
        cls, kwargs = _layer_kwargs(entry, problems)
        if cls is None:
            continue
        if not inputs and "input_shape" in kwargs:           # Keras 2: shape on layer one
            inputs.append(("input_layer", list(kwargs.pop("input_shape"))))
        if kind == "Sequential":
            feeds = [layers[-1]["config"]["name"] if layers else inputs[0][0]]
        else:
            feeds = _sources(entry["inbound_nodes"][0])
        layers.append({"class_name": cls.__name__, "config": kwargs, "inputs": feeds})
    if len(inputs) != 1 or inputs[0][1] is None:
        problems.append(f"{len(inputs)} model inputs with shapes {[s for _, s in inputs]}; "
                        "minitiny models have one input of a known shape")
    if problems:
        raise KerasFileError(f"{source}: minitiny cannot build this Keras model: "
                             + "; ".join(problems))
    return {"class_name": "Sequential" if kind == "Sequential" else "Model",
            "name": config.get("name", "model"), "input_name": inputs[0][0],
            "input_shape": inputs[0][1], "layers": layers}


def _set_weights(model, arrays_of, source):
    """arrays_of(layer, key) -> that layer's arrays; every shape checked, names in errors."""
    for layer, key in _weight_keys(model):
        arrays = arrays_of(layer, key)
        if len(arrays) != len(layer.weights):
            raise KerasFileError(f"{source}: layer {layer.name!r} has {len(arrays)} weight "
                                 f"arrays in the file, minitiny's {type(layer).__name__} has "
                                 f"{len(layer.weights)} ({', '.join(layer.weights)})")
        if arrays:
            try:
                layer.set_weights(arrays)
            except ValueError as e:
                raise KerasFileError(f"{source}: {e}") from None


def _built(build, config, source):
    try:
        return build(config)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise KerasFileError(f"{source}: cannot rebuild the Keras model in minitiny: "
                             f"{type(e).__name__}: {e}") from None


def load_keras(path, build):
    """A `.keras` file written by Keras 3 (or by minitiny) -> a minitiny model;
    `build(config)` makes the model from minitiny's config (saving.py passes it)."""
    h5py = _h5py()
    source = os.fspath(path)
    try:
        with zipfile.ZipFile(source) as z:
            cfg = json.loads(z.read("config.json"))
            weights = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise KerasFileError(f"{source}: not a readable .keras file (a zip with config.json "
                             f"and model.weights.h5): {e}") from None
    model = _built(build, minitiny_config(cfg, source), source)
    with h5py.File(io.BytesIO(weights), "r") as f:
        _set_weights(model, _vars_of(f), source)
    return model


def _vars_of(f):
    """(layer, key) -> the arrays under layers/<key>/vars of an open Keras 3 weights file."""
    def arrays_of(layer, key):
        group = f.get(f"layers/{key}/vars")
        if group is None:
            return []
        return [np.asarray(group[str(i)]) for i in range(len(group))]
    return arrays_of


def load_h5(path, build):
    """A legacy `.h5` model file (Keras 2, or Keras 3's model.save('m.h5')) -> a model."""
    source, f = _open_h5(path)
    with f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise KerasFileError(f"{source}: an HDF5 file without 'model_config': weights "
                                 "only (save_weights), not a whole model")
        cfg = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        model = _built(build, minitiny_config(cfg, source), source)
        weights = f["model_weights"] if "model_weights" in f else f

        def arrays_of(layer, key):
            group = weights.get(layer.name)
            if group is None:
                return []
            names = [n.decode("utf-8") if isinstance(n, bytes) else n
                     for n in group.attrs.get("weight_names", [])]
            return [np.asarray(group[n]) for n in names]
        _set_weights(model, arrays_of, source)
    return model
