"""Flash and RAM: where the bytes of a firmware go, read from the build with binutils.

* Per symbol, `arm-none-eabi-nm -S` lists each function and array with its size and a
  letter: T/t code (flash), R/r constants (flash: the model's `static const` weights),
  D/d initialised data (RAM, and its first value in flash), B/b zeroed data (RAM: the
  model's arena). Upper case is global, lower case static.
* The model's share is read from the LINKED firmware, not from its object file: the linker
  (--gc-sections) drops every function and array nothing calls or reads, and an object
  file still counts them. `nm -a -p` on the ELF lists the symbol table in the linker's
  order: each input file's name (letter a), then that file's static symbols; the global
  symbols of all files come last, and each is matched to the object that defines it.
* The totals come from symbols link.ld defines (`__minitiny_flash_used`, ...).
* Stack: gcc's `-fstack-usage` gives each function's frame (NAME.su) and
  `-fcallgraph-info=su` the call graph (NAME.ci); the deepest path from a function is
  the static bound. The harness also measures the real high-water mark by painting.
"""
import re
import subprocess
from pathlib import Path

from .toolchain import tool

FLASH_CODE, FLASH_CONST, RAM_DATA, RAM_BSS = "Tt", "Rr", "Dd", "Bb"


def symbols(path):
    """[(name, size, type letter)] of every sized symbol in an object or ELF file."""
    out = subprocess.run([tool("arm-none-eabi-nm"), "--size-sort", "-S", "-t", "d", str(path)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[3], int(parts[1]), parts[2]))
    return rows


def linked_symbols(elf):
    """[(name, size, type letter, file)] of every sized symbol the linked ELF kept; `file` is
    the source a static symbol came from ('x.c'), None for a global symbol.

    A symbol at the address and of the size of one listed before is an alias, counted once:
    at -O2 gcc's identical code folding (-fipa-icf) gives identical constant arrays (two
    layers' equal shift tables, say) one copy in flash and several names."""
    out = subprocess.run([tool("arm-none-eabi-nm"), "-a", "-p", "-S", "-t", "d", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    rows, current, seen = [], None, set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "a":        # '00000000 a harness.c': a file begins
            current = parts[2]
        elif len(parts) == 4 and (parts[0], parts[1]) not in seen:
            seen.add((parts[0], parts[1]))
            name, size, letter = parts[3], int(parts[1]), parts[2]
            rows.append((name, size, letter, current if letter.islower() else None))
    return rows


def program_sizes(linked, objects):
    """Bytes the object files' symbols take in the linked firmware (`linked`: linked_symbols
    of the ELF): code, weights (constants), data, bss, ram, flash and the symbols."""
    sources = {Path(o).with_suffix(".c").name for o in objects}
    defined = {name for o in objects for name, _, letter in symbols(o) if letter.isupper()}
    rows = [(name, size, letter) for name, size, letter, source in linked
            if (source in sources if letter.islower() else name in defined)]
    total = {kind: sum(s for _, s, t in rows if t in letters)
             for kind, letters in (("code", FLASH_CODE), ("weights", FLASH_CONST),
                                   ("data", RAM_DATA), ("bss", RAM_BSS))}
    total["ram"] = total["data"] + total["bss"]
    total["flash"] = total["code"] + total["weights"] + total["data"]
    total["symbols"] = rows
    return total


def linker_figures(elf):
    """flash_used, ram_used (data + bss) and stack_reserved as link.ld computed them."""
    out = subprocess.run([tool("arm-none-eabi-nm"), "-t", "d", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("__minitiny_"):
            values[parts[2][len("__minitiny_"):]] = int(parts[0])
    return values


def per_layer(rows, layer_names):
    """Split an object's symbols among layers by name: 'dense_0_weight' -> 'dense_0'.

    Returns ({layer: {'code': B, 'weights': B, 'ram': B}}, the same for the rest).
    The longest matching layer name wins, so 'dense_10_bias' is not 'dense_1''s."""
    names = sorted({n for n in layer_names if n}, key=len, reverse=True)
    split = {n: {"code": 0, "weights": 0, "ram": 0} for n in names}
    rest = {"code": 0, "weights": 0, "ram": 0}
    for sym, size, t in rows:
        owner = next((n for n in names if sym == n or sym.startswith(n + "_")), None)
        bucket = split[owner] if owner else rest
        kind = "code" if t in FLASH_CODE else "weights" if t in FLASH_CONST else "ram"
        bucket[kind] += size
    return split, rest


# ---- stack ----------------------------------------------------------------------------
_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?\\n(\d+) bytes \((\w+)\)')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def call_graph(build_dir):
    """({function: (frame bytes, 'static'|'dynamic'|'bounded')}, {function: {callees}})
    from every .ci file gcc wrote in build_dir."""
    frames, calls = {}, {}
    for ci in Path(build_dir).glob("*.ci"):
        text = ci.read_text(errors="replace")
        for title, size, kind in _NODE.findall(text):
            frames[title] = (int(size), kind)
        for src, dst in _EDGE.findall(text):
            calls.setdefault(src, set()).add(dst)
    return frames, calls


def worst_stack(function, frames, calls):
    """Deepest stack from `function` down its call graph: (bytes, path, exact?).

    exact is False when a frame on the way is dynamic (alloca, variable-length arrays)
    or the graph has a cycle (recursion): then the figure is not a bound."""
    exact = True
    memo = {}

    def depth(f, seen):
        nonlocal exact
        if f in seen:
            exact = False
            return 0, [f]
        if f not in memo:
            size, kind = frames.get(f, (0, "static"))
            if kind == "dynamic":
                exact = False
            best = (0, [])
            for callee in sorted(calls.get(f, ())):
                best = max(best, depth(callee, seen | {f}), key=lambda b: b[0])
            memo[f] = (size + best[0], [f] + best[1])
        return memo[f]

    total, path = depth(function, frozenset())
    return total, path, exact
