"""The commit durations behind streamkit_commit_seconds: every commit counted and summed,
quantiles by nearest rank over the most recent ones."""
import random

import pytest

from streamkit.processing.durations import Durations


def nearest_rank(samples, q):
    # The smallest sample with at least q of all samples at or below it.
    for x in sorted(samples):
        if sum(1 for y in samples if y <= x) >= q * len(samples):
            return x


def test_quantiles_are_nearest_ranks_of_the_recent_samples_and_count_and_sum_cover_all():
    rng = random.Random(3)
    d = Durations(recent=100)
    samples = [rng.uniform(0.001, 0.2) for _ in range(250)]
    for x in samples:
        d.observe(x)
    assert d.count == 250 and d.sum == pytest.approx(sum(samples))
    for q in (0.01, 0.5, 0.9, 0.99, 1.0):
        assert d.quantile(q) == nearest_rank(samples[-100:], q)


def test_no_quantile_before_the_first_sample_and_bad_arguments_are_refused():
    assert Durations().quantile(0.5) is None
    with pytest.raises(ValueError):
        Durations(recent=0)
    with pytest.raises(ValueError):
        Durations().quantile(0)
