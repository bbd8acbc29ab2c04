"""Run a program of this folder with Keras 3 itself, for the figures the tests' docstrings
quote. Needs keras, torch (Keras' backend here), scipy and pillow; not TensorFlow:
`tensorflow` is a stand-in module whose `keras` is Keras 3 (the tf.keras names these
programs use, with Keras 3's legacy ImageDataGenerator, which is tf.keras 2's code).

    KERAS_BACKEND=torch python tests/keras_programs/with_keras.py horses_or_humans 0

The image folders are made by the same helpers, with the same seeds, as the tests make them.
"""
import os
import pathlib
import sys
import tempfile
import types

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import keras.src.legacy.preprocessing.image as legacy_image  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_program_images import stripes, write_pngs  # noqa: E402


def folders(name, root):
    if name == "horses_or_humans":
        classes = {"horses": lambda r, s: stripes(r, s, False),
                   "humans": lambda r, s: stripes(r, s, True)}
        write_pngs(root / "horse-or-human" / "train", classes, 64, 40, seed=1)
        write_pngs(root / "horse-or-human" / "validation", classes, 24, 40, seed=2)
    else:
        raise SystemExit(f"{name}: only horses_or_humans runs without TensorFlow (the others "
                         "use tf.data or tf.lite)")


def main(name, seed):
    keras.utils.set_random_seed(seed)            # before the stand-in: it looks for tf.random
    tf = types.ModuleType("tensorflow")
    tf.keras = keras
    sys.modules.update({"tensorflow": tf, "tensorflow.keras": keras,
                        "tensorflow.keras.optimizers": keras.optimizers,
                        "tensorflow.keras.preprocessing": keras.preprocessing,
                        "tensorflow.keras.preprocessing.image": legacy_image})
    root = pathlib.Path(tempfile.mkdtemp())
    folders(name, root)
    os.chdir(root)
    ns = {"__name__": name}
    exec(compile((HERE / f"{name}.py").read_text(), name, "exec"), ns)
    print(f"Keras {keras.__version__}: final", {k: round(v[-1], 4) for k, v in
                                                ns["history"].history.items()})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
