"""A chat platform's recording server and the bot's harness on it, started and stopped together (pytest fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar


class Startable(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)
H = TypeVar("H", bound=Startable)


@asynccontextmanager
async def running(server: S, harness: Callable[[S], H]) -> AsyncIterator[H]:
    """Start `server`, then the harness made on it; stop both afterwards (harness first)."""
    await server.start()
    started = harness(server)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
        await server.stop()
