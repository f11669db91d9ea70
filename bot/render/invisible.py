"""Characters that change how text reads without being seen: bidi controls (a U+202E override shows
`exe.txt` for `txt.exe`, or reverses an address) and zero-width characters (two label names that look alike).

Every renderer passes what a user or a label supplies through `reveal`, so such a character is shown as `[U+202E]`
instead of acting: an investigator sees that the name holds it. What is stored is left as given (it is evidence).
"""

from __future__ import annotations

import re

INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
"""Zero-width space/joiners and LRM/RLM (U+200B–U+200F), bidi embeddings and overrides (U+202A–U+202E), word joiner
and invisible operators (U+2060–U+2064), bidi isolates (U+2066–U+2069), and the zero-width no-break space."""


def reveal(text: str) -> str:
    """`text` with each invisible or direction-changing character written out as `[U+XXXX]`."""
    return INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)
