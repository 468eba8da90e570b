"""Waiting on a condition with a timeout (never a fixed sleep): poll a predicate until it is truthy."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def wait_for(predicate: Callable[[], Awaitable[T | None]], timeout: float, what: str, *,  # noqa: ASYNC109
                   interval: float = ..., ignore: tuple[type[BaseException], ...] = ...) -> T: ...


@overload
async def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, *,  # noqa: ASYNC109
                   interval: float = ..., ignore: tuple[type[BaseException], ...] = ...) -> T: ...


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str, *,  # noqa: ASYNC109
                   interval: float = 0.1, ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """Returns the first truthy value of ``predicate()`` (sync or async); AssertionError naming ``what`` after
    ``timeout`` seconds. Exceptions of the types in ``ignore`` count as "not yet"; others propagate."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last = value
        except ignore as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)
