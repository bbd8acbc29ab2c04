"""keras.losses: the loss classes of minitiny.losses."""
from minitiny.keras._names import refuse
from minitiny.losses import (BinaryCrossentropy, CategoricalCrossentropy, Loss,  # noqa: F401
                             MeanSquaredError, SparseCategoricalCrossentropy, deserialize, get,
                             serialize)

NOT_IMPLEMENTED = dict.fromkeys((
    "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
    "Huber", "LogCosh", "KLDivergence", "Poisson", "Hinge", "SquaredHinge",
    "CategoricalHinge", "CosineSimilarity", "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy", "CTC", "Dice", "Tversky"), "")
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
