"""Latency, energy, average power and battery life of one model on every board.

    python bench/power_table.py build/kws --rate 1/s --battery cr2032
    python bench/power_table.py --instructions 16000000 --macs 2656768 --rate 1/s

With a model directory, the instruction count per inference comes from running the model's
generated C on each board's core in the emulator (minitiny.firmware.run). Without one, give
the count yourself (--instructions, and --macs for cycles per MAC). Prints one row per board,
then the MLPerf Tiny sanity table: published measurements of other engines on the
STM32L4R5 beside minitiny's estimate for the same instructions.

These are ESTIMATES from instruction counts x a CPI range, not measurements.
"""
import argparse
import json
import pathlib
import sys

from minitiny.deploy import boards, power


def instruction_counts(model_dir, board_names):
    """board -> (instructions, macs or None) from the emulated run, one run per core."""
    try:
        from minitiny.firmware import run
    except ImportError:
        sys.exit("power_table: minitiny.firmware.run is not available here; "
                 "give the count with --instructions N (and --macs M)")
    by_core, counts = {}, {}
    for name in board_names:
        core = boards.get(name).core
        if core not in by_core:
            try:
                result = run(model_dir, board=name, profile=False)   # per-layer counts not needed
                if not result.instructions:
                    raise RuntimeError("the run reported no instruction count")
                by_core[core] = (int(result.instructions), manifest_macs(model_dir))
            except Exception as e:        # a core the emulator does not support: say so, go on
                print(f"power_table: skipping {name} ({core}): {e}", file=sys.stderr)
                by_core[core] = None
        if by_core[core] is not None:
            counts[name] = by_core[core]
    return counts


def manifest_macs(model_dir):
    """MACs per inference from the generated model's manifest (sum over layers), or None."""
    for path in sorted(pathlib.Path(model_dir).glob("*_manifest.json")):
        try:
            layers = json.loads(path.read_text())["layers"]
            return sum(int(layer["macs"]) for layer in layers) or None
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", nargs="?", help="a generated model directory (runs the emulator)")
    ap.add_argument("--instructions", type=int, help="instructions per inference (instead of a run)")
    ap.add_argument("--macs", type=int, help="multiply-accumulates per inference (for cycles/MAC)")
    ap.add_argument("--rate", default="1/s", help="inferences per time: 1/s, 10/min, 0.5Hz (default 1/s)")
    ap.add_argument("--battery", default="cr2032",
                    help=f"one of {', '.join(boards.battery_names())}, or 'none' (default cr2032)")
    ap.add_argument("--boards", default=",".join(boards.names()),
                    help="comma-separated board names (default: all)")
    args = ap.parse_args(argv)

    try:
        names = [b.strip() for b in args.boards.split(",") if b.strip()]
        for name in names:
            boards.get(name)
        battery = None if args.battery.lower() == "none" else boards.battery(args.battery)
        rate = power.parse_rate(args.rate)
    except ValueError as e:
        ap.error(str(e))
    if args.instructions is not None:
        counts = {name: (args.instructions, args.macs) for name in names}
    elif args.model_dir:
        counts = instruction_counts(args.model_dir, names)
    else:
        ap.error("give a model directory or --instructions N")

    estimates = []
    for name, (n, macs) in counts.items():
        try:
            estimates.append(power.estimate(n, name, rate, battery=battery, macs=args.macs or macs))
        except ValueError as e:     # e.g. the rate is too high for this board: report, go on
            print(f"{name}: {e}")
    print(power.format_table(estimates))
    print()
    # the STM32L4R5 is a Cortex-M4: only a Cortex-M4 count is the same instructions there
    m4 = [counts[n] for n in counts if boards.get(n).core == boards.get("stm32l4r5").core]
    n, macs = m4[0] if m4 else (None, None)
    print(power.sanity_table(n, args.macs or macs))


if __name__ == "__main__":
    main()
