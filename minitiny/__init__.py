"""minitiny: TinyML from data to a Cortex-M, in code small enough to read."""
__version__ = "0.1.0"
