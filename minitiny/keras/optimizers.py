"""keras.optimizers: the optimizers of minitiny.optimizers, and `schedules`."""
from minitiny.keras._names import refuse
from minitiny.optimizers import (SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop,  # noqa: F401
                                 deserialize, get, schedules, serialize)

NOT_IMPLEMENTED = dict.fromkeys(("Adadelta", "Adamax", "Nadam", "Ftrl", "Lion", "Adafactor",
                                 "LossScaleOptimizer", "legacy"), "")
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
