"""What crosses the platform boundary: an incoming message, and the reply the core hands back for rendering."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Identity:
    platform: str
    user_id: str
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def display(self) -> str:
        return self.name or self.user_id


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    platform: str
    chat_id: str
    user: Identity
    text: str
    chat_title: str = ""
    is_direct: bool = False
    workspace: str = ""
    """The Slack workspace (team id) the chat belongs to; empty where the platform has none."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class ErrorText:
    """A user-caused error (one short sentence) or, with `ref`, an unexpected failure with its log reference."""

    text: str
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    """A button: `command` is run as if typed by whoever presses it. A `once` button is used up by the first press
    that runs (the platform then removes it), so a one-off offer is not answered twice."""

    label: str
    command: str
    style: str = ""
    once: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    parts: tuple[object, ...]
    actions: tuple[Action, ...] = ()
    attachments: tuple[Attachment, ...] = field(default=())

    @classmethod
    def text(cls, text: str) -> Reply:
        return cls((Text(text),))

    @classmethod
    def error(cls, text: str, ref: str = "") -> Reply:
        return cls((ErrorText(text, ref),))

    @property
    def is_error(self) -> bool:
        return any(isinstance(p, ErrorText) for p in self.parts)

    @property
    def failed(self) -> bool:
        """An error on our side (the reply carries a reference for the operators), not a refusal of the input."""
        return any(isinstance(p, ErrorText) and p.ref for p in self.parts)
