"""keras.metrics: the metrics minitiny computes (by name in compile(metrics=[...]))."""
from minitiny.keras._names import refuse
from minitiny.metrics import (binary_accuracy, categorical_accuracy,  # noqa: F401
                              mean_absolute_error, mean_squared_error,
                              sparse_categorical_accuracy)

NOT_IMPLEMENTED = dict.fromkeys((
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "MeanIoU", "IoU",
    "F1Score", "FBetaScore", "PrecisionAtRecall", "RecallAtPrecision",
    "SensitivityAtSpecificity", "SpecificityAtSensitivity", "TruePositives",
    "FalsePositives", "TrueNegatives", "FalseNegatives", "CosineSimilarity", "LogCoshError",
    "RootMeanSquaredError", "MeanAbsolutePercentageError", "R2Score", "Hinge", "KLDivergence",
    "Poisson", "Sum", "MeanTensor"), "")
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
