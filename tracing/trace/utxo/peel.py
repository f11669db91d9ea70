"""Peel chains: one coin spent again and again, each time into a small payment and a large remainder (the change)
that the next transaction spends — how a large balance is paid out, or laundered, in pieces. A trace follows the
chain along the change; each payment is a branch.

A *peel step* spends the coins of one address (one input, or several of the same address) into exactly two
outputs, one of them at most `max_share` of the total (the payment) and the other the rest (the change). A *peel
chain* is two or more steps, each spending the previous step's change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tracing.chain.utxo import Outpoint, TxOutput, UtxoTx
from tracing.trace.utxo.amounts import btc

MAX_PAYMENT_SHARE = 0.3
"""The payment of a peel step is at most this share of what the step moved (the rest is the change)."""
MAX_STEPS = 200


@dataclass(frozen=True, slots=True)
class PeelStep:
    txid: str
    payment: TxOutput
    change: TxOutput

    @property
    def reason(self) -> str:
        return (
            f"peel: one owner's coins into a payment of {btc(self.payment.value)} (output {self.payment.n}) and "
            f"{btc(self.change.value)} of change (output {self.change.n}, {self.change.address})"
        )


@dataclass(frozen=True, slots=True)
class PeelChain:
    """Consecutive peel steps, each spending the one before's change; `end` says why it stopped."""

    steps: tuple[PeelStep, ...]
    end: str

    @property
    def hops(self) -> int:
        return len(self.steps)

    @property
    def is_chain(self) -> bool:
        return len(self.steps) >= 2

    @property
    def paid(self) -> int:
        return sum(s.payment.value for s in self.steps)

    @property
    def reason(self) -> str:
        if not self.steps:
            return f"no peel step ({self.end})"
        return (
            f"peel chain of {self.hops} step(s) from {self.steps[0].txid}: {btc(self.paid)} paid out in "
            f"{self.hops} payment(s), {btc(self.steps[-1].change.value)} left at {self.steps[-1].change.address} "
            f"({self.end})"
        )


def peel_step(tx: UtxoTx, *, max_share: float = MAX_PAYMENT_SHARE) -> PeelStep | None:
    """The peel step `tx` is, or None."""
    if tx.coinbase or len(tx.input_addresses()) != 1:
        return None
    outputs = [o for o in tx.outputs if o.address is not None and o.value > 0]
    if len(outputs) != 2:
        return None
    small, large = sorted(outputs, key=lambda o: (o.value, o.n))
    if small.value == large.value or small.value > max_share * (small.value + large.value):
        return None
    return PeelStep(tx.txid, small, large)


def follow_peel(
    start: UtxoTx,
    spender: Callable[[Outpoint], UtxoTx | None],
    *,
    max_share: float = MAX_PAYMENT_SHARE,
    max_steps: int = MAX_STEPS,
) -> PeelChain:
    """The peel chain that starts at `start`, following each step's change to the transaction that spent it
    (`spender`: the spending transaction of an output, None while unspent or unknown)."""
    steps: list[PeelStep] = []
    tx: UtxoTx | None = start
    end = "the change is unspent or its spender unknown"
    while tx is not None:
        step = peel_step(tx, max_share=max_share)
        if step is None:
            end = f"{tx.txid} is not a peel step" if steps else "not a peel step"
            break
        steps.append(step)
        if len(steps) >= max_steps:
            end = f"stopped after {max_steps} steps"
            break
        tx = spender(Outpoint(step.txid, step.change.n))
        if tx is None:
            end = "the change is unspent or its spender unknown"
    return PeelChain(tuple(steps), end)
