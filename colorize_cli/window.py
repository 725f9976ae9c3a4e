"""Bounded windows of futures, the one way the engine overlaps disk and model: reads submitted ahead of the model
(`ahead`), a generator run ahead in a thread (`prefetch`: video frames decoded while the model works) and writes in
flight behind it (`Window`). At most `size` futures are in flight and they are taken oldest first, so memory stays
bounded and results come back in order, errors included.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K")
T = TypeVar("T")
_END = object()


class Window(Generic[K]):
    """Writes in flight: `add` hands every finished future at the head to `finish`, and the oldest (waiting for it)
    while more than `size` are in flight; `drain` hands over the rest."""

    def __init__(self, size: int, finish: Callable[[K, Future], None]) -> None:
        self.size, self.finish = size, finish
        self.futures: collections.deque[tuple[K, Future]] = collections.deque()

    def add(self, key: K, future: Future) -> None:
        self.futures.append((key, future))
        while self.futures and (len(self.futures) > self.size or self.futures[0][1].done()):
            self.finish(*self.futures.popleft())

    def drain(self) -> None:
        while self.futures:
            self.finish(*self.futures.popleft())


def ahead(calls: Iterable[tuple[K, Callable[[], T]]], submit: Callable[[Callable[[], T]], Future],
          size: int) -> Iterator[tuple[K, Future]]:
    """(key, future) of each of `calls`, in order, each call submitted through `submit` while up to `size` are in
    flight; closing the iterator cancels the calls not yet started."""
    calls = iter(calls)
    futures: collections.deque[tuple[K, Future]] = collections.deque()

    def fill() -> None:
        for key, call in itertools.islice(calls, size - len(futures)):
            futures.append((key, submit(call)))

    try:
        fill()
        while futures:
            item = futures.popleft()
            fill()
            yield item
    finally:
        for _, future in futures:
            future.cancel()


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """`items`, produced in a background thread up to `depth` ahead; their exceptions re-raise here, in order."""
    iterator = iter(items)
    produce = partial(next, iterator, _END)
    with ThreadPoolExecutor(1, thread_name_prefix="sscn-prefetch") as thread, \
            contextlib.closing(ahead(((None, produce) for _ in itertools.count()), thread.submit, depth)) as futures:
        for _, future in futures:
            item = future.result()
            if item is _END:
                return
            yield item
