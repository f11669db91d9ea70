"""The anvil harness itself: the node starts and stops, and build_scenario's expected transfers really happened.

Checked with raw JSON-RPC only (blocks, receipts, token balances, debug_traceBlockByNumber's callTracer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.anvil import AnvilNode, Scenario, build_scenario
from tests.support.contracts import TRANSFER_TOPIC, Contract, load_artifact
from tests.support.fixtures import AnvilFactory, anvil, anvil_factory, anvil_session, require_anvil  # noqa: F401
from tests.support.rpc import ZERO_ADDRESS, JsonDict, Rpc, RpcError, from_hex
from tests.support.scenario import ExpectedTransfer, summarize

pytestmark = pytest.mark.anvil

Move = tuple[str, str, str, int]  # (tx hash, from, to, value)


@pytest.fixture(scope="module")
def built(anvil_session: AnvilNode) -> Scenario:  # noqa: F811
    return build_scenario(anvil_session)


@pytest.fixture
def rpc(anvil_session: AnvilNode) -> Rpc:  # noqa: F811
    return anvil_session.rpc


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def _walk(frame: JsonDict, depth: int = 0) -> Iterator[tuple[int, JsonDict]]:
    yield depth, frame
    for child in frame.get("calls") or []:
        yield from _walk(child, depth + 1)


def _traced_moves(rpc: Rpc, scenario: Scenario) -> tuple[Counter[Move], Counter[Move]]:
    """(top-level, internal) value moves of successful frames in the scenario's blocks, from the callTracer."""
    top: Counter[Move] = Counter()
    internal: Counter[Move] = Counter()
    for block in scenario.blocks:
        for item in rpc.trace_block_calls(block):
            root = item["result"]
            if root.get("error"):
                continue  # a reverted transaction moves nothing, whatever its frames say
            for depth, frame in _walk(root):
                value = from_hex(frame.get("value") or "0x0")
                if value == 0 or frame.get("error") or frame.get("type") not in ("CALL", "CREATE", "CREATE2"):
                    continue
                move = (item["txHash"], frame["from"].lower(), frame["to"].lower(), value)
                (internal if depth else top)[move] += 1
    return top, internal


def _moves(transfers: list[ExpectedTransfer]) -> Counter[Move]:
    return Counter((t.tx_hash, t.from_addr, t.to_addr, t.value) for t in transfers)


# -- the node ----------------------------------------------------------------------------------------------


def test_node_answers_and_stops(anvil: AnvilNode) -> None:  # noqa: F811
    assert anvil.url.startswith("http://127.0.0.1:")
    assert anvil.rpc.chain_id() == 31337
    assert len(anvil.accounts()) == 10
    assert anvil.rpc.block_number() == 0
    proc_pid = anvil.pid
    assert proc_pid is not None and anvil.running
    anvil.stop()
    assert not anvil.running
    anvil.stop()  # idempotent


def test_command_line_is_loopback_and_pruned() -> None:
    require_anvil()
    cmd = AnvilNode(chain_id=5, block_time=2, kept_states=64).command(18545)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--prune-history") + 1] == "64"
    assert cmd[cmd.index("--chain-id") + 1] == "5"
    assert cmd[cmd.index("--block-time") + 1] == "2"
    assert "--silent" in cmd
    assert "--no-mining" in AnvilNode(no_mining=True).command(18545)
    with pytest.raises(ValueError):
        AnvilNode(block_time=1, no_mining=True)


def test_two_nodes_at_once(anvil_factory: AnvilFactory) -> None:  # noqa: F811
    first = anvil_factory()
    second = anvil_factory(chain_id=1337)
    assert first.port != second.port
    assert (first.rpc.chain_id(), second.rpc.chain_id()) == (31337, 1337)
    alice, bob = first.accounts()[:2]
    first.rpc.wait_receipt(first.rpc.send_transaction({"from": alice, "to": bob, "value": 1}))
    assert first.rpc.block_number() == 1
    assert second.rpc.block_number() == 0  # independent chains


def test_no_mining_snapshot_and_revert(anvil_factory: AnvilFactory) -> None:  # noqa: F811
    node = anvil_factory(no_mining=True)
    rpc = node.rpc
    alice, bob = node.accounts()[:2]
    assert rpc.get_automine() is False
    snap = rpc.snapshot()
    before = rpc.get_balance(bob)
    tx = rpc.send_transaction({"from": alice, "to": bob, "value": 7, "gas": 21_000})
    assert rpc.get_receipt(tx) is None  # pending until mined
    assert rpc.mine() == 1
    assert from_hex(rpc.wait_receipt(tx)["status"]) == 1
    assert rpc.get_balance(bob) == before + 7
    assert rpc.revert(snap)
    assert rpc.block_number() == 0
    assert rpc.get_balance(bob) == before


def test_block_time_mines_by_itself(anvil_factory: AnvilFactory) -> None:  # noqa: F811
    node = anvil_factory(block_time=1)
    assert node.wait_for_block(1, timeout=5) >= 1


# -- the scenario ------------------------------------------------------------------------------------------


def test_scenario_shape(built: Scenario, rpc: Rpc) -> None:
    assert built.first_block <= built.last_block <= rpc.block_number()
    assert len(built.tx_hashes) < 30
    kinds = Counter(t.kind for t in built.expected)
    assert kinds["native"] >= 4 and kinds["erc20"] >= 5 and kinds["internal"] >= 4, summarize(built)
    assert any(t.kind == "erc20" and t.value > 2**63 and t.from_addr != ZERO_ADDRESS for t in built.expected)
    assert any(t.kind == "erc20" and t.from_addr == ZERO_ADDRESS for t in built.expected)  # mints
    assert all(t.value > 0 for t in built.expected)
    assert all(t.block_number in built.blocks for t in built.expected)
    assert all(a == a.lower() for t in built.expected for a in (t.from_addr, t.to_addr, t.token or ""))
    assert built.expected == sorted(built.expected, key=lambda t: t.block_number)
    failed = set(built.reverted) | set(built.zero_value)
    assert not [t for t in built.expected if t.tx_hash in failed]
    tokens = {t.token for t in built.expected if t.token}
    assert tokens == {built.tst, built.usdx}
    assert built.tokens[built.tst].decimals == 18 and built.tokens[built.usdx].decimals == 6


def test_scenario_transactions_are_in_their_blocks(built: Scenario, rpc: Rpc) -> None:
    in_blocks: dict[str, int] = {}
    for number in built.blocks:
        block = rpc.get_block(number)
        assert block is not None
        in_blocks.update({tx: number for tx in block["transactions"]})
    assert set(built.tx_hashes) <= set(in_blocks)
    for t in built.expected:
        assert in_blocks[t.tx_hash] == t.block_number


def test_native_transfers_match_transactions(built: Scenario, rpc: Rpc) -> None:
    for t in built.of_kind("native"):
        tx = rpc.get_transaction(t.tx_hash)
        receipt = rpc.get_receipt(t.tx_hash)
        assert tx is not None and receipt is not None
        assert (tx["from"].lower(), (tx["to"] or "").lower(), from_hex(tx["value"])) == (
            t.from_addr,
            t.to_addr,
            t.value,
        )
        assert from_hex(receipt["status"]) == 1
    # every successful value-carrying transaction in the range is expected, and nothing else
    actual: Counter[Move] = Counter()
    for number in built.blocks:
        block = rpc.get_block(number, full=True)
        assert block is not None
        for tx in block["transactions"]:
            receipt = rpc.get_receipt(tx["hash"])
            assert receipt is not None
            if from_hex(tx["value"]) and from_hex(receipt["status"]) == 1:
                actual[(tx["hash"], tx["from"].lower(), tx["to"].lower(), from_hex(tx["value"]))] += 1
    assert actual == _moves(built.of_kind("native"))


def test_zero_value_and_reverted_transactions(built: Scenario, rpc: Rpc) -> None:
    for tx_hash in built.zero_value:
        receipt = rpc.get_receipt(tx_hash)
        tx = rpc.get_transaction(tx_hash)
        assert receipt is not None and tx is not None
        assert from_hex(receipt["status"]) == 1 and from_hex(tx["value"]) == 0
    assert len(built.reverted) >= 2
    carried_value = 0
    for tx_hash in built.reverted:
        receipt = rpc.get_receipt(tx_hash)
        tx = rpc.get_transaction(tx_hash)
        assert receipt is not None and tx is not None
        assert from_hex(receipt["status"]) == 0
        assert receipt["logs"] == []
        carried_value += from_hex(tx["value"])
        assert rpc.trace_transaction_calls(tx_hash).get("error")
    assert carried_value > 0  # at least one reverted transaction carried value


def test_erc20_transfers_match_logs_and_balances(built: Scenario, rpc: Rpc) -> None:
    logs = rpc.get_logs({"fromBlock": built.first_block, "toBlock": built.last_block, "topics": [TRANSFER_TOPIC]})
    actual = Counter(
        (
            log["transactionHash"],
            log["address"].lower(),
            _topic_address(log["topics"][1]),
            _topic_address(log["topics"][2]),
            from_hex(log["data"]),
        )
        for log in logs
    )
    expected = Counter((t.tx_hash, t.token, t.from_addr, t.to_addr, t.value) for t in built.of_kind("erc20"))
    assert actual == expected
    for log in logs:
        assert from_hex(log["blockNumber"]) == next(
            t.block_number for t in built.expected if t.tx_hash == log["transactionHash"]
        )

    artifact = load_artifact("TestToken")
    for token, meta in built.tokens.items():
        contract = Contract(rpc, token, artifact)
        assert contract.call("symbol") == meta.symbol
        assert contract.call("decimals") == meta.decimals
        net: Counter[str] = Counter()
        for t in built.of_kind("erc20"):
            if t.token == token:
                net[t.to_addr] += t.value
                if t.from_addr != ZERO_ADDRESS:
                    net[t.from_addr] -= t.value
        for address in built.accounts.values():
            assert contract.call("balanceOf", address) == net[address], built.labels[address]
        minted = sum(t.value for t in built.of_kind("erc20") if t.token == token and t.from_addr == ZERO_ADDRESS)
        assert contract.call("totalSupply") == minted


def test_internal_transfers_appear_in_call_traces(built: Scenario, rpc: Rpc) -> None:
    top, internal = _traced_moves(rpc, built)
    assert internal == _moves(built.of_kind("internal"))
    assert top == _moves(built.of_kind("native"))


def test_parity_trace_block_agrees(built: Scenario, rpc: Rpc) -> None:
    """anvil also answers trace_block (parity style); its nested value calls are the internal transfers."""
    internal: Counter[Move] = Counter()
    for number in built.blocks:
        for trace in rpc.call("trace_block", hex(number)):
            action = trace["action"]
            if trace["traceAddress"] and not trace.get("error") and from_hex(action.get("value", "0x0")):
                internal[(trace["transactionHash"], action["from"], action["to"], from_hex(action["value"]))] += 1
    reverted = set(built.reverted)
    internal = Counter({m: n for m, n in internal.items() if m[0] not in reverted})
    assert internal == _moves(built.of_kind("internal"))


def test_native_balances_follow_the_transfers(built: Scenario, rpc: Rpc) -> None:
    """grace and heidi only ever receive, so their balance changes are exactly their expected inflows."""
    before = built.first_block - 1
    for role in ("grace", "heidi"):
        address = built.accounts[role]
        inflow = sum(t.value for t in built.involving(address) if t.token is None and t.to_addr == address)
        assert inflow > 0
        assert rpc.get_balance(address, built.last_block) - rpc.get_balance(address, before) == inflow
    # the contracts end empty: everything forwarded, the pool paid out its one deposit
    assert rpc.get_balance(built.forwarder) == 0
    assert rpc.get_balance(built.mixer) == 0


def test_scenario_on_a_used_node_and_restores_automine(anvil: AnvilNode) -> None:  # noqa: F811
    alice, bob = anvil.accounts()[1:3]
    anvil.rpc.wait_receipt(anvil.rpc.send_transaction({"from": alice, "to": bob, "value": 1}))
    scenario = build_scenario(anvil)
    assert scenario.first_block == 2
    assert anvil.rpc.get_automine() is True
    again = build_scenario(anvil)  # twice on one node: new contracts, later blocks
    assert again.first_block > scenario.last_block
    assert again.tst != scenario.tst
    assert len(again.expected) == len(scenario.expected)


def test_rpc_errors_are_raised(anvil: AnvilNode) -> None:  # noqa: F811
    with pytest.raises(RpcError) as info:
        anvil.rpc.call("eth_getBalance", "not-an-address", "latest")
    assert info.value.method == "eth_getBalance"
