"""The table a firmware run prints: per layer and in total, instructions, flash and RAM."""
from .model import layer_c_name


def _n(v):
    return "-" if v is None else f"{v:,}"


def _pct(part, whole):
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def table(r):
    """FirmwareResult -> text (see runner.py)."""
    n = len(r.inputs)
    verdict = {"ok": "ran", "mismatch": "MISMATCH", "fault": "FAULT", "timeout": "TIMEOUT",
               "invoke-error": "INVOKE ERROR", "error": "ERROR"}[r.status]
    ref = {True: ", outputs match the NumPy reference", False: ", outputs differ from the reference",
           None: " (no reference to compare the outputs with)"}[r.matches_reference]
    lines = [f"minitiny firmware: model {r.name!r} on {r.target.describe()}: {verdict}, "
             f"{n} input{'s' * (n != 1)}{ref if r.outputs is not None else ''}"]
    if r.message:
        lines.append(f"  {r.message}")
    counted = ("instructions counted exactly by QEMU's TCG plugin" if r.counter == "plugin" else
               "instructions from a counter under -icount (fallback; may be off by a few)")
    if r.instructions_per_input is not None:
        lines.append(f"{counted}; QEMU has no timing model, so these are not cycles")

    if r.layer_instructions is not None:
        worst = r.layer_instructions.max(axis=0)               # (L,) over the test inputs
        prof_total = int((r.layer_instructions.sum(axis=1) + r.overhead_instructions.sum(axis=1)).max())
        w = min(max([len(str(layer.get("name", ""))) for layer in r.layers] + [12]), 28)
        kw = min(max([len(str(layer.get("kind", ""))) for layer in r.layers] + [4]), 18)
        has_ram = any("ram_bytes" in layer for layer in r.layers)
        head = (f"{'#':>3}  {'layer':{w}s} {'kind':{kw}s} {'instructions':>12s} {'%':>6s} "
                f"{'MACs':>10s} {'instr/MAC':>9s} {'weights B':>10s} {'code B':>7s}"
                + (f" {'RAM B':>7s}" if has_ram else ""))
        lines += ["", head, "-" * len(head)]
        for i, layer in enumerate(r.layers):
            macs = layer.get("macs") or 0
            sz = r.layer_sizes.get(layer_c_name(layer), {})
            lines.append(f"{layer.get('index', i):>3}  {str(layer.get('name', '?'))[:w]:{w}s} "
                         f"{str(layer.get('kind', '?'))[:kw]:{kw}s} {int(worst[i]):>12,} "
                         f"{_pct(worst[i], prof_total):>6s} {_n(macs or None):>10s} "
                         f"{(f'{worst[i] / macs:.2f}' if macs else '-'):>9s} "
                         f"{_n(sz.get('weights') or None):>10s} {_n(sz.get('code') or None):>7s}"
                         + (f" {_n(layer.get('ram_bytes')):>7s}" if has_ram else ""))
        over = r.overhead_instructions.max(axis=0)
        rest = r.flash.get("unattributed", {})
        lines.append(f"{'':>3}  {'(invoke and shared code)':{w + kw + 1}s} {int(over.sum()):>12,} "
                     f"{_pct(over.sum(), prof_total):>6s} {'':>10s} {'':>9s} "
                     f"{_n(rest.get('weights') or None):>10s} {_n(rest.get('code') or None):>7s}")
        lines.append(f"{'':>3}  {'total, profiling build':{w + kw + 1}s} {prof_total:>12,}")
        if len(r.layer_instructions) > 1:
            lines.append(f"     (per layer: the most over the {n} inputs)")
        if has_ram:
            lines.append("     (RAM B: the layer's input and output activations in the arena, "
                         "from the manifest)")

    if r.instructions_per_input is not None:
        lo, hi = int(r.instructions_per_input.min()), int(r.instructions_per_input.max())
        spread = f" (all {n} inputs)" if lo == hi else f" (min {lo:,} over {n} inputs)"
        total_macs = sum((layer.get("macs") or 0) for layer in r.layers)
        lines.append("")
        lines.append(f"instructions per inference: {hi:,}{spread}, production build (no layer markers)"
                     + (f", {hi / total_macs:.2f} per MAC" if total_macs else ""))
        if r.target.clock_hz:
            ms, mhz = 1e3 * hi / r.target.clock_hz, r.target.clock_hz / 1e6
            if r.target.cpi:
                low, typ, high = r.target.cpi
                lines.append(f"  ~{ms * typ:.3f} ms at {mhz:g} MHz, estimated with {typ:g} cycles per "
                             f"instruction ({ms * low:.3f} to {ms * high:.3f} ms for the board's "
                             f"range {low:g} to {high:g})")
            else:
                lines.append(f"  ~{ms:.3f} ms at {mhz:g} MHz if every instruction took one cycle")

    f, m = r.flash, r.ram
    if f:
        lines.append("")
        lines.append(f"flash {f['used']:>9,} B of {f['budget']:,} B ({_pct(f['used'], f['budget'])}): "
                     f"model weights and tables {f['weights']:,} + model code {f['code']:,} + runtime "
                     f"{f['runtime']:,} (startup, harness, semihosting, libgcc)")
        lines.append(f"      test inputs {f['test_inputs']:,} B kept in emulator memory outside "
                     f"the budget")
    if m:
        used = m["static"] + m["stack_reserved"]
        lines.append(f"RAM   {used:>9,} B of {m['budget']:,} B ({_pct(used, m['budget'])}): "
                     f"model arena {m['arena']:,} + runtime {m['runtime']:,} + stack reserved "
                     f"{m['stack_reserved']:,}")
        bound = f"{m['stack_bound']:,} B" + ("" if m["stack_bound_exact"] else
                                             " (not a bound: a dynamic frame or recursion)")
        lines.append(f"stack model used {_n(m['stack_used'])} B (measured, painted stack); "
                     f"gcc -fstack-usage bound {bound} via "
                     f"{' -> '.join(_short(p) for p in m['stack_path'])}")
    return "\n".join(lines)


def _short(function):
    return function.rsplit(":", 1)[-1]   # gcc names static functions 'file.c:name'
