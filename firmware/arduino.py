"""`minitiny export arduino DIR`: a generated model as an Arduino library.

    from minitiny.firmware import export_arduino
    export_arduino("build/sine")          # -> build/MinitinySine/, the library folder

writes the layout of the Arduino Library Specification (1.5 format):

    MinitinySine/
        library.properties                 name, version, sentence, architectures=*, ...
        src/MinitinySine.h                 the header a sketch includes
        src/sine_model.h, src/sine_model.c the model (plain C99, no heap)
        examples/MinitinySine/MinitinySine.ino
                                           one inference, printed over Serial, compared with
                                           the NumPy int8 reference's output for the same input

Copy the folder into the Arduino libraries folder (or Sketch > Include Library > Add .ZIP
Library) and open File > Examples > MinitinySine.

The model is generated again from the NAME.qmodel.npz in DIR with the kernel variant
"auto" (codegen.generate): the DSP-SIMD kernels on a Cortex-M4/M7/M33/M55 board such as the
Nano 33 BLE, the plain C kernels on any other (architectures=*). Files are written into a
temporary folder and moved into place at the end, so a failure leaves nothing half-written.

NANO33BLE_CFLAGS / NANO33BLE_CXXFLAGS are the flags the Arduino mbed core (ArduinoCore-mbed,
platform.txt and variants/ARDUINO_NANO33BLE/cflags.txt, cxxflags.txt) compiles a library's
C and a sketch's C++ with; tests/test_arduino.py compiles the library with them.
"""
import argparse
import os
import re
import sys
import tempfile

import numpy as np

from minitiny.files import atomic_folder

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = HERE            # arduino_*.j2 beside this file

# The Nano 33 BLE (nRF52840, Cortex-M4F at 64 MHz) under ArduinoCore-mbed: the core and FPU
# flags, soft-float calling convention with FPU instructions, size optimisation, GNU C11,
# and plain `char` unsigned. (The core adds its defines and include paths; no other flag
# changes how the model compiles.)
NANO33BLE_COMMON = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16", "-Os", "-g",
                    "-nostdlib", "-fdata-sections", "-ffunction-sections", "-fmessage-length=0",
                    "-fno-exceptions", "-fomit-frame-pointer", "-funsigned-char"]
NANO33BLE_CFLAGS = ["-c", "-std=gnu11"] + NANO33BLE_COMMON
NANO33BLE_CXXFLAGS = ["-c", "-std=gnu++14", "-fno-rtti", "-Wvla"] + NANO33BLE_COMMON

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


class ArduinoExportError(ValueError):
    """The model directory cannot be exported: names the file or the value."""


def default_library_name(prefix):
    """'sine' -> 'MinitinySine', 'kws_small' -> 'MinitinyKwsSmall' (never the model header's name)."""
    return "Minitiny" + "".join(part[:1].upper() + part[1:] for part in prefix.split("_") if part)


def _environment():
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def _test_inputs(qmodel, inputs, seed):
    """One int8 sample per model input (the first of `inputs`, quantized if float; a list of
    arrays for several inputs), else random int8; and what they are."""
    tensors = [qmodel.tensors[n] for n in qmodel.inputs]
    if inputs is None:
        rng = np.random.default_rng(seed)
        return [rng.integers(-128, 128, size=t.shape).astype(np.int8) for t in tensors], \
            f"random int8 (NumPy seed {seed})"
    if len(tensors) == 1:
        inputs = [inputs]
    elif not isinstance(inputs, (list, tuple)) or len(inputs) != len(tensors):
        raise ArduinoExportError(f"model {qmodel.name!r} has {len(tensors)} inputs "
                                 f"({', '.join(qmodel.inputs)}): give inputs as a list of {len(tensors)} arrays")
    xs, floats = [], False
    for t, a in zip(tensors, inputs):
        x = np.asarray(a)
        shape, size = tuple(t.shape), int(np.prod(t.shape))
        if x.size % size or x.size == 0:
            raise ArduinoExportError(f"inputs of shape {x.shape} do not hold whole inputs of shape {shape}")
        x = x.reshape((-1,) + shape)[0]
        if np.issubdtype(x.dtype, np.floating):
            xs.append(t.quantize(x).astype(np.int8))
            floats = True
            continue
        if not np.issubdtype(x.dtype, np.integer) or x.min() < -128 or x.max() > 127:
            raise ArduinoExportError(f"inputs must be float, or int8 in [-128, 127]; got {x.dtype}")
        xs.append(x.astype(np.int8))
    return xs, "the first of the given inputs, quantized" if floats else "the first of the given int8 inputs"


def export_arduino(model_dir, out_dir=None, library_name=None, *, variant="auto", inputs=None,
                   seed=0, url="", dsp_weights=None):
    """Write an Arduino library for the model generated in `model_dir`; return its folder.

    out_dir:      the library folder to write (default: LIBRARY beside model_dir)
    library_name: the library's name, also of its header and example (default:
                  'Minitiny' + the model's C prefix in CamelCase, e.g. MinitinySine)
    variant:      the codegen kernel variant ("auto": DSP kernels where the core has them)
    dsp_weights: "int8" or "int16" (codegen.generate); default: as model_dir was generated
    inputs:       test inputs for the example sketch (the first is used; float inputs are
                  quantized; a list of arrays for a model with several inputs); default a
                  random int8 input drawn with `seed`
    """
    from minitiny import __version__
    from minitiny.codegen import generate, loader
    from minitiny.codegen.names import c_comment
    from minitiny.quant.graph import QModel

    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise ArduinoExportError(f"{model_dir}: not a directory (expected the output of `minitiny generate`)")
    try:
        manifest = loader.read_manifest(model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise ArduinoExportError(str(e)) from None
    prefix = manifest["name"]
    if manifest.get("dtype") == "float32":
        raise ArduinoExportError(f"{model_dir}: {prefix} is a float32 model; export an int8 model "
                                 f"(minitiny.quantize, then minitiny.codegen.generate)")
    npz = os.path.join(model_dir, f"{prefix}.qmodel.npz")
    if not os.path.isfile(npz):
        raise ArduinoExportError(f"{model_dir}: {prefix}.qmodel.npz is missing; the library is "
                                 f"generated from it (run minitiny.codegen.generate again)")
    library = library_name or default_library_name(prefix)
    if not _NAME.match(library):
        raise ArduinoExportError(f"library name {library!r}: use letters, digits and '_', starting "
                                 f"with a letter (it names the folder, the header and the example)")
    if library == f"{prefix}_model":
        raise ArduinoExportError(f"library name {library!r} would clash with the model's own header "
                                 f"{prefix}_model.h; choose another")
    qmodel = QModel.load(npz)
    threshold = manifest.get("threshold")
    xs, input_note = _test_inputs(qmodel, inputs, seed)
    ys = qmodel.predict_int8([x[None] for x in xs] if len(xs) > 1 else xs[0][None])
    ys = ys if len(qmodel.outputs) > 1 else [ys]

    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        g = generate(qmodel, tmp, name=prefix, variant=variant,
                     dsp_weights=dsp_weights or manifest.get("dsp_weights", "int8"),
                     **({"threshold": threshold["value"], "threshold_name": threshold["name"]}
                        if threshold else {}))
        for path in (g.header, g.source):
            with open(path, "rb") as f:
                files[f"src/{os.path.basename(path)}"] = f.read()
        info = g.manifest
    env = _environment()
    context = dict(library=library, LIBRARY=library.upper(), prefix=prefix, PREFIX=prefix.upper(),
                   model_name=c_comment(qmodel.name), version=__version__, model_hash=info["model_hash"],
                   variant=variant, arena=info["arena_bytes"], weights=info["weight_bytes"], url=url,
                   test_inputs=[dict(t, values=x.reshape(-1).astype(int).tolist())
                                for t, x in zip(info["inputs"], xs)],
                   test_outputs=[dict(t, expected=np.asarray(y).reshape(-1).astype(int).tolist())
                                 for t, y in zip(info["outputs"], ys)],
                   input_note=input_note, threshold=info.get("threshold"))
    files["library.properties"] = env.get_template("arduino_library.properties.j2").render(context).encode()
    files[f"src/{library}.h"] = env.get_template("arduino_library.h.j2").render(context).encode()
    files[f"examples/{library}/{library}.ino"] = env.get_template("arduino_example.ino.j2").render(context).encode()
    if out_dir is None:
        out_dir = os.path.join(os.path.dirname(os.path.abspath(model_dir)), library)
    return atomic_folder(out_dir, files)


def main(argv=None):
    """Command line: python -m minitiny.firmware.arduino DIR [--out LIBDIR] [--name NAME]."""
    parser = argparse.ArgumentParser(prog="minitiny export arduino",
                                     description="Write an Arduino library for a generated model.")
    parser.add_argument("dir", help="a directory written by minitiny.codegen.generate")
    parser.add_argument("--out", help="the library folder to write (default: LIBRARY beside DIR)")
    parser.add_argument("--name", help="the library name (default: Minitiny + the model's name)")
    parser.add_argument("--variant", default="auto", choices=("auto", "reference", "scalar", "dsp"),
                        help="kernels (default auto: DSP-SIMD where the core has them)")
    parser.add_argument("--dsp-weights", choices=("int8", "int16"),
                        help="DSP dense and conv weights in flash (default: as DIR was generated)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code
    try:
        path = export_arduino(args.dir, args.out, args.name, variant=args.variant,
                              dsp_weights=args.dsp_weights)
    except (ArduinoExportError, OSError) as e:
        print(f"minitiny export arduino: {e}", file=sys.stderr)
        return 1
    print(f"wrote the Arduino library {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
