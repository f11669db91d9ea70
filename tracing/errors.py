"""Errors a user can cause. Each renders as one short sentence in chat; nothing is written but the audit row."""

from __future__ import annotations


class UserError(Exception):
    """Base class: the message is shown to the user as is, so keep it one short sentence."""


class InvalidAddress(UserError):
    pass


class UnsupportedAddress(UserError):
    pass


class UnknownChain(UserError):
    pass


class InvalidArgument(UserError):
    pass


class NotFound(UserError):
    pass


class NotAllowed(UserError):
    pass


class SourceError(Exception):
    """A chain or explorer source failed (after retries). Not the user's fault; the message names the place."""
