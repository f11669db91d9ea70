"""A connection flood, run as its own process (`python -m tests.support.flood PORT TOTAL SECONDS`) so that the test's
own clients are not slowed by it: TOTAL idle, half-headed and half-bodied connections to 127.0.0.1:PORT, spread
evenly over SECONDS in waves of 100, at most 1,500 held at once. Prints how many were opened."""

from __future__ import annotations

import asyncio
import sys
import time

HEAD = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
KINDS = (b"", HEAD, HEAD + b"Content-Length: 5000\r\n\r\n" + b"{" * 100)


async def flood(port: int, total: int, seconds: float) -> int:
    held: list[asyncio.StreamWriter] = []
    opened = 0

    async def one(i: int) -> None:
        nonlocal opened
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
        except (OSError, TimeoutError):
            return
        opened += 1
        if KINDS[i % 3]:
            writer.write(KINDS[i % 3])
        held.append(writer)

    started = time.monotonic()
    for i in range(0, total, 100):
        await asyncio.sleep(max(0.0, started + seconds * i / total - time.monotonic()))
        await asyncio.gather(*(one(i + k) for k in range(100)))
        while len(held) > 1500:
            held.pop(0).transport.abort()
    for writer in held:
        writer.transport.abort()
    return opened


if __name__ == "__main__":
    print(asyncio.run(flood(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))))
