"""The tracing module's front door: what the bot (or the CLI) asks, answered as domain objects.

Traces and risk reports run over the in-memory transfer graph when it is loaded (`tracing.trace.graph`), over the SQL
index otherwise, and fall back to a configured block explorer for addresses the index knows nothing of. An
address with no labels and no transfers anywhere gets the labels-only report: unknown, never clean.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from storage import STORE_FAULTS, Database, RiskCheckRow, StoreUnavailable
from tracing.chain.address import Family, family_of
from tracing.chain.amounts import TransferPrices, UsdLookup, Valuation
from tracing.chain.config import ChainConfig, configured_chains, load_chains
from tracing.chain.esplora import EsploraClient
from tracing.chain.explorer import ExplorerClient
from tracing.chain.guard import SOURCE_BUDGET, SourceGuard, guarded, guarded_reader
from tracing.chain.index import TransferIndex
from tracing.chain.prices import PriceApi, PriceBook
from tracing.chain.tokens import TokenBook, TokenMetaReader, unknown_token_note
from tracing.chain.transfer import Direction, TransferKind
from tracing.chain.tron import TRON_GAPS, UNTYPED, rpc_source
from tracing.chain.trongrid import SOURCE as TRONGRID_SOURCE
from tracing.chain.trongrid import TronGridClient
from tracing.chain.utxo_store import UtxoStore
from tracing.chain.utxo_transfers import Allocation
from tracing.errors import SourceError, UserError
from tracing.labels import Category, Label, LabelBook
from tracing.risk.exposure import merged_coverage, report_from_traces
from tracing.risk.policy import DEFAULT_POLICY, RiskPolicy, labels_only_report
from tracing.risk.report import RiskReport
from tracing.trace.cache import GraphCache
from tracing.trace.compare import ModelComparison, compare_models
from tracing.trace.coverage import INCOMPLETE_HISTORY, SOURCE_ERROR, Coverage
from tracing.trace.label_cache import LabelCache
from tracing.trace.model import Trace, with_coverage
from tracing.trace.params import DEFAULT_HOPS, TraceParams
from tracing.trace.sources import ExplorerSource, GraphSource, IndexSource, LabelLookup, LayeredSource, TransferSource
from tracing.trace.taint import TaintModel
from tracing.trace.usd import days_wanted
from tracing.trace.utxo import DEFAULT_HEURISTICS, Heuristics
from tracing.trace.utxo.trace import CoinJoinStops, StoredTxs, find_heuristics, wrap_source
from tracing.trace.walk import trace_funds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asker:
    """Who asked, so that later label changes can reach them (retro-alerts)."""

    platform: str
    chat: str
    actor: str


class Investigator:
    """Risk reports and traces for the bot and the CLI.

    `explorers`: per chain, an explorer client (`tracing.chain.explorer.ExplorerClient`) used for addresses the index
    does not cover. `use_graph`: trace over the in-memory graph (False keeps everything on SQL, for checks and tests).
    `token_readers`: per chain, what reads `symbol()`/`decimals()` of tokens the store and token list do not know
    (the chain's `RpcSource`). `price_api`: the optional live price API for days without a stored price.
    `explorer_budget`: seconds one explorer read may take inside a command (`tracing.chain.guard`); an explorer
    that runs out of it or cannot be reached fails the reads of the next minute at once, and the report's coverage
    names it among its sources as failed.
    """

    def __init__(
        self,
        db: Database,
        default_chain: str = "eth",
        *,
        explorers: Mapping[str, Any] | None = None,
        use_graph: bool = True,
        check_interval: float = 1.0,
        policy: RiskPolicy = DEFAULT_POLICY,
        token_readers: Mapping[str, TokenMetaReader] | None = None,
        price_api: PriceApi | None = None,
        explorer_budget: float = SOURCE_BUDGET,
    ) -> None:
        self.db = db
        self.policy = policy
        self.labels = LabelBook(db)
        self.index = TransferIndex(db)
        self.default_chain = default_chain
        self.use_graph = use_graph
        self.graphs = GraphCache(db, check_interval=check_interval)
        self.label_cache = LabelCache(db, check_interval=check_interval)
        self.explorers = {
            chain: ExplorerSource(_guarded_history(client, explorer_budget), name=_history_source_name(client))
            for chain, client in (explorers or {}).items()
        }
        self.tokens = TokenBook(db)
        self.token_readers = {
            chain: guarded_reader(reader, explorer_budget) for chain, reader in (token_readers or {}).items()
        }
        self.prices = PriceBook(db, price_api, check_interval=check_interval)
        self._summary: dict[str, tuple[float, int, tuple[str, ...]]] = {}
        self._sets: tuple[tuple[Any, ...], tuple[str, ...]] | None = None

    def label_sets(self) -> tuple[str, ...]:
        """The label sets a report used, "source (version)". With the label cache, read again only when the label
        table changed (every set import rewrites its labels, so the cache's fingerprint moves)."""
        key = self.label_cache.fingerprint() if self.use_graph else None
        if key is not None and self._sets is not None and self._sets[0] == key:
            return self._sets[1]
        found = tuple(f"{s.source} ({s.version})" for s in self.labels.sets())
        if key is not None:
            self._sets = (key, found)
        return found

    async def labels_of(self, address: str, chain: str | None = None) -> list[Label]:
        return self.labels.for_address(address, chain)

    # --- sources ---

    def source(self, chain: str) -> TransferSource:
        """The transfer source for a chain: in-memory graph (when loaded) or SQL, then the chain's explorer."""
        graph = self.graphs.get(chain) if self.use_graph else None
        primary: TransferSource = GraphSource(graph) if graph is not None else IndexSource(self.index)
        explorer = self.explorers.get(chain)
        return LayeredSource(primary, explorer) if explorer is not None else primary

    def label_lookup(self) -> LabelLookup:
        return self.label_cache if self.use_graph else self.labels

    # --- traces and reports ---

    async def trace(
        self,
        address: str,
        chain: str | None = None,
        params: TraceParams | None = None,
        *,
        with_roots: Sequence[str] = (),
    ) -> Trace:
        """`with_roots`: more addresses whose funds are traced with `address`'s as one (a case's sources).

        On bitcoin the heuristics of `params.heuristics` (the default set when it names none) apply: CoinJoins stop
        the walk as mixers do, and the coverage states the heuristics and what they found."""
        chain = chain or self.default_chain
        params = params or TraceParams()
        started = time.monotonic()
        source, params, bitcoin = self.bitcoin_source(address, chain, params)
        result = await trace_funds(
            source,
            self.label_lookup(),
            address,
            chain,
            params,
            self.transfer_prices(chain),
            with_roots=with_roots,
        )
        valuation, notes = await self.valuation(chain, [result], every_transfer=True)
        index_range, gaps = self.index_summary(chain)
        traced = with_coverage(
            result.replace(valuation=valuation),
            index_range=index_range,
            label_sets=self.label_sets(),
            gaps=result.coverage.gaps + gaps + notes + family_gaps(address, chain, [result]),
        )
        coverage = self.with_failed_sources(traced.coverage, chain, started)
        if bitcoin is not None:
            txs, heuristics = bitcoin
            stops = source.coinjoin_stops() if isinstance(source, CoinJoinStops) else ()
            found = find_heuristics(
                txs,
                address,
                params.direction,
                [edge.tx_hash for edge in traced.edges],
                [node.address for node in traced.nodes],
                heuristics,
                stops,
            )
            coverage = replace(coverage, findings=found.lines())
            unread = self.btc_data_gap(address, chain, traced=True)
            if unread is not None:
                coverage = replace(coverage, gaps=(unread, *coverage.gaps))
        return traced.replace(coverage=coverage)

    def bitcoin_source(
        self, address: str, chain: str, params: TraceParams
    ) -> tuple[TransferSource, TraceParams, tuple[StoredTxs, Heuristics] | None]:
        """The source and parameters a trace of `address` walks: on bitcoin, with the heuristics of `params` (the
        default set when it names none) and CoinJoins stopping the walk; elsewhere as they are."""
        source = self.source(chain)
        if family_of(address) is not Family.BTC:
            return source, params, None
        heuristics = params.heuristics or DEFAULT_HEURISTICS
        txs = StoredTxs(UtxoStore(self.db), chain)
        wrapped = wrap_source(source, txs, heuristics, Category.MIXER in params.through)
        return wrapped, replace(params, heuristics=heuristics), (txs, heuristics)

    async def compare(
        self, address: str, chain: str | None = None, params: TraceParams | None = None
    ) -> ModelComparison:
        """The trace of `params` under every taint model, side by side (`--model compare`)."""
        chain = chain or self.default_chain
        prices = self.transfer_prices(chain)
        started = time.monotonic()
        source, params, _ = self.bitcoin_source(address, chain, params or TraceParams())
        found = await compare_models(source, self.label_lookup(), address, chain, params, prices)
        valuation, notes = await self.valuation(chain, list(found.traces.values()), every_transfer=True)
        index_range, gaps = self.index_summary(chain)
        traces: dict[TaintModel, Trace] = {}
        for model, trace in found.traces.items():
            traced = with_coverage(
                trace.replace(valuation=valuation),
                index_range=index_range,
                label_sets=self.label_sets(),
                gaps=trace.coverage.gaps + gaps + notes + family_gaps(address, chain, [trace]),
            )
            traces[model] = traced.replace(coverage=self.with_failed_sources(traced.coverage, chain, started))
        return replace(found, traces=traces)

    def usd_lookup(self, chain: str) -> UsdLookup:
        """USD per transfer for the trace walk: stored prices (and the stablecoin peg) by asset and day, loaded
        once; no price API call and no query per transfer."""
        return Valuation(chain, {}, self.prices.table()).lookup()

    def transfer_prices(self, chain: str) -> TransferPrices:
        """USD per transfer for the value-aware walk's dust floor (`usd(asset, decimals, symbol, timestamp, raw)`):
        stored prices and the stablecoin peg, loaded once; no price API call and no query per transfer."""
        return Valuation(chain, {}, self.prices.table()).transfer_prices()

    async def valuation(
        self, chain: str, traces: Sequence[Trace], *, every_transfer: bool = False
    ) -> tuple[Valuation, tuple[str, ...]]:
        """Token metadata and USD prices for the traces' amounts, and the note naming tokens found nowhere.

        Tokens the transfers carry no symbol or decimals for are looked up in the store, the token list, then their
        contracts; days without a stored price are asked of the price API when one is configured: the days of
        every transfer (`every_transfer`, for a trace and its CSV) or of those a risk report values."""
        wanted: set[str] = set()
        for trace in traces:
            wanted |= {t for t, (d, s) in trace.token_meta().items() if t is not None and (d is None or s is None)}
        unread: tuple[str, ...] = ()
        try:
            infos = await self.tokens.resolve(chain, wanted, self.token_readers.get(chain)) if wanted else {}
        except SourceError as exc:  # the node did not answer in time: the tokens stay unknown (and uncached)
            infos = await self.tokens.resolve(chain, wanted, None)
            unread = (f"token metadata not read from the chain: {exc}",)
        if self.prices.api is not None:
            needs: dict[str, set[int]] = {}
            for trace in traces:
                for key, days in days_wanted(trace, every_transfer=every_transfer).items():
                    needs.setdefault(key, set()).update(days)
            table = await self.prices.fill(needs)
        else:
            table = self.prices.table()
        valuation = Valuation(chain, infos, table)
        metas: dict[str | None, tuple[int | None, str | None]] = {}
        for trace in traces:
            metas.update(trace.token_meta())
        note = unknown_token_note(valuation.unknown_tokens(metas))
        return valuation, unread + ((note,) if note else ())

    async def risk(
        self, address: str, chain: str | None = None, asker: Asker | None = None, hops: int | None = None
    ) -> RiskReport:
        chain = chain or self.default_chain
        hops = hops or DEFAULT_HOPS
        lookup = self.label_lookup()
        labels = self.labels.for_address(address, chain)  # from the store: a label added a moment ago counts
        prices = self.transfer_prices(chain)  # the value-aware walk's dust floor in USD
        started = time.monotonic()
        # on bitcoin, exposure stops at CoinJoins as at mixers (the default heuristics)
        source, out_params, _ = self.bitcoin_source(address, chain, TraceParams(Direction.OUT, hops))
        outgoing = await trace_funds(source, lookup, address, chain, out_params, prices)
        source, in_params, _ = self.bitcoin_source(address, chain, TraceParams(Direction.IN, hops))
        incoming = await trace_funds(source, lookup, address, chain, in_params, prices)
        valuation, notes = await self.valuation(chain, [outgoing, incoming])
        outgoing, incoming = outgoing.replace(valuation=valuation), incoming.replace(valuation=valuation)
        if not outgoing.root_node.degree and not incoming.root_node.degree:
            report = labels_only_report(address, chain, labels, self.label_sets(), self.policy)
            index_range, _ = self.index_summary(chain)
            gap = "The transfer index holds no transfer of this address" + (
                f" (index: {index_range})." if index_range else "."
            )
            cut = tuple(  # a history the explorer cut or a source that failed, though nothing moved value
                f"{way}: {g}"
                for way, found in (("outgoing", outgoing), ("incoming", incoming))
                for g in found.coverage.gaps
                if g.startswith((INCOMPLETE_HISTORY, SOURCE_ERROR))
            )
            unread = self.unread_chain_gap(chain, address)
            gaps = (gap, *cut, *family_gaps(address, chain), *((unread,) if unread else ()))
            report = replace(report, coverage=replace(report.coverage, gaps=report.coverage.gaps + gaps))
        else:
            index_range, gaps = self.index_summary(chain)
            coverage = merged_coverage(outgoing, incoming, index_range=index_range, label_sets=self.label_sets())
            coverage = replace(
                coverage, gaps=coverage.gaps + gaps + notes + family_gaps(address, chain, [outgoing, incoming])
            )
            report = report_from_traces(address, chain, labels, outgoing, incoming, coverage, self.policy)
        report = replace(report, coverage=self.with_failed_sources(report.coverage, chain, started))
        unread = self.btc_data_gap(address, chain, traced=report.coverage.traced)
        if unread is not None:
            report = replace(report, coverage=replace(report.coverage, gaps=(unread, *report.coverage.gaps)))
        if asker is not None:
            report = self._remembered(report, asker)
        return report

    def unread_chain_gap(self, chain: str, address: str) -> str | None:
        """For a configured chain that nothing reads transfers from (no RPC URL, no explorer), the sentence that
        says so; None otherwise (and for bitcoin, whose gap `btc_data_gap` words). A chain without chain data
        answers from labels alone: that is a gap, never clean."""
        config = None if family_of(address) is Family.BTC else self._sourceless(chain)
        if config is None:
            return None
        return (
            f"No RPC URL or explorer is configured for chain {chain} (set {config.env_prefix}_RPC_URL): its "
            "transfers are not read, so exposure on it is unknown, not none."
        )

    def btc_data_gap(self, address: str, chain: str, *, traced: bool) -> str | None:
        """For a bitcoin address on a chain nothing reads transactions from (no RPC URL, no Esplora API), the
        sentence that says so; None otherwise. Labels still answer: that is a gap, never clean."""
        config = self._sourceless(chain) if family_of(address) is Family.BTC else None
        if config is None:
            return None
        prefix = config.env_prefix
        held = "the local index only" if traced else "labels only"
        return (
            f"No bitcoin data source is configured for chain {chain} (set {prefix}_RPC_URL to a bitcoind's JSON-RPC, "
            f"or {prefix}_ESPLORA_URL to an Esplora API): this answer is from {held}; transactions not indexed "
            "were not read, so exposure is unknown, not none."
        )

    def _sourceless(self, chain: str) -> ChainConfig | None:
        """The configuration of `chain` when nothing reads its transfers (no RPC URL, explorer, TronGrid or
        Esplora); None when something does, or when the chain variables are broken (the chain commands report
        those)."""
        try:
            config = configured_chains().get(chain)
        except UserError:
            return None
        if config is None or config.rpc_urls or config.explorer_url or config.esplora_url or chain in self.explorers:
            return None
        return config

    def _remembered(self, report: RiskReport, asker: Asker) -> RiskReport:
        """The report, once its check is remembered (the asker then hears if the address is labelled later). A store
        that cannot be written does not cost the answer: the report says what was not remembered, and why."""
        try:
            self.remember_check(report, asker)
        except StoreUnavailable as fault:
            ref = secrets.token_hex(4)
            log.error("remembering a risk check met a store fault (ref %s): %s", ref, fault)
            STORE_FAULTS.note(fault, ref, "remembering a /risk check")
            gap = (
                f"This check could not be remembered ({fault.cause}; reference {ref}): you will not be told if "
                "this address is labelled later."
            )
            report = replace(report, coverage=replace(report.coverage, gaps=report.coverage.gaps + (gap,)))
        return report

    def with_failed_sources(self, coverage: Coverage, chain: str, since: float) -> Coverage:
        """`coverage` naming, among its sources, the chain's explorer or RPC node when it failed since `since`."""
        explorer = self.explorers.get(chain)
        failed = []
        for guard, missing in (
            (explorer.client if explorer is not None else None, "transfers it would have given are missing"),
            (self.token_readers.get(chain), "token symbols and decimals it would have given are missing"),
        ):
            if isinstance(guard, SourceGuard) and (reason := guard.failed_since(since)) is not None:
                failed.append(f"{guard.name} FAILED ({reason}): {missing}")
        return replace(coverage, sources=(*coverage.sources, *failed)) if failed else coverage

    def index_summary(self, chain: str, *, ttl: float = 300.0) -> tuple[str, tuple[str, ...]]:
        """(what the index holds for the chain, in words; what it is known not to cover). Cached until new transfers
        arrive, and recomputed at most every `ttl` seconds (it scans the transfer table)."""
        with self.db.engine.connect() as conn:
            newest = int(conn.execute(text("SELECT max(id) FROM transfer")).scalar() or 0)
        cached = self._summary.get(chain)
        if cached is not None and (cached[1] == newest or time.monotonic() - cached[0] < ttl):
            return cached[2][0], cached[2][1:]
        parts: list[str] = []
        gaps: list[str] = []
        for r in self.index.ranges(chain):
            parts.append(f"blocks {r.from_block:,}–{r.to_block:,} ({r.source})")
            if r.internal_coverage in ("unavailable", "unknown", "partial"):
                gaps.append(
                    f"internal (contract) transfers {r.internal_coverage} in blocks {r.from_block:,}–{r.to_block:,}"
                )
        ranged = {r.source for r in self.index.ranges(chain)}
        query = text(
            "SELECT source, count(*), min(block_number), max(block_number), min(timestamp), max(timestamp) "
            "FROM transfer WHERE chain = :chain GROUP BY source ORDER BY source"
        )
        with self.db.engine.connect() as conn:
            for source, count, first_block, last_block, first_ts, last_ts in conn.execute(query, {"chain": chain}):
                if source in ranged:
                    continue
                span = f"{_day(first_ts)} … {_day(last_ts)}"
                blocks = f", blocks {first_block:,}–{last_block:,}" if last_block else ""
                parts.append(f"{count:,} {source} transfers ({span}{blocks})")
                if source == "demo":
                    gaps.append("demo data: ETH transactions of the Lazarus (Ronin) wallets only, without tx hashes")
                elif source not in ("rpc",):
                    gaps.append(f"{source} transfers: internal (contract) transfers only where the import had traces")
        summary = "; ".join(parts)
        self._summary[chain] = (time.monotonic(), newest, (summary, *gaps))
        return summary, tuple(gaps)

    def remember_check(self, report: RiskReport, asker: Asker) -> None:
        with self.db.session() as session:
            session.add(
                RiskCheckRow(
                    address=report.address,
                    chain=report.chain,
                    platform=asker.platform,
                    chat=asker.chat,
                    actor=asker.actor,
                    level=report.level.value,
                )
            )


def _guarded_history(client: Any, budget: float) -> Any:
    """An account-history client behind its guard, named for what it is (`TronGrid host`, `explorer host`)."""
    guard = guarded(client, budget)
    if isinstance(client, TronGridClient) and guard.name.startswith("explorer "):
        guard.name = "TronGrid " + guard.name.removeprefix("explorer ")
    return guard


def _history_source_name(client: Any) -> str:
    """`trongrid` for TronGrid (the name its transfers carry), `explorer` for anything else."""
    return TRONGRID_SOURCE if isinstance(client, TronGridClient) else "explorer"


def family_gaps(address: str, chain: str, traces: Sequence[Trace] = ()) -> tuple[str, ...]:
    """What no source of the address's chain family covers, said in every report on such an address; on a TRON chain
    whose node is configured without TRON_API_URL, also that its TRX amounts were not checked against their types;
    on bitcoin, how amounts are allocated and what is left out (`bitcoin_notes`)."""
    if family_of(address) is Family.BTC:
        return bitcoin_notes(address, traces)
    if family_of(address) is not Family.TRON:
        return ()
    try:
        config = configured_chains().get(chain)
    except Exception:  # a broken chain variable is reported by the chain commands, not here
        config = None
    untyped = config is not None and bool(config.rpc_urls) and not config.explorer_url
    return (*TRON_GAPS, UNTYPED) if untyped else TRON_GAPS


def _day(timestamp: int | None) -> str:
    if timestamp is None:
        return "?"
    return datetime.fromtimestamp(int(timestamp), UTC).date().isoformat()


def bitcoin_notes(address: str, traces: Sequence[Trace] = ()) -> tuple[str, ...]:
    """What a bitcoin answer states about its amounts (the allocation rule of the transfers it followed, read from
    their positions) and what it leaves out; nothing for other addresses."""
    if family_of(address) is not Family.BTC:
        return ()
    rules = sorted(
        {
            rule
            for trace in traces
            for edge in trace.edges
            if edge.kind is TransferKind.UTXO and (rule := Allocation.of_position(edge.position)) is not None
        }
    )
    return (
        *(f"Which input paid which output is not on the chain: {rule.rule}." for rule in rules),
        "Unconfirmed (mempool) bitcoin transactions are not covered; coinbase rewards and outputs without an "
        "address (OP_RETURN, bare multisig) are not transfers.",
    )


def _configured_chains(env: Mapping[str, str], what: str) -> Mapping[str, ChainConfig]:
    """The chains configured in the chain variables `env`; none when they are broken (a broken chain variable must
    not stop the bot: the chain commands report it)."""
    try:
        return load_chains(env)
    except Exception as exc:
        log.warning("%s not configured: %s", what, exc)
        return {}


def configured_explorers(env: Mapping[str, str]) -> dict[str, Any]:
    """Account-history clients for the chains configured with one in the chain variables `env`: an Etherscan-compatible
    explorer (`<NAME>_EXPLORER_URL`), TronGrid for a TRON chain (`<NAME>_API_URL`, key `<NAME>_API_KEY`), or
    Esplora for a bitcoin chain (`<NAME>_ESPLORA_URL`)."""
    found: dict[str, Any] = {}
    for name, cfg in _configured_chains(env, "explorers").items():
        if cfg.family is Family.BTC and cfg.esplora_url:
            found[name] = EsploraClient(
                cfg.esplora_url, chain=name, symbol=cfg.symbol, allocation=Allocation(cfg.allocation)
            )
            continue
        if not cfg.explorer_url:
            continue
        if cfg.family is Family.TRON:
            found[name] = TronGridClient(cfg.explorer_url, api_key=cfg.explorer_key or "", chain=name)
        elif cfg.family is Family.EVM:
            found[name] = ExplorerClient(
                cfg.explorer_url, api_key=cfg.explorer_key or "", chain_id=cfg.chain_id, chain=name
            )
    return found


def configured_token_readers(env: Mapping[str, str]) -> dict[str, TokenMetaReader]:
    """Per chain configured with an RPC URL in the chain variables `env`, its RPC source, to read tokens' `symbol()`
    and `decimals()`."""
    return {
        name: rpc_source(cfg)
        for name, cfg in _configured_chains(env, "token metadata from RPC").items()
        if cfg.rpc_urls and cfg.family in (Family.EVM, Family.TRON)
    }
