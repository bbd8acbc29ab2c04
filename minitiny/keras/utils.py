"""keras.utils: to_categorical, set_random_seed, Sequence (PyDataset), image folders."""
from minitiny.data import Sequence, to_categorical  # noqa: F401
from minitiny.images import image_dataset_from_directory, img_to_array, load_img  # noqa: F401
from minitiny.keras._names import refuse
from minitiny.random import seed as set_random_seed  # noqa: F401

PyDataset = Sequence                    # Keras 3's name for it
NOT_IMPLEMENTED = {"plot_model": "model.summary() prints the layers",
                   "model_to_dot": "", "get_file": "data sets load from minitiny's offline "
                   "cache: python -m minitiny.datasets list", "normalize": "",
                   "pad_sequences": "", "timeseries_dataset_from_array": "use minitiny.data."
                   "sliding_windows", "text_dataset_from_directory": "",
                   "audio_dataset_from_directory": "see minitiny.datasets for audio",
                   "array_to_img": "", "register_keras_serializable": "",
                   "custom_object_scope": "", "CustomObjectScope": ""}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
