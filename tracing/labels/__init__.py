"""Labels with their provenance: the label domain (`model`), the store-backed book (`book`), the bundled sets
(`bundled`), the importers of published sets (`importers/`), the sanctions helpers (`ofac`) and Tether's freezes
read from the chain (`freezes`).

Other wings import from here (`from tracing.labels import Label`), not from the modules."""

from tracing.labels.book import LabelBook, LabelHook
from tracing.labels.bundled import BUNDLED_PREFIX, ensure_bundled_labels, is_bundled
from tracing.labels.freeze_reader import FreezeScan, collect_freezes, record_freeze_logs
from tracing.labels.freeze_reader import read_cursor as freeze_cursor
from tracing.labels.freezes import (
    TOPICS as FREEZE_TOPICS,
)
from tracing.labels.freezes import (
    USDT_TRC20,
    FreezeEvent,
    FreezeKind,
    FreezeLogError,
    FreezeRecord,
    decode_freeze_log,
    freeze_labels,
    freeze_words,
    record_freezes,
)
from tracing.labels.importers import LabelImport, Reader, load_formats
from tracing.labels.model import (
    ANY_BTC,
    ILLICIT,
    SERVICES,
    Category,
    Label,
    LabelFact,
    LabelIdentity,
    LabelSet,
    LabelSetInfo,
    label_applies,
    sort_labels,
)
from tracing.labels.ofac import programs_of

__all__ = [
    "ANY_BTC",
    "BUNDLED_PREFIX",
    "Category",
    "FREEZE_TOPICS",
    "FreezeEvent",
    "FreezeKind",
    "FreezeLogError",
    "FreezeRecord",
    "FreezeScan",
    "collect_freezes",
    "record_freeze_logs",
    "freeze_cursor",
    "USDT_TRC20",
    "decode_freeze_log",
    "freeze_labels",
    "freeze_words",
    "record_freezes",
    "ILLICIT",
    "Label",
    "LabelBook",
    "LabelFact",
    "LabelHook",
    "LabelIdentity",
    "LabelImport",
    "LabelSet",
    "LabelSetInfo",
    "Reader",
    "SERVICES",
    "ensure_bundled_labels",
    "is_bundled",
    "label_applies",
    "load_formats",
    "programs_of",
    "sort_labels",
]
