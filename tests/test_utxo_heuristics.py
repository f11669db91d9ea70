"""The bitcoin heuristics over hand-built transactions: change detection by named signals, CoinJoin kinds, peel
chains along the change, clustering with evidence and never across a CoinJoin, and the `--heuristics` settings."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from storage.db import Database
from tests.conftest import shared_data
from tracing.chain.base58 import b58check_encode, segwit_encode
from tracing.chain.transfer import Direction
from tracing.chain.utxo import Outpoint, TxInput, TxOutput, UtxoTx
from tracing.chain.utxo_mappers import map_core_block, map_core_transaction, outputs_of, resolve_inputs
from tracing.chain.utxo_store import UtxoStore
from tracing.errors import InvalidArgument
from tracing.trace.utxo import (
    CoinJoinKind,
    Heuristics,
    cluster_addresses,
    detect_coinjoin,
    find_change,
    follow_peel,
    peel_step,
    whirlpool_tx0,
)
from tracing.trace.utxo.trace import StoredTxs, find_heuristics

BTC = 100_000_000


def p2pkh(i: int) -> str:
    return b58check_encode(bytes([0x00]) + i.to_bytes(20, "big"))


def p2wpkh(i: int) -> str:
    return segwit_encode("bc", 0, i.to_bytes(20, "big"))


def tx(
    txid: str,
    inputs: list[tuple[str, int]],
    outputs: list[tuple[str | None, int]],
    *,
    spends: list[Outpoint] | None = None,
) -> UtxoTx:
    ins = tuple(
        TxInput(spends=(spends[k] if spends else Outpoint(f"prev-{txid}-{k}", 0)), address=a, value=v)
        for k, (a, v) in enumerate(inputs)
    )
    outs = tuple(TxOutput(n, v, a, "nulldata" if a is None else "pubkeyhash") for n, (a, v) in enumerate(outputs))
    return UtxoTx("btc", txid, ins, outs, block_height=100)


# --- change -------------------------------------------------------------------------------------------------------


def test_a_round_payment_leaves_the_other_output_as_change() -> None:
    payment = tx("t1", [(p2pkh(1), 2 * BTC)], [(p2pkh(2), 150_000_000), (p2pkh(3), 49_990_000)])
    guess = find_change(payment)
    assert guess.change is not None and guess.change.n == 1
    assert guess.names == ("round-payment",)
    assert "1.5 BTC" in guess.reason and "round-payment" in guess.reason


def test_script_type_matching_the_inputs_votes_for_change() -> None:
    # the inputs are P2WPKH; the payee's P2PKH address is its own choice, the change is the wallet's own kind
    payment = tx("t2", [(p2wpkh(1), 2 * BTC)], [(p2pkh(2), 123_456_789), (p2wpkh(3), 76_533_211)])
    guess = find_change(payment)
    assert guess.change is not None and guess.change.n == 1 and guess.names == ("script-type",)
    assert "p2wpkh like every input" in guess.signals[0].detail


def test_unnecessary_input_fresh_address_and_reuse() -> None:
    # 1 BTC + 0.3 BTC in; paying 1.2 BTC needs both, paying 0.0999 would not have needed the 0.3 BTC one
    two_inputs = tx("t3", [(p2pkh(1), BTC), (p2pkh(4), 30_000_000)], [(p2pkh(2), 120_000_000), (p2pkh(3), 9_990_000)])
    guess = find_change(two_inputs)
    assert guess.change is not None and guess.change.n == 1
    assert set(guess.names) == {"unnecessary-input", "round-payment"}
    seen = {p2pkh(2)}
    fresh = find_change(two_inputs, seen_before=lambda a: a in seen)
    assert "fresh-address" in fresh.names and fresh.votes(1) == 3
    assert "fresh-address" in fresh.checked and "fresh-address" not in guess.checked
    reuse = tx("t4", [(p2pkh(1), BTC)], [(p2pkh(2), 33_333_333), (p2pkh(1), 66_656_667), (p2pkh(5), 1000)])
    back = find_change(reuse)
    assert back.change is not None and back.change.n == 1 and back.names == ("address-reuse",)


def test_no_change_when_signals_disagree_or_none_fire() -> None:
    # output 0 is round (so output 1 is change by round-payment), output 0 is fresh (change by fresh-address): a tie
    split = tx("t5", [(p2pkh(1), 2 * BTC)], [(p2pkh(2), BTC), (p2pkh(3), 99_990_000)])
    guess = find_change(split, seen_before=lambda a: a == p2pkh(3))
    assert guess.change is None and "disagree" in guess.reason
    assert {s.name for s in guess.signals} == {"round-payment", "fresh-address"}
    plain = tx("t6", [(p2pkh(1), 2 * BTC)], [(p2pkh(2), 123_456_789), (p2pkh(3), 76_533_211)])
    assert find_change(plain).change is None and "no change signal" in find_change(plain).reason
    batch = tx("t8", [(p2pkh(1), 2 * BTC)], [(p2pkh(2), 12_345_678), (p2pkh(3), 23_456_789), (p2pkh(4), 9_999)])
    assert "3 outputs (two-outputs: signals but address reuse need two)" in find_change(batch).reason
    sweep = tx("t7", [(p2pkh(1), 2 * BTC)], [(p2pkh(2), 199_990_000)])
    assert find_change(sweep).change is None and "one output" in find_change(sweep).reason
    assert find_change(split, coinjoin=True).change is None


# --- CoinJoin -----------------------------------------------------------------------------------------------------


def test_whirlpool_mix_and_its_tx0() -> None:
    mix = tx("w1", [(p2wpkh(i), 1_000_170 + i) for i in range(5)], [(p2wpkh(10 + i), 1_000_000) for i in range(5)])
    found = detect_coinjoin(mix)
    assert found is not None and found.kind is CoinJoinKind.WHIRLPOOL and found.denomination == 1_000_000
    assert "Whirlpool" in found.reason and "0.01 BTC pool" in found.reason and "cannot be told" in found.reason
    tx0 = tx(
        "w0",
        [(p2wpkh(1), 10_000_000)],
        [(None, 0), (p2wpkh(2), 42_500), (p2wpkh(3), 1_000_300), (p2wpkh(4), 1_000_300), (p2wpkh(5), 7_950_000)],
    )
    entry = whirlpool_tx0(tx0)
    assert entry is not None and entry.pool == 1_000_000 and entry.premix_outputs == 2
    assert detect_coinjoin(tx0) is None  # one wallet: not a mix
    assert whirlpool_tx0(mix) is None


def test_wasabi_by_denomination_and_by_coordinator_fee() -> None:
    outputs: list[tuple[str | None, int]] = [(p2wpkh(100 + i), 10_003_000) for i in range(12)]
    inputs = [(p2wpkh(i), 11_000_000) for i in range(14)]
    wasabi = detect_coinjoin(tx("ws", inputs, [*outputs, (p2wpkh(999), 5_555_555)]))
    assert wasabi is not None and wasabi.kind is CoinJoinKind.WASABI
    fee = "bc1qs604c7jv6amk4cxqlnvuxv26hv3e48cds4m0ew"
    small = tx("wf", inputs[:4], [(p2wpkh(200 + i), 5_000_000) for i in range(4)] + [(fee, 30_000)])
    found = detect_coinjoin(small)
    assert found is not None and found.kind is CoinJoinKind.WASABI and found.coordinator == fee
    assert fee in found.reason


def test_joinmarket_and_generic_equal_outputs_but_not_a_batch_payment() -> None:
    jm = tx(
        "jm",
        [(p2pkh(i), 30_000_000 + i * 1000) for i in range(4)],
        [(p2pkh(10 + i), 25_000_000) for i in range(4)] + [(p2pkh(20 + i), 4_990_000 + i * 7) for i in range(3)],
    )
    found = detect_coinjoin(jm)
    assert found is not None and found.kind is CoinJoinKind.JOINMARKET and found.equal_outputs == 4
    generic = tx("eq", [(p2pkh(i), BTC) for i in range(3)], [(p2pkh(10 + i), 90_000_000) for i in range(3)])
    assert (g := detect_coinjoin(generic)) is not None and g.kind is CoinJoinKind.EQUAL_OUTPUT
    batch = tx("bp", [(p2pkh(1), 10 * BTC)], [(p2pkh(10 + i), BTC) for i in range(5)] + [(p2pkh(1), 4 * BTC)])
    assert detect_coinjoin(batch) is None  # one payer paying five equal salaries is not a mix
    dust = tx("du", [(p2pkh(i), BTC) for i in range(3)], [(p2pkh(10 + i), 546) for i in range(3)])
    assert detect_coinjoin(dust) is None


# --- peel chains --------------------------------------------------------------------------------------------------


def _peel_chain(hops: int) -> list[UtxoTx]:
    chain, value, prev = [], 10 * BTC, Outpoint("funding", 0)
    for k in range(hops):
        pay = (k + 1) * 10_000_000
        change = value - pay - 10_000
        step = tx(
            f"peel{k}",
            [(p2pkh(500 + k), value)],
            [(p2pkh(900 + k), pay), (p2pkh(501 + k), change)],
            spends=[prev],
        )
        chain.append(step)
        value, prev = change, Outpoint(step.txid, 1)
    return chain


def test_a_peel_chain_is_followed_along_the_change() -> None:
    steps = _peel_chain(4)
    spenders = {t.inputs[0].spends: t for t in steps}
    chain = follow_peel(steps[0], spenders.get)
    assert chain.hops == 4 and chain.is_chain
    assert [s.payment.address for s in chain.steps] == [p2pkh(900 + k) for k in range(4)]
    assert chain.steps[-1].change.address == p2pkh(504)
    assert chain.paid == 100_000_000 and "unspent" in chain.end
    assert "peel chain of 4 step(s)" in chain.reason
    # the change of each step is what the change detector also picks (round payment)
    assert all(find_change(t).change == s.change for t, s in zip(steps, chain.steps, strict=True))


def test_not_a_peel_step() -> None:
    even = tx("ev", [(p2pkh(1), 2 * BTC)], [(p2pkh(2), 90_000_000), (p2pkh(3), 109_990_000)])
    assert peel_step(even) is None  # 45 % is a split, not a peel
    two_owners = tx("to", [(p2pkh(1), BTC), (p2pkh(2), BTC)], [(p2pkh(3), 10_000_000), (p2pkh(4), 189_990_000)])
    assert peel_step(two_owners) is None
    assert follow_peel(even, lambda _: None).hops == 0


# --- clustering ---------------------------------------------------------------------------------------------------


def test_clustering_joins_common_inputs_with_evidence_and_never_across_a_coinjoin() -> None:
    consolidation = tx("co", [(p2pkh(1), BTC), (p2pkh(2), BTC), (p2pkh(3), BTC)], [(p2pkh(9), 299_990_000)])
    later = tx("la", [(p2pkh(3), BTC), (p2pkh(4), BTC)], [(p2pkh(8), 199_990_000)])
    mix = tx("cj", [(p2pkh(4), BTC), (p2pkh(5), BTC), (p2pkh(6), BTC)], [(p2pkh(20 + i), 90_000_000) for i in range(3)])
    result = cluster_addresses([consolidation, later, mix])
    assert len(result.clusters) == 1
    (cluster,) = result.clusters
    assert cluster.size == 4 and set(cluster.addresses) == {p2pkh(1), p2pkh(2), p2pkh(3), p2pkh(4)}
    assert [(link.txid, set(link.addresses)) for link in cluster.links] == [
        ("co", {p2pkh(1), p2pkh(2), p2pkh(3)}),
        ("la", {p2pkh(3), p2pkh(4)}),
    ]
    assert result.cluster_of(p2pkh(5)) is None and result.cluster_of(p2pkh(1)) is cluster
    assert result.left_out[0][0] == "cj" and "CoinJoin" in result.left_out[0][1]
    assert "co joined" in cluster.reason


# --- settings -----------------------------------------------------------------------------------------------------


def test_heuristics_parse_and_name_what_is_on() -> None:
    assert Heuristics().names == ("change", "coinjoin", "peel")
    assert Heuristics.parse("default").cluster is False
    assert Heuristics.parse("default,cluster").names == ("change", "coinjoin", "peel", "cluster")
    assert Heuristics.parse("Cluster, change").names == ("change", "cluster")
    assert Heuristics.parse("none").names == () and Heuristics.parse("none").words().startswith("none (off:")
    assert Heuristics.parse("all").words() == "change, coinjoin, peel, cluster"
    assert Heuristics.parse("change").words() == "change (off: coinjoin, peel, cluster)"
    for bad, words in (("magic", "Unknown heuristic “magic”"), ("none,change", "cannot be combined"), ("", "commas")):
        with pytest.raises(InvalidArgument, match=words):
            Heuristics.parse(bad)


# --- recorded mainnet transactions --------------------------------------------------------------------------------


def test_recorded_mainnet_transactions_of_2009_2010_are_no_coinjoins() -> None:
    """bitcoin-etl's recorded blocks predate CoinJoin (2013): a detector that flags one of them is wrong."""
    root = shared_data("bitcoin-etl-rpc-fixtures", "test_export_blocks_job", "bitcoin")
    txs: list[UtxoTx] = []
    previous: list[UtxoTx] = []
    for case in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(case.glob("rpc_response_getblock_*_2.json")):
            txs.extend(map_core_block(json.loads(path.read_text(), parse_float=Decimal), "btc").txs)
        for path in case.glob("rpc_response_getrawtransaction_*.json"):
            previous.append(map_core_transaction(json.loads(path.read_text(), parse_float=Decimal), "btc"))
    txs = resolve_inputs(txs, outputs_of(previous))
    assert len([tx for tx in txs if not tx.coinbase]) == 4  # few, and old: a precision guard, not a benchmark
    assert [tx.txid for tx in txs if detect_coinjoin(tx) is not None] == []
    result = cluster_addresses(txs)
    assert result.left_out == ()
    for cluster in result.clusters:  # every join is backed by a transaction that spent those addresses together
        for link in cluster.links:
            spent = next(tx for tx in txs if tx.txid == link.txid).input_addresses()
            assert set(link.addresses) == set(spent) and len(spent) >= 2
    for tx in txs:
        guess = find_change(tx)
        assert guess.change is None or guess.change in tx.outputs  # never an output of another transaction


# --- findings over the store --------------------------------------------------------------------------------------


def _mined(t: UtxoTx, height: int) -> UtxoTx:
    return UtxoTx(t.chain, t.txid, t.inputs, t.outputs, height, f"{height:064x}", 1_600_000_000 + height * 600)


def test_findings_name_a_whirlpool_tx0_and_leave_its_mix_out_of_clusters(db: Database) -> None:
    tx0 = _mined(
        tx(
            "a0" * 32,
            [(p2wpkh(1), 10_000_000)],
            [(None, 0), (p2wpkh(2), 42_500), (p2wpkh(3), 1_000_300), (p2wpkh(4), 1_000_300), (p2wpkh(5), 7_950_000)],
            spends=[Outpoint("f0" * 32, 0)],
        ),
        200,
    )
    others = [(p2wpkh(30 + i), 1_000_300) for i in range(4)]
    mix = _mined(
        tx(
            "b0" * 32,
            [(p2wpkh(3), 1_000_300), *others],
            [(p2wpkh(40 + i), 1_000_000) for i in range(5)],
            spends=[Outpoint(tx0.txid, 2), *(Outpoint(f"e{i}" * 32, 0) for i in range(4))],
        ),
        201,
    )
    UtxoStore(db).add([tx0, mix])
    txs = StoredTxs(UtxoStore(db), "btc")
    found = find_heuristics(
        txs, p2wpkh(1), Direction.OUT, [tx0.txid, mix.txid, "c0" * 32], [p2wpkh(1), p2wpkh(3)], Heuristics.parse("all")
    )
    lines = found.lines()
    assert any(f"coinjoin: {tx0.txid} is a Whirlpool Tx0: 2 premix output(s) for the 0.01 BTC pool" in x for x in lines)
    assert any(f"went through {mix.txid}" in x and "Whirlpool CoinJoin" in x for x in lines)
    assert found.clustering is not None and found.clustering.clusters == ()
    assert found.clustering.left_out[0][0] == mix.txid  # five owners: never one cluster
    assert lines[0].startswith("unchecked: 1 followed transaction(s) are not in the index")
    [tx0_change] = [g for g in found.changes if g.txid == tx0.txid]
    assert tx0_change.change is None  # five outputs: only address reuse could tell
