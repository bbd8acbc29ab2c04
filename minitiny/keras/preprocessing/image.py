"""keras.preprocessing.image: ImageDataGenerator and the image file helpers."""
from minitiny.images import ImageDataGenerator, img_to_array, load_img  # noqa: F401
from minitiny.keras._names import refuse

NOT_IMPLEMENTED = {"NumpyArrayIterator": "", "array_to_img": "", "save_img": "",
                   "apply_affine_transform": "", "random_rotation": "use ImageDataGenerator "
                   "or keras.layers.RandomRotation", "random_shift": "", "random_zoom": ""}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
