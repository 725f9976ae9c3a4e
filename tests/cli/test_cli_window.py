"""The bounded windows of the engine (colorize_cli/window.py): in order, never more than `size` in flight,
errors where they belong, and nothing left running when the consumer stops."""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import pytest

from sscn.cli.window import Window, ahead, prefetch


def _future(value=None) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_window_finishes_in_order_and_stays_bounded():
    finished = []
    window = Window(2, lambda key, future: finished.append(key))
    pending = [Future() for _ in range(3)]
    for key, future in enumerate(pending):
        window.add(key, future)
    assert finished == [0] and len(window.futures) == 2       # the third waits for the oldest
    window.add(3, _future())                                  # done, but behind unfinished ones
    assert finished == [0, 1] and [key for key, _ in window.futures] == [2, 3]
    pending[2].set_result(None)
    window.drain()
    assert finished == [0, 1, 2, 3] and not window.futures


def test_window_hands_over_finished_writes_early():
    finished = []
    window = Window(8, lambda key, future: finished.append(key))
    window.add("a", _future())
    assert finished == ["a"]


def test_ahead_keeps_size_in_flight_in_order():
    submitted = []

    def submit(call) -> Future:
        submitted.append(call())
        return _future(submitted[-1])

    calls = ((index, partial(lambda i: i * 10, index)) for index in range(5))
    results = ahead(calls, submit, size=2)
    assert submitted == []                                   # lazy: nothing before the first is asked for
    key, future = next(results)
    assert (key, future.result()) == (0, 0) and submitted == [0, 10, 20]     # the first, and two ahead
    assert [(key, future.result()) for key, future in results] == [(1, 10), (2, 20), (3, 30), (4, 40)]


def test_ahead_cancels_what_has_not_started():
    gate = threading.Event()
    submitted: list[Future] = []
    with ThreadPoolExecutor(1) as pool:
        def submit(call) -> Future:
            submitted.append(pool.submit(call))
            return submitted[-1]

        results = ahead(((index, gate.wait) for index in range(6)), submit, size=3)
        next(results)                       # the first runs (waiting on the gate), three more are queued
        results.close()
        gate.set()
    assert len(submitted) == 4 and submitted[0].result()
    assert all(future.cancelled() for future in submitted[1:])


def test_prefetch_yields_in_order_and_reraises_in_place():
    def items():
        yield from (1, 2)
        raise ValueError("bad frame")

    produced = prefetch(items(), depth=2)
    assert [next(produced), next(produced)] == [1, 2]
    with pytest.raises(ValueError, match="bad frame"):
        next(produced)


def test_prefetch_stops_producing_when_closed():
    produced = []

    def items():
        for index in range(100):
            produced.append(index)
            yield index

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert len(produced) <= 4 and not any(thread.name.startswith("sscn-prefetch")
                                          for thread in threading.enumerate())
