"""Change detection: which output of a payment went back to the payer. Each signal that fires is named and votes for
one output; the output with the most votes wins, a tie is no answer. The result keeps every signal, also those that
voted for another output, so an analyst sees how sure the guess is.

Signals (`Signal.name`):

- `address-reuse` (2 votes): the output pays back to one of the inputs' addresses — change by construction.
- `script-type`: the output's script type matches every input's while the other output's does not (a wallet makes
  change of its own kind; the payee's address type is the payee's choice).
- `round-payment`: the *other* output is a round amount (a multiple of 0.001 BTC) and this one is not: people pay
  round amounts, change is what is left after the fee.
- `unnecessary-input`: the inputs without the smallest one would still cover this output and the fee, so had this
  been the payment the wallet would not have added that input: this output is the change.
- `fresh-address`: this output's address was never seen before this transaction while the other's was (needs a
  "seen before" look-up; without one the signal is not tried, and the result says so).

Applied to a transaction with exactly two spendable outputs (`two-outputs`); address reuse works at any count. A
coinbase or a CoinJoin has no change that can be told.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tracing.chain.utxo import TxOutput, UtxoTx
from tracing.trace.utxo.amounts import btc, script_kind

ROUND_SATS = 100_000
"""An amount is round when it is a multiple of this (0.001 BTC)."""

ADDRESS_REUSE = "address-reuse"
SCRIPT_TYPE = "script-type"
ROUND_PAYMENT = "round-payment"
UNNECESSARY_INPUT = "unnecessary-input"
FRESH_ADDRESS = "fresh-address"
TWO_OUTPUTS = "two-outputs"
SIGNALS = (ADDRESS_REUSE, SCRIPT_TYPE, ROUND_PAYMENT, UNNECESSARY_INPUT, FRESH_ADDRESS)

SeenBefore = Callable[[str], bool]
"""Whether an address was seen (received or spent) in any transaction before the one being judged."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal that fired: its name, the output it votes for (`n`), how many votes, and the facts."""

    name: str
    output: int
    votes: int
    detail: str


@dataclass(frozen=True, slots=True)
class ChangeGuess:
    """The change output of `txid` (None: not told), the signals that fired and why the answer is what it is."""

    txid: str
    change: TxOutput | None
    signals: tuple[Signal, ...]
    reason: str
    checked: tuple[str, ...] = ()
    """The signals that were tried (fresh-address needs a look-up)."""

    @property
    def found(self) -> bool:
        return self.change is not None

    @property
    def names(self) -> tuple[str, ...]:
        """The signals that voted for the chosen output."""
        if self.change is None:
            return ()
        return tuple(s.name for s in self.signals if s.output == self.change.n)

    def votes(self, n: int) -> int:
        return sum(s.votes for s in self.signals if s.output == n)


def _none(tx: UtxoTx, reason: str, signals: tuple[Signal, ...] = (), checked: tuple[str, ...] = ()) -> ChangeGuess:
    return ChangeGuess(tx.txid, None, signals, reason, checked)


def find_change(tx: UtxoTx, seen_before: SeenBefore | None = None, *, coinjoin: bool = False) -> ChangeGuess:
    """The change output of `tx` by the signals above, with every signal that fired."""
    if tx.coinbase:
        return _none(tx, "a coinbase has no change")
    if coinjoin:
        return _none(tx, "a CoinJoin: which output is whose cannot be told")
    outputs = [o for o in tx.outputs if o.address is not None and o.value > 0]
    if not outputs:
        return _none(tx, "no output with an address")
    inputs = set(tx.input_addresses())
    signals: list[Signal] = []
    checked = [ADDRESS_REUSE]
    for o in outputs:
        if o.address in inputs:
            signals.append(Signal(ADDRESS_REUSE, o.n, 2, f"output {o.n} pays back to input address {o.address}"))
    if len(outputs) == 1:
        return _none(tx, "one output: the whole amount moved on (no change)", tuple(signals), tuple(checked))
    if len(outputs) == 2:
        checked += [SCRIPT_TYPE, ROUND_PAYMENT, UNNECESSARY_INPUT]
        signals += _script_type(tx, outputs) + _round_payment(outputs) + _unnecessary_input(tx, outputs)
        if seen_before is not None:
            checked.append(FRESH_ADDRESS)
            signals += _fresh_address(outputs, seen_before)
    return _decide(tx, outputs, tuple(signals), tuple(checked))


def _decide(tx: UtxoTx, outputs: list[TxOutput], signals: tuple[Signal, ...], checked: tuple[str, ...]) -> ChangeGuess:
    if not signals:
        many = (
            "" if len(outputs) == 2 else f"; {len(outputs)} outputs ({TWO_OUTPUTS}: signals but address reuse need two)"
        )
        return _none(tx, f"no change signal fired{many}", signals, checked)
    votes = {o.n: sum(s.votes for s in signals if s.output == o.n) for o in outputs}
    best = max(votes.values())
    leaders = [n for n, v in votes.items() if v == best]
    if len(leaders) > 1:
        tied = ", ".join(f"output {n}" for n in leaders)
        return _none(tx, f"the signals disagree ({tied} have {best} vote(s) each)", signals, checked)
    change = next(o for o in outputs if o.n == leaders[0])
    facts = "; ".join(f"{s.name}: {s.detail}" for s in signals if s.output == change.n)
    against = [s for s in signals if s.output != change.n]
    dissent = f"; against it: {', '.join(dict.fromkeys(s.name for s in against))}" if against else ""
    reason = f"output {change.n} ({btc(change.value)} to {change.address}), {best} vote(s){dissent} — {facts}"
    return ChangeGuess(tx.txid, change, signals, reason, checked)


def _script_type(tx: UtxoTx, outputs: list[TxOutput]) -> list[Signal]:
    kinds = {script_kind(i.address, i.script_type) for i in tx.inputs}
    if len(kinds) != 1 or None in kinds:
        return []
    (kind,) = kinds
    matching = [o for o in outputs if script_kind(o.address, o.script_type) == kind]
    if len(matching) != 1:
        return []
    o = matching[0]
    other = next(x for x in outputs if x is not o)
    other_kind = script_kind(other.address, other.script_type)
    return [Signal(SCRIPT_TYPE, o.n, 1, f"output {o.n} is {kind} like every input; output {other.n} is {other_kind}")]


def _round_payment(outputs: list[TxOutput]) -> list[Signal]:
    rounds = [o for o in outputs if o.value % ROUND_SATS == 0]
    if len(rounds) != 1:
        return []
    payment = rounds[0]
    change = next(x for x in outputs if x is not payment)
    return [
        Signal(
            ROUND_PAYMENT,
            change.n,
            1,
            f"output {payment.n} is a round {btc(payment.value)}; output {change.n} ({btc(change.value)}) is not",
        )
    ]


def _unnecessary_input(tx: UtxoTx, outputs: list[TxOutput]) -> list[Signal]:
    values = [i.value for i in tx.inputs]
    fee = tx.fee
    if len(values) < 2 or fee is None or any(v is None for v in values):
        return []
    known = [v for v in values if v is not None]
    without_smallest = sum(known) - min(known)
    covered = [o for o in outputs if without_smallest >= o.value + fee]
    if len(covered) != 1:
        return []
    o = covered[0]
    return [
        Signal(
            UNNECESSARY_INPUT,
            o.n,
            1,
            f"paying output {o.n} ({btc(o.value)}) would not have needed the smallest input ({btc(min(known))})",
        )
    ]


def _fresh_address(outputs: list[TxOutput], seen_before: SeenBefore) -> list[Signal]:
    fresh = [o for o in outputs if o.address is not None and not seen_before(o.address)]
    if len(fresh) != 1:
        return []
    o = fresh[0]
    other = next(x for x in outputs if x is not o)
    detail = f"output {o.n}'s address is new; output {other.n}'s, {other.address}, was seen before"
    return [Signal(FRESH_ADDRESS, o.n, 1, detail)]
