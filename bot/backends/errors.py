"""What a failed send or edit says, in the platform's own terms sorted into ours: each backend turns its library's
exceptions into these (Telegram's in `telegram.py`, Slack's in `slack.py`), and the notifier acts on them."""

from __future__ import annotations

from enum import Enum


class Outcome(Enum):
    """What became of a message whose send failed."""

    NOT_SENT = "not sent"
    """Certainly not on the platform (no connection was made, say): worth retrying plainly."""
    IN_DOUBT = "in doubt"
    """Maybe on the platform (a read time-out, the connection lost after the request went out, a 5xx): worth
    retrying, but only after looking for the post where the platform lets a bot look."""
    REFUSED = "refused"
    """The platform will not take it (chat gone, bot removed, bad request), or the failure is not one we know:
    retrying will not help."""


class RateLimited(Exception):
    """The platform said "too many requests": nothing was posted; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:g}s")
        self.retry_after = max(0.0, float(retry_after))


class DeliveryError(Exception):
    """A send or an edit failed, with its `outcome`."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome

    @property
    def transient(self) -> bool:
        """Worth retrying."""
        return self.outcome is not Outcome.REFUSED

    @property
    def maybe_sent(self) -> bool:
        """The message may be in the chat although the call failed."""
        return self.outcome is Outcome.IN_DOUBT


def raised_from(exc: BaseException, causes: tuple[type[BaseException], ...]) -> bool:
    """Whether `exc`, or anything in its `raise … from` chain, is one of `causes` (a library's wrapper exception
    often says less than what it wraps: whether a connection was ever made, say)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, causes):
            return True
        current = current.__cause__
    return False


class HistoryUnavailable(Exception):
    """The platform could not be asked whether an earlier post is there (a missing scope, the bot not in the channel,
    too much history to read); the message says why, in a few words."""
