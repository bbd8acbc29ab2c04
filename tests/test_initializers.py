"""keras.initializers (minitiny/initializers.py).

Oracles: PyTorch's torch.nn.init draws the same distributions (Glorot = xavier, He =
kaiming, Keras' truncated normals = trunc_normal_ cut at 2 stddev), with its own fan rules
on its own (out, in, kh, kw) layout; a two-sample Kolmogorov-Smirnov test compares a large
draw of each. Keras' documented formula, Var(w) = scale / n, is checked on the draws too.
"""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitiny as mt
from minitiny import initializers as I

torch = pytest.importorskip("torch")
K = mt.keras.initializers
TRUNC = 0.87962566103423978            # stddev of a unit normal cut at +-2 (Keras' constant)


def torch_fans(keras_shape):
    """PyTorch's fans of the same kernel in its layout: (kh, kw, in, out) -> (out, in, kh, kw)."""
    shape = keras_shape[::-1] if len(keras_shape) == 2 else \
        (keras_shape[-1], keras_shape[-2]) + tuple(keras_shape[:-2])
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def torch_draw(name, keras_shape, n_values):
    """n_values drawn the way PyTorch's init would for the initializer `name`."""
    fan_in, fan_out = torch_fans(keras_shape)
    torch.manual_seed(0)
    t = torch.empty(n_values, dtype=torch.float64)
    if name == "GlorotUniform":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        torch.nn.init.uniform_(t, -a, a)                # xavier_uniform_'s bound, fans above
    elif name == "HeUniform":
        a = math.sqrt(6.0 / fan_in)
        torch.nn.init.uniform_(t, -a, a)                # kaiming_uniform_(relu)'s bound
    elif name in ("GlorotNormal", "HeNormal", "LecunNormal"):
        n = (fan_in + fan_out) / 2 if name == "GlorotNormal" else fan_in
        std = math.sqrt((2.0 if name == "HeNormal" else 1.0) / n) / TRUNC
        torch.nn.init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)
    elif name == "LecunUniform":
        a = math.sqrt(3.0 / fan_in)
        torch.nn.init.uniform_(t, -a, a)
    elif name == "RandomNormal":
        torch.nn.init.normal_(t, 0.0, 0.05)
    elif name == "RandomUniform":
        torch.nn.init.uniform_(t, -0.05, 0.05)
    elif name == "TruncatedNormal":
        torch.nn.init.trunc_normal_(t, 0.0, 0.05, -0.1, 0.1)
    return t.numpy()


def ks_statistic(a, b):
    """max |F_a - F_b| over the pooled sample (two-sample Kolmogorov-Smirnov)."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return np.abs(np.searchsorted(a, grid, "right") / len(a) -
                  np.searchsorted(b, grid, "right") / len(b)).max()


RANDOM = ["GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
          "LecunNormal", "RandomNormal", "RandomUniform", "TruncatedNormal"]


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("shape", [(784, 128), (3, 3, 32, 64)])
def test_draws_follow_pytorchs_distribution(name, shape):
    ours = getattr(K, name)(seed=1)(shape, "float64").ravel()
    theirs = torch_draw(name, shape, ours.size)
    # 1% significance: the critical value of KS for two samples of size n is 1.63 sqrt(2/n)
    assert ks_statistic(ours, theirs) < 1.63 * math.sqrt(2.0 / ours.size)


@pytest.mark.parametrize("scale, mode, distribution", [
    (1.0, "fan_in", "truncated_normal"), (2.0, "fan_out", "untruncated_normal"),
    (0.5, "fan_avg", "uniform"), (3.0, "fan_in", "normal")])
def test_variance_scaling_variance_is_scale_over_n(scale, mode, distribution):
    shape = (5, 5, 16, 48)
    w = K.VarianceScaling(scale, mode, distribution, seed=2)(shape, "float64")
    fan_in, fan_out = 5 * 5 * 16, 5 * 5 * 48
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    assert w.var() == pytest.approx(scale / n, rel=0.03)        # 19,200 draws
    if distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * math.sqrt(scale / n) / TRUNC
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3 * scale / n)


def test_constants_and_defaults():
    assert np.array_equal(K.Zeros()((2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(K.Ones()((4,)), np.ones(4, np.float32))
    assert np.array_equal(K.Constant(2.5)((2, 2)), np.full((2, 2), 2.5, np.float32))
    assert K.RandomNormal().get_config() == {"mean": 0.0, "stddev": 0.05, "seed": None}
    assert K.RandomUniform().get_config() == {"minval": -0.05, "maxval": 0.05, "seed": None}
    assert K.VarianceScaling().get_config() == {"scale": 1.0, "mode": "fan_in",
                                                "distribution": "truncated_normal", "seed": None}
    assert K.Constant().get_config() == {"value": 0.0}
    assert K.he_normal is K.HeNormal and K.get("glorot_uniform").__class__ is K.GlorotUniform


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.sampled_from(RANDOM))
def test_a_seed_draws_the_same_values_every_call(seed, name):
    """Keras 3: an initializer with a seed repeats itself; without one it follows the
    global generator, so minitiny.random.seed(n) repeats a whole model."""
    init = getattr(K, name)(seed=seed)
    assert np.array_equal(init((7, 5)), init((7, 5)))
    unseeded = getattr(K, name)()
    mt.random.seed(seed)
    a = unseeded((7, 5))
    mt.random.seed(seed)
    assert np.array_equal(a, unseeded((7, 5))) and not np.array_equal(a, unseeded((7, 5)))


def test_layers_take_objects_names_and_keras_configs():
    dense = mt.keras.layers.Dense(4, kernel_initializer=K.HeNormal(seed=5),
                                  bias_initializer=K.Constant(0.1), input_shape=(6,))
    model = mt.keras.Sequential([dense])
    np.testing.assert_array_equal(dense.get_weights()[0], K.HeNormal(seed=5)((6, 4)))
    np.testing.assert_array_equal(dense.get_weights()[1], np.full(4, 0.1, np.float32))
    config = dense.get_config()
    assert config["kernel_initializer"]["class_name"] == "HeNormal"
    json.dumps(config)                                    # Keras' form: JSON all the way
    again = mt.keras.layers.Dense.from_config(config)     # a config dict back to an object
    again.ensure_built((6,))
    np.testing.assert_array_equal(again.get_weights()[0], dense.get_weights()[0])
    clone = mt.keras.models.model_from_json(model.to_json())
    assert isinstance(clone.layers[0].kernel_initializer, K.HeNormal)
    conv = mt.keras.layers.Conv2D(2, 3, kernel_initializer="lecun_uniform")
    assert conv.get_config()["kernel_initializer"] == "lecun_uniform"


@pytest.mark.parametrize("value, message", [
    ("orthogonal", "unknown initializer 'orthogonal'.*lecun_normal"),
    (42, "unknown initializer 42"),
    ({"class_name": "Orthogonal", "config": {}}, "unknown initializer .'class_name': 'Orthogonal'"),
])
def test_unknown_initializers_are_refused_when_the_layer_is_made(value, message):
    with pytest.raises(ValueError, match="layer 'd': kernel_initializer: " + message):
        mt.keras.layers.Dense(3, kernel_initializer=value, name="d")


def test_bad_arguments_name_the_initializer():
    with pytest.raises(ValueError, match="VarianceScaling: mode"):
        K.VarianceScaling(mode="fan_max")
    with pytest.raises(ValueError, match="HeNormal: seed"):
        K.HeNormal(seed=-1)
    with pytest.raises(ValueError, match="RandomUniform: minval"):
        K.RandomUniform(1.0, 0.0)
    with pytest.raises(mt.keras._names.NotInMinitiny, match="Orthogonal"):
        K.Orthogonal


def test_fans_count_the_receptive_field_as_pytorch_does():
    for shape in [(10,), (784, 20), (3, 3, 8, 16), (1, 5, 4, 2)]:
        if len(shape) == 1:
            assert I.fans(shape) == (10, 10)
        else:
            assert I.fans(shape) == torch_fans(shape)
