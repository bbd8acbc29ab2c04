"""keras.layers: every layer class of minitiny.layers (its registry), under Keras' names.

Layers added to minitiny.layers appear here by themselves: this module re-exports the
registry `minitiny.layers.LAYERS`, it never defines a layer.
"""
from minitiny.layers import LAYERS as _LAYERS
from minitiny.layers import Input, InputLayer, Layer, MaxPool2D, AvgPool2D  # noqa: F401
from minitiny.keras._names import refuse

globals().update(_LAYERS)

_CONV = "use Conv2D on (N, 1, T, C) with kernel_size=(1, k)"
NOT_IMPLEMENTED = {
    "Conv1D": _CONV, "MaxPooling1D": "use MaxPooling2D with pool_size=(1, k)",
    "AveragePooling1D": "use AveragePooling2D with pool_size=(1, k)",
    "GlobalAveragePooling1D": "use GlobalAveragePooling2D on (N, 1, T, C)",
    "GlobalMaxPooling2D": "use MaxPooling2D over the whole image, then Flatten",
    "GlobalMaxPooling1D": "", "Conv3D": "", "Conv1DTranspose": "", "Conv2DTranspose": "",
    "SeparableConv2D": "use DepthwiseConv2D followed by a 1x1 Conv2D",
    "SeparableConv1D": "", "UpSampling2D": "", "ZeroPadding2D": "use padding='same'",
    "Cropping2D": "", "Concatenate": "use Add for residual joins", "Multiply": "",
    "Subtract": "", "Average": "", "Maximum": "", "Minimum": "", "Dot": "",
    "Softmax": "use Activation('softmax')", "LeakyReLU": "use ReLU or Activation('relu')",
    "PReLU": "", "ELU": "", "ThresholdedReLU": "",
    "LSTM": "", "GRU": "", "SimpleRNN": "", "Bidirectional": "", "TimeDistributed": "",
    "ConvLSTM2D": "", "Embedding": "", "Attention": "", "MultiHeadAttention": "",
    "LayerNormalization": "use BatchNormalization", "GroupNormalization": "",
    "UnitNormalization": "", "Normalization": "normalise the data with minitiny.data."
    "Normalizer before fit", "Lambda": "custom code cannot be quantized or turned into C",
    "SpatialDropout2D": "use Dropout", "GaussianNoise": "", "GaussianDropout": "",
    "ActivityRegularization": "", "Masking": "", "RepeatVector": "", "Permute": "",
    "TextVectorization": "", "StringLookup": "", "IntegerLookup": "", "Hashing": "",
    "CategoryEncoding": "", "Discretization": "", "CenterCrop": "", "RandomCrop": "",
    "RandomBrightness": "use RandomContrast, or Rescaling with a random scale in the data",
}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
