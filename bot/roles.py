"""Roles and access: default deny for chats not on the allow-list; roles from configuration and `/role`."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    NONE = 0
    VIEWER = 1
    ANALYST = 2
    OFFICER = 3
    ADMIN = 4

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            role = cls[text.strip().upper()]
        except KeyError:
            role = cls.NONE
        if role is cls.NONE:
            from tracing import InvalidArgument

            raise InvalidArgument("Unknown role; use viewer, analyst, officer or admin.")
        return role

    @property
    def title(self) -> str:
        return self.name.lower()
