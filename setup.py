"""minitiny: the whole TinyML workflow in a codebase small enough to read.

codegen/ and firmware/ sit beside minitiny/ in the source tree so the architecture shows at a
glance; they are installed as the subpackages minitiny.codegen and minitiny.firmware.
"""
from setuptools import setup

setup(
    name="minitiny",
    version="0.1.0",
    description="TinyML from data to a Cortex-M: NumPy training, int8 quantization "
                "bit-exact with TFLite Micro, readable C99 code generation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=["minitiny", "minitiny.quant", "minitiny.quant.kernels", "minitiny.datasets",
              "minitiny.deploy", "minitiny.reporting", "minitiny.cli", "minitiny.codegen",
              "minitiny.firmware",
              "minitiny.keras", "minitiny.keras.datasets", "minitiny.keras.preprocessing",
              "minitiny.testing"],
    package_dir={"minitiny": "minitiny",
                 "minitiny.codegen": "codegen",
                 "minitiny.firmware": "firmware"},
    package_data={"minitiny.codegen": ["templates/*.j2", "templates/*/*.j2"],
                  "minitiny.firmware": ["*.c", "*.h", "*.ld", "*.j2", "*.json"],
                  "minitiny.reporting": ["*.j2"],
                  "minitiny.deploy": ["*.json"]},
    install_requires=[
        "numpy>=1.24",
        "jinja2>=3.0",
        "cffi>=1.15",
        # TFLite's flatbuffer schema (generated accessors and builders) for .tflite files
        "flatbuffers>=23.5",
        "tflite>=2.10",
    ],
    extras_require={
        # tflite-micro: TFLite Micro's interpreter, the independent oracle for int8 results
        # scipy: scipy.io.wavfile is the WAV reader's independent oracle
        # pillow: decodes image files (keras.utils.image_dataset_from_directory, ...)
        # h5py: Keras' .keras and .h5 model files; keras (3, with the PyTorch backend
        # setup.sh installs): the oracle that loads the .keras files minitiny writes
        "test": ["pytest>=7", "hypothesis>=6", "tflite-micro", "scipy", "pillow>=9",
                 "h5py>=3", "keras>=3"],
        "plots": ["matplotlib>=3.5"],
        "images": ["pillow>=9"],
        "keras": ["h5py>=3"],
    },
    entry_points={
        "console_scripts": [
            "minitiny=minitiny.cli:main",
            "minitiny-data=minitiny.datasets.__main__:main",
        ],
        # `pytest --minitiny DIR`: the property suite on a generated model (minitiny.testing)
        "pytest11": ["minitiny = minitiny.testing.plugin"],
    },
)
