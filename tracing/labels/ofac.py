"""Sanctions helpers over labels (program names, listing dates)."""

from __future__ import annotations

from tracing.labels.model import Label


def programs_of(label: Label) -> list[str]:
    programs = label.details.get("programs", [])
    return [str(p) for p in programs] if isinstance(programs, list) else []
