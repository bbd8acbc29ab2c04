"""Latency, energy, average power and battery life of one model on one board.

These are ESTIMATES FROM INSTRUCTION COUNTS, NOT MEASUREMENTS. The emulator (QEMU) counts
the instructions one inference executes; it does not model the pipeline, so it cannot say
how many clock cycles they take. We multiply by a cycles-per-instruction (CPI) range from
the board table (minitiny/deploy/boards.json) and carry that range through every figure:

    best  = the board's low CPI   (loads pipelined, loops in cache)
    typ   = its typical CPI
    worst = its high CPI          (cache misses paying the flash wait states)

The arithmetic, once (units in brackets):

    cycles  = instructions * CPI
    t       = cycles / f_clock                          latency per inference    [s]
    E       = V * I_active * t                          energy per inference     [J]
    d       = t * rate                                  duty cycle: share of time awake
    I_avg   = d * I_active + (1 - d) * I_sleep          average current          [A]
    P_avg   = V * I_avg                                 average power            [W]
    I_self  = C * self_discharge_per_year / 1 year      the cell's own leak      [A]
    life    = C * derating / (I_avg + I_self)           battery life             [h]

The battery is a store of charge (mAh), not of energy: wired straight to the cell, or through
a linear regulator (LDO), a microcontroller draws the same current from the cell whatever the
cell's voltage. A switching regulator would stretch the life a little; its quiescent current
would shorten it.

The TinyML rule of thumb says a device averaging below 1 mW lives a year on a battery. The
arithmetic makes it precise: a CR2032 holds 235 mAh at 3 V, about 2.5 kJ; spread over a year
(31.6 million s) that is 80 uW, so a year on a coin cell needs well under 1 mW. Two AA cells
(2500 mAh at 3 V, 27 kJ) give 0.86 mW for a year. Either way the device must sleep most of the
time: at 1 inference/s and 20 ms per inference the duty cycle is 2 %, and the sleep current
matters as much as the active one.

    est = estimate(2_700_000, "nano33ble", parse_rate("1/s"), battery="cr2032")
    print(est)                          # the table, with every assumption listed
    est.as_dict()                       # the same, for the HTML report

A sanity table (`sanity_table`) sets the estimate beside MLPerf Tiny's published
measurements of other inference engines on the STM32L4R5.
"""
import math
import re
from dataclasses import dataclass

from . import boards as _boards

HOURS_PER_YEAR = 365.25 * 24        # 8766 h
ONE_MW = 1e-3                       # the TinyML bar for "a year on a coin cell" [W]
DISCLAIMER = ("ESTIMATES from instruction counts x a CPI range, not measurements: "
              "measure on the hardware before you rely on them.")


class PowerError(ValueError):
    """An estimate that cannot be made: says which input and why."""


# ---------------------------------------------------------------------------------------
# Inputs: the inference rate
# ---------------------------------------------------------------------------------------

_PER = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
        "min": 60.0, "minute": 60.0, "minutes": 60.0,
        "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
        "d": 86400.0, "day": 86400.0, "days": 86400.0}
_HZ = {"hz": 1.0, "khz": 1e3}
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_RATE_PER = re.compile(rf"^\s*(?P<n>{_NUM})\s*(?:/|per\s)\s*(?P<every>{_NUM})?\s*(?P<unit>[a-z]+)\s*$")
_RATE_HZ = re.compile(rf"^\s*(?P<n>{_NUM})\s*(?P<unit>[a-z]+)\s*$")


def parse_rate(rate):
    """'1/s', '10/min', '2/h', '100/day', '1/10s' (one every 10 s), '0.5Hz' -> inferences per second.

    A plain number is taken as Hz already.
    """
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        hz = float(rate)
    elif isinstance(rate, str):
        text = rate.strip().lower()
        m_per, m_hz = _RATE_PER.match(text), _RATE_HZ.match(text)
        if m_per and m_per["unit"] in _PER:
            every = float(m_per["every"]) if m_per["every"] else 1.0
            period = every * _PER[m_per["unit"]]
            if period <= 0:
                raise PowerError(f"rate {rate!r}: the period must be longer than zero")
            hz = float(m_per["n"]) / period
        elif m_hz and m_hz["unit"] in _HZ:
            hz = float(m_hz["n"]) * _HZ[m_hz["unit"]]
        else:
            raise PowerError(f"rate {rate!r}: expected inferences per time, e.g. '1/s', '10/min', "
                             f"'2/h', '100/day', '1/10s' or '0.5Hz'")
    else:
        raise PowerError(f"rate must be a string such as '1/s' or a number in Hz, got {rate!r}")
    if not math.isfinite(hz) or hz <= 0:
        raise PowerError(f"rate {rate!r}: must be more than zero inferences per second")
    return hz


# ---------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """One quantity at the best, typical and worst CPI."""
    best: float
    typ: float
    worst: float

    def as_dict(self):
        return {"best": self.best, "typ": self.typ, "worst": self.worst}


@dataclass(frozen=True)
class Estimate:
    board: object               # boards.Board
    battery: object             # boards.Battery or None
    instructions: int           # per inference, from the emulated run
    rate_hz: float              # inferences per second
    macs: int                   # multiply-accumulates per inference, or None
    extra_current_a: float      # always-on current of the rest of the device
    cpi: Spread
    latency_s: Spread
    energy_j: Spread            # per inference, active
    duty_cycle: Spread
    average_current_a: Spread
    average_power_w: Spread
    battery_life_h: Spread      # None without a battery
    warnings: tuple
    assumptions: tuple

    @property
    def battery_life_years(self):
        if self.battery_life_h is None:
            return None
        return Spread(*(h / HOURS_PER_YEAR for h in _values(self.battery_life_h)))

    @property
    def cycles_per_mac(self):
        if not self.macs:
            return None
        return Spread(*(self.instructions * c / self.macs for c in _values(self.cpi)))

    @property
    def max_rate_hz(self):
        """The most inferences per second the board sustains at the typical CPI."""
        return 1.0 / self.latency_s.typ

    @property
    def below_1mw(self):
        return self.average_power_w.typ < ONE_MW

    @property
    def lasts_a_year(self):
        """'yes' (even at the worst CPI), 'maybe' (at the best only), 'no', or None."""
        if self.battery_life_h is None:
            return None
        life = self.battery_life_h
        return "yes" if life.worst >= HOURS_PER_YEAR else \
            "maybe" if life.best >= HOURS_PER_YEAR else "no"

    def as_dict(self):
        sp = lambda s: None if s is None else s.as_dict()
        return {"disclaimer": DISCLAIMER,
                "board": self.board.as_dict(),
                "battery": None if self.battery is None else self.battery.as_dict(),
                "instructions": self.instructions, "rate_hz": self.rate_hz, "macs": self.macs,
                "extra_current_a": self.extra_current_a,
                "cpi": sp(self.cpi), "latency_s": sp(self.latency_s), "energy_j": sp(self.energy_j),
                "duty_cycle": sp(self.duty_cycle),
                "average_current_a": sp(self.average_current_a),
                "average_power_w": sp(self.average_power_w),
                "battery_life_h": sp(self.battery_life_h),
                "battery_life_years": sp(self.battery_life_years),
                "cycles_per_mac": sp(self.cycles_per_mac),
                "max_rate_hz": self.max_rate_hz, "below_1mw": self.below_1mw,
                "lasts_a_year": self.lasts_a_year,
                "warnings": list(self.warnings), "assumptions": list(self.assumptions)}

    def table(self):
        return format_estimate(self)

    __str__ = table


def estimate(instructions, board, rate_hz, battery=None, cpi=None, macs=None, extra_current_a=0.0):
    """Latency, energy, average power and battery life of one inference stream -> Estimate.

    instructions     executed per inference (from the emulated run)
    board            a boards.Board or its name
    rate_hz          inferences per second, or a string for parse_rate ('1/s')
    battery          a boards.Battery, its name, or None
    cpi              None: the board's low/typ/high; a number: that CPI alone (no spread);
                     a (low, typ, high) triple
    macs             multiply-accumulates per inference, to report cycles per MAC
    extra_current_a  always-on current of the rest of the device (sensor, regulator), added
                     to the average current but not to the energy per inference
    """
    board = _boards.get(board)
    battery = None if battery is None else _boards.battery(battery)
    n = _count("instructions", instructions)
    macs = None if macs is None else _count("macs", macs)
    hz = parse_rate(rate_hz)
    extra = _current("extra_current_a", extra_current_a)
    cpis = _cpi(board, cpi)

    # ---- the arithmetic of the module docstring, once per CPI ----
    v, i_on, i_off = board.supply_v, board.active_current_a, board.sleep_current_a
    latency, energy = _per_inference(n, board, cpis)
    duty = [t * hz for t in latency]                          # d = t * rate
    warnings = []
    if duty[1] > 1.0:
        raise PowerError(
            f"rate {fmt_rate(hz)} leaves {fmt_si(1 / hz, 's')} per inference, but one inference "
            f"takes about {fmt_si(latency[1], 's')} on {board.name} at the typical CPI "
            f"{cpis[1]:g} (duty cycle {duty[1]:.2f} > 1): lower the rate to at most "
            f"{fmt_rate(1 / latency[1])} or choose a faster board")
    if duty[2] > 1.0:
        warnings.append(
            f"at the worst CPI ({cpis[2]:g}) one inference takes {fmt_si(latency[2], 's')}, longer than "
            f"the {fmt_si(1 / hz, 's')} between inferences: the worst case is shown running without "
            f"sleep (duty cycle 1) and would fall behind the rate")
        duty[2] = 1.0
    current = [d * i_on + (1 - d) * i_off + extra for d in duty]  # I_avg
    power = [v * i for i in current]                              # P_avg = V * I_avg
    life = None
    if battery is not None:
        usable_mah = battery.capacity_mah * battery.derating
        self_ma = battery.capacity_mah * battery.self_discharge_per_year / HOURS_PER_YEAR
        life = Spread(*(usable_mah / (i * 1e3 + self_ma) for i in current))  # mAh / mA = h
        if i_on + extra > battery.max_pulse_current_a:
            warnings.append(
                f"{battery.name} is rated for pulses up to {fmt_si(battery.max_pulse_current_a, 'A')}; "
                f"{board.name} draws {fmt_si(i_on + extra, 'A')} while inferring: the cell voltage will "
                f"sag (a reservoir capacitor, a bigger cell or another battery is needed)")
    return Estimate(board=board, battery=battery, instructions=n, rate_hz=hz, macs=macs,
                    extra_current_a=extra, cpi=Spread(*cpis), latency_s=Spread(*latency),
                    energy_j=Spread(*energy), duty_cycle=Spread(*duty),
                    average_current_a=Spread(*current), average_power_w=Spread(*power),
                    battery_life_h=life, warnings=tuple(warnings),
                    assumptions=tuple(_assumptions(board, battery, cpi, extra)))


def _per_inference(n, board, cpis):
    """Latency [s] and energy [J] of one inference of n instructions, at each CPI."""
    latency = [n * c / board.clock_hz for c in cpis]                       # t = n * CPI / f
    energy = [board.supply_v * board.active_current_a * t for t in latency]  # E = V * I_active * t
    return latency, energy


def _cpi(board, cpi):
    if cpi is None:
        return [board.cpi.low, board.cpi.typ, board.cpi.high]
    triple = [cpi] * 3 if isinstance(cpi, (int, float)) and not isinstance(cpi, bool) else cpi
    try:
        triple = [float(c) for c in triple]
    except (TypeError, ValueError):
        raise PowerError(f"cpi must be a number or (low, typ, high), got {cpi!r}") from None
    if len(triple) != 3 or not all(math.isfinite(c) and c > 0 for c in triple) \
            or not triple[0] <= triple[1] <= triple[2]:
        raise PowerError(f"cpi must be a positive number or (low, typ, high) with "
                         f"low <= typ <= high, got {cpi!r}")
    return triple


def _count(what, n):
    try:
        ok = not isinstance(n, bool) and int(n) == n and n > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise PowerError(f"{what} must be a whole number > 0 per inference, got {n!r}")
    return int(n)


def _current(what, a):
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
        raise PowerError(f"{what} must be a current >= 0 in amperes, got {a!r}")
    return float(a)


def _assumptions(board, battery, cpi, extra):
    """Every figure the estimate used, with where it came from."""
    src = _Sources(board.sources)
    out = [DISCLAIMER,
           f"cycles = instructions x CPI; CPI {_cpi_text(board, cpi)}",
           f"clock {fmt_si(board.clock_hz, 'Hz')} ({src['clock_hz']})",
           f"active current {fmt_si(board.active_current_a, 'A')} while inferring, from flash "
           f"({src['active_current_a']})",
           f"sleep current {fmt_si(board.sleep_current_a, 'A')} between inferences "
           f"({src['sleep_current_a']})",
           f"supply {board.supply_v:g} V, power = V x I ({src['supply_v']})",
           "the microcontroller only: no sensor, feature extraction (e.g. MFCC), radio, LEDs or "
           "development-board regulators, unless given as extra current",
           "the core runs at full clock while inferring and sleeps otherwise; wake-up time and "
           "energy (microseconds) are neglected; currents are typical at 25 C"]
    if extra:
        out.append(f"extra always-on current {fmt_si(extra, 'A')} (rest of the device)")
    if battery is not None:
        bs = _Sources(battery.sources)
        out += [f"battery {battery.title}: {battery.capacity_mah:g} mAh ({bs['capacity_mah']}) "
                f"x derating {battery.derating:g} ({bs['derating']}) = "
                f"{battery.capacity_mah * battery.derating:g} mAh usable",
                f"self-discharge {100 * battery.self_discharge_per_year:g} % of capacity a year, "
                f"taken as a constant leak ({bs['self_discharge_per_year']})",
                "battery life counts charge (mAh): on the cell directly or through a linear "
                "regulator the chip draws the same current from the cell; 1 year = 365.25 days"]
    approx = [f"{board.name}.{k}" for k in board.approx] + \
        ([f"{battery.name}.{k}" for k in battery.approx] if battery is not None else [])
    if approx:
        out.append("approximate figures (check the data sheet): " + ", ".join(approx))
    return out


class _Sources(dict):
    """A figure's source; a Board built in code rather than read from a file has none."""
    def __missing__(self, key):
        return "no source given"


def _cpi_text(board, cpi):
    if cpi is not None:
        return f"given by the caller ({cpi}), not the board's range"
    c, src = board.cpi, _Sources(board.sources)
    return (f"{c.low:g} / {c.typ:g} / {c.high:g} (best / typ / worst) for the {board.core} with "
            f"{board.flash_wait_states} flash wait states ({src['cpi']}; "
            f"wait states: {src['flash_wait_states']})")


# ---------------------------------------------------------------------------------------
# Text: one estimate in full, many boards in a table
# ---------------------------------------------------------------------------------------

def rows(est):
    """The estimate as (label, best, typ, worst) strings: the text table and the HTML report
    both print these."""
    table = [("cycles per instruction", est.cpi, lambda x: f"{x:.2f}"),
             ("latency per inference", est.latency_s, lambda x: fmt_si(x, "s")),
             ("energy per inference", est.energy_j, lambda x: fmt_si(x, "J")),
             ("duty cycle", est.duty_cycle, lambda x: f"{_sig(100 * x)} %"),
             ("average current", est.average_current_a, lambda x: fmt_si(x, "A")),
             ("average power", est.average_power_w, lambda x: fmt_si(x, "W"))]
    if est.battery_life_h is not None:
        table.append((f"battery life ({est.battery.name})", est.battery_life_h, fmt_hours))
    if est.macs:
        table.append(("cycles per MAC", est.cycles_per_mac, _sig))
    return [(label, *(f(x) for x in _values(s))) for label, s, f in table]


def format_estimate(est):
    b = est.board
    lines = [f"Power estimate: {b.name} ({b.title}: {b.mcu}, {b.core} @ {fmt_si(b.clock_hz, 'Hz')})",
             DISCLAIMER,
             f"workload: {est.instructions:,} instructions per inference, {fmt_rate(est.rate_hz)}"
             + (f", {est.macs:,} MACs" if est.macs else "")
             + (f", battery {est.battery.title}" if est.battery else ""),
             "",
             f"{'':24}{'best':>12}{'typ':>12}{'worst':>12}"]
    for label, *values in rows(est):
        lines.append(f"{label:24}" + "".join(f"{v:>12}" for v in values))
    lines.append("")
    p = est.average_power_w.typ
    verdict = f"average power {fmt_si(p, 'W')} (typ) is {'below' if p < ONE_MW else 'above'} the 1 mW bar"
    if est.battery is not None:
        verdict += f"; a year on {est.battery.name}: {est.lasts_a_year}"
    lines.append(f"verdict: {verdict}; the board sustains at most {fmt_rate(est.max_rate_hz)} (typ)")
    lines += [f"warning: {w}" for w in est.warnings]
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in est.assumptions[1:]]    # [0] is the disclaimer, shown above
    return "\n".join(lines)


def format_table(estimates):
    """One row per estimate (e.g. one model on each board), typical values with the spread."""
    estimates = list(estimates)
    head = (f"{'board':12} {'core':14} {'clock':>8}  {'latency typ (best-worst)':28} "
            f"{'energy/inf':>10}  {'avg power':>9}  {'battery life typ (worst-best)':36} year?")
    lines = [DISCLAIMER, head, "-" * len(head)]
    for e in estimates:
        lat = e.latency_s
        life = "-" if e.battery_life_h is None else \
            f"{fmt_hours(e.battery_life_h.typ)} ({fmt_hours(e.battery_life_h.worst)}-" \
            f"{fmt_hours(e.battery_life_h.best)})"
        lines.append(
            f"{e.board.name:12} {e.board.core:14} {fmt_si(e.board.clock_hz, 'Hz'):>8}  "
            f"{fmt_si(lat.typ, 's') + ' (' + fmt_si(lat.best, 's') + '-' + fmt_si(lat.worst, 's') + ')':28} "
            f"{fmt_si(e.energy_j.typ, 'J'):>10}  {fmt_si(e.average_power_w.typ, 'W'):>9}  "
            f"{life:36} {e.lasts_a_year or '-'}")
    if any(e.battery is not None for e in estimates):
        lines.append("year? yes: a year even at the worst CPI; maybe: only at the best; no: not even then")
    for e in estimates:
        lines += [f"warning ({e.board.name}): {w}" for w in e.warnings]
    return "\n".join(lines)


def _values(s):
    return (s.best, s.typ, s.worst)


_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
             (1e-12, "p"))


def fmt_si(x, unit, digits=3):
    """0.0123, 'A' -> '12.3 mA' (`digits` significant digits, SI prefix)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g} {unit}"
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale * (1 - 0.5 * 10 ** -digits):     # 999.96 uA rounds up to 1 mA
            break
    return f"{_sig(x / scale, digits)} {prefix}{unit}"


def _sig(x, digits=3):
    """x to `digits` significant digits, never in exponent form: 150.2 -> '150', 0.5 -> '0.5'."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    r = round(x, digits - 1 - math.floor(math.log10(abs(x))))
    decimals = max(digits - 1 - math.floor(math.log10(abs(r))), 0)
    text = f"{r:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_hours(h):
    if h < 1:
        return f"{_sig(60 * h)} min"
    if h < 48:
        return f"{_sig(h)} h"
    if h < HOURS_PER_YEAR:
        return f"{_sig(h / 24)} days"
    return f"{_sig(h / HOURS_PER_YEAR)} years"


def fmt_rate(hz):
    for per, unit in ((1.0, "s"), (60.0, "min"), (3600.0, "h"), (86400.0, "day")):
        if hz * per >= 0.9995 or unit == "day":
            return f"{_sig(hz * per)}/{unit}"


# ---------------------------------------------------------------------------------------
# Sanity table: published measurements of other engines on the STM32L4R5
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Published:
    task: str
    model: str
    macs: int                 # per inference, counted from the model's layers (below)
    engine: str
    latency_s: float
    energy_j: float
    board: str
    source: str

    @property
    def power_w(self):
        return self.energy_j / self.latency_s          # measured average power while inferring

    def cycles_per_mac(self, clock_hz):
        return self.latency_s * clock_hz / self.macs


# MACs counted from the MLPerf Tiny reference models (github.com/mlcommons/tiny, training/):
#   DS-CNN (keyword spotting), input 49x10x1: conv 10x4 stride 2 'same', 64 ch -> 25x5x64:
#     25*5*64*10*4 = 320,000; then 4 x (depthwise 3x3: 25*5*64*9 = 72,000 + pointwise
#     64->64: 25*5*64*64 = 512,000); dense 64->12: 768.   Total 2,656,768.
#   FC autoencoder (anomaly detection), 640 -> 128 x4 -> 8 -> 128 x4 -> 640:
#     2*640*128 + 6*128*128 + 2*128*8 = 264,192.
_MLPERF = ("MLPerf Tiny v1.x inference results (MLCommons), closed division, NUCLEO-L4R5ZI at 120 MHz")
PUBLISHED = (
    Published("keyword spotting", "DS-CNN", 2_656_768, "TFLM reference kernels",
              181.9e-3, 7.37e-3, "stm32l4r5", _MLPERF),
    Published("keyword spotting", "DS-CNN", 2_656_768, "X-CUBE-AI",
              62.9e-3, 2.83e-3, "stm32l4r5", _MLPERF),
    Published("anomaly detection", "FC autoencoder", 264_192, "TFLM reference kernels",
              10.05e-3, 0.42e-3, "stm32l4r5", _MLPERF),
    Published("anomaly detection", "FC autoencoder", 264_192, "X-CUBE-AI",
              6.86e-3, 0.29e-3, "stm32l4r5", _MLPERF),
)


def sanity_table(instructions=None, macs=None, board="stm32l4r5", cpi=None):
    """Published measurements beside minitiny's estimate for the same instructions on `board`.

    Cycles per MAC puts models of different sizes on one scale: the TFLM reference kernels
    spend about 8 cycles per MAC on DS-CNN, an optimised engine about 3.
    """
    board = _boards.get(board)
    head = (f"{'task':18} {'model':15} {'MACs':>10}  {'engine':34} {'latency':>22} "
            f"{'energy':>22} {'power':>8} {'cycles/MAC':>16}")
    lines = [f"Sanity check: MLPerf Tiny published MEASUREMENTS on {board.name} ({board.mcu}, "
             f"{fmt_si(board.clock_hz, 'Hz')}) beside minitiny's ESTIMATE for its own kernels",
             head, "-" * len(head)]
    for p in PUBLISHED:
        if p.board != board.name:
            continue
        lines.append(f"{p.task:18} {p.model:15} {p.macs:>10,}  {p.engine + ' (measured)':34} "
                     f"{fmt_si(p.latency_s, 's', 4):>22} {fmt_si(p.energy_j, 'J'):>22} "
                     f"{fmt_si(p.power_w, 'W'):>8} {_sig(p.cycles_per_mac(board.clock_hz)):>16}")
    if instructions is not None:
        n = _count("instructions", instructions)
        macs = None if macs is None else _count("macs", macs)
        latency, energy = (Spread(*x) for x in _per_inference(n, board, _cpi(board, cpi)))
        span = lambda s, f: f"{f(s.typ)} ({f(s.best)}-{f(s.worst)})"
        cpm = "-" if not macs else span(Spread(*(t * board.clock_hz / macs for t in _values(latency))),
                                        lambda x: _sig(x, 2))
        lines.append(f"{'your model':18} {'':15} {(f'{macs:,}' if macs else '?'):>10}  "
                     f"{'minitiny kernels (estimate)':34} {span(latency, lambda x: fmt_si(x, 's', 2)):>22} "
                     f"{span(energy, lambda x: fmt_si(x, 'J', 2)):>22} "
                     f"{fmt_si(board.active_power_w, 'W', 2):>8} {cpm:>16}")
    lines.append(f"source: {_MLPERF}; power = energy / latency; the board table says "
                 f"{fmt_si(board.active_power_w, 'W')} active")
    return "\n".join(lines)

