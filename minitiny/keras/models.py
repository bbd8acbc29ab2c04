"""keras.models: Sequential, Model, load_model, model_from_json."""
from minitiny.keras._names import refuse
from minitiny.models import Model, Sequential  # noqa: F401
from minitiny.saving import load_model, model_from_json, save_model  # noqa: F401

NOT_IMPLEMENTED = {"clone_model": "build the model again and copy get_weights()",
                   "model_from_yaml": "use model_from_json"}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
