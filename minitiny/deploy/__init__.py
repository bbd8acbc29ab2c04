"""Deployment: from a quantized model to a board, and what it costs there.

    from minitiny.deploy import boards, power, verify_on_host, run_on_board
    boards.get("nano33ble").flash_bytes                 # the board table (boards.json)
    power.estimate(...)                                  # latency, energy, battery life
    check = verify_on_host(qmodel, "build/sine", x_int8) # the generated C vs NumPy int8

Files, in reading order:
    boards.py     the board table (boards.json): flash, RAM, clock, cycles per MAC, budgets
    power.py      latency, energy and battery life from a run's instruction count
    pipeline.py   the shared tail of every workflow: verify the C on the host, run it on an
                  emulated board, print a table
"""
from .pipeline import Check, run_on_board, text_table, verify_on_host

__all__ = ["Check", "run_on_board", "text_table", "verify_on_host"]
