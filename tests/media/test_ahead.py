from __future__ import annotations

import random
import threading
import time

import pytest

from recsys.media.ahead import map_ahead


def test_results_come_in_input_order_whatever_order_they_finish_in() -> None:
    rng = random.Random(0)
    delays = [rng.random() / 200 for _ in range(40)]

    def slow_square(i: int) -> int:
        time.sleep(delays[i])
        return i * i

    assert list(map_ahead(slow_square, range(40), workers=4)) == [i * i for i in range(40)]


def test_items_really_run_side_by_side() -> None:
    barrier = threading.Barrier(2, timeout=10)

    def meet(i: int) -> int:
        barrier.wait()  # breaks (and raises) unless a second item runs at the same time
        return i

    assert list(map_ahead(meet, range(6), workers=2)) == list(range(6))


def test_an_error_is_raised_at_its_items_turn_after_the_earlier_results() -> None:
    def check(i: int) -> int:
        if i == 3:
            raise ValueError("item 3 is bad")
        return i

    got = []
    with pytest.raises(ValueError, match="item 3 is bad"):
        for value in map_ahead(check, range(10), workers=2):
            got.append(value)
    assert got == [0, 1, 2]


def test_look_ahead_is_bounded_and_stopping_early_cancels_the_rest() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> int:
        with lock:
            started.append(i)
        return i

    results = map_ahead(record, range(1_000), workers=2, ahead=3)
    assert next(results) == 0
    with lock:
        assert max(started) <= 3  # the item consumed plus at most three ahead
    results.close()
    with lock:
        assert len(started) <= 5
