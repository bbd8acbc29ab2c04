"""Keras arguments minitiny does not implement: refused by name, never silently ignored.

Layers and optimizers take Keras' arguments; one minitiny lacks (activity_regularizer=,
clipnorm=, ...) would change the results if dropped, so it stops the program with the
argument's name and the list of what the class does take.
"""
import inspect


def refuse_arguments(what, unsupported, classes):
    """Keras arguments minitiny does not implement are refused by name, never ignored:
    the error lists what the `__init__` of `classes` (a class's MRO) does take."""
    taken = []
    for cls in classes:
        init = cls.__dict__.get("__init__")
        if init is not None:
            taken += [p.name for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    names = ", ".join(repr(k) for k in unsupported)
    raise TypeError(f"{what}: argument {names} is not implemented in minitiny (it would "
                    f"change the results if ignored); {what} takes: "
                    f"{', '.join(dict.fromkeys(taken))}")
