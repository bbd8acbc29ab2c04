"""minitiny.keras: tf.keras's names for everything minitiny implements.

    import minitiny as tf                      from minitiny import keras
    model = tf.keras.Sequential([...])         model = keras.Sequential([...])

Every name here IS minitiny's own object (the namespace re-exports the engine, it holds no
second implementation): keras.layers.Dense is minitiny.layers.Dense. A tf.keras name
minitiny does not implement raises NotInMinitiny naming it and what minitiny has instead
(see _names.py); nothing Keras would use is silently ignored.
"""
from minitiny import __version__  # noqa: F401
from minitiny.keras import (activations, backend, callbacks, datasets,  # noqa: F401
                            initializers, layers, losses, metrics, models, optimizers,
                            preprocessing, regularizers, utils)
from minitiny.keras._names import NotInMinitiny, refuse
from minitiny.layers import Input
from minitiny.models import Model, Sequential

NOT_IMPLEMENTED = {"mixed_precision": "minitiny trains in float32 (or float64)",
                   "applications": "pretrained networks are not shipped; build the model "
                   "with keras.layers", "Variable": "", "ops": "", "random": "use "
                   "minitiny.random", "distribution": "", "export": "", "config": "",
                   "quantizers": "use minitiny.quantize", "saving": "use keras.models."
                   "load_model and model.save", "DTypePolicy": ""}
__all__ = ["Sequential", "Model", "Input", "NotInMinitiny", "activations", "backend",
           "callbacks", "datasets", "initializers", "layers", "losses", "metrics", "models",
           "optimizers", "preprocessing", "regularizers", "utils"]
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
