"""keras.preprocessing."""
from minitiny.keras._names import refuse

NOT_IMPLEMENTED = {"sequence": "", "text": "", "timeseries_dataset_from_array":
                   "use minitiny.data.sliding_windows"}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
