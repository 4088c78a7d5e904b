"""The scikit-learn transformer around the learned encoders."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

import lsalsa
from conftest import random_dictionary
from lsalsa import InputError
from lsalsa.apps.estimators import LearnedSparseCoder


def planted(rng, n=300, m=12, n_atoms=16):
    A = random_dictionary(rng, m, n_atoms)
    X = np.zeros((n, n_atoms))
    for row in X:
        row[rng.choice(n_atoms, 2, replace=False)] = rng.normal(0, 1, 2)
    return A, X @ A.T, A


def test_fit_learns_codes_closer_than_the_untrained_encoder(rng):
    A, Y, _ = planted(rng)
    exact = lsalsa.solve(Y, A, 0.05, method="exact").codes
    coder = LearnedSparseCoder(dictionaries=A, alphas=0.05, depth=2, mu=1.0, epochs=30,
                               batch_size=16).fit(Y[:250], codes=exact[:250])
    untrained = lsalsa.LSALSA(A, 0.05, 2, mu=1.0).encode(Y[250:])
    error_trained = np.sqrt(np.mean((coder.transform(Y[250:]) - exact[250:]) ** 2))
    error_untrained = np.sqrt(np.mean((untrained - exact[250:]) ** 2))
    assert error_trained < 0.8 * error_untrained  # measured: 0.67
    assert coder.transform(Y).shape == (300, 16)
    assert coder.inverse_transform(exact).shape == Y.shape


def test_in_a_pipeline_with_fit_params(rng):
    A, Y, _ = planted(rng)
    labels = (Y[:, 0] > 0).astype(int)
    pipe = Pipeline([("coder", LearnedSparseCoder(dictionaries=A, alphas=0.05, depth=2,
                                                  mu=1.0, epochs=2)),
                     ("clf", LogisticRegression())])
    exact = lsalsa.solve(Y, A, 0.05, method="exact").codes
    pipe.fit(Y, labels, coder__codes=exact)
    assert pipe.score(Y, labels) > 0.6
    assert pipe.get_params()["coder__depth"] == 2
    pipe.set_params(coder__depth=3)
    assert pipe.named_steps["coder"].depth == 3


def test_width_mismatch_is_refused(rng):
    A, Y, _ = planted(rng)
    coder = LearnedSparseCoder(dictionaries=A, alphas=0.05, depth=1, epochs=1).fit(Y)
    with pytest.raises(ValueError, match="features"):
        coder.transform(Y[:, :5])


def test_transform_in_low_precision_is_the_encoders_low_precision_path(rng):
    A, Y, _ = planted(rng)
    coder = LearnedSparseCoder(dictionaries=A, alphas=0.05, depth=2, mu=1.0, epochs=1,
                               dtype="bfloat16").fit(Y)
    codes = coder.transform(Y)
    assert codes.dtype == np.float64
    assert np.array_equal(codes, coder.encoder_.encode(Y, dtype="bfloat16"))
    assert not np.array_equal(codes, coder.encoder_.encode(Y))
    # A precision the device cannot run is refused before any training.
    with pytest.raises(InputError, match="float16 needs a CUDA device"):
        LearnedSparseCoder(dictionaries=A, alphas=0.05, depth=1, dtype="float16").fit(Y)


@pytest.mark.slow
def test_scikit_learn_estimator_checks():
    results = check_estimator(LearnedSparseCoder(epochs=2, dict_epochs=1), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert failed == []


def test_separation_objective_fits_the_true_components(rng):
    """objective='separation': each component of the codes moves towards the true one."""
    A1, A2 = random_dictionary(rng, 12, 10), random_dictionary(rng, 12, 10)
    parts = []
    for A in (A1, A2):
        codes = rng.normal(0, 1, (300, 10)) * (rng.random((300, 10)) < 0.3)
        parts.append(codes @ A.T + 0.05 * rng.normal(0, 1, (300, 12)))
    Y, truth = parts[0] + parts[1], np.hstack(parts)
    coder = LearnedSparseCoder(dictionaries=[A1, A2], alphas=[0.1, 0.1], depth=2, mu=1.0,
                               epochs=20, objective="separation")
    coder.fit(Y[:250], components=truth[:250])

    def error(codes):
        rebuilt = np.hstack([codes[:, :10] @ A1.T, codes[:, 10:] @ A2.T])
        return np.sqrt(np.mean((rebuilt - truth[250:]) ** 2))

    untrained = lsalsa.LSALSA([A1, A2], [0.1, 0.1], 2, mu=1.0).encode(Y[250:])
    assert error(coder.transform(Y[250:])) < 0.9 * error(untrained)
    with pytest.raises(lsalsa.InputError, match="needs fit"):
        LearnedSparseCoder(dictionaries=[A1, A2], objective="separation").fit(Y)
