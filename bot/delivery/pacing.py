"""Pacing messages to chats within each platform's limits (Telegram: one message a second per chat, 20 a minute per
group, about 30 a second overall; Slack: about one a second per channel), and after a `retry_after`."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tracing import Clock


@dataclass(frozen=True)
class RateLimits:
    """A platform's sending limits. `per_chat`: seconds between two messages to one chat; `group_per_minute`:
    messages a minute to a group chat (`is_group` tells which chats are groups); `per_second`: messages a second
    over all chats."""

    per_chat: float = 0.0
    group_per_minute: int | None = None
    per_second: float | None = None
    is_group: Callable[[str], bool] = field(default=lambda chat: False)


TELEGRAM_LIMITS = RateLimits(
    per_chat=1.0, group_per_minute=20, per_second=30, is_group=lambda chat: chat.startswith("-")
)
SLACK_LIMITS = RateLimits(per_chat=1.0)
PLATFORM_LIMITS: dict[str, RateLimits] = {"telegram": TELEGRAM_LIMITS, "slack": SLACK_LIMITS}


class ChatPacer:
    """Paces the messages to each chat: when the next one may go, by the platform's limits and any `retry_after` it
    imposed."""

    def __init__(self, limits: Mapping[str, RateLimits], clock: Clock) -> None:
        self.limits = limits
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._minute: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._second: dict[str, deque[float]] = defaultdict(deque)
        self._held: dict[tuple[str, str], float] = {}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def wait_time(self, platform: str, chat: str) -> float:
        limits = self.limits.get(platform, RateLimits())
        now = self._now()
        key = (platform, chat)
        ready = self._held.get(key, now)
        if key in self._last:
            ready = max(ready, self._last[key] + limits.per_chat)
        if limits.group_per_minute and limits.is_group(chat):
            window = self._minute[key]
            if len(window) >= limits.group_per_minute:
                ready = max(ready, window[-limits.group_per_minute] + 60.0)
        if limits.per_second:
            window = self._second[platform]
            allowed = int(limits.per_second)
            if len(window) >= allowed:
                ready = max(ready, window[-allowed] + 1.0)
        return max(0.0, ready - now)

    def record(self, platform: str, chat: str) -> None:
        now = self._now()
        key = (platform, chat)
        self._last[key] = now
        minute = self._minute[key]
        minute.append(now)
        while minute and minute[0] <= now - 60.0:
            minute.popleft()
        second = self._second[platform]
        second.append(now)
        while second and second[0] <= now - 1.0:
            second.popleft()

    def hold(self, platform: str, chat: str, seconds: float) -> None:
        """Nothing more to this chat for `seconds` (the platform's retry_after)."""
        self._held[(platform, chat)] = max(self._held.get((platform, chat), 0.0), self._now() + seconds)

    async def acquire(self, platform: str, chat: str) -> None:
        while (wait := self.wait_time(platform, chat)) > 0:
            await self.clock.sleep(wait)
        self.record(platform, chat)
