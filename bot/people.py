"""Naming a person in a command: one syntax for /role, /assign and /oncall.

`me`; a Slack mention `<@U0123>`; `platform:id` with the id in that platform's form (`telegram:12345`,
`slack:U0123ABCD`, `console:bob`); or a bare id on the caller's own chat platform. An `@username` names nobody the
bot can look up, so only commands that merely record a name (/assign, /oncall) take it.
"""

from __future__ import annotations

import re

from bot.messages import Identity
from tracing import InvalidArgument

_LOCAL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
USER_IDS = {
    "telegram": re.compile(r"^[1-9][0-9]{0,19}$"),
    "slack": re.compile(r"^[UW][A-Z0-9]{2,20}$"),
    "console": _LOCAL_NAME,
    "cli": _LOCAL_NAME,
}
LOCAL_PLATFORMS = ("console", "cli")
_SLACK_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|([^>]*))?>$")
_HANDLE = re.compile(r"^@[A-Za-z0-9_]{3,64}$")


def person_arg(text: str, caller: Identity, *, handles: bool = False) -> Identity:
    """The person `text` names, said by `caller`; `handles`: an @username is taken as a name (not an id)."""
    raw = text.strip()
    if raw.lower() == "me":
        return caller
    mention = _SLACK_MENTION.match(raw)
    if mention:
        return Identity("slack", mention.group(1), mention.group(2) or mention.group(1))
    if raw.startswith("@"):
        if handles and _HANDLE.match(raw):
            return Identity(caller.platform, raw, raw[1:])
        raise InvalidArgument("Bots cannot look people up by @username; use their user id (/status shows it).")
    platform = caller.platform
    if ":" in raw:
        named, raw = raw.split(":", 1)
        platform = named.strip().lower()
        if platform not in USER_IDS:
            raise InvalidArgument(f"Unknown platform “{named[:20]}”; use {_forms()}.")
    elif platform in LOCAL_PLATFORMS or platform not in USER_IDS:
        raise InvalidArgument(f"Name the platform: {_forms()}.")
    if not USER_IDS[platform].match(raw):
        raise InvalidArgument(f"“{raw[:30]}” is not a {platform} user id.")
    return Identity(platform, raw, raw)


def _forms() -> str:
    return "telegram:12345, slack:U0123ABCD or console:NAME"
