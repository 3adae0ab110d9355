"""Interval estimates for the success shares every result reports."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a binomial share (95% by default): unlike the normal approximation it stays
    inside [0, 1] and is not empty at 0 or ``trials`` successes, which matters for 20-puzzle evaluations."""
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    if not isinstance(successes, int) or isinstance(successes, bool) or not 0 <= successes <= trials:
        raise ValueError(f"successes must be an integer in [0, trials={trials}], got {successes!r}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding must not cut off p itself
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return min(low, p), max(high, p)


def meets(target: float, successes: int, trials: int, min_trials: int = 100) -> tuple[bool, str]:
    """Whether a measured share meets ``target`` under the results protocol, and how: the interval's lower end
    is at or above it (``"interval"``), or at least ``min_trials`` puzzles were played and the point estimate
    meets it (``"point"``); otherwise ``(False, "")``."""
    low, _ = wilson_interval(successes, trials)
    if low >= target:
        return True, "interval"
    if trials >= min_trials and successes / trials >= target:
        return True, "point"
    return False, ""
