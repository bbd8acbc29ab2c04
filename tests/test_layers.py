"""Layers: shapes, weights, forward maths against NumPy formulas, gradients against finite
differences (tests/gradcheck.py), BatchNormalization's training vs inference semantics
(Ioffe & Szegedy 2015; Keras' moving-average update), names, configs and freezing."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minitiny as mt
from minitiny import layers as L
from minitiny.tensor import Tensor

from gradcheck import gradcheck


def test_dense_forward_is_x_w_plus_b_then_activation():
    r = np.random.default_rng(0)
    layer = L.Dense(3, activation="relu")
    x = r.normal(size=(5, 4)).astype(np.float32)
    out = layer(x)
    w, b = layer.get_weights()
    assert w.shape == (4, 3) and b.shape == (3,)
    np.testing.assert_allclose(out.data, np.maximum(x @ w + b, 0), rtol=1e-6)
    assert layer.input_shape == (4,) and layer.output_shape == (3,)


def test_dense_takes_rank_1_input_as_one_feature():
    layer = L.Dense(2, input_shape=[1])
    out = layer(np.array([1.0, 2.0, 3.0]))
    w, b = layer.get_weights()
    np.testing.assert_allclose(out.data, np.array([[1.0], [2.0], [3.0]]) @ w + b, rtol=1e-6)


def test_glorot_uniform_limits_follow_the_fans():
    mt.random.seed(0)
    layer = L.Conv2D(16, 3)
    layer.ensure_built((8, 8, 4))
    k = layer.get_weights()[0]
    limit = math.sqrt(6 / (3 * 3 * 4 + 3 * 3 * 16))   # Glorot & Bengio with receptive field
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    assert np.all(layer.get_weights()[1] == 0)


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_gradients(act):
    r = np.random.default_rng(1)
    layer = L.Dense(3, activation=act, dtype="float64")
    layer.ensure_built((4,))
    x, w, b = r.normal(size=(2, 4)), r.normal(size=(4, 3)), r.normal(size=(3,))

    def f(x, w, b):
        layer.kernel, layer.bias = w, b            # differentiate through the layer's call
        return layer.call(x)
    gradcheck(f, x, w, b)


def test_conv_and_pool_layers_call_ops_with_their_settings():
    r = np.random.default_rng(2)
    x = r.normal(size=(2, 7, 7, 3)).astype(np.float32)
    conv = L.Conv2D(4, (3, 2), strides=2, padding="same", activation="relu6")
    out = conv(x)
    # TF 'same': ceil(7 / 2) = 4 rows and columns
    assert out.shape == (2, 4, 4, 4) == (2,) + conv.output_shape
    want = mt.ops.conv2d(Tensor(x), conv.kernel, conv.bias, (2, 2), "same").data
    np.testing.assert_allclose(out.data, np.clip(want, 0, 6), rtol=1e-6)
    dw = L.DepthwiseConv2D(3, depth_multiplier=2)
    assert dw(x).shape == (2, 5, 5, 6) and dw.get_weights()[0].shape == (3, 3, 3, 2)
    assert L.MaxPooling2D()(x).shape == (2, 3, 3, 3)
    assert L.AveragePooling2D(3, strides=1, padding="same")(x).shape == (2, 7, 7, 3)
    gap = L.GlobalAveragePooling2D()(x)
    np.testing.assert_allclose(gap.data, x.mean(axis=(1, 2)), rtol=1e-6)


def test_flatten_reshape_add_relu_activation():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10
    np.testing.assert_array_equal(L.Flatten()(x).data, x.reshape(2, 12))
    np.testing.assert_array_equal(L.Reshape((-1, 2))(x).data, x.reshape(2, 6, 2))
    np.testing.assert_array_equal(L.Add()([x, 2 * x]).data, 3 * x)
    np.testing.assert_array_equal(L.ReLU()(x).data, np.maximum(x, 0))
    np.testing.assert_array_equal(L.ReLU(6.0)(x).data, np.clip(x, 0, 6))
    np.testing.assert_array_equal(L.ReLU(3.0)(x).data, np.clip(x, 0, 3))
    np.testing.assert_allclose(L.Activation("softmax")(x).data.sum(axis=-1), 1, rtol=1e-6)


def test_dropout_scales_survivors_in_training_only():
    mt.random.seed(1)
    x = np.ones((200, 50), np.float32)
    layer = L.Dropout(0.4)
    np.testing.assert_array_equal(layer(x).data, x)                  # inference: identity
    y = layer(x, training=True).data
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.6)}
    assert abs((y == 0).mean() - 0.4) < 0.02                         # 10,000 draws


# ---- BatchNormalization -----------------------------------------------------------------
def test_batchnorm_training_uses_batch_statistics_and_moves_averages():
    r = np.random.default_rng(3)
    bn = L.BatchNormalization(momentum=0.8, epsilon=1e-3)
    x = r.normal(2.0, 3.0, size=(6, 4, 4, 5)).astype(np.float32)
    bn.ensure_built(x.shape[1:])
    gamma, beta = r.normal(size=5).astype(np.float32), r.normal(size=5).astype(np.float32)
    bn.set_weights([gamma, beta, np.zeros(5), np.ones(5)])
    y = bn(x, training=True).data
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))       # per channel, biased
    np.testing.assert_allclose(y, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta,
                               rtol=1e-4, atol=1e-5)
    _, _, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, 0.8 * 0 + 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(mv, 0.8 * 1 + 0.2 * var, rtol=1e-5)

    # inference: the moving statistics, and nothing moves
    y = bn(x, training=False).data
    np.testing.assert_allclose(y, gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bn.get_weights()[2], mm)


def test_frozen_batchnorm_runs_in_inference_mode_keras_rule():
    r = np.random.default_rng(4)
    bn = L.BatchNormalization()
    x = r.normal(5.0, 2.0, size=(8, 3)).astype(np.float32)
    bn.ensure_built((3,))
    bn.trainable = False
    y = bn(x, training=True).data
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-3), rtol=1e-5)   # moving 0 / 1
    assert np.all(bn.get_weights()[2] == 0)
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4


def test_batchnorm_training_gradients():
    r = np.random.default_rng(5)
    x, gamma, beta = r.normal(size=(4, 3, 2)), r.normal(size=2), r.normal(size=2)
    gradcheck(lambda x, g, b: L.batch_norm_train(x, g, b, 1e-3)[0], x, gamma, beta)


# ---- names, weights, configs ---------------------------------------------------------------
def test_keras_style_unique_names():
    a, b = L.Dense(1), L.Dense(1)
    assert a.name.startswith("dense") and b.name.startswith("dense_") and a.name != b.name
    assert L.Dense(1, name="head").name == "head"
    conv = L.DepthwiseConv2D(3).name
    assert conv.startswith("depthwise_conv2d")
    assert L.BatchNormalization().name.startswith("batch_normalization")


def test_weights_order_and_trainable_split():
    bn = L.BatchNormalization()
    bn.ensure_built((4,))
    assert list(bn.weights) == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [t.name for t in bn.trainable_weights] == [f"{bn.name}/gamma", f"{bn.name}/beta"]
    d = L.Dense(2)
    d.ensure_built((3,))
    assert list(d.weights) == ["kernel", "bias"] and d.count_params() == 8
    d.trainable = False
    assert d.trainable_weights == [] and not d.kernel.requires_grad
    d.trainable = True
    assert d.kernel.requires_grad


ALL_LAYERS = [
    (L.Dense(3, activation="tanh", use_bias=False), (4,)),
    (L.Conv2D(2, 3, strides=(1, 2), padding="same", activation="relu"), (5, 6, 3)),
    (L.DepthwiseConv2D((3, 1), depth_multiplier=2, activation="relu6"), (5, 6, 3)),
    (L.MaxPooling2D((2, 3), strides=1), (5, 6, 3)),
    (L.AveragePooling2D(padding="same"), (5, 5, 3)),
    (L.GlobalAveragePooling2D(), (5, 6, 3)),
    (L.Flatten(), (2, 3)),
    (L.Reshape((3, 2)), (6,)),
    (L.Dropout(0.25), (4,)),
    (L.BatchNormalization(momentum=0.9, epsilon=1e-5), (4,)),
    (L.Activation("sigmoid"), (4,)),
    (L.ReLU(max_value=6.0), (4,)),
]


@pytest.mark.parametrize("layer,shape", ALL_LAYERS, ids=lambda v: type(v).__name__)
def test_config_rebuilds_the_same_layer(layer, shape):
    layer.ensure_built(shape)
    cfg = {"class_name": type(layer).__name__, "config": layer.get_config()}
    import json
    twin = L.layer_from_config(json.loads(json.dumps(cfg)))      # JSON-able
    assert type(twin) is type(layer) and twin.get_config() == layer.get_config()
    twin.ensure_built(shape)
    assert twin.output_shape == layer.output_shape
    twin.set_weights(layer.get_weights())
    x = np.random.default_rng(6).normal(size=(2,) + shape).astype(np.float32)
    np.testing.assert_array_equal(twin(x).data, layer(x).data)


def test_unknown_layer_class_is_refused():
    with pytest.raises(ValueError, match="unknown layer class 'Lambda'"):
        L.layer_from_config({"class_name": "Lambda", "config": {}})


@given(h=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]))
def test_output_shape_matches_the_computed_tensor(h, k, s, padding):
    layer = L.Conv2D(2, k, strides=s, padding=padding)
    if padding == "valid" and h < k:
        with pytest.raises(ValueError, match=layer.name):
            layer.ensure_built((h, h, 1))
        return
    out = layer(np.zeros((1, h, h, 1), np.float32))
    want = math.ceil(h / s) if padding == "same" else (h - k) // s + 1   # TF's rules
    assert out.shape == (1, want, want, 2) == (1,) + layer.output_shape
