"""The error of a malformed int8 model, shared by the graph and the kernels that check it."""


class GraphError(ValueError):
    """A QModel that is not well formed: names the op or tensor and what is wrong."""
