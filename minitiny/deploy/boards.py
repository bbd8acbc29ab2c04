"""Boards and batteries: the figures a TinyML estimate needs, each with its data sheet.

A board is a microcontroller with a memory budget and a power budget:

    core          which Cortex-M ('cortex-m4', ...): the firmware picks the emulator from it
    clock_hz      CPU clock                              latency = cycles / clock
    flash_bytes   non-volatile memory: weights + code    must hold the model's constants
    ram_bytes     SRAM: activations (the tensor arena)   must hold the largest live tensors
    supply_v, active_current_a, sleep_current_a          power = V * I
    flash_wait_states, cpi (low / typ / high)            cycles = instructions * cpi

The figures live in `boards.json` beside this file, one entry per board. JSON has no
comments, so each figure is an object that carries its own source:

    "clock_hz": {"value": 64000000, "source": "nRF52840 Product Specification v1.7, Key features"}

and may add "approx": true when it is not read off a data-sheet table at these conditions.
The active current may be given at the clock (`active_current_a`) or per MHz
(`active_current_a_per_mhz`, as ST's front pages quote it). Sizes are bytes, 1 KB = 1024.

    >>> from minitiny.deploy import boards
    >>> boards.get("nano33ble").ram_bytes
    262144
    >>> boards.check_budget("tiny", flash_bytes=80_000, ram_bytes=9_000).fits
    False

`load(path)` reads and checks a user's own file of the same shape: a missing figure, a
figure without a source, a negative current or a zero clock is refused with a message that
names the file, the board and the figure.
"""
import difflib
import functools
import json
import math
import os
from dataclasses import dataclass, field

# The cores minitiny knows; the firmware maps each one to an emulated machine.
CORES = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boards.json")


class BoardError(ValueError):
    """A board or battery file, entry or name that is not usable: says which and why."""


# ---------------------------------------------------------------------------------------
# The records
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CPI:
    """Cycles per instruction: a range, because the same instructions take more cycles
    when a load waits, a branch refills the pipeline or a fetch misses the flash cache."""
    low: float
    typ: float
    high: float


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    mcu: str
    core: str
    clock_hz: float
    flash_bytes: int
    ram_bytes: int
    supply_v: float
    active_current_a: float   # at clock_hz, running from flash
    sleep_current_a: float    # deepest sleep that keeps RAM and wakes on a timer
    flash_wait_states: int
    cpi: CPI
    sources: dict = field(default_factory=dict, compare=False)  # figure -> data sheet
    approx: tuple = ()        # figures marked "approx": true

    @property
    def active_power_w(self):
        return self.supply_v * self.active_current_a   # P = V * I

    @property
    def sleep_power_w(self):
        return self.supply_v * self.sleep_current_a

    def as_dict(self):
        return {"name": self.name, "title": self.title, "mcu": self.mcu, "core": self.core,
                "clock_hz": self.clock_hz, "flash_bytes": self.flash_bytes,
                "ram_bytes": self.ram_bytes, "supply_v": self.supply_v,
                "active_current_a": self.active_current_a,
                "sleep_current_a": self.sleep_current_a,
                "flash_wait_states": self.flash_wait_states,
                "cpi": {"low": self.cpi.low, "typ": self.cpi.typ, "high": self.cpi.high},
                "sources": dict(self.sources), "approx": list(self.approx)}

    def __str__(self):
        return (f"{self.name}: {self.title} ({self.mcu}, {self.core} @ {self.clock_hz / 1e6:g} MHz, "
                f"{fmt_bytes(self.flash_bytes)} flash, {fmt_bytes(self.ram_bytes)} RAM)")


@dataclass(frozen=True)
class Battery:
    name: str
    title: str
    chemistry: str
    voltage_v: float
    capacity_mah: float
    derating: float                 # usable fraction of the rated capacity
    self_discharge_per_year: float  # fraction of capacity lost per year, load or not
    max_pulse_current_a: float      # above this the cell voltage sags
    sources: dict = field(default_factory=dict, compare=False)
    approx: tuple = ()

    def as_dict(self):
        return {"name": self.name, "title": self.title, "chemistry": self.chemistry,
                "voltage_v": self.voltage_v, "capacity_mah": self.capacity_mah,
                "derating": self.derating,
                "self_discharge_per_year": self.self_discharge_per_year,
                "max_pulse_current_a": self.max_pulse_current_a,
                "sources": dict(self.sources), "approx": list(self.approx)}

    def __str__(self):
        return f"{self.name}: {self.title}, {self.voltage_v:g} V, {self.capacity_mah:g} mAh"


# ---------------------------------------------------------------------------------------
# Reading and checking a file (all the checks happen here, once)
# ---------------------------------------------------------------------------------------

# figure -> (kind, lowest allowed, highest allowed, inclusive low?)  Ranges are sanity
# bounds, wide enough for any microcontroller: they catch sign errors and unit slips
# (mA typed as A, kHz typed as Hz), not close calls.
BOARD_FIGURES = {
    "core": ("core", None, None, None),
    "clock_hz": ("number", 0.0, 2e9, False),                # > 0 Hz
    "flash_bytes": ("int", 0, 2**32, False),
    "ram_bytes": ("int", 0, 2**32, False),
    "supply_v": ("number", 0.5, 6.0, True),
    "active_current_a": ("number", 0.0, 5.0, False),        # > 0 A
    "active_current_a_per_mhz": ("number", 0.0, 0.01, False),
    "sleep_current_a": ("number", 0.0, 1.0, True),          # >= 0 A
    "flash_wait_states": ("int", 0, 16, True),
    "cpi": ("cpi", 0.1, 20.0, False),
}
BOARD_TEXT = ("title", "mcu")
BATTERY_FIGURES = {
    "voltage_v": ("number", 0.5, 60.0, True),
    "capacity_mah": ("number", 0.0, 1e6, False),
    "derating": ("number", 0.0, 1.0, False),                # 0 < derating <= 1
    "self_discharge_per_year": ("number", 0.0, 1.0, True),  # 0 <= fraction < 1
    "max_pulse_current_a": ("number", 0.0, 1000.0, False),
}
BATTERY_TEXT = ("title", "chemistry")
TOP_LEVEL = ("format", "about", "boards", "batteries")


@dataclass
class Catalog:
    """The boards and batteries of one file."""
    path: str
    boards: dict
    batteries: dict

    def get(self, name):
        if isinstance(name, Board):
            return name
        key = _key(name, "board")
        if key not in self.boards:
            hint = ""
            if key in CORES:
                with_core = [b.name for b in self.boards.values() if b.core == key] or ["none"]
                hint = f" ({key!r} is a core, not a board; boards with that core: {', '.join(with_core)})"
            raise BoardError(f"{_short(self.path)}: unknown board {name!r}{hint}; known boards: "
                             f"{', '.join(self.names())}; a board of your own goes in a file "
                             f"read with minitiny.deploy.boards.load(path)")
        return self.boards[key]

    def battery(self, name):
        if isinstance(name, Battery):
            return name
        key = _key(name, "battery")
        if key not in self.batteries:
            raise BoardError(f"{_short(self.path)}: unknown battery {name!r}; known batteries: "
                             f"{', '.join(self.battery_names()) or 'none'}")
        return self.batteries[key]

    def names(self):
        return list(self.boards)

    def battery_names(self):
        return list(self.batteries)


def load(path=None):
    """Read and check a board file (default: minitiny's own boards.json) -> Catalog."""
    path = DEFAULT_PATH if path is None else os.fspath(path)
    where = _short(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise BoardError(f"{where}: cannot read the board file: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise BoardError(f"{where}: not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(doc, dict):
        raise BoardError(f"{where}: expected a JSON object with 'boards' and/or 'batteries'")
    for key in doc:
        if key not in TOP_LEVEL:
            raise BoardError(f"{where}: unknown top-level key {key!r}{_did_you_mean(key, TOP_LEVEL)}; "
                             f"expected {', '.join(TOP_LEVEL)}")
    if "boards" not in doc and "batteries" not in doc:
        raise BoardError(f"{where}: no 'boards' and no 'batteries': nothing to load")
    boards = {name: _board(where, name, entry)
              for name, entry in _section(where, doc, "boards").items()}
    batteries = {name: _battery(where, name, entry)
                 for name, entry in _section(where, doc, "batteries").items()}
    return Catalog(path, boards, batteries)


def _section(where, doc, key):
    section = doc.get(key, {})
    if not isinstance(section, dict):
        raise BoardError(f"{where}: '{key}' must be an object mapping names to entries")
    for name in section:
        if not name or name != name.lower() or not all(c.isalnum() or c in "-_" for c in name):
            raise BoardError(f"{where}: {key[:-1] if key == 'boards' else 'battery'} name {name!r} "
                             f"must be lower case letters, digits, '-' or '_'")
    return section


def _board(where, name, entry):
    what = f"{where}: board {name!r}"
    _check_keys(what, entry, tuple(BOARD_FIGURES) + BOARD_TEXT)
    per_mhz = "active_current_a_per_mhz" in entry
    if per_mhz and "active_current_a" in entry:
        raise BoardError(f"{what}: give active_current_a (at the clock) or "
                         f"active_current_a_per_mhz, not both")
    need = [k for k in BOARD_FIGURES
            if k not in ("active_current_a", "active_current_a_per_mhz")] + \
           ["active_current_a_per_mhz" if per_mhz else "active_current_a"]
    values, sources, approx = _figures(what, entry, need, BOARD_FIGURES)
    title = _text(what, entry, "title")
    mcu = _text(what, entry, "mcu", required=False) or title
    active = values["active_current_a_per_mhz"] * values["clock_hz"] / 1e6 if per_mhz \
        else values["active_current_a"]
    if per_mhz:
        # one name for the current at the clock, whichever way the file gave it
        sources["active_current_a"] = sources.pop("active_current_a_per_mhz")
        approx = ["active_current_a" if a == "active_current_a_per_mhz" else a for a in approx]
    if active > 5.0:
        raise BoardError(f"{what}: active current {active:g} A at {values['clock_hz']:g} Hz is more "
                         f"than 5 A: check the units (A, not mA)")
    if values["sleep_current_a"] >= active:
        raise BoardError(f"{what}: sleep_current_a ({values['sleep_current_a']:g} A) must be less than "
                         f"the active current ({active:g} A): check the units (A, not mA or uA)")
    return Board(name=name, title=title, mcu=mcu, core=values["core"],
                 clock_hz=float(values["clock_hz"]), flash_bytes=values["flash_bytes"],
                 ram_bytes=values["ram_bytes"], supply_v=float(values["supply_v"]),
                 active_current_a=float(active), sleep_current_a=float(values["sleep_current_a"]),
                 flash_wait_states=values["flash_wait_states"], cpi=values["cpi"],
                 sources=sources, approx=tuple(approx))


def _battery(where, name, entry):
    what = f"{where}: battery {name!r}"
    _check_keys(what, entry, tuple(BATTERY_FIGURES) + BATTERY_TEXT)
    values, sources, approx = _figures(what, entry, list(BATTERY_FIGURES), BATTERY_FIGURES)
    if values["self_discharge_per_year"] >= 1.0:
        raise BoardError(f"{what}: self_discharge_per_year must be a fraction below 1 (0.01 = 1 % a "
                         f"year), got {values['self_discharge_per_year']!r}")
    title = _text(what, entry, "title")
    return Battery(name=name, title=title,
                   chemistry=_text(what, entry, "chemistry", required=False) or "",
                   **{k: float(v) for k, v in values.items()}, sources=sources, approx=tuple(approx))


def _check_keys(what, entry, allowed):
    if not isinstance(entry, dict):
        raise BoardError(f"{what}: expected an object of figures, got {type(entry).__name__}")
    for key in entry:
        if key not in allowed:
            raise BoardError(f"{what}: unknown figure {key!r}{_did_you_mean(key, allowed)}")


def _figures(what, entry, need, kinds):
    """Check each needed figure: present, {value, source}, the right kind, in range."""
    values, sources, approx = {}, {}, []
    for key in need:
        if key not in entry:
            raise BoardError(f"{what}: figure {key!r} is missing (every board needs "
                             f"{', '.join(k for k in kinds if k != 'active_current_a_per_mhz')})")
        fig = entry[key]
        kind, lo, hi, lo_ok = kinds[key]
        value_keys = ("low", "typ", "high") if kind == "cpi" else ("value",)
        if not isinstance(fig, dict):
            raise BoardError(f"{what}: figure {key!r} must be an object "
                             f"{{{', '.join(repr(k) + ': ...' for k in value_keys)}, 'source': "
                             f"'data sheet, table'}}, got {fig!r}")
        allowed = value_keys + ("source", "approx")
        for k in fig:
            if k not in allowed:
                raise BoardError(f"{what}: figure {key!r} has an unknown field {k!r}; "
                                 f"expected {', '.join(allowed)}")
        for k in value_keys:
            if k not in fig:
                raise BoardError(f"{what}: figure {key!r} has no {k!r}")
        src = fig.get("source")
        if not isinstance(src, str) or not src.strip():
            raise BoardError(f"{what}: figure {key!r} needs a 'source' naming the data sheet "
                             f"(document, section or table) it came from")
        if not isinstance(fig.get("approx", False), bool):
            raise BoardError(f"{what}: figure {key!r}: 'approx' must be true or false")
        sources[key] = src.strip()
        if fig.get("approx", False):
            approx.append(key)
        if kind == "core":
            values[key] = _core(what, fig["value"])
        elif kind == "cpi":
            low, typ, high = (_number(what, f"{key}.{k}", fig[k], "number", lo, hi, lo_ok)
                              for k in value_keys)
            if not low <= typ <= high:
                raise BoardError(f"{what}: figure 'cpi' needs low <= typ <= high, got "
                                 f"{low:g}, {typ:g}, {high:g}")
            values[key] = CPI(float(low), float(typ), float(high))
        else:
            values[key] = _number(what, key, fig["value"], kind, lo, hi, lo_ok)
    return values, sources, approx


def _number(what, key, v, kind, lo, hi, lo_ok):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BoardError(f"{what}: figure {key!r} must be a finite number, got {v!r}")
    if kind == "int" and v != int(v):
        raise BoardError(f"{what}: figure {key!r} must be a whole number, got {v!r}")
    if (v < lo) if lo_ok else (v <= lo):
        sign = ">=" if lo_ok else ">"
        raise BoardError(f"{what}: figure {key!r} must be {sign} {lo:g}, got {v!r}")
    if v > hi:
        raise BoardError(f"{what}: figure {key!r} = {v!r} is above {hi:g}: check the units")
    return int(v) if kind == "int" else v


def _core(what, v):
    if v not in CORES:
        raise BoardError(f"{what}: figure 'core' must be one of {', '.join(CORES)}, got {v!r}"
                         f"{_did_you_mean(str(v), CORES)}")
    return v


def _text(what, entry, key, required=True):
    v = entry.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v.strip():
        raise BoardError(f"{what}: {key!r} must be a non-empty string")
    return v.strip()


def _did_you_mean(key, choices):
    close = difflib.get_close_matches(str(key), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key(name, what):
    if not isinstance(name, str):
        raise BoardError(f"a {what} is named by a string, got {name!r}")
    return name.strip().lower()


def _short(path):
    """The file name for messages: minitiny's own file by name, a user's as given."""
    return "minitiny/deploy/boards.json" if os.path.abspath(path) == DEFAULT_PATH else path


# ---------------------------------------------------------------------------------------
# The default table, read once
# ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _default():
    return load()


def catalog(path=None):
    """The Catalog of `path`, or minitiny's own (read once and kept)."""
    return _default() if path is None else load(path)


def get(name, path=None):
    """The Board called `name` ('nano33ble', 'stm32l4r5', 'tiny', ...); a Board passes through.

    'myboards.json:myboard' names a board in a file of your own (handy on a command line).
    """
    path, name = _in_file(name, path)
    return catalog(path).get(name)


def names(path=None):
    return catalog(path).names()


def battery(name, path=None):
    """The Battery called `name` ('cr2032', '2xaa', 'lipo500', or 'file.json:name');
    a Battery passes through."""
    path, name = _in_file(name, path)
    return catalog(path).battery(name)


def _in_file(name, path):
    """'file.json:name' -> (file.json, name); anything else is left as it is."""
    if path is None and isinstance(name, str) and ".json:" in name:
        file, _, name = name.rpartition(":")
        return file, name
    return path, name


def battery_names(path=None):
    return catalog(path).battery_names()


# ---------------------------------------------------------------------------------------
# Memory budget: does the model fit?
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    used: int
    budget: int

    @property
    def percent(self):
        return 100.0 * self.used / self.budget

    @property
    def fits(self):
        return self.used <= self.budget

    def __str__(self):
        s = f"{fmt_bytes(self.used)} of {fmt_bytes(self.budget)} ({self.percent:.1f}%"
        return s + (")" if self.fits else f", {fmt_bytes(self.used - self.budget)} over)")


@dataclass(frozen=True)
class BudgetCheck:
    board: Board
    flash: Usage            # None when the flash use was not given
    ram: Usage              # None when the RAM use was not given
    fits: bool
    message: str

    def as_dict(self):
        part = lambda u: None if u is None else {"used": u.used, "budget": u.budget,
                                                 "percent": u.percent, "fits": u.fits}
        return {"board": self.board.name, "fits": self.fits, "flash": part(self.flash),
                "ram": part(self.ram), "message": self.message}


def check_budget(board, flash_bytes, ram_bytes):
    """Flash and RAM use against the board's budget -> BudgetCheck (fits, per resource, message).

    `board` is a Board or a name; a use of None means not known yet and is not checked.
    """
    board = get(board)
    flash = None if flash_bytes is None else Usage(_bytes("flash_bytes", flash_bytes), board.flash_bytes)
    ram = None if ram_bytes is None else Usage(_bytes("ram_bytes", ram_bytes), board.ram_bytes)
    parts = [(label, u) for label, u in (("flash", flash), ("RAM", ram)) if u is not None]
    fits = all(u.fits for _, u in parts)
    head = f"fits {board.name}" if fits else f"does NOT fit {board.name}"
    body = "; ".join(f"{label} {u}" for label, u in parts) or "nothing to check"
    return BudgetCheck(board, flash, ram, fits, f"{head} ({board.mcu}): {body}")


def summary_lines(board, flash_bytes, ram_bytes):
    """The lines Model.summary(board=...) ends with: the model's int8 weights against the
    board's flash, its largest activation pair against the RAM (the model only: code,
    stack and runtime come on top)."""
    check = check_budget(board, flash_bytes, ram_bytes)

    def verdict(u):
        return f"{u.used:,} of {u.budget:,} bytes ({u.percent:.1f}%) " + \
            ("fits" if u.fits else "DOES NOT FIT")
    return [f"Board {board!r} (model only; code and runtime not counted):",
            f"  flash (int8 weights): {verdict(check.flash)}",
            f"  RAM (largest activation pair): {verdict(check.ram)}"]


def _bytes(what, n):
    try:
        ok = not isinstance(n, bool) and int(n) == n and n >= 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise BoardError(f"check_budget: {what} must be a whole number of bytes >= 0, got {n!r}")
    return int(n)


def fmt_bytes(n):
    """1536 -> '1.5 KB', 1048576 -> '1 MB' (1 KB = 1024 bytes, as data sheets count)."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{n / 1024 / 1024:.2f} MB".replace(".00 MB", " MB")
