"""Flash bytes of generated code, measured with a Cortex-M cross compiler.

    python -m minitiny.codegen.sizes build/sine [--cpu cortex-m4]

compiles NAME_model.c with arm-none-eabi-gcc -Os -mthumb and -fno-inline (so every layer
stays its own function) and reads the symbol sizes (arm-none-eabi-nm -S): code per layer
function, the fixed-point helpers, NAME_invoke, and the constants (weights, multipliers).
generator.CODE_BYTES, the estimate written into every manifest, was measured this way on
single-layer models; the firmware build reports the exact size of a linked image.
"""
import argparse
import os
import shutil
import subprocess
import tempfile

from .loader import read_manifest


def measure(model_dir, name=None, cpu="cortex-m4", compiler="arm-none-eabi-gcc", opt="-Os"):
    """{'layers': {c_name: code bytes}, 'helpers': bytes, 'invoke': bytes, 'rodata': bytes,
    'total_code': bytes} of the model in model_dir."""
    manifest = read_manifest(model_dir, name)
    nm = compiler.replace("gcc", "nm")
    if not shutil.which(compiler) or not shutil.which(nm):
        raise FileNotFoundError(f"{compiler} / {nm} not found: install a Cortex-M toolchain "
                                "(e.g. the gcc-arm-none-eabi package)")
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "model.o")
        subprocess.run([compiler, f"-mcpu={cpu}", "-mthumb", "-std=c99", opt, "-fno-inline",
                        "-ffunction-sections", "-fdata-sections", "-I", os.fspath(model_dir), "-c",
                        os.path.join(model_dir, manifest["source"]), "-o", obj], check=True)
        out = subprocess.run([nm, "-S", "--size-sort", obj], capture_output=True, text=True,
                             check=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:               # gcc's clones (f.constprop.0, f.isra.0) count as f
            sym = parts[3].split(".")[0]
            kind, size = symbols.get(sym, (parts[2].lower(), 0))
            symbols[sym] = (kind, size + int(parts[1], 16))
    layer_names = {layer["c_name"] for layer in manifest["layers"]}
    result = {"layers": {n: symbols[n][1] for n in layer_names if n in symbols},
              "invoke": symbols.get(manifest["invoke"], ("t", 0))[1],
              "rodata": sum(size for kind, size in symbols.values() if kind == "r")}
    result["helpers"] = sum(size for sym, (kind, size) in symbols.items()
                            if kind == "t" and sym not in layer_names and sym != manifest["invoke"])
    result["total_code"] = sum(size for kind, size in symbols.values() if kind == "t")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--name")
    parser.add_argument("--cpu", default="cortex-m4")
    args = parser.parse_args(argv)
    sizes = measure(args.model_dir, args.name, args.cpu)
    for layer, size in sorted(sizes["layers"].items()):
        print(f"{layer:30s} {size:6d} bytes of code")
    for key in ("helpers", "invoke", "total_code", "rodata"):
        print(f"{key:30s} {sizes[key]:6d} bytes")


if __name__ == "__main__":
    main()
