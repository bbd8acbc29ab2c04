"""keras.preprocessing: image (ImageDataGenerator), image_dataset_from_directory."""
from minitiny.images import image_dataset_from_directory  # noqa: F401
from minitiny.keras._names import refuse
from minitiny.keras.preprocessing import image  # noqa: F401

NOT_IMPLEMENTED = {"sequence": "", "text": "", "timeseries_dataset_from_array":
                   "use minitiny.data.sliding_windows"}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
