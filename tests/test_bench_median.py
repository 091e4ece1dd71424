"""bench/speed.py reports the run of median time out of the alternated runs of one size."""

from __future__ import annotations

from bench.speed import _median_run


def test_the_median_run_is_reported_with_its_own_stages():
    runs = [{"total": 9.0, "stage": "a"}, {"total": 7.0, "stage": "b"}, {"total": 8.0, "stage": "c"}]
    assert _median_run(runs) == {"total": 8.0, "stage": "c"}


def test_an_even_count_takes_the_lower_middle_run_and_one_run_is_itself():
    assert _median_run([{"total": 4.0}, {"total": 1.0}, {"total": 3.0}, {"total": 2.0}]) == {"total": 2.0}
    assert _median_run([{"total": 5.0}]) == {"total": 5.0}
