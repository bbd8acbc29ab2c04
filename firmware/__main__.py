"""Command line: python -m minitiny.firmware run DIR --board cortex-m4 [--inputs x.npy] [-n 8]

Builds the generated model in DIR for the board, runs it in QEMU and prints the table of
instructions per layer, flash and RAM. Exit status: 0 the model ran (and matched its
reference when there is one), 1 a mismatch, fault, timeout or build failure, 2 usage.
"""
import argparse
import sys

from . import cores


def parser():
    p = argparse.ArgumentParser(prog="minitiny firmware",
                                description="Run generated C on an emulated Cortex-M (QEMU).")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="build DIR for a board, run it, print instructions, flash and RAM")
    r.add_argument("dir", help="a directory written by minitiny.codegen.generate")
    r.add_argument("--board", default="cortex-m4",
                   help=f"a core ({', '.join(cores.CORES)}) or a board name (default: cortex-m4)")
    r.add_argument("--inputs", help=".npy of test inputs, int8 or float, (N, *input_shape); for a "
                                    "model with several inputs a .npz with one array per input, in order")
    r.add_argument("-n", type=int, default=8, help="how many inputs to run (default: 8)")
    r.add_argument("--no-profile", action="store_true", help="skip the per-layer profiling build")
    r.add_argument("--stack", type=int, default=4096, help="bytes of RAM reserved for the stack")
    r.add_argument("--timeout", type=float, default=60, help="seconds before QEMU is stopped")
    r.add_argument("--counter", choices=("auto", "plugin", "icount"), default="auto",
                   help="instruction counter: the QEMU plugin, or the -icount fallback")
    r.add_argument("--opt", choices=("-O0", "-O1", "-O2", "-O3", "-Os"), default="-O2",
                   help="compiler optimisation level (default: -O2)")
    return p


def main(argv=None):
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:          # argparse exits 2 on usage errors, 0 for --help
        return e.code
    import numpy as np

    from .toolchain import FirmwareError
    from .model import ModelDirError
    from .runner import run
    inputs = None
    try:
        if args.inputs:
            try:
                inputs = np.load(args.inputs, allow_pickle=False)
                if isinstance(inputs, np.lib.npyio.NpzFile):    # several inputs, in the model's order
                    with inputs:
                        inputs = [inputs[k] for k in inputs.files]
            except (OSError, ValueError) as e:
                raise ValueError(f"--inputs {args.inputs}: cannot read a .npy array ({e})") from None
        result = run(args.dir, board=args.board, inputs=inputs, n=args.n,
                     profile=not args.no_profile, timeout=args.timeout, stack=args.stack,
                     counter=args.counter, opt=args.opt)
    except (ModelDirError, ValueError) as e:
        print(f"minitiny firmware: {e}", file=sys.stderr)
        return 2
    except FirmwareError as e:
        print(f"minitiny firmware: {e}", file=sys.stderr)
        return 1
    print(result.table())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
