"""Keras names minitiny does not implement: refused by name, with what minitiny has instead.

Each module of minitiny.keras lists the tf.keras names it lacks and installs

    __getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())

so `keras.layers.LSTM` or `from minitiny.keras.layers import LSTM` raises NotInMinitiny
(an ImportError, so `from ... import` keeps the message) naming LSTM, a hint where there is
one, and the names the module does have. A name Keras does not have either (a typo) gets
the usual AttributeError, with the same list.
"""


class NotInMinitiny(ImportError, NotImplementedError):
    """A tf.keras name (layer, optimizer, loss, ...) that minitiny does not implement."""


def public(module, namespace):
    """The names `module` offers: not private, not a module it merely imports."""
    return sorted(n for n, v in namespace.items()
                  if not n.startswith("_") and n not in ("NOT_IMPLEMENTED", "refuse")
                  and (type(v).__name__ != "module" or v.__name__.startswith(module + ".")))


def refuse(module, missing, namespace):
    """A module-level __getattr__ (PEP 562) for `module`; `missing` maps a Keras name to
    a hint ('' when there is none)."""
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        have = ", ".join(public(module, namespace))
        if name in missing:
            hint = f" ({missing[name]})" if missing[name] else ""
            raise NotInMinitiny(f"{module}.{name} is a Keras name minitiny does not "
                                f"implement{hint}; {module} has: {have}", name=name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}; it has: {have}")
    return __getattr__
