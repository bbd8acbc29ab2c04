"""Keras arguments minitiny does not implement: refused by name, never silently ignored;
and the one way saved configs name a class ({"class_name", "config"}, looked up in a registry).

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


def serialize(obj):
    """An object with get_config() as saved configs hold it: {'class_name', 'config'}."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(registry, cfg, what):
    """{'class_name': ..., 'config': {...}} -> a new object of the class `registry` names
    (never a class the file names by itself: saved files cannot import code)."""
    cls = registry.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown {what} class {cfg.get('class_name')!r}; known: "
                         f"{sorted(registry)}")
    return cls(**cfg.get("config", {}))
