"""Bitcoin heuristics as pure functions over `UtxoTx` (`tracing.chain.utxo`), each naming what it concluded and
why, and the settings saying which are on:

- `settings`: `Heuristics` (`--heuristics change,coinjoin,peel,cluster`, `none`, `default`, `all`);
- `amounts`: satoshis in words, script types in one vocabulary;
- `coinjoin`: CoinJoin detection (Whirlpool, Tx0, Wasabi, JoinMarket, equal outputs);
- `change`: change-output detection by named, voting signals;
- `peel`: peel steps and chains followed along the change;
- `cluster`: common-input-ownership clustering with evidence, never across a CoinJoin.
"""

from tracing.trace.utxo.amounts import btc
from tracing.trace.utxo.change import SIGNALS, ChangeGuess, SeenBefore, Signal, find_change
from tracing.trace.utxo.cluster import Cluster, Clustering, ClusterLink, cluster_addresses
from tracing.trace.utxo.coinjoin import (
    WASABI_COORDINATORS,
    WHIRLPOOL_POOLS,
    CoinJoin,
    CoinJoinKind,
    Tx0,
    detect_coinjoin,
    whirlpool_tx0,
)
from tracing.trace.utxo.peel import PeelChain, PeelStep, follow_peel, peel_step
from tracing.trace.utxo.settings import DEFAULT_HEURISTICS, Heuristic, Heuristics

__all__ = [
    "ChangeGuess",
    "Cluster",
    "ClusterLink",
    "Clustering",
    "CoinJoin",
    "CoinJoinKind",
    "DEFAULT_HEURISTICS",
    "Heuristic",
    "Heuristics",
    "PeelChain",
    "PeelStep",
    "SIGNALS",
    "SeenBefore",
    "Signal",
    "Tx0",
    "WASABI_COORDINATORS",
    "WHIRLPOOL_POOLS",
    "btc",
    "cluster_addresses",
    "detect_coinjoin",
    "find_change",
    "follow_peel",
    "peel_step",
    "whirlpool_tx0",
]
