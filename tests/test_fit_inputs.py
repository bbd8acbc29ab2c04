"""fit / evaluate / predict on Sequences, Datasets and generators, sample and class weights,
the *_on_batch methods and the batch hooks. Oracles: the same batches given as arrays (the
weights after training must be identical), sample weights as duplicated samples, hand-made
class weights, metrics computed by hand on the model's predictions."""
import numpy as np
import pytest

import minitiny as mt
from minitiny.data import Dataset, Sequence

L = mt.layers


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)


def model(seed=1, metrics=("accuracy",)):
    mt.random.seed(seed)
    m = mt.Sequential([L.Dense(6, activation="tanh", input_shape=(3,), dtype="float64"),
                       L.Dense(2, activation="softmax", dtype="float64")])
    m.compile(mt.optimizers.SGD(0.1, momentum=0.5), "sparse_categorical_crossentropy",
              metrics=list(metrics))
    return m


class Batches(Sequence):
    def __init__(self, x, y, size, w=None):
        super().__init__(workers=4)                      # accepted, changes nothing
        self.x, self.y, self.size, self.w, self.epochs_ended = x, y, size, w, 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        s = slice(i * self.size, (i + 1) * self.size)
        return (self.x[s], self.y[s]) if self.w is None else (self.x[s], self.y[s], self.w[s])

    def on_epoch_end(self):
        self.epochs_ended += 1


def generator(x, y, size, repeat=True):
    while True:
        for i in range(0, len(x), size):
            yield x[i:i + size], y[i:i + size]
        if not repeat:
            return


def same_training(source_fit, **kw):
    """Weights and history after fit on `source_fit(m)` equal those of fit on arrays."""
    x, y = data()
    a = model()
    ha = a.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
               validation_data=(x[:10], y[:10]), **kw)
    b = model()
    hb = source_fit(b)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert ha.history == hb.history


def test_a_sequence_trains_as_the_same_arrays():
    x, y = data()
    seq = Batches(x, y, 8)
    same_training(lambda m: m.fit(seq, epochs=3, shuffle=False, verbose=0,
                                  validation_data=Batches(x[:10], y[:10], 8)))
    assert seq.epochs_ended == 3


def test_a_generator_with_steps_trains_as_the_same_arrays():
    x, y = data()
    same_training(lambda m: m.fit(generator(x, y, 8), steps_per_epoch=5, epochs=3, verbose=0,
                                  validation_data=generator(x[:10], y[:10], 8),
                                  validation_steps=2))


def test_a_dataset_trains_as_the_same_arrays():
    x, y = data()
    ds = Dataset.from_tensor_slices((x, y)).batch(8).prefetch(mt.data.AUTOTUNE)
    same_training(lambda m: m.fit(ds, epochs=3, verbose=0,
                                  validation_data=Dataset.from_tensor_slices(
                                      (x[:10], y[:10])).batch(8)))


def test_sequence_batches_are_reshuffled_each_epoch():
    x, y = data()
    seen = []

    class Spy(Batches):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)
    model().fit(Spy(x, y, 8), epochs=3, verbose=0, seed=5)
    epochs = [seen[i:i + 5] for i in range(0, 15, 5)]
    assert all(sorted(e) == list(range(5)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1                    # a new order each epoch


def test_a_generator_that_runs_dry_stops_training_with_keras_warning():
    x, y = data()
    m = model()
    with pytest.warns(UserWarning, match="ran out of data.*steps_per_epoch \\* epochs "
                                         "batches \\(5 \\* 4 here\\)"):
        history = m.fit(generator(x, y, 8, repeat=False), steps_per_epoch=5, epochs=4,
                        verbose=0)
    assert len(history.history["loss"]) == 1                      # one whole epoch only
    # without steps_per_epoch, one epoch is the whole generator
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model().fit(generator(x, y, 8, repeat=False), epochs=2, verbose=0)
    assert len(history.epoch) == 1


@pytest.mark.parametrize("bad, message", [
    (lambda x, y: iter([x[:4]]), "batch 0 of the generator is ndarray of shape \\(4, 3\\), "
                                 "not a tuple: a batch must be \\(x, y\\)"),
    (lambda x, y: iter([(x[:4], y[:4], None, 1)]), "batch 0 of the generator is a tuple of 4"),
    (lambda x, y: iter([(x[:4], y[:4]), (np.array([["a"] * 3]), y[:1])]),
     "x of batch 1 of the generator must hold numbers"),
    (lambda x, y: iter([(x[:4], y[:3])]), "x has 4 samples but y of batch 0 of the generator "
                                          "has 3"),
    (lambda x, y: iter([(x[:4], y[:4] + 5)]),
     "y of batch 0 of the generator: label \\d+ at y\\[0\\] is out of range"),
    (lambda x, y: object(), "fit takes arrays, a Sequence .*got object"),
])
def test_a_batch_of_the_wrong_structure_gets_one_clear_error(bad, message):
    x, y = data()
    with pytest.raises(ValueError, match=message):
        model().fit(bad(x, y), epochs=1, verbose=0)


def test_arguments_that_a_batch_source_makes_meaningless_are_refused():
    x, y = data()
    seq = Batches(x, y, 8)
    with pytest.raises(ValueError, match="y and sample_weight must be left out"):
        model().fit(seq, y, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be left out"):
        model().fit(seq, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="validation_split needs arrays"):
        model().fit(seq, validation_split=0.2, verbose=0)


def test_evaluate_and_predict_on_batch_sources():
    x, y = data()
    m = model()
    want = m.evaluate(x, y, batch_size=8)
    assert m.evaluate(Batches(x, y, 8)) == pytest.approx(want, rel=1e-12)
    assert m.evaluate(Dataset.from_tensor_slices((x, y)).batch(7)) == pytest.approx(want)
    assert m.evaluate(generator(x, y, 8), steps=5) == pytest.approx(want, rel=1e-12)
    np.testing.assert_array_equal(m.predict(Dataset.from_tensor_slices(x).batch(6)),
                                  m.predict(x))
    np.testing.assert_array_equal(m.predict(Batches(x, y, 16)), m.predict(x))   # y ignored
    np.testing.assert_array_equal(m.predict_on_batch(x), m.predict(x))


# ---- weights ------------------------------------------------------------------------------
def test_integer_sample_weights_train_as_duplicated_samples():
    """Full-batch SGD: sum(w l)/N is (M/N) times the mean loss over the M = sum(w) samples
    with each repeated w times, so a step with learning rate lr on the weighted loss is a
    step with lr M/N on the duplicated data."""
    x, y = data(20)
    w = np.random.default_rng(3).integers(0, 4, 20)
    n, m_total = len(x), int(w.sum())

    def run(xs, ys, lr, **kw):
        mt.random.seed(1)
        m = mt.Sequential([L.Dense(4, activation="tanh", input_shape=(3,), dtype="float64"),
                           L.Dense(2, activation="softmax", dtype="float64")])
        m.compile(mt.optimizers.SGD(lr), "sparse_categorical_crossentropy")
        m.fit(xs, ys, batch_size=len(xs), epochs=5, shuffle=False, verbose=0, **kw)
        return m.get_weights()
    weighted = run(x, y, 0.3, sample_weight=w)
    duplicated = run(np.repeat(x, w, axis=0), np.repeat(y, w), 0.3 * m_total / n)
    for a, b in zip(weighted, duplicated):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_class_weight_is_a_weight_per_class():
    x, y = data()
    by_class = np.where(y == 1, 3.0, 0.5)
    a, b = model(), model()
    ha = a.fit(x, y, class_weight={0: 0.5, 1: 3.0}, epochs=2, verbose=0, shuffle=False)
    hb = b.fit(x, y, sample_weight=by_class, epochs=2, verbose=0, shuffle=False)
    assert ha.history == hb.history
    with pytest.raises(ValueError, match="sample_weight or class_weight, not both"):
        model().fit(x, y, class_weight={0: 1.0}, sample_weight=by_class, verbose=0)
    with pytest.raises(ValueError, match="sample_weight\\[2\\] = -1.0: weights must be finite"):
        model().fit(x[:4], y[:4], sample_weight=[1, 1, -1, 1], verbose=0)


def test_weighted_metrics_and_loss_in_evaluate():
    x, y = data()
    m = model()
    w = np.random.default_rng(4).random(len(x))
    loss, acc = m.evaluate(x, y, sample_weight=w)
    p = m.predict(x)
    per_sample = -np.log(p[np.arange(len(y)), y])
    assert loss == pytest.approx(np.dot(w, per_sample) / len(y), rel=1e-9)   # / N, as Keras
    assert acc == pytest.approx(np.dot(w, p.argmax(1) == y) / w.sum(), rel=1e-12)


def test_sequence_batches_may_carry_sample_weights():
    x, y = data()
    w = np.random.default_rng(5).random(len(x))
    same_training(lambda m: m.fit(Batches(x, y, 8, w), epochs=3, shuffle=False, verbose=0,
                                  validation_data=(x[:10], y[:10]), validation_batch_size=8),
                  sample_weight=w)


# ---- metrics, hooks, one batch at a time ---------------------------------------------------
def test_precision_recall_auc_in_fit_match_a_hand_count():
    x, y = data(60)
    mt.random.seed(2)
    m = mt.Sequential([L.Dense(1, input_shape=(3,))])               # logits
    m.compile("adam", mt.losses.BinaryCrossentropy(from_logits=True),
              metrics=["precision", mt.metrics.Recall(), mt.metrics.AUC(num_thresholds=3)])
    history = m.fit(x, y, epochs=2, verbose=0, validation_data=(x[:30], y[:30]))
    assert set(history.history) == {"loss", "precision", "recall", "auc", "val_loss",
                                    "val_precision", "val_recall", "val_auc"}
    p = 1 / (1 + np.exp(-m.predict(x[:30])[:, 0]))                  # probabilities
    yes, truth = p > 0.5, y[:30] == 1
    assert history.history["val_precision"][-1] == pytest.approx((yes & truth).sum() / yes.sum())
    assert history.history["val_recall"][-1] == pytest.approx((yes & truth).sum() / truth.sum())


def test_batch_hooks_and_learning_rate_in_the_history():
    x, y = data()
    calls = []

    class Keras2Style(mt.callbacks.Callback):            # only the Keras 2 names
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch))
    history = model().fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25,
                          callbacks=[Keras2Style(), mt.callbacks.ReduceLROnPlateau(patience=1)])
    assert calls == [(k, b) for _ in range(2) for b in range(2) for k in ("begin", "end")]
    assert history.history["learning_rate"][0] == pytest.approx(0.1)


def test_train_and_test_on_batch():
    x, y = data()
    a, b = model(), model()
    out = a.train_on_batch(x, y)
    b.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert isinstance(out, list) and len(out) == 2
    assert a.test_on_batch(x, y, return_dict=True) == a.evaluate(x, y, return_dict=True)
