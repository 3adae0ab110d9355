"""train.stats: the Wilson interval against known values, and the protocol's rule for a met target."""

import pytest

from train.stats import meets, wilson_interval


@pytest.mark.parametrize("k, n, low, high", [
    (97, 100, 0.9155, 0.9897),  # the 4x4 sudoku figure: its interval includes 0.95
    (0, 20, 0.0, 0.1611),
    (20, 20, 0.8389, 1.0),
    (10, 20, 0.2993, 0.7007),
])
def test_wilson_interval_matches_known_values(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-4)


def test_a_target_is_met_by_the_interval_or_by_100_puzzles_at_the_point():
    assert meets(0.95, 97, 100) == (True, "point")  # lower end 0.915 < 0.95, but 100 puzzles played
    assert meets(0.95, 19, 20) == (False, "")  # 0.95 at the point on 20 puzzles is not enough
    assert meets(0.80, 20, 20) == (True, "interval")


@pytest.mark.parametrize("k, n, name", [(1, 0, "trials"), (5, 4, "successes"), (-1, 4, "successes"),
                                        (1.5, 4, "successes"), (1, 2.0, "trials")])
def test_bad_counts_are_refused_naming_the_argument(k, n, name):
    with pytest.raises(ValueError, match=name):
        wilson_interval(k, n)
