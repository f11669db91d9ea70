"""What the account-history clients (the Etherscan-compatible explorer, TronGrid, Esplora) share over HTTP.

`HistoryHttpClient` holds the rate limiter, the HTTP client (closed on exit when it made it), the retry settings and
the retry loop: every attempt waits for the limiter and counts in `requests`; a `Retry` raised by the attempt (a
dropped connection, HTTP 429, 5xx, or whatever the API's own "slow down" answer is) is retried after the wait it
names (Retry-After, capped at `max_retry_after`) or exponential back-off, `max_retries` times, and then becomes the
client's give-up error. Each client keeps its API's paging, answer shapes and error messages in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self, TypeVar

import httpx

from tracing.errors import SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ExplorerError(SourceError):
    """The explorer failed or refused a call; the message names the action and page."""


class ExplorerAuthError(ExplorerError):
    """The explorer refused the API key (missing, invalid, or not allowed for this chain)."""


class ExplorerRateLimited(ExplorerError):
    """The explorer kept answering "rate limit" after every retry, or its daily allowance is spent."""


class ExplorerResponseError(ExplorerError):
    """The explorer answered with something that is not its JSON shape (malformed JSON, missing fields)."""


# --- rate limiting ------------------------------------------------------------------------------------------


class ExplorerRateLimit:
    """At most `calls` starts in any `period` seconds (a sliding window), for every task that shares it.

    A caller reserves the next free slot without awaiting (so reservations are atomic on one event loop, and a
    lock makes them so across threads) and then sleeps until it. Unlike a token bucket that starts full, no
    one-second window ever sees more than `calls` requests, which is what explorers count.
    """

    def __init__(
        self,
        calls: int,
        period: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if calls < 1 or period <= 0:
            raise ValueError(f"a rate limit needs calls >= 1 and period > 0, not {calls}/{period}s")
        self.calls = calls
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._slots: deque[float] = deque(maxlen=calls)
        self._lock = threading.Lock()

    @classmethod
    def per_second(cls, rate: float, *, margin: float = 0.0, **kwargs: Any) -> ExplorerRateLimit:
        """A limiter for `rate` calls per second (fractions allowed: 0.5 is one call every 2 s). `margin`
        seconds are added to the window, to stay under the limit when requests queue up on the way."""
        if rate <= 0:
            raise ValueError(f"a rate limit must be positive, not {rate}")
        calls = max(1, math.floor(rate))
        return cls(calls, calls / rate + margin, **kwargs)

    def reserve(self) -> float:
        """Claim the next free slot and return how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = now if len(self._slots) < self.calls else max(now, self._slots[0] + self.period)
            self._slots.append(slot)
            return slot - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)


_SHARED: dict[str, ExplorerRateLimit] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(api_key: str, calls_per_second: float, *, margin: float = 0.05) -> ExplorerRateLimit:
    """The limiter of every client using `api_key` in this process (explorers count calls per key, whatever the
    chain or client). A stricter rate asked for later replaces a laxer one."""
    with _SHARED_LOCK:
        limiter = _SHARED.get(api_key)
        wanted = ExplorerRateLimit.per_second(calls_per_second, margin=margin)
        if limiter is None or wanted.period / wanted.calls > limiter.period / limiter.calls:
            _SHARED[api_key] = limiter = wanted
        return limiter


class Retry(Exception):
    """One attempt failed in a way worth retrying; `wait` seconds if the server named them, else back-off."""

    def __init__(self, reason: str, *, wait: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.rate_limited = rate_limited


def snippet(value: object, limit: int = 120) -> str:
    """A short one-line repr of an answer (or part of one) for an error message."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def retry_after_header(response: httpx.Response) -> float | None:
    """The seconds a Retry-After header asks for (delta seconds or an HTTP date), None without a readable one."""
    header = response.headers.get("Retry-After")
    if not header:
        return None
    try:
        return float(header)
    except ValueError:
        try:
            return parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return None


class HistoryHttpClient:
    """The shared HTTP side of an account-history client; `label` names the API in messages and logs."""

    label: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str,
        limiter: ExplorerRateLimit,
        http: httpx.AsyncClient | None,
        timeout: float,
        headers: Mapping[str, str],
        max_retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
    ) -> None:
        self.api_key = api_key
        self.limiter = limiter
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._http = http or httpx.AsyncClient(timeout=timeout, headers=dict(headers))
        self._owns_http = http is None
        self.requests = 0
        """Requests sent by this client (retries included)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- one call, with retries ---

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], where: str) -> T:
        """`attempt()` until it answers, retrying each `Retry` after its wait or back-off; `_give_up` after the last."""
        failures = 0
        while True:
            await self.limiter.acquire()
            self.requests += 1
            try:
                return await attempt()
            except Retry as retry:
                failures += 1
                if failures > self.max_retries:
                    raise self._give_up(retry, where) from None
                delay = retry.wait if retry.wait is not None else self._backoff(failures)
                log.info("%s %s: %s; retry %d in %.1fs", self.label, where, self._redact(retry.reason), failures, delay)
                await asyncio.sleep(delay)

    def _give_up(self, retry: Retry, where: str) -> ExplorerError:
        kind = ExplorerRateLimited if retry.rate_limited else ExplorerError
        return kind(f"{self.label} {where}: {self._redact(retry.reason)} (gave up after {self.max_retries} retries)")

    async def _send(self, url: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        """One GET; a timeout or dropped connection is a `Retry`."""
        try:
            return await self._http.get(url, params=dict(params) if params is not None else None)
        except httpx.TimeoutException as exc:
            raise Retry(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retry(f"connection failed ({type(exc).__name__}: {exc})") from None

    def _retry_after(self, response: httpx.Response, where: str) -> float | None:
        return self._capped_wait(retry_after_header(response), where)

    def _capped_wait(self, wait: float | None, where: str) -> float | None:
        """`wait` (at least 0), or `ExplorerRateLimited` when it is longer than `max_retry_after`."""
        if wait is None:
            return None
        wait = max(0.0, wait)
        if wait > self.max_retry_after:
            raise ExplorerRateLimited(
                f"{self.label} {where}: asked to wait {wait:.0f}s before retrying "
                f"(more than {self.max_retry_after:.0f}s)"
            )
        return wait

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text
