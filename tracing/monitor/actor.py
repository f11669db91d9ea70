"""Who changes an incident, a roster or an escalation policy: an `Actor` from chat, or `SYSTEM`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes an incident: `key` is `platform:user_id`, `name` what chat shows."""

    key: str
    name: str
    platform: str
    chat: str = ""


SYSTEM = Actor("system", "chainsleuth", "system")
