"""keras.metrics: the metrics of minitiny.metrics (objects, or names in compile)."""
from minitiny.keras._names import refuse
from minitiny.metrics import (AUC, BinaryAccuracy, CategoricalAccuracy,  # noqa: F401
                              MeanAbsoluteError, MeanMetricWrapper, MeanSquaredError, Metric,
                              Precision, Recall, SparseCategoricalAccuracy,
                              SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy,
                              binary_accuracy, categorical_accuracy, deserialize, get,
                              mean_absolute_error, mean_squared_error, serialize,
                              sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                              top_k_categorical_accuracy)

NOT_IMPLEMENTED = dict.fromkeys((
    "MeanIoU", "IoU",
    "F1Score", "FBetaScore", "PrecisionAtRecall", "RecallAtPrecision",
    "SensitivityAtSpecificity", "SpecificityAtSensitivity", "TruePositives",
    "FalsePositives", "TrueNegatives", "FalseNegatives", "CosineSimilarity", "LogCoshError",
    "RootMeanSquaredError", "MeanAbsolutePercentageError", "R2Score", "Hinge", "KLDivergence",
    "Poisson", "Sum", "MeanTensor", "Accuracy", "Mean", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy"), "")
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
