"""Shared by the Keras programs' tests: under CI the programs read a slice of the data sets
(the same code, a smaller load_data), the thorough profile runs them on everything."""
import os

import numpy as np
import pytest

import minitiny as mt

FULL = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@pytest.fixture
def keras_data(monkeypatch):
    """subset(name, n_train, n_test): make keras.datasets.<name>.load_data() return the first
    n samples (all of them in the thorough profile); skip when the data set is not cached."""
    def subset(name, n_train, n_test):
        module = getattr(mt.keras.datasets, name)
        try:
            (x, y), (xt, yt) = module.load_data()
        except mt.datasets.DataMissingError as e:
            pytest.skip(str(e))
        if not FULL:
            x, y, xt, yt = x[:n_train], y[:n_train], xt[:n_test], yt[:n_test]
        monkeypatch.setattr(module, "load_data", lambda: ((x, y), (xt, yt)))
        return (x, y), (xt, yt)
    return subset


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)         # programs write their files where they run
    return tmp_path


def rows_sum_to_one(p):
    return np.allclose(p.sum(axis=-1), 1.0, atol=1e-5)
