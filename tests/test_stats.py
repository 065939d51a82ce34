"""Tests of aufacs.data.stats: occurrence rates, class weights and co-occurrence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aufacs.core.aus import AUSet
from aufacs.core.errors import AufacsError
from aufacs.data.stats import au_weights, cooccurrence, occurrence_rates, rates_by

NAN = np.nan


def test_occurrence_rates_ignore_unknown_labels():
    labels = np.array([[1, 0], [0, NAN], [1, NAN]], dtype=float)
    np.testing.assert_allclose(occurrence_rates(labels), [2 / 3, 0.0])


def test_occurrence_rate_of_an_au_no_frame_labels_is_nan():
    labels = np.array([[1, NAN], [0, NAN]], dtype=float)
    assert np.isnan(occurrence_rates(labels)[1])


def test_labels_that_are_not_a_matrix_are_refused():
    with pytest.raises(AufacsError, match="n_au"):
        occurrence_rates(np.zeros(5))


def test_inverse_weights_are_one_over_the_rate_normalised_to_mean_one():
    np.testing.assert_allclose(au_weights(np.array([0.5, 0.25])), [2 / 3, 4 / 3])


def test_inverse_plus_one_weights_are_one_over_rate_plus_one_normalised_to_mean_one():
    raw = np.array([1 / 1.5, 1 / 1.25])
    weights = au_weights(np.array([0.5, 0.25]), scheme="inverse_plus_one")
    np.testing.assert_allclose(weights, raw / raw.mean())


def test_weights_of_both_schemes_average_one():
    rates = np.array([0.1, 0.3, 0.6, 0.9])
    for scheme in ("inverse", "inverse_plus_one"):
        assert au_weights(rates, scheme).mean() == pytest.approx(1.0)


def test_an_unknown_weight_scheme_is_refused_with_the_valid_ones():
    with pytest.raises(AufacsError, match="inverse_plus_one"):
        au_weights(np.array([0.5]), scheme="sqrt")


def test_an_au_that_never_occurs_cannot_get_an_inverse_weight():
    with pytest.raises(AufacsError, match="AU2 never occurs"):
        au_weights(np.array([0.5, 0.0]), aus=[1, 2])


def test_an_au_that_never_occurs_gets_a_finite_inverse_plus_one_weight():
    weights = au_weights(np.array([0.5, 0.0]), scheme="inverse_plus_one")
    assert np.isfinite(weights).all()


def test_a_nan_rate_is_refused():
    with pytest.raises(AufacsError, match="AU4"):
        au_weights(np.array([0.5, NAN]), aus=[1, 4])


def test_seed_weight_files_are_inverse_plus_one_weights_of_their_lists(shared_fixtures):
    for prefix in ("BP4D_combine_1_2", "BP4D_part3"):
        labels = np.loadtxt(shared_fixtures / "seed_subset" / f"{prefix}_AUOccur.txt")
        published = np.loadtxt(shared_fixtures / "seed_subset" / f"{prefix}_weight.txt")
        weights = au_weights(occurrence_rates(labels), scheme="inverse_plus_one")
        np.testing.assert_allclose(weights, published, rtol=0, atol=1e-5, err_msg=prefix)


def test_cooccurrence_is_the_probability_of_j_given_i_ignoring_unknown_pairs():
    labels = np.array(
        [
            [1, 1, 0],
            [1, 0, NAN],
            [1, NAN, 1],
            [0, 1, 1],
        ],
        dtype=float,
    )
    expected = np.array(
        [
            [1.0, 1 / 2, 1 / 2],  # AU a present in 3 frames; b known in 2, c known in 2
            [1 / 2, 1.0, 1 / 2],
            [1 / 2, 1.0, 1.0],  # c present in rows 2, 3; b known only in row 3
        ]
    )
    np.testing.assert_allclose(cooccurrence(labels), expected)


def test_cooccurrence_row_of_an_au_never_present_is_nan():
    labels = np.array([[1, 0], [0, 0]], dtype=float)
    assert np.isnan(cooccurrence(labels)[1]).all()


def test_rates_by_gives_one_row_per_group_with_frame_counts():
    frames = pd.DataFrame(
        {"split": ["train", "train", "test"], "AU1": [1.0, 0.0, NAN], "AU2": [1.0, 1.0, 0.0]}
    )
    table = rates_by(frames, AUSet("tiny", (1, 2)), "split")
    assert table.loc["train"].tolist() == [2, 0.5, 1.0]
    assert table.loc["test", "frames"] == 1 and np.isnan(table.loc["test", "AU1"])


def test_rates_by_names_missing_columns():
    with pytest.raises(AufacsError, match="AU2"):
        rates_by(pd.DataFrame({"split": ["a"], "AU1": [1.0]}), AUSet("tiny", (1, 2)), "split")
