"""Attachments for front ends that cannot show a file (the console, `chainsleuth say`): written under
`DATA_DIR/exports/`, so the trace picture or the CSV is kept and its path can be printed instead."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot.messages import Attachment

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def save_attachments(attachments: Sequence[Attachment], directory: Path) -> list[Path]:
    """Write each attachment to `directory` (made if missing) under a new name: a UTC timestamp and the
    attachment's own name, with anything but letters, digits, `.`, `_` and `-` replaced; never overwrites."""
    if not attachments:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    saved = []
    for attachment in attachments:
        name = _UNSAFE.sub("_", attachment.filename).strip("._") or "attachment"
        path = directory / f"{stamp}-{name}"
        number = 1
        while True:
            try:
                with path.open("xb") as out:
                    out.write(attachment.content)
                break
            except FileExistsError:
                number += 1
                path = directory / f"{stamp}-{number}-{name}"
        saved.append(path.resolve())
    return saved
