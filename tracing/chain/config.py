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

from tracing.chain.chainref import chain_arg
from tracing.errors import UnknownChain, UserError

DEFAULT_CHAINS = "eth"


class ChainConfigError(UserError):
    """A chain's variables are set but unusable (not a number, no RPC URL where one is needed, ...)."""


@dataclass(frozen=True, slots=True)
class KnownChain:
    chain_id: int
    symbol: str
    confirmations: int


# Confirmation depths: a few minutes of blocks on each chain, enough that a reorg past them is exceptional.
WELL_KNOWN: dict[str, KnownChain] = {
    "eth": KnownChain(1, "ETH", 12),
    "base": KnownChain(8453, "ETH", 30),
    "arbitrum": KnownChain(42161, "ETH", 60),
    "optimism": KnownChain(10, "ETH", 30),
    "polygon": KnownChain(137, "POL", 128),
    "bsc": KnownChain(56, "BNB", 15),
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
    explorer_key: str | None = field(default=None, repr=False)
    confirmations: int = 0
    decimals: int = 18

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
    confirmations = _int(env, f"{prefix}_CONFIRMATIONS", known.confirmations if known else 0)
    symbol = (env.get(f"{prefix}_SYMBOL") or "").strip() or (known.symbol if known else "ETH")
    return ChainConfig(
        name=name,
        chain_id=_int(env, f"{prefix}_CHAIN_ID", known.chain_id if known else None),
        symbol=symbol,
        rpc_urls=_urls(env.get(f"{prefix}_RPC_URL")),
        explorer_url=(env.get(f"{prefix}_EXPLORER_URL") or "").strip() or None,
        explorer_key=(env.get(f"{prefix}_EXPLORER_KEY") or "").strip() or None,
        confirmations=confirmations or 0,
    )


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
    )
