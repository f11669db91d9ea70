"""A time budget and a short memory of failure for a remote source a command waits on (explorer, RPC node).

The explorer client retries on its own (time-outs of 30 s, five retries with back-off), which is right for an
indexing job and wrong for a chat command: an unreachable explorer once made `/risk` take 65 s. Behind a guard,
one read of an address's history may take at most `budget` seconds (SOURCE_BUDGET, 10 s); a read that runs out of
it, or that could not reach the explorer at all, marks the source down for `down_for` seconds, during which reads
fail at once with the same reason. So a command that needs an unreachable explorer answers within about one
budget, and the failure (with the source's name) goes into the coverage of what it affected. The RPC node that
reads token metadata for a report is guarded the same way (a hanging node would hold it for 3 x 20 s).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tracing.chain.explorer import ExplorerClient, ExplorerError
from tracing.chain.rpc import redact
from tracing.errors import SourceError

SOURCE_BUDGET = 10.0
"""Seconds one explorer read may take inside a command before it counts as failed."""
T = TypeVar("T")
DOWN_FOR = 60.0
"""Seconds a source that timed out or could not be reached is not asked again."""


class SourceUnreachable(SourceError):
    """A guarded source gave no answer within its budget, could not be reached, or is resting after that."""


def source_name(base_url: str) -> str:
    """`explorer api.etherscan.io`: the host only (paths and queries may hold keys)."""
    parts = urlsplit(base_url)
    port = f":{parts.port}" if parts.port else ""
    return f"explorer {parts.hostname or '?'}{port}"


class SourceGuard:
    """A budget per call and a rest after failure, for one remote source named `name` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        budget: float = SOURCE_BUDGET,
        down_for: float = DOWN_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.budget = budget
        self.down_for = down_for
        self._clock = clock
        self._down_until = 0.0
        self._failure: tuple[float, str] | None = None

    async def call(self, work: Callable[[], Awaitable[T]], *, trips: Callable[[Exception], bool]) -> T:
        """`work()` within the budget; a time-out, or an error `trips` accepts, rests the source."""
        now = self._clock()
        if now < self._down_until and self._failure is not None:
            self._failure = (now, self._failure[1])  # this command was failed by it too
            rest = self._down_until - now
            raise SourceUnreachable(f"{self.name}: {self._failure[1]} (not asked again for another {rest:.0f} s)")
        try:
            async with asyncio.timeout(self.budget):
                return await work()
        except TimeoutError:
            raise self._fail(f"no answer within {self.budget:g} s") from None
        except Exception as exc:
            if trips(exc):
                raise self._fail(str(exc)) from exc
            raise

    def failed_since(self, moment: float) -> str | None:
        """Why the source failed, when it failed at or after `moment` (a `time.monotonic()` reading)."""
        if self._failure is not None and self._failure[0] >= moment:
            return self._failure[1]
        return None

    def _fail(self, reason: str) -> SourceUnreachable:
        now = self._clock()
        self._failure = (now, reason)
        self._down_until = now + self.down_for
        return SourceUnreachable(f"{self.name}: {reason}")


class GuardedExplorer(SourceGuard):
    """An `ExplorerClient` (or anything with an async `transfers_of`) whose reads are bounded by `budget`."""

    def __init__(self, client: Any, *, name: str | None = None, **guard: Any) -> None:
        base_url = getattr(client, "base_url", "")
        super().__init__(name or (source_name(base_url) if base_url else "explorer"), **guard)
        self.client = client

    async def transfers_of(self, address: str, **kwargs: Any) -> Any:
        # Connection failures and 5xx after retries rest it; a refused key or a malformed row does not.
        return await self.call(
            lambda: self.client.transfers_of(address, **kwargs), trips=lambda exc: type(exc) is ExplorerError
        )

    async def aclose(self) -> None:
        close = getattr(self.client, "aclose", None)
        if close is not None:
            await close()


class GuardedTokenReader(SourceGuard):
    """A chain's token metadata reader (its `RpcSource`) whose reads are bounded by `budget`."""

    def __init__(self, reader: Any, *, name: str | None = None, **guard: Any) -> None:
        urls = getattr(getattr(reader, "client", None), "urls", ())
        super().__init__(name or (f"rpc node {redact(urls[0])}" if urls else "rpc node"), **guard)
        self.reader = reader

    async def token_meta(self, tokens: Iterable[str]) -> Mapping[str, object]:
        wanted = list(tokens)
        return await self.call(lambda: self.reader.token_meta(wanted), trips=lambda exc: isinstance(exc, SourceError))


def guarded(client: ExplorerClient | Any, budget: float = SOURCE_BUDGET) -> GuardedExplorer:
    """An explorer client behind a guard (a client already guarded is returned as it is)."""
    return client if isinstance(client, GuardedExplorer) else GuardedExplorer(client, budget=budget)


def guarded_reader(reader: Any, budget: float = SOURCE_BUDGET) -> GuardedTokenReader:
    """A token metadata reader behind a guard (one already guarded is returned as it is)."""
    return reader if isinstance(reader, GuardedTokenReader) else GuardedTokenReader(reader, budget=budget)


def stops_early(client: Any) -> bool:
    """Whether `client.transfers_of` (through a `GuardedExplorer`) can stop reading a busy address early: it takes
    `busy` (`tracing.chain.explorer.ExplorerClient.transfers_of`)."""
    if isinstance(client, GuardedExplorer):
        return stops_early(client.client)
    try:
        return "busy" in inspect.signature(client.transfers_of).parameters
    except (TypeError, ValueError, AttributeError):
        return False
