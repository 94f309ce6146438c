"""A thin synchronous Client: the AsyncClient run on a private event loop in a background thread.

There is no second implementation: every call is the async method, submitted to that loop. Do not call
the sync client from inside one of its own callbacks (they run on the private loop: it would deadlock).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .client import AsyncClient, _Resource

T = TypeVar("T")


class _SyncResource:
    """Mirrors a resource namespace; coroutine methods become blocking calls."""

    def __init__(self, target: object, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._target = target
        self._run = run

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, _Resource):
            return _SyncResource(value, self._run)
        if inspect.iscoroutinefunction(value):

            @functools.wraps(value)
            def blocking(*args: Any, **kwargs: Any) -> Any:
                return self._run(value(*args, **kwargs))

            return blocking
        return value


class Client:
    """Blocking client with the same surface as AsyncClient (client.v1.image_projects.get(id=...))."""

    def __init__(self, token: str | None = None, **options: Any) -> None:
        if "session" in options:
            raise TypeError("The sync Client manages its own HTTP session; pass session= to AsyncClient instead.")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="magic-hour-sync", daemon=True)
        self._thread.start()
        self._closed = False
        try:
            self._async = AsyncClient(token, **options)
        except BaseException:
            self._stop_loop()
            raise
        self.v1 = _SyncResource(self._async.v1, self._run)

    def __repr__(self) -> str:
        return f"Client(base_url={self._async.base_url!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("This Magic Hour client is closed.")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def close(self) -> None:
        """Close the HTTP session, then stop the private loop and its thread."""
        if self._closed:
            return
        try:
            self._run(self._async.close())
        finally:
            self._closed = True
            self._stop_loop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
