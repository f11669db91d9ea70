"""Chains by configuration: `CHAINS` and `<NAME>_*` variables from the environment and `.env`."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Settings
from tracing.chain.config import ChainConfigError, adhoc_chain, get_chain, load_chains
from tracing.errors import UnknownChain


def test_ethereum_mainnet_is_the_default() -> None:
    chains = load_chains({})
    assert list(chains) == ["eth"]
    eth = chains["eth"]
    assert (eth.chain_id, eth.symbol, eth.confirmations, eth.rpc_urls) == (1, "ETH", 12, ())
    with pytest.raises(ChainConfigError, match="No RPC URL for chain eth: set ETH_RPC_URL"):
        eth.require_rpc()


def test_well_known_names_and_fail_over_urls() -> None:
    env = {
        "CHAINS": "eth, base,arbitrum,optimism,polygon,bsc",
        "ETH_RPC_URL": "http://10.0.0.1:8545, https://eth.example/v3/key",
        "ETH_EXPLORER_URL": "https://api.etherscan.io/v2/api",
        "ETH_EXPLORER_KEY": "secret-key",
        "BASE_CONFIRMATIONS": "5",
    }
    chains = load_chains(env)
    assert list(chains) == ["eth", "base", "arbitrum", "optimism", "polygon", "bsc"]
    assert chains["eth"].rpc_urls == ("http://10.0.0.1:8545", "https://eth.example/v3/key")
    assert (
        chains["eth"].explorer_url == "https://api.etherscan.io/v2/api" and chains["eth"].explorer_key == "secret-key"
    )
    assert "secret-key" not in repr(chains["eth"])
    ids = {name: (c.chain_id, c.symbol) for name, c in chains.items()}
    assert ids == {
        "eth": (1, "ETH"),
        "base": (8453, "ETH"),
        "arbitrum": (42161, "ETH"),
        "optimism": (10, "ETH"),
        "polygon": (137, "POL"),
        "bsc": (56, "BNB"),
    }
    assert chains["base"].confirmations == 5


def test_any_other_chain_by_its_variables() -> None:
    chains = load_chains({"CHAINS": "my-chain", "MY_CHAIN_RPC_URL": "http://x", "MY_CHAIN_SYMBOL": "XDAI"})
    mine = chains["my-chain"]
    assert (mine.chain_id, mine.symbol, mine.confirmations, mine.env_prefix) == (None, "XDAI", 0, "MY_CHAIN")
    pinned = load_chains({"CHAINS": "gnosis", "GNOSIS_CHAIN_ID": "100", "GNOSIS_CONFIRMATIONS": "0x10"})
    assert (pinned["gnosis"].chain_id, pinned["gnosis"].confirmations) == (100, 16)


def test_unconfigured_and_misconfigured_chains_are_user_errors() -> None:
    chains = load_chains({"CHAINS": "eth,base"})
    assert get_chain("BASE", chains).name == "base"
    with pytest.raises(UnknownChain, match="Chain “polygon” is not configured \\(configured: eth, base\\)"):
        get_chain("polygon", chains)
    with pytest.raises(ChainConfigError, match="ETH_CONFIRMATIONS must be a whole number"):
        load_chains({"ETH_CONFIRMATIONS": "twelve"})
    with pytest.raises(ChainConfigError, match="must start with http"):
        load_chains({"ETH_RPC_URL": "ws://localhost:8546"})
    with pytest.raises(UnknownChain, match="is not a chain name"):
        load_chains({"CHAINS": "eth,Bad Name!"})


def test_read_from_dotenv_with_the_environment_winning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CHAINS", "BASE_RPC_URL", "BASE_CONFIRMATIONS"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / ".env").write_text("CHAINS=base\nBASE_RPC_URL=http://from-dotenv:8545\nBASE_CONFIRMATIONS=3\n")
    monkeypatch.chdir(tmp_path)
    assert load_chains(Settings().chain_variables())["base"].rpc_urls == ("http://from-dotenv:8545",)
    monkeypatch.setenv("BASE_RPC_URL", "http://from-env:8545")
    base = load_chains(Settings().chain_variables())["base"]
    assert (base.rpc_urls, base.confirmations) == (("http://from-env:8545",), 3)


def test_a_chain_given_on_the_command_line() -> None:
    adhoc = adhoc_chain("anv", ("http://127.0.0.1:1,http://127.0.0.1:2",), env={})
    assert (adhoc.chain_id, adhoc.rpc_urls, adhoc.confirmations) == (
        None,
        ("http://127.0.0.1:1", "http://127.0.0.1:2"),
        0,
    )
    eth = adhoc_chain("eth", ("http://127.0.0.1:3",), env={"ETH_RPC_URL": "http://configured"})
    assert (eth.chain_id, eth.rpc_urls, eth.confirmations) == (1, ("http://127.0.0.1:3",), 12)
