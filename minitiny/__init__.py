"""minitiny: TinyML from data to a Cortex-M, in code small enough to read.

    import minitiny as mt
    model = mt.Sequential([mt.layers.Dense(units=1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.fit(xs, ys, epochs=500, verbose=0)

The training engine sits at the package root (tensor, ops, layers, losses, optimizers,
metrics, callbacks, models, saving, data); the product around it lives in subpackages:
quant/ (int8), datasets/, deploy/ (boards, power, verify and run), reporting/ (evaluation,
model card, plots, reports), cli/ (the `minitiny` command and its demo).
"""
__version__ = "0.1.0"

# ---- the float training engine (always available: NumPy only) ---------------------------
from minitiny import random
from minitiny.tensor import Tensor, no_grad
from minitiny import ops, layers, losses, optimizers, regularizers, metrics, callbacks, data
from minitiny.layers import Input
from minitiny import preprocessing
# The preprocessing and augmentation layers live in their own file (they import Layer from
# layers.py); Keras users look for them among the layers, so they are listed there too.
for _name in preprocessing.LAYERS:
    setattr(layers, _name, getattr(preprocessing, _name))
from minitiny.models import Model, Sequential
from minitiny.saving import load_model
from numpy import float32, int8, int16, int32, uint8     # dtype names a TFLite program uses

__all__ = ["Tensor", "no_grad", "Input", "Model", "Sequential", "load_model", "random", "ops",
           "layers", "losses", "optimizers", "regularizers", "metrics", "callbacks", "data",
           "preprocessing",
           "float32", "int8", "int16", "int32", "uint8"]

# ---- the rest of the workflow, imported on first use --------------------------------------
# Other parts of minitiny register their entry points HERE: public name -> (module,
# attribute or None for the module itself). They load lazily (PEP 562), so a missing
# optional dependency (jinja2, cffi, flatbuffers, ...) or a part not installed never breaks
# `import minitiny`; the error appears when that name is used, saying what is missing.
_LAZY = {
    "keras": ("minitiny.keras", None),          # tf.keras's names (import minitiny as tf)
    "nn": ("minitiny.nn", None),                # tf.nn.relu, ... as activations
    "QModel": ("minitiny.quant.graph", "QModel"),
    "quantize": ("minitiny.quant.quantizer", "quantize"),
    "quantize_aware": ("minitiny.quant.qat", "quantize_aware"),
    "from_tflite": ("minitiny.quant.tflite_read", "from_tflite"),
    "save_tflite": ("minitiny.quant.tflite_io", "save_tflite"),
    "lite": ("minitiny.quant.lite", None),
    "quantization_report": ("minitiny.quant.report", "quantization_report"),
    "codegen": ("minitiny.codegen", None),
    "firmware": ("minitiny.firmware", None),
    "datasets": ("minitiny.datasets", None),
    "boards": ("minitiny.deploy.boards", None),
    "power": ("minitiny.deploy.power", None),
    "evaluation": ("minitiny.reporting.evaluation", None),
    "evaluate_report": ("minitiny.reporting.evaluation", "evaluate_report"),
    "model_card": ("minitiny.reporting.modelcard", "model_card"),
    "write_model_card": ("minitiny.reporting.modelcard", "write_model_card"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'minitiny' has no attribute {name!r}")
    import importlib
    module, attr = _LAZY[name]
    try:
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
    except (ImportError, AttributeError) as e:
        raise AttributeError(f"minitiny.{name} is unavailable: importing {module} failed "
                             f"({type(e).__name__}: {e})") from e
    globals()[name] = value              # cache: __getattr__ runs once per name
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


# ---- module paths that moved (one release of grace) --------------------------------------
# `import minitiny.boards` and `from minitiny.evaluation import X` still work, with a
# DeprecationWarning naming the new path; they go in minitiny 0.2. One finder serves every
# old path: it hands out the module at its new home, so both names are the same object.
_MOVED = {
    "minitiny.boards": "minitiny.deploy.boards",
    "minitiny.power": "minitiny.deploy.power",
    "minitiny.evaluation": "minitiny.reporting.evaluation",
    "minitiny.modelcard": "minitiny.reporting.modelcard",
    "minitiny.plots": "minitiny.reporting.plots",
    "minitiny.demo": "minitiny.cli.demo",
}


class _MovedModules:
    """A meta path finder and loader (PEP 451) for the old paths in _MOVED."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in _MOVED:
            return None
        import importlib.util
        return importlib.util.spec_from_loader(name, cls)

    @staticmethod
    def create_module(spec):
        import importlib
        import warnings
        new = _MOVED[spec.name]
        # stacklevel 2 skips importlib's own frames: the warning names the user's import line
        warnings.warn(f"{spec.name} moved to {new}; import it from there (the old path goes "
                      f"in minitiny 0.2)", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # importlib sets module.__spec__ = spec next
        return module

    @staticmethod
    def exec_module(module):
        module.__spec__ = module.__spec__.loader_state   # already run under its new name


import sys as _sys                       # noqa: E402
if not any(f is _MovedModules for f in _sys.meta_path):
    _sys.meta_path.append(_MovedModules)
