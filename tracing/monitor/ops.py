"""Self-monitoring: tells the ops channel when a watcher lags or errs, or delivery keeps failing — and when it
recovers. Each problem is announced once per transition (state kept in the store, so restarts don't repeat it)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from storage import STORE_FAULTS, Database, KeyValueRow, StoreUnavailable
from tracing.monitor.clock import Clock, SystemClock, sleep_or_stop
from tracing.monitor.outbox import OpsNotice, OutboxKind, enqueue, outbox_stats
from tracing.monitor.silence import DEFAULT_STALE_AFTER, silence_of
from tracing.monitor.watcher import watch_status

log = logging.getLogger(__name__)
STATE_KEY = "ops-monitor"


@dataclass(frozen=True)
class OpsPolicy:
    platform: str
    chat: str
    lag_blocks: int = 20
    failed_messages: int = 1
    stale_after: float = DEFAULT_STALE_AFTER
    """Seconds without a good answer from a chain's node before it is announced silent."""
    store_fault_minutes: int = 15
    """How long after this process's last store fault the ops channel still hears of it (the notice itself waits in
    the outbox, in the store, so it goes out once the store takes writes again)."""


def parse_ops_chat(text: str) -> tuple[str, str] | None:
    """`telegram:-1001234` → ("telegram", "-1001234"); empty → None."""
    if not text.strip():
        return None
    platform, _, chat = text.strip().partition(":")
    if not platform or not chat:
        raise ValueError(f"OPS_CHAT must look like platform:chat_id, not {text!r}")
    return platform, chat


class OpsMonitor:
    def __init__(self, db: Database, policy: OpsPolicy, clock: Clock | None = None) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock or SystemClock()

    def problems(self) -> dict[str, str]:
        """Current problems, keyed by a stable id, each with the sentence to post."""
        found: dict[str, str] = {}
        now = self.clock.now()
        for chain in watch_status(self.db):
            silence = silence_of(chain, now, self.policy.stale_after)
            if silence is not None:
                # The sentence without the growing age: announced once, and its recovery names the same problem.
                found[f"silent:{chain.chain}"] = (
                    f"Watcher {chain.chain} has had no good answer from its node for over "
                    f"{self.policy.stale_after:g} s (last at {silence.last_answer_at:%Y-%m-%d %H:%M:%S} UTC): "
                    "the node hangs or is down, or the watcher stopped; alerts are not being raised."
                )
            if chain.lag is not None and chain.lag > self.policy.lag_blocks:
                found[f"lag:{chain.chain}"] = (
                    f"Watcher {chain.chain} is {chain.lag} blocks behind the head "
                    f"(threshold {self.policy.lag_blocks}); alerts are delayed."
                )
            if chain.last_error:
                found[f"error:{chain.chain}"] = f"Watcher {chain.chain} keeps failing: {chain.last_error[:300]}"
        fault = STORE_FAULTS.recent(timedelta(minutes=self.policy.store_fault_minutes), now)
        if fault is not None:
            found["store"] = (
                f"The store refused writes: {fault.cause} (last at {fault.at:%Y-%m-%d %H:%M} UTC in {fault.what}, "
                f"reference {fault.ref}; {STORE_FAULTS.total} fault(s) since start); commands told users so."
            )
        stats = outbox_stats(self.db)
        if stats.failed >= self.policy.failed_messages:
            found["delivery"] = (
                f"{stats.failed} chat message(s) could not be delivered after retries; see /status "
                "(they stay in the store and can be re-queued)."
            )
        return found

    def check(self) -> list[str]:
        """Compare with what was last announced; enqueue a notice per change. Returns the texts enqueued."""
        current = self.problems()
        now = self.clock.now()
        texts: list[str] = []
        with self.db.session() as session:
            row = session.get(KeyValueRow, STATE_KEY) or KeyValueRow(key=STATE_KEY, value={})
            announced = {str(k): str(v) for k, v in dict(row.value).items()}
            for key, text in current.items():
                if key not in announced:
                    texts.append("⚠️ " + text)
            for key in announced:
                if key not in current:
                    texts.append("✅ Recovered: " + announced[key])
            for text in texts:
                enqueue(
                    session,
                    platform=self.policy.platform,
                    chat=self.policy.chat,
                    kind=OutboxKind.NOTICE,
                    now=now,
                    notice=OpsNotice(text),
                )
            if texts:
                row.value = dict(current)
                row.updated_at = now
                session.add(row)
        return texts

    async def run(self, stop: asyncio.Event, interval: float = 30.0) -> None:
        while not stop.is_set():
            try:
                for text in self.check():
                    log.warning("ops: %s", text)
            except StoreUnavailable as fault:  # its notice waits until the store takes writes again
                log.error("ops monitor check deferred: %s", fault)
            except Exception:
                log.exception("ops monitor check failed")
            if await sleep_or_stop(self.clock, interval, stop):
                return
