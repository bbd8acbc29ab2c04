"""Boards, memory budgets and power estimates (minitiny/deploy/boards.py, minitiny/deploy/power.py).

Oracles: arithmetic worked by hand in the comments (units written out), the layer shapes of
the MLPerf Tiny models counted in a loop, and MLPerf Tiny's published energy/latency on the
STM32L4R5 (a measurement) against the board table's data-sheet current (a different source).
"""
import copy
import json
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitiny.deploy import boards, power
from minitiny.deploy.boards import BoardError
from minitiny.deploy.power import PowerError


# ---------------------------------------------------------------------------------------
# A board and a battery with round numbers, so every result can be worked by hand
# ---------------------------------------------------------------------------------------

def fig(value, source="hand-made test figure"):
    return {"value": value, "source": source}


HAND_BOARD = {
    "title": "hand-computed test board",
    "core": fig("cortex-m4"),
    "clock_hz": fig(100_000_000),           # 100 MHz
    "flash_bytes": fig(65536),
    "ram_bytes": fig(16384),
    "supply_v": fig(3.0),                   # 3 V
    "active_current_a": fig(0.010),         # 10 mA
    "sleep_current_a": fig(2e-6),           # 2 uA
    "flash_wait_states": fig(0),
    "cpi": {"low": 1.0, "typ": 2.0, "high": 4.0, "source": "hand-made"},
}
HAND_BATTERY = {
    "title": "hand-computed test cell",
    "voltage_v": fig(3.0),
    "capacity_mah": fig(876.6),             # 876.6 mAh * 10 %/year / 8766 h = 0.01 mA leak
    "derating": fig(0.5),
    "self_discharge_per_year": fig(0.1),
    "max_pulse_current_a": fig(0.1),
}


def write_file(tmp_path, boards_=None, batteries=None, name="mine.json"):
    doc = {}
    if boards_ is not None:
        doc["boards"] = boards_
    if batteries is not None:
        doc["batteries"] = batteries
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def hand(tmp_path):
    cat = boards.load(write_file(tmp_path, {"hand": HAND_BOARD}, {"cell": HAND_BATTERY}))
    return cat.get("hand"), cat.battery("cell")


# ---------------------------------------------------------------------------------------
# The arithmetic against hand-computed cases
# ---------------------------------------------------------------------------------------

def test_estimate_matches_hand_computation(hand):
    board, cell = hand
    e = power.estimate(1_000_000, board, "1/s", battery=cell)
    # typ: 1e6 instructions * CPI 2 = 2e6 cycles; / 100 MHz = 0.02 s
    assert e.latency_s.typ == pytest.approx(0.020, rel=1e-12)
    # E = 3 V * 10 mA * 20 ms = 0.6 mJ = 6e-4 J
    assert e.energy_j.typ == pytest.approx(6e-4, rel=1e-12)
    # duty: 20 ms awake every 1 s = 0.02
    assert e.duty_cycle.typ == pytest.approx(0.02, rel=1e-12)
    # I_avg = 0.02 * 10 mA + 0.98 * 2 uA = 200 uA + 1.96 uA = 201.96 uA
    assert e.average_current_a.typ == pytest.approx(201.96e-6, rel=1e-12)
    # P_avg = 3 V * 201.96 uA = 605.88 uW
    assert e.average_power_w.typ == pytest.approx(605.88e-6, rel=1e-12)
    # usable 876.6 mAh * 0.5 = 438.3 mAh; drain 0.20196 mA + leak 0.01 mA = 0.21196 mA
    assert e.battery_life_h.typ == pytest.approx(438.3 / 0.21196, rel=1e-12)   # 2067.8 h
    # best, CPI 1: 10 ms, 0.3 mJ, I = 0.01*10 mA + 0.99*2 uA = 101.98 uA
    assert e.latency_s.best == pytest.approx(0.010, rel=1e-12)
    assert e.energy_j.best == pytest.approx(3e-4, rel=1e-12)
    assert e.average_current_a.best == pytest.approx(101.98e-6, rel=1e-12)
    assert e.battery_life_h.best == pytest.approx(438.3 / 0.11198, rel=1e-12)
    # worst, CPI 4: 40 ms, 1.2 mJ, I = 0.04*10 mA + 0.96*2 uA = 401.92 uA
    assert e.latency_s.worst == pytest.approx(0.040, rel=1e-12)
    assert e.energy_j.worst == pytest.approx(1.2e-3, rel=1e-12)
    assert e.average_current_a.worst == pytest.approx(401.92e-6, rel=1e-12)
    assert e.battery_life_h.worst == pytest.approx(438.3 / 0.41192, rel=1e-12)
    assert e.lasts_a_year == "no" and e.below_1mw
    assert e.max_rate_hz == pytest.approx(50.0)                 # 1 / 20 ms


def test_rate_per_minute_changes_duty_cycle_only(hand):
    board, cell = hand
    e = power.estimate(1_000_000, board, "10/min", battery=cell)
    # one inference every 6 s: duty 0.02 s / 6 s; energy per inference unchanged
    d = 0.02 / 6
    assert e.duty_cycle.typ == pytest.approx(d, rel=1e-12)
    assert e.energy_j.typ == pytest.approx(6e-4, rel=1e-12)
    assert e.average_current_a.typ == pytest.approx(d * 0.010 + (1 - d) * 2e-6, rel=1e-12)


def test_exactly_one_year(tmp_path):
    # 1 mA active for 1 ms (1000 instructions, CPI 1, 1 MHz) once a second, no sleep current:
    # average 1 uA. A perfect 8.766 mAh cell: 8.766 mAh / 0.001 mA = 8766 h = 365.25 days.
    b = copy.deepcopy(HAND_BOARD)
    b.update(clock_hz=fig(1_000_000), active_current_a=fig(1e-3), sleep_current_a=fig(0.0),
             cpi={"low": 1, "typ": 1, "high": 1, "source": "hand"})
    cell = dict(HAND_BATTERY, capacity_mah=fig(8.766), derating=fig(1.0),
                self_discharge_per_year=fig(0.0))
    cat = boards.load(write_file(tmp_path, {"b": b}, {"c": cell}))
    e = power.estimate(1000, cat.get("b"), 1.0, battery=cat.battery("c"))
    assert e.average_current_a.typ == pytest.approx(1e-6, rel=1e-12)
    assert e.battery_life_years.typ == pytest.approx(1.0, rel=1e-9)
    assert e.battery_life_h.typ == pytest.approx(365.25 * 24, rel=1e-9)


def test_cpi_spread_orders_every_quantity():
    e = power.estimate(2_000_000, "nano33ble", "1/s", battery="cr2032")
    for s in (e.cpi, e.latency_s, e.energy_j, e.duty_cycle, e.average_current_a, e.average_power_w):
        assert s.best < s.typ < s.worst
    life = e.battery_life_h
    assert life.best > life.typ > life.worst        # low CPI: shorter wake, longer life
    # energy = active power * latency, at every CPI
    for t, en in zip((e.latency_s.best, e.latency_s.typ, e.latency_s.worst),
                     (e.energy_j.best, e.energy_j.typ, e.energy_j.worst)):
        assert en == pytest.approx(e.board.active_power_w * t, rel=1e-12)


def test_cpi_override(hand):
    board, _ = hand
    e = power.estimate(1_000_000, board, "1/s", cpi=3)
    assert e.latency_s.best == e.latency_s.typ == e.latency_s.worst == pytest.approx(0.03)
    e = power.estimate(1_000_000, board, "1/s", cpi=(1.5, 2.5, 3.5))
    assert e.latency_s.worst == pytest.approx(0.035)
    for bad in (0, -1, (3, 2, 1), (1, 2), "fast", float("nan")):
        with pytest.raises(PowerError, match="cpi"):
            power.estimate(1_000_000, board, "1/s", cpi=bad)


def test_extra_current_adds_to_average_not_energy(hand):
    board, _ = hand
    base = power.estimate(1_000_000, board, "1/s")
    more = power.estimate(1_000_000, board, "1/s", extra_current_a=50e-6)
    assert more.energy_j.typ == base.energy_j.typ
    assert more.average_current_a.typ == pytest.approx(base.average_current_a.typ + 50e-6, rel=1e-12)
    with pytest.raises(PowerError, match="extra_current_a"):
        power.estimate(1_000_000, board, "1/s", extra_current_a=-1e-6)


def test_cycles_per_mac(hand):
    board, _ = hand
    e = power.estimate(1_000_000, board, "1/s", macs=250_000)
    assert e.cycles_per_mac.typ == pytest.approx(8.0)           # 2e6 cycles / 250e3 MACs


@pytest.mark.parametrize("text, hz", [
    ("1/s", 1.0), ("10/min", 10 / 60), ("2/h", 2 / 3600), ("100/day", 100 / 86400),
    ("1/10s", 0.1), ("1 / 10 s", 0.1), ("0.5Hz", 0.5), ("0.5 Hz", 0.5), ("2 kHz", 2000.0),
    ("3 per minute", 0.05), ("1/500ms", 2.0), (4, 4.0), (0.25, 0.25)])
def test_parse_rate(text, hz):
    assert power.parse_rate(text) == pytest.approx(hz, rel=1e-12)


@pytest.mark.parametrize("bad", ["", "fast", "1/fortnight", "0/s", "1/0s", "-1/s", "0Hz", "1",
                                 0, -2.0, float("inf"), None, True])
def test_parse_rate_rejects(bad):
    with pytest.raises(PowerError, match="rate"):
        power.parse_rate(bad)


# ---------------------------------------------------------------------------------------
# Impossible and suspicious estimates
# ---------------------------------------------------------------------------------------

def test_inference_longer_than_the_period_is_refused(hand):
    board, _ = hand
    # typ latency 20 ms; at 100/s only 10 ms between inferences
    with pytest.raises(PowerError, match=r"lower the rate to at most 50/s"):
        power.estimate(1_000_000, board, "100/s")


def test_worst_case_overrun_is_a_warning(hand):
    board, _ = hand
    # 40/s: 25 ms between inferences; typ 20 ms fits, worst 40 ms does not
    e = power.estimate(1_000_000, board, "40/s")
    assert e.duty_cycle.typ == pytest.approx(0.8)
    assert e.duty_cycle.worst == 1.0
    assert e.average_current_a.worst == pytest.approx(0.010)
    assert any("worst CPI" in w for w in e.warnings)


def test_pulse_current_warning():
    e = power.estimate(1_000_000, "stm32h743", "1/s", battery="cr2032")
    assert any("cr2032" in w and "pulse" in w for w in e.warnings)
    assert not power.estimate(1_000_000, "stm32h743", "1/s", battery="2xaa").warnings


@pytest.mark.parametrize("bad", [0, -5, 1.5, "many", None, True])
def test_bad_instruction_count(bad):
    with pytest.raises(PowerError, match="instructions"):
        power.estimate(bad, "nano33ble", "1/s")


def test_unknown_names():
    with pytest.raises(BoardError, match="unknown board 'uno'.*nano33ble"):
        power.estimate(1000, "uno", "1/s")
    with pytest.raises(BoardError, match="unknown battery 'aaa'.*cr2032"):
        power.estimate(1000, "nano33ble", "1/s", battery="aaa")
    with pytest.raises(BoardError, match="is a core, not a board.*nano33ble"):
        boards.get("cortex-m4")


# ---------------------------------------------------------------------------------------
# Output: text table and dict for the HTML report
# ---------------------------------------------------------------------------------------

def test_text_and_dict_list_every_assumption():
    e = power.estimate(3_000_000, "stm32l4r5", "1/s", battery="cr2032", macs=2_656_768)
    text = str(e)
    assert "not measurements" in text and "stm32l4r5" in text
    for word in ("latency", "energy per inference", "average power", "battery life", "cycles per MAC"):
        assert word in text
    for src in (e.board.sources["active_current_a"], e.board.sources["sleep_current_a"],
                e.board.sources["cpi"], e.battery.sources["capacity_mah"]):
        assert src in text                          # each figure shown with its data sheet
    for k in e.board.approx:
        assert f"stm32l4r5.{k}" in text
    d = json.loads(json.dumps(e.as_dict()))         # plain JSON types only
    assert d["latency_s"]["typ"] == pytest.approx(e.latency_s.typ)
    assert "not measurements" in d["disclaimer"] and d["assumptions"]
    assert d["board"]["name"] == "stm32l4r5" and d["lasts_a_year"] in ("yes", "maybe", "no")
    table = power.format_table([e, power.estimate(3_000_000, "tiny", "1/s")])
    assert "stm32l4r5" in table and "tiny" in table and "not measurements" in table


def test_formatting_units():
    assert power.fmt_si(0.0123, "A") == "12.3 mA"
    assert power.fmt_si(999.96e-6, "A") == "1 mA"
    assert power.fmt_si(181.9e-3, "s", 4) == "181.9 ms"
    assert power.fmt_si(150.2e-3, "s", 2) == "150 ms"
    assert power.fmt_hours(30) == "30 h" and power.fmt_hours(24 * 10) == "10 days"
    assert power.fmt_hours(365.25 * 24 * 2) == "2 years"
    assert power.fmt_rate(1 / 60) == "1/min"


# ---------------------------------------------------------------------------------------
# The board table: shipped file, and a user's file with mistakes
# ---------------------------------------------------------------------------------------

def test_shipped_table_has_the_boards_the_issue_asks_for():
    cat = boards.load()                              # validates the whole file
    nano = cat.get("nano33ble")
    assert (nano.core, nano.clock_hz, nano.flash_bytes, nano.ram_bytes) == \
        ("cortex-m4", 64e6, 1024 * 1024, 256 * 1024)
    l4 = cat.get("stm32l4r5")
    assert (l4.core, l4.clock_hz, l4.flash_bytes, l4.ram_bytes) == \
        ("cortex-m4", 120e6, 2048 * 1024, 640 * 1024)
    assert any(b.core == "cortex-m7" and "stm32h7" in b.name for b in cat.boards.values())
    assert any(b.core == "cortex-m55" for b in cat.boards.values())
    tiny = cat.get("tiny")
    assert (tiny.flash_bytes, tiny.ram_bytes) == (64 * 1024, 16 * 1024)
    assert tiny.core in ("cortex-m0plus", "cortex-m4")
    assert {"cr2032", "2xaa"} <= set(cat.batteries)
    assert any("lipo" in name for name in cat.batteries)
    for b in cat.boards.values():
        assert b.core in boards.CORES
        assert set(b.sources) >= {"core", "clock_hz", "flash_bytes", "ram_bytes", "supply_v",
                                  "active_current_a", "sleep_current_a", "flash_wait_states", "cpi"}
        assert all(s.strip() for s in b.sources.values())
        assert 0 < b.sleep_current_a < b.active_current_a
    assert boards.get("NANO33BLE ") is nano or boards.get("NANO33BLE ") == nano


def test_board_current_agrees_with_mlperf_measurement():
    # Two independent sources: MLPerf Tiny measured energy / latency on the NUCLEO-L4R5ZI,
    # and the data sheet's 110 uA/MHz at 3 V in the board table. 7.37 mJ / 181.9 ms = 40.5 mW
    # against 3 V * 13.2 mA = 39.6 mW.
    l4 = boards.get("stm32l4r5")
    for p in power.PUBLISHED:
        assert p.power_w == pytest.approx(l4.active_power_w, rel=0.2), p


def test_published_macs_counted_from_the_layers():
    # DS-CNN (MLPerf Tiny KWS): input 49x10x1; conv 10x4 stride 2 'same' -> ceil(49/2) x ceil(10/2)
    h, w = math.ceil(49 / 2), math.ceil(10 / 2)
    layers = [h * w * 64 * (10 * 4 * 1)]                                  # first conv
    for _ in range(4):
        layers += [h * w * 64 * 3 * 3, h * w * 64 * 64]                   # depthwise, pointwise
    layers.append(64 * 12)                                                # dense
    dscnn = sum(layers)
    # FC autoencoder (MLPerf Tiny AD): 640-128-128-128-128-8-128-128-128-128-640
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    ae = sum(a * b for a, b in zip(widths, widths[1:]))
    macs = {p.model: p.macs for p in power.PUBLISHED}
    assert macs == {"DS-CNN": dscnn, "FC autoencoder": ae}
    text = power.sanity_table(20_000_000, dscnn)
    assert "181.9 ms" in text and "7.37 mJ" in text and "62.9 ms" in text and "10.05 ms" in text
    assert "your model" in text and "estimate" in text.lower()
    # the reference kernels' cycles per MAC: 181.9 ms * 120 MHz / 2,656,768 = 8.22
    assert power.PUBLISHED[0].cycles_per_mac(120e6) == pytest.approx(8.216, abs=1e-3)


def mutate(tmp_path, change, what="board"):
    """A copy of the hand board (or battery) with `change` applied, loaded from a file."""
    b, c = copy.deepcopy(HAND_BOARD), copy.deepcopy(HAND_BATTERY)
    change(b if what == "board" else c)
    return boards.load(write_file(tmp_path, {"mine": b}, {"cell": c}))


@pytest.mark.parametrize("change, message", [
    (lambda b: b.pop("sleep_current_a"), r"board 'mine': figure 'sleep_current_a' is missing"),
    (lambda b: b.update(active_current_a=fig(-0.001)), r"'active_current_a' must be > 0"),
    (lambda b: b.update(sleep_current_a=fig(-1e-6)), r"'sleep_current_a' must be >= 0"),
    (lambda b: b.update(clock_hz=fig(0)), r"'clock_hz' must be > 0"),
    (lambda b: b.update(clock_hz=fig("64 MHz")), r"'clock_hz' must be a finite number"),
    (lambda b: b.update(clock_hz=fig(True)), r"'clock_hz' must be a finite number"),
    (lambda b: b.update(flash_bytes=fig(1.5)), r"'flash_bytes' must be a whole number"),
    (lambda b: b.update(ram_bytes=fig(0)), r"'ram_bytes' must be > 0"),
    (lambda b: b.update(supply_v=fig(33)), r"'supply_v' = 33 is above 6: check the units"),
    (lambda b: b.update(active_current_a=fig(6.3)), r"above 5: check the units"),
    (lambda b: b.update(sleep_current_a=fig(0.02)), r"sleep_current_a .* must be less than"),
    (lambda b: b.update(clock_hz={"value": 64e6}), r"'clock_hz' needs a 'source'"),
    (lambda b: b.update(clock_hz={"value": 64e6, "source": "  "}), r"'clock_hz' needs a 'source'"),
    (lambda b: b.update(clock_hz=64e6), r"'clock_hz' must be an object"),
    (lambda b: b.update(clock_hz=dict(fig(64e6), unit="Hz")), r"unknown field 'unit'"),
    (lambda b: b.update(sleep_curent_a=b.pop("sleep_current_a")), r"did you mean 'sleep_current_a'"),
    (lambda b: b.update(core=fig("cortex-m5")), r"'core' must be one of"),
    (lambda b: b.update(cpi={"low": 2, "typ": 1, "high": 3, "source": "x"}), r"low <= typ <= high"),
    (lambda b: b.update(cpi={"low": 1, "typ": 2, "source": "x"}), r"'cpi' has no 'high'"),
    (lambda b: b.update(cpi={"low": 0, "typ": 1, "high": 2, "source": "x"}), r"'cpi.low' must be > 0"),
    (lambda b: b.update(flash_wait_states=fig(-1)), r"'flash_wait_states' must be >= 0"),
    (lambda b: b.update(active_current_a_per_mhz=fig(1e-4)), r"not both"),
    (lambda b: b.pop("title"), r"'title' must be a non-empty string"),
])
def test_bad_board_is_rejected(tmp_path, change, message):
    with pytest.raises(BoardError, match=message) as info:
        mutate(tmp_path, change)
    assert "mine.json" in str(info.value)           # the message names the file


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("capacity_mah"), r"battery 'cell': figure 'capacity_mah' is missing"),
    (lambda c: c.update(capacity_mah=fig(-220)), r"'capacity_mah' must be > 0"),
    (lambda c: c.update(derating=fig(0)), r"'derating' must be > 0"),
    (lambda c: c.update(derating=fig(1.2)), r"'derating' = 1.2 is above 1"),
    (lambda c: c.update(self_discharge_per_year=fig(1.0)), r"fraction below 1"),
])
def test_bad_battery_is_rejected(tmp_path, change, message):
    with pytest.raises(BoardError, match=message):
        mutate(tmp_path, change, what="battery")


def test_active_current_per_mhz(tmp_path):
    cat = mutate(tmp_path, lambda b: b.update(active_current_a_per_mhz=fig(110e-6, "per MHz"))
                 or b.pop("active_current_a"))
    assert cat.get("mine").active_current_a == pytest.approx(110e-6 * 100)    # 11 mA at 100 MHz
    assert cat.get("mine").sources["active_current_a"] == "per MHz"


def test_board_from_a_file_of_ones_own(tmp_path):
    path = write_file(tmp_path, {"hand": HAND_BOARD}, {"cell": HAND_BATTERY})
    assert boards.get(f"{path}:hand").clock_hz == 100e6
    assert boards.battery(f"{path}:cell").capacity_mah == 876.6
    assert boards.names(path) == ["hand"] and boards.battery_names(path) == ["cell"]
    e = power.estimate(1_000_000, f"{path}:hand", "1/s", battery=f"{path}:cell")
    assert e.latency_s.typ == pytest.approx(0.02)
    with pytest.raises(BoardError, match="unknown board 'nano33ble'"):
        boards.get(f"{path}:nano33ble")


def test_bad_files(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"boards": {"x": }')
    with pytest.raises(BoardError, match=r"broken.json: not valid JSON: line 1"):
        boards.load(bad)
    with pytest.raises(BoardError, match="cannot read"):
        boards.load(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(BoardError, match="expected a JSON object"):
        boards.load(tmp_path / "list.json")
    (tmp_path / "typo.json").write_text('{"bords": {}}')
    with pytest.raises(BoardError, match="did you mean 'boards'"):
        boards.load(tmp_path / "typo.json")
    with pytest.raises(BoardError, match="lower case"):
        boards.load(write_file(tmp_path, {"My Board": HAND_BOARD}))


# ---------------------------------------------------------------------------------------
# Memory budget
# ---------------------------------------------------------------------------------------

def test_budget_fits_and_fails():
    ok = boards.check_budget("tiny", flash_bytes=32 * 1024, ram_bytes=4 * 1024)
    assert ok.fits and ok.flash.percent == pytest.approx(50.0) and ok.ram.percent == pytest.approx(25.0)
    assert ok.message.startswith("fits tiny")
    edge = boards.check_budget("tiny", flash_bytes=65536, ram_bytes=16384)     # exactly full
    assert edge.fits
    over = boards.check_budget("tiny", flash_bytes=65537, ram_bytes=1000)
    assert not over.fits and not over.flash.fits and over.ram.fits
    assert "does NOT fit tiny" in over.message and "flash" in over.message and "over" in over.message
    ram_over = boards.check_budget(boards.get("tiny"), flash_bytes=np.int64(1000), ram_bytes=20_000)
    assert not ram_over.fits and ram_over.flash.fits and ram_over.ram.percent > 100
    big = boards.check_budget("nano33ble", flash_bytes=65537, ram_bytes=20_000)  # fits a bigger board
    assert big.fits
    assert json.loads(json.dumps(over.as_dict()))["fits"] is False


def test_budget_unknown_use_and_bad_input():
    half = boards.check_budget("tiny", flash_bytes=100_000, ram_bytes=None)
    assert half.ram is None and not half.fits
    for bad in (-1, 1.5, "10k", True):
        with pytest.raises(BoardError, match="flash_bytes must be a whole number"):
            boards.check_budget("tiny", flash_bytes=bad, ram_bytes=0)
    with pytest.raises(BoardError, match="unknown board"):
        boards.check_budget("nope", 1, 1)


# ---------------------------------------------------------------------------------------
# Properties over random boards
# ---------------------------------------------------------------------------------------

@given(clock=st.floats(1e6, 1e9), active=st.floats(1e-4, 0.5), sleep_frac=st.floats(0, 0.5),
       v=st.floats(1.7, 3.6), n=st.integers(1, 10**7), rate=st.floats(1e-4, 1e3))
def test_average_power_between_sleep_and_active(clock, active, sleep_frac, v, n, rate):
    board = boards.Board(name="r", title="r", mcu="r", core="cortex-m4", clock_hz=clock,
                         flash_bytes=1, ram_bytes=1, supply_v=v, active_current_a=active,
                         sleep_current_a=active * sleep_frac, flash_wait_states=0,
                         cpi=boards.CPI(1.0, 1.5, 2.0))
    try:
        e = power.estimate(n, board, rate, battery="cr2032")
    except PowerError:
        assert n * 1.5 / clock * rate > 1            # refused only when it cannot keep up
        return
    for p in (e.average_power_w.best, e.average_power_w.typ, e.average_power_w.worst):
        assert board.sleep_power_w * (1 - 1e-12) <= p <= board.active_power_w * (1 + 1e-12)
    slower = power.estimate(n, board, rate / 2, battery="cr2032")
    assert slower.battery_life_h.typ >= e.battery_life_h.typ
