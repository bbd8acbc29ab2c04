"""keras.initializers: the classes of minitiny/initializers.py under Keras' names; layers
take them, or their names, as kernel_initializer= / bias_initializer=."""
from minitiny.initializers import (CLASSES, Constant, GlorotNormal, GlorotUniform, HeNormal,
                                   HeUniform, Initializer, LecunNormal, LecunUniform, Ones,
                                   RandomNormal, RandomUniform, TruncatedNormal,
                                   VarianceScaling, Zeros, get, serialize)
from minitiny.keras._names import refuse

# Keras' snake_case aliases of the classes (keras.initializers.he_normal(), ...)
glorot_normal, glorot_uniform, he_normal, he_uniform = GlorotNormal, GlorotUniform, HeNormal, \
    HeUniform
lecun_normal, lecun_uniform, zeros, ones = LecunNormal, LecunUniform, Zeros, Ones
random_normal, random_uniform, truncated_normal, constant = RandomNormal, RandomUniform, \
    TruncatedNormal, Constant
variance_scaling = VarianceScaling


def deserialize(config):
    """Keras' config dict -> the Initializer."""
    return get(config)


NOT_IMPLEMENTED = dict.fromkeys(
    ("Orthogonal", "orthogonal", "Identity", "identity", "STFT", "STFTInitializer"),
    "minitiny has " + ", ".join(CLASSES))
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
