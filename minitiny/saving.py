"""Save and load models: ONE `.npz` file, no pickle, written atomically.

The extension says the format, and nothing else is written under it:
    .npz          minitiny's own format (below)
    .keras        Keras 3's format, which Keras loads (keras_format.py; needs h5py)
    .h5, .hdf5    Keras' legacy HDF5 format, Keras 2's layout (keras_format.py; needs h5py)
    anything else refused, a TensorFlow SavedModel folder included

File layout (a NumPy .npz, i.e. a zip of .npy arrays):

    config        uint8 array holding UTF-8 JSON:
                  {"format": "minitiny-model", "format_version": 1,
                   "model": Model.get_config()   (layers by class name, their arguments,
                                                  which inputs each reads),
                   "weights": [{"layer", "name", "key", "shape"}, ...],
                   "compile": {"optimizer", "loss", "metrics"} or null}
    w0000, w0001  the weight arrays, in get_weights() order ("key" above)

Loading reads with `allow_pickle=False` (a model file can never run code) and looks class
names up in minitiny's registries (layers.LAYERS, losses, optimizers), never importing
anything named by the file. Every problem (not a zip, truncated, no config, another
format or version, a weight of the wrong shape) raises ModelFileError naming the file.

The optimizer's state (momentum, Adam's moments, its step count) is NOT saved: a loaded
model is compiled with a fresh optimizer of the same kind and settings, so training
resumes with a few steps of warm-up, which is usually harmless.

Saving writes a temporary file in the target's directory and renames it over the target
(os.replace is atomic), so a crash or Ctrl-C mid-save never leaves half a model file.
"""
import json
import os
import warnings
import zipfile

import numpy as np

from minitiny import keras_format
from minitiny import losses as mt_losses
from minitiny import metrics as mt_metrics
from minitiny import optimizers as mt_optimizers
from minitiny.files import atomic_write
from minitiny.layers import placeholder_weights

FORMAT = "minitiny-model"
WEIGHTS_FORMAT = "minitiny-weights"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be loaded; the message names the file and the problem."""


# Model classes by the class_name their get_config() writes. models.py registers Model and
# Sequential as it is imported (a serialization registry, as Keras keeps one), so a file
# only ever names a class from this table, and this module never imports models.py, which
# imports it for Model.save.
MODEL_CLASSES = {}


def register_model_class(cls):
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_from_config(config):
    """Rebuild an (untrained) model from Model.get_config()."""
    cls = MODEL_CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"unknown model class {config['class_name']!r}")
    return cls.from_config(config)


def _compile_config(model):
    if model.loss is None or model.optimizer is None:
        return None
    try:
        optimizer = mt_optimizers.serialize(model.optimizer)
    except ValueError as e:         # e.g. a custom learning-rate schedule
        warnings.warn(f"saving without the optimizer settings: {e}", stacklevel=3)
        optimizer = None
    return {"optimizer": optimizer, "loss": mt_losses.serialize(model.loss),
            "metrics": [m if isinstance(m, str) else mt_metrics.serialize(m)
                        for m in model.metric_names]}


FORMATS = ("'.npz' (minitiny's own format), '.keras' (Keras 3's, which Keras loads) or '.h5' "
           "(Keras' legacy HDF5)")


def check_model_path(path):
    """The format a model path asks for: 'npz', 'keras' or 'h5'; anything else refused by
    name."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in (".npz", ".keras"):
        return ext[1:]
    if ext in (".h5", ".hdf5"):
        return "h5"
    what = f"extension {ext!r}" if ext else "no extension (a TensorFlow SavedModel folder?)"
    raise ValueError(f"cannot save to {os.fspath(path)!r}: {what}; minitiny saves a model as "
                     f"{FORMATS}")


def save_model(model, path):
    """Write `model` to `path` atomically, in the format its extension names (.npz, .h5 or
    .keras, see the module docstring); returns the path."""
    path = os.fspath(path)
    fmt = check_model_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save model to {path!r}: directory {directory!r} "
                                "does not exist")
    if fmt == "keras":
        return keras_format.save_keras(model, path)
    if fmt == "h5":
        return keras_format.save_h5(model, path)
    arrays, index = _weight_arrays(model)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "model": model.get_config(), "weights": index,
              "compile": _compile_config(model)}
    arrays["config"] = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)

    # atomic: the old file or the new, never half (a temp file, fsync, os.replace)
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def _weight_arrays(model):
    """{'w0000': array, ...} and their index [{layer, name, key, shape}], in layer order."""
    arrays, index = {}, []
    for layer in model.layers:
        for name, t in layer.weights.items():
            key = f"w{len(index):04d}"
            arrays[key] = t.data
            index.append({"layer": layer.name, "name": name, "key": key,
                          "shape": list(t.data.shape)})
    return arrays, index


# ---- weights only (model.save_weights / load_weights) ---------------------------------------
WEIGHTS_FORMATS = "'NAME.weights.npz' (minitiny) or 'NAME.weights.h5' (Keras 3, needs h5py)"


def _weights_format(path, verb):
    name = os.fspath(path).lower()
    if name.endswith(".weights.h5"):
        return "h5"
    if name.endswith(".npz"):
        return "npz"
    raise ValueError(f"cannot {verb} weights {os.fspath(path)!r}: minitiny {verb}s weights as "
                     f"{WEIGHTS_FORMATS} (Keras 3 also insists on '.weights.h5')")


def save_weights(model, path):
    """Every weight, no architecture, atomically: .weights.npz or Keras' .weights.h5."""
    if _weights_format(path, "save") == "h5":
        return keras_format.save_weights(model, path)
    arrays, index = _weight_arrays(model)
    config = {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "weights": index}
    arrays["config"] = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays))
    return path


def load_weights(model, path):
    """Weights saved by save_weights (or a whole .npz model file) into `model`, layer by
    layer in order; every count and shape checked before any weight changes."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    if _weights_format(path, "load") == "h5":
        try:
            return keras_format.load_weights(model, path)
        except keras_format.KerasFileError as e:
            raise ModelFileError(str(e)) from None
    arrays = _read(path)
    try:
        config = json.loads(arrays["config"].tobytes().decode("utf-8"))
        if config.get("format") not in (FORMAT, WEIGHTS_FORMAT):
            raise ValueError(f"format {config.get('format')!r}")
        weights = [arrays[w["key"]] for w in config["weights"]]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelFileError(f"{path!r} is not a minitiny weights file ({e})") from None
    try:
        model.set_weights(weights)
    except ValueError as e:
        raise ModelFileError(f"{path!r}: {e}") from None


def _read(path):
    """Every array of the .npz, read eagerly so damage shows up here."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise ModelFileError(f"{path!r} is a single .npy array, not a minitiny model "
                             "(.npz archive)")
    if not magic.startswith(b"PK"):
        raise ModelFileError(f"{path!r} is not a minitiny model file: not a .npz (zip) "
                             f"archive, it starts with {magic!r}" if magic else
                             f"{path!r} is empty, not a minitiny model file")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise ModelFileError(f"{path!r} holds pickled (object) arrays, which minitiny "
                                 "never loads (they could run code); not a minitiny model") \
                from None
        raise ModelFileError(f"{path!r} is damaged and cannot be read: {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise ModelFileError(f"{path!r} is truncated or corrupted (not a readable .npz "
                             f"archive): {e}") from None
    except Exception as e:                     # zlib / struct errors from a damaged archive
        raise ModelFileError(f"{path!r} is damaged and cannot be read: "
                             f"{type(e).__name__}: {e}") from None


_MISSING = object()


def _check_structure(config):
    """The config's skeleton, before anything is built from it: the right JSON types in
    the right places (a forged file gets a message, not an AttributeError from deep inside)."""
    def need(value, kind, what):
        if value is _MISSING:
            raise KeyError(what.split()[-1].strip("'"))      # -> "missing entry 'layers'"
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{what} must be {getattr(kind, '__name__', 'a list')}, "
                             f"got {type(value).__name__} {str(value)[:40]}")
        return value

    model = need(config.get("model", _MISSING), dict, "'model'")
    for key, kind in (("class_name", str), ("name", str), ("input_name", str),
                      ("input_shape", list), ("layers", list)):
        need(model.get(key, _MISSING), kind, f"model {key!r}")
    if not model["layers"]:
        raise ValueError("the model has no layers")
    for i, lc in enumerate(model["layers"]):
        need(lc, dict, f"layer {i}")
        need(lc.get("class_name", _MISSING), str, f"layer {i} 'class_name'")
        need(lc.get("config", {}), dict, f"layer {i} 'config'")
        for n in need(lc.get("inputs", []), list, f"layer {i} 'inputs'"):
            need(n, str, f"an input name of layer {i}")
    for i, w in enumerate(need(config.get("weights", _MISSING), list, "'weights'")):
        need(w, dict, f"weight entry {i}")
        for key in ("layer", "name", "key"):
            need(w.get(key, _MISSING), str, f"weight entry {i} {key!r}")


def _serialized(obj, what, optional=False):
    """{'class_name': str, 'config': {...}} as optimizers/losses.serialize write it."""
    if obj is None and optional:
        return
    if not (isinstance(obj, dict) and isinstance(obj.get("class_name"), str)
            and isinstance(obj.get("config", {}), dict)):
        raise ValueError(f"{what} must be {{'class_name': ..., 'config': {{...}}}}, got "
                         f"{str(obj)[:60]}")
    rate = obj.get("config", {}).get("learning_rate")
    if isinstance(rate, dict):
        _serialized(rate, f"{what} learning_rate")


def load_model(path, compile=True):
    """Read a model written by `model.save(path)`; compiled again if it was compiled."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"{path!r} is a folder (a TensorFlow SavedModel?); minitiny loads "
                             "model files: .npz, .keras, .h5")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".keras", ".h5", ".hdf5"):
        load = keras_format.load_keras if ext == ".keras" else keras_format.load_h5

        def build(config):
            with placeholder_weights():             # every weight comes from the file
                return model_from_config(config)
        try:
            return load(path, build)
        except keras_format.KerasFileError as e:
            raise ModelFileError(str(e)) from None
    arrays = _read(path)
    if "config" not in arrays:
        raise ModelFileError(f"{path!r} has no 'config' entry: it is a .npz archive but not "
                             "a minitiny model")
    raw = arrays["config"]
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"config is {raw.dtype} {raw.shape}, expected 1-D uint8")
        config = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(config, dict):
            raise ValueError("config is not a JSON object")
    except ValueError as e:
        raise ModelFileError(f"{path!r}: the config entry is not valid JSON text: {e}") from None
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not a minitiny model file (format "
                             f"{config.get('format')!r}, expected {FORMAT!r})")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path!r} has format version {version!r}; this minitiny reads "
                             f"version {FORMAT_VERSION}"
                             + (" (saved by a newer minitiny?)" if isinstance(version, int)
                                and version > FORMAT_VERSION else ""))
    try:
        _check_structure(config)
        with placeholder_weights():                 # every weight comes from the file
            model = model_from_config(config["model"])
        weights = []
        by_layer = {layer.name: layer for layer in model.layers}
        for layer in model.layers:
            for name, t in layer.weights.items():
                entry = next((w for w in config["weights"]
                              if w["layer"] == layer.name and w["name"] == name), None)
                if entry is None or entry["key"] not in arrays:
                    raise ValueError(f"weight {name!r} of layer {layer.name!r} is missing")
                a = arrays[entry["key"]]
                if a.shape != t.data.shape:
                    raise ValueError(f"layer {layer.name!r} weight {name!r} has shape "
                                     f"{a.shape} in the file, the layer needs {t.data.shape}")
                if a.dtype.kind != "f":
                    raise ValueError(f"layer {layer.name!r} weight {name!r} has dtype "
                                     f"{a.dtype}, expected floats")
                weights.append(a)
        unknown = {w["layer"] for w in config["weights"]} - set(by_layer)
        if unknown:
            raise ValueError(f"weights for unknown layers {sorted(unknown)}")
        model.set_weights(weights)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
        raise ModelFileError(f"{path!r}: cannot rebuild the model: {what}") from None
    except (MemoryError, OverflowError) as e:
        raise ModelFileError(f"{path!r}: the file describes a model too large to build "
                             f"({type(e).__name__}: {e})") from None

    cc = config.get("compile")
    if cc is not None and not isinstance(cc, dict):
        raise ModelFileError(f"{path!r}: 'compile' must be a JSON object or null, got "
                             f"{type(cc).__name__}")
    if compile and cc:
        try:
            for key in ("optimizer", "loss"):
                _serialized(cc.get(key), key, optional=key == "optimizer")
            optimizer = mt_optimizers.deserialize(cc["optimizer"]) if cc.get("optimizer") \
                else "sgd"
            metrics = cc.get("metrics") or None
            if metrics is not None and not (isinstance(metrics, list)
                                            and all(isinstance(m, (str, dict)) for m in metrics)):
                raise ValueError(f"metrics must be a list of names, got {str(metrics)[:40]}")
            metrics = metrics and [m if isinstance(m, str) else mt_metrics.deserialize(m)
                                   for m in metrics]
            model.compile(optimizer=optimizer, loss=mt_losses.deserialize(cc["loss"]),
                          metrics=metrics)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelFileError(f"{path!r}: cannot restore the compile settings: {e}") from None
    return model


def model_from_json(text):
    """keras.models.model_from_json: the model `to_json()` described, freshly initialised."""
    try:
        config = json.loads(text)
        _check_structure({"model": config, "weights": []})
        return model_from_config(config)
    except (KeyError, TypeError, ValueError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
        raise ValueError(f"model_from_json: cannot rebuild the model: {what}") from None
