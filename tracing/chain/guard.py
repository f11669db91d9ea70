"""A time budget and a short memory of failure for a remote source that a command waits on (the block explorer).

The explorer client retries on its own (time-outs of 30 s, five retries with back-off), which is right for an
indexing job and wrong for a chat command: an unreachable explorer once made `/risk` take 65 s. Behind a guard,
one read of an address's history may take at most `budget` seconds (SOURCE_BUDGET, 10 s); a read that runs out of
it, or that could not reach the explorer at all, marks the source down for `down_for` seconds, during which reads
fail at once with the same reason. So a command that needs an unreachable explorer answers within about one
budget, and the failure (with the source's name) goes into the coverage of what it affected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tracing.chain.explorer import ExplorerClient, ExplorerError
from tracing.errors import SourceError

SOURCE_BUDGET = 10.0
"""Seconds one explorer read may take inside a command before it counts as failed."""
DOWN_FOR = 60.0
"""Seconds a source that timed out or could not be reached is not asked again."""


class SourceUnreachable(SourceError):
    """A guarded source gave no answer within its budget, could not be reached, or is resting after that."""


def source_name(base_url: str) -> str:
    """`explorer api.etherscan.io`: the host only (paths and queries may hold keys)."""
    parts = urlsplit(base_url)
    port = f":{parts.port}" if parts.port else ""
    return f"explorer {parts.hostname or '?'}{port}"


class GuardedExplorer:
    """An `ExplorerClient` (or anything with an async `transfers_of`) whose reads are bounded by `budget`."""

    def __init__(
        self,
        client: Any,
        *,
        name: str | None = None,
        budget: float = SOURCE_BUDGET,
        down_for: float = DOWN_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        base_url = getattr(client, "base_url", "")
        self.name = name or (source_name(base_url) if base_url else "explorer")
        self.budget = budget
        self.down_for = down_for
        self._clock = clock
        self._down_until = 0.0
        self._failure: tuple[float, str] | None = None

    async def transfers_of(self, address: str, **kwargs: Any) -> Any:
        now = self._clock()
        if now < self._down_until and self._failure is not None:
            self._failure = (now, self._failure[1])  # this command was failed by it too
            raise SourceUnreachable(f"{self.name}: {self._failure[1]} (not asked again for {self.down_for:g} s)")
        try:
            async with asyncio.timeout(self.budget):
                return await self.client.transfers_of(address, **kwargs)
        except TimeoutError:
            raise self._fail(f"no answer within {self.budget:g} s") from None
        except ExplorerError as exc:
            if type(exc) is ExplorerError:  # connection failures and 5xx after retries; not a refused key or bad row
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

    async def aclose(self) -> None:
        close = getattr(self.client, "aclose", None)
        if close is not None:
            await close()


def guarded(client: ExplorerClient | Any, budget: float = SOURCE_BUDGET) -> GuardedExplorer:
    """`client` behind a guard (a client already guarded is returned as it is)."""
    return client if isinstance(client, GuardedExplorer) else GuardedExplorer(client, budget=budget)
