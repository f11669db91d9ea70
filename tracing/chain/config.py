"""EVM chains by configuration: `CHAINS=eth,base` plus `<NAME>_RPC_URL`, `<NAME>_EXPLORER_URL`, ... per chain.

The variables are read in one place, `storage.Settings.chain_variables()` (the environment and `.env`, the
environment winning), and handed to `load_chains` (or, for the helpers that ask "which chains are configured?",
once to `use_chain_variables` at start-up); this module opens no file and reads no environment. Well-known names
(eth, base, arbitrum, optimism, polygon, bsc) come with their chain id, native symbol and a confirmation depth;
any other name needs `<NAME>_CHAIN_ID` or has its id read from the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tracing.chain.address import Family, btc_network, family_of
from tracing.chain.chainref import chain_arg
from tracing.errors import InvalidAddress, UnknownChain, UserError

DEFAULT_CHAINS = "eth"


class ChainConfigError(UserError):
    """A chain's variables are set but unusable (not a number, no RPC URL where one is needed, ...)."""


@dataclass(frozen=True, slots=True)
class KnownChain:
    chain_id: int | None
    symbol: str
    confirmations: int
    family: Family = Family.EVM
    decimals: int = 18
    network: str = "main"


# Confirmation depths: a few minutes of blocks on each chain, enough that a reorg past them is exceptional.
WELL_KNOWN: dict[str, KnownChain] = {
    "eth": KnownChain(1, "ETH", 12),
    "base": KnownChain(8453, "ETH", 30),
    "arbitrum": KnownChain(42161, "ETH", 60),
    "optimism": KnownChain(10, "ETH", 30),
    "polygon": KnownChain(137, "POL", 128),
    "bsc": KnownChain(56, "BNB", 15),
    # TRON: 0x2b6653dc is what its /jsonrpc answers to eth_chainId; a block is solidified (irreversible) once 19 of
    # the 27 super representatives have built on it.
    "tron": KnownChain(0x2B6653DC, "TRX", 19, Family.TRON, 6),
    # Bitcoin has no chain id; 6 confirmations is the customary depth (a 1-2 block reorg is ordinary).
    "btc": KnownChain(None, "BTC", 6, Family.BTC, 8),
}


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """One configured EVM chain. `chain_id` None means "read it from the node" (an unknown name without
    `<NAME>_CHAIN_ID`); otherwise the node's id is checked against it."""

    name: str
    chain_id: int | None
    symbol: str
    rpc_urls: tuple[str, ...] = ()
    explorer_url: str | None = None
    """The account-history API: an Etherscan-compatible explorer, or TronGrid for a TRON chain."""
    explorer_key: str | None = field(default=None, repr=False)
    confirmations: int = 0
    decimals: int = 18
    family: Family = Family.EVM
    network: str = "main"
    """Bitcoin only: `main`, `test` (testnet, signet) or `regtest`; which addresses the chain takes."""
    esplora_url: str | None = None
    """Bitcoin only: an Esplora REST API (`<NAME>_ESPLORA_URL`) for addresses the index does not cover."""
    allocation: str = "proportional"
    """Bitcoin only: how transfers are derived from transactions (`<NAME>_ALLOCATION`: proportional or fifo)."""

    @property
    def env_prefix(self) -> str:
        return env_prefix(self.name)

    def require_rpc(self) -> tuple[str, ...]:
        """The RPC URLs, or a ChainConfigError that names the variable to set."""
        if not self.rpc_urls:
            raise ChainConfigError(f"No RPC URL for chain {self.name}: set {self.env_prefix}_RPC_URL.")
        return self.rpc_urls


def env_prefix(name: str) -> str:
    """`eth` → `ETH`, `my-chain` → `MY_CHAIN`: the prefix of a chain's variables."""
    return name.upper().replace("-", "_")


def _int(env: Mapping[str, str], key: str, default: int | None) -> int | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw, 0)
    except ValueError:
        raise ChainConfigError(f"{key} must be a whole number, not “{raw[:40]}”.") from None
    if value < 0:
        raise ChainConfigError(f"{key} must not be negative.")
    return value


def _urls(raw: str | None) -> tuple[str, ...]:
    urls = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ChainConfigError(f"RPC URL “{url[:60]}” must start with http:// or https://.")
    return urls


def chain_from_env(name: str, env: Mapping[str, str]) -> ChainConfig:
    """The configuration of one chain from `<NAME>_*` variables, with the well-known defaults for its name."""
    name = chain_arg(name)
    prefix = env_prefix(name)
    known = WELL_KNOWN.get(name)
    family = _family(env, prefix, known)
    # Another name for a TRON or bitcoin chain (a testnet, a regtest) keeps its family's depth: reorgs are the same.
    depth = known.confirmations if known else (0 if family is Family.EVM else WELL_KNOWN[family.value].confirmations)
    confirmations = _int(env, f"{prefix}_CONFIRMATIONS", depth)
    default_symbol = known.symbol if known else {Family.EVM: "ETH", Family.TRON: "TRX", Family.BTC: "BTC"}[family]
    symbol = (env.get(f"{prefix}_SYMBOL") or "").strip() or default_symbol
    network = (env.get(f"{prefix}_NETWORK") or "").strip().lower() or (known.network if known else "main")
    if network not in ("main", "test", "regtest"):
        raise ChainConfigError(f"{prefix}_NETWORK must be main, test or regtest, not “{network[:20]}”.")
    return ChainConfig(
        name=name,
        chain_id=_int(env, f"{prefix}_CHAIN_ID", known.chain_id if known else None),
        symbol=symbol,
        rpc_urls=_urls(env.get(f"{prefix}_RPC_URL")),
        # A TRON chain's account history comes from TronGrid: `<NAME>_API_URL` / `<NAME>_API_KEY` name it.
        explorer_url=_first(env, f"{prefix}_API_URL", f"{prefix}_EXPLORER_URL")
        if family is Family.TRON
        else _first(env, f"{prefix}_EXPLORER_URL"),
        explorer_key=_first(env, f"{prefix}_API_KEY", f"{prefix}_EXPLORER_KEY")
        if family is Family.TRON
        else _first(env, f"{prefix}_EXPLORER_KEY"),
        confirmations=confirmations or 0,
        decimals=known.decimals if known else {Family.EVM: 18, Family.TRON: 6, Family.BTC: 8}[family],
        family=family,
        network=network,
        esplora_url=_esplora(env, prefix),
        allocation=_allocation(env, prefix),
    )


def _first(env: Mapping[str, str], *keys: str) -> str | None:
    """The first of these variables that is set (not blank), stripped."""
    for key in keys:
        value = (env.get(key) or "").strip()
        if value:
            return value
    return None


def _allocation(env: Mapping[str, str], prefix: str) -> str:
    rule = (env.get(f"{prefix}_ALLOCATION") or "").strip().lower() or "proportional"
    if rule not in ("proportional", "fifo"):
        raise ChainConfigError(f"{prefix}_ALLOCATION must be proportional or fifo, not “{rule[:20]}”.")
    return rule


def _esplora(env: Mapping[str, str], prefix: str) -> str | None:
    url = (env.get(f"{prefix}_ESPLORA_URL") or "").strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ChainConfigError(f"{prefix}_ESPLORA_URL “{url[:60]}” must start with http:// or https://.")
    return url or None


def _family(env: Mapping[str, str], prefix: str, known: KnownChain | None) -> Family:
    raw = (env.get(f"{prefix}_FAMILY") or "").strip().lower()
    if not raw:
        return known.family if known else Family.EVM
    try:
        return Family(raw)
    except ValueError:
        raise ChainConfigError(f"{prefix}_FAMILY must be evm, tron or btc, not “{raw[:20]}”.") from None


def chain_for_address(address: str, given: str | None, default: str, chains: Mapping[str, ChainConfig]) -> ChainConfig:
    """The configured chain a command about `address` runs on: the one `given` (`--chain`), else the one the
    address's family picks (TRON → the first configured TRON chain, bitcoin → the first configured bitcoin chain
    of the address's network), else `default`. Refuses, in one sentence, a chain of another family than the
    address's, and a family no configured chain serves."""
    family = family_of(address)
    network = btc_network(address) if family is Family.BTC else None
    config: ChainConfig | None
    if given is not None:
        config = get_chain(given, chains)
    elif family is Family.EVM:
        config = get_chain(default, chains)
    else:
        config = next(
            (c for c in chains.values() if c.family is family and (network is None or _networks_match(c, network))),
            None,
        )
        if config is None:
            what = "TRON" if family is Family.TRON else f"bitcoin ({network}net)"
            raise UnknownChain(
                f"No {what} chain is configured (configured: {', '.join(chains) or 'none'}); add "
                f"{'tron' if family is Family.TRON else 'btc'} to CHAINS."
            )
    if config.family is not family:
        raise InvalidAddress(
            f"That is {_FAMILY_NAMES[family]} address, but chain {config.name} is {_FAMILY_NAMES[config.family]} chain."
        )
    if network is not None and not _networks_match(config, network):
        raise InvalidAddress(f"That is a {network}net bitcoin address; chain {config.name} is {config.network}net.")
    return config


_FAMILY_NAMES = {Family.EVM: "an EVM", Family.TRON: "a TRON", Family.BTC: "a bitcoin"}


def _networks_match(config: ChainConfig, network: str) -> bool:
    """Base58 test versions serve testnet, signet and regtest alike; bech32 says which (`tb` or `bcrt`)."""
    if network == "test":
        return config.network in ("test", "regtest")
    return config.network == network


def load_chains(env: Mapping[str, str]) -> dict[str, ChainConfig]:
    """Every chain listed in `CHAINS` (default `eth`), by name, in the listed order.

    `env` holds the chain variables (`storage.Settings.chain_variables()`). A listed chain without an RPC URL is
    still configured (labels work without chain data); `ChainConfig.require_rpc()` says what is missing when data
    is needed.
    """
    names = [part.strip() for part in (env.get("CHAINS") or DEFAULT_CHAINS).split(",") if part.strip()]
    chains: dict[str, ChainConfig] = {}
    for raw in names:
        config = chain_from_env(raw, env)
        chains[config.name] = config
    return chains


_handed: dict[str, str] | None = None


def use_chain_variables(env: Mapping[str, str]) -> None:
    """Hand this process's chain variables (`storage.Settings.chain_variables()`) to `configured_chains`; the app
    does so when it is built."""
    global _handed
    _handed = dict(env)


def configured_chains() -> dict[str, ChainConfig]:
    """The chains of the variables handed to `use_chain_variables` (before that, of the process's settings)."""
    if _handed is None:
        from storage import get_settings

        return load_chains(get_settings().chain_variables())
    return load_chains(_handed)


def get_chain(name: str, chains: Mapping[str, ChainConfig]) -> ChainConfig:
    """The configured chain of that name, or UnknownChain listing the configured ones."""
    key = chain_arg(name)
    try:
        return chains[key]
    except KeyError:
        known = ", ".join(chains) or "none"
        raise UnknownChain(f"Chain “{key}” is not configured (configured: {known}); add it to CHAINS.") from None


def adhoc_chain(name: str, rpc_urls: tuple[str, ...], env: Mapping[str, str]) -> ChainConfig:
    """A chain given on the command line with its RPC URL(s): the configured one with those URLs, or, for a name
    that is not configured, one whose chain id is read from the node (0 confirmations unless configured)."""
    base = load_chains(env).get(chain_arg(name)) or chain_from_env(name, env)
    return ChainConfig(
        name=base.name,
        chain_id=base.chain_id,
        symbol=base.symbol,
        rpc_urls=_urls(",".join(rpc_urls)),
        explorer_url=base.explorer_url,
        explorer_key=base.explorer_key,
        confirmations=base.confirmations,
        decimals=base.decimals,
        family=base.family,
        network=base.network,
    )
