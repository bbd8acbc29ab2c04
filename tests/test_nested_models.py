"""A Sequential used as a layer of another (Keras' transfer-learning pattern), and
model.trainable. Oracle: Keras' semantics, by composition: the outer model's output is
the inner model's output fed to the outer layers, the weights are the inner model's own
(shared objects), and a frozen inner model does not move while the head trains."""
import numpy as np
import pytest

import minitiny as tf

L = tf.keras.layers


def base_and_data():
    tf.random.seed(0)
    base = tf.keras.Sequential([L.Dense(8, activation="relu", input_shape=(5,)),
                                L.Dense(4, activation="relu")], name="base")
    rng = np.random.default_rng(0)
    x = rng.random((64, 5)).astype(np.float32)
    y = (x.sum(axis=1) > 2.5).astype(np.float32)
    return base, x, y


def test_a_nested_sequential_computes_its_layers_then_the_outer_ones():
    base, x, _ = base_and_data()
    head = L.Dense(1, activation="sigmoid")
    model = tf.keras.Sequential([base, head])
    assert model.input_shape == (5,) and model.output_shape == (1,)
    want = head(base.predict(x, verbose=0)).data
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-6)


def test_a_frozen_base_keeps_its_weights_and_the_head_trains():
    base, x, y = base_and_data()
    base.trainable = False
    assert not base.trainable and all(not layer.trainable for layer in base.layers)
    model = tf.keras.Sequential([base, L.Dense(1, activation="sigmoid")])
    before = [w.copy() for w in base.get_weights()]
    head_before = model.layers[-1].get_weights()[0].copy()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.layers[-1].get_weights()[0])
    base.trainable = True                       # unfreezing for fine-tuning reaches it too
    assert model.trainable and len(model.trainable_params()) == 6


def test_training_the_outer_model_trains_the_inner_one():
    base, x, y = base_and_data()
    model = tf.keras.Sequential([base, L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    inner_out = base.predict(x, verbose=0)              # the same weights, trained
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               model.layers[-1](inner_out).data, rtol=1e-6)


def test_an_inner_model_built_from_an_input_gives_its_shape():
    inner = tf.keras.Sequential([tf.keras.Input((3,)), L.Dense(2)])
    model = tf.keras.Sequential([inner, L.Dense(1)])
    assert model.built and model.input_shape == (3,)


def test_a_functional_model_inside_a_sequential_is_refused_by_name():
    x = tf.keras.Input((4,))
    functional = tf.keras.Model(x, L.Dense(2)(x), name="trunk")
    with pytest.raises(TypeError, match="functional model 'trunk' inside a Sequential"):
        tf.keras.Sequential([functional, L.Dense(1)])
