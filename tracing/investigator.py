"""The tracing module's front door: what the bot (or the CLI) asks, answered as domain objects."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database
from storage.models import RiskCheckRow
from tracing.labels import Label, LabelBook
from tracing.risk import RiskReport, labels_only_report


@dataclass(frozen=True)
class Asker:
    """Who asked, so that later label changes can reach them (retro-alerts)."""

    platform: str
    chat: str
    actor: str


class Investigator:
    def __init__(self, db: Database, default_chain: str = "eth") -> None:
        self.db = db
        self.labels = LabelBook(db)
        self.default_chain = default_chain

    def label_sets(self) -> tuple[str, ...]:
        return tuple(f"{s.source} ({s.version})" for s in self.labels.sets())

    async def labels_of(self, address: str, chain: str | None = None) -> list[Label]:
        return self.labels.for_address(address, chain)

    async def risk(
        self, address: str, chain: str | None = None, asker: Asker | None = None, hops: int | None = None
    ) -> RiskReport:
        chain = chain or self.default_chain
        report = labels_only_report(address, chain, self.labels.for_address(address, chain), self.label_sets())
        if asker is not None:
            self.remember_check(report, asker)
        return report

    def remember_check(self, report: RiskReport, asker: Asker) -> None:
        with self.db.session() as session:
            session.add(
                RiskCheckRow(
                    address=report.address,
                    chain=report.chain,
                    platform=asker.platform,
                    chat=asker.chat,
                    actor=asker.actor,
                    level=report.level.value,
                )
            )
