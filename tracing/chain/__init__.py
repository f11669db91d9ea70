"""Chain data: addresses, chain configuration, transfers and where they come from (JSON-RPC through the mappers,
block explorers, the transfer index and its indexer, ethereum-etl exports, the demo data).

Other wings import from here (`from tracing.chain import Transfer`), not from the modules."""

from tracing.chain.address import (
    ZERO_ADDRESS,
    Family,
    btc_network,
    btc_script_type,
    canonical,
    checksum,
    family_of,
    is_address,
    normalise_address,
    parse_address,
    short,
    show_tx,
    tron_from_hex,
    tron_to_hex,
)
from tracing.chain.amounts import NO_USD, TransferPrices, UsdLookup, UsdSum, Valuation, amount_text, usd_text
from tracing.chain.btc_rpc import CoreRpcSource
from tracing.chain.chainref import chain_arg
from tracing.chain.config import (
    WELL_KNOWN,
    ChainConfig,
    ChainConfigError,
    adhoc_chain,
    chain_for_address,
    configured_chains,
    get_chain,
    load_chains,
    use_chain_variables,
)
from tracing.chain.demo import RONIN_EXPLOITER, ensure_demo_data, load_demo, remove_demo
from tracing.chain.etl_import import EtlFileKind, EtlFileResult, EtlImportResult, import_etl_files
from tracing.chain.explorer import ExplorerClient, ExplorerRateLimit
from tracing.chain.index import IndexedRange, TransferIndex, from_row
from tracing.chain.indexer import BLOCKS_PER_REQUEST, CONCURRENCY, Indexer, IndexReport, fetch_range
from tracing.chain.mappers import BlockTransfers, ContractLogs, InternalSource, RawLog
from tracing.chain.prices import (
    PriceApi,
    PriceBook,
    PriceImport,
    PriceTable,
    import_price_csv,
    price_api_from_settings,
)
from tracing.chain.rpc import RpcSource
from tracing.chain.threshold import Threshold, foreign_digits, parse_threshold
from tracing.chain.tokens import TokenBook, TokenInfo
from tracing.chain.transfer import Direction, Transfer, TransferKind, format_amount
from tracing.chain.tron import TRON_GAPS, TronRpcSource, rpc_source, tron_transfer
from tracing.chain.trongrid import TronGridClient, TronGridHistory
from tracing.chain.utxo import SATS_PER_BTC, Outpoint, TxInput, TxOutput, UtxoTx
from tracing.chain.utxo_mappers import (
    UtxoBlock,
    map_core_block,
    map_core_transaction,
    outputs_of,
    resolve_inputs,
    satoshis,
    unresolved,
)
from tracing.chain.utxo_store import UtxoStore
from tracing.chain.utxo_transfers import Allocation, UtxoTransfers, derive_transfers, transfers_of

__all__ = [
    "SATS_PER_BTC",
    "Outpoint",
    "TxInput",
    "TxOutput",
    "UtxoTx",
    "ContractLogs",
    "RawLog",
    "TRON_GAPS",
    "TronGridClient",
    "TronGridHistory",
    "TronRpcSource",
    "rpc_source",
    "tron_transfer",
    "UtxoBlock",
    "UtxoStore",
    "UtxoTransfers",
    "Allocation",
    "derive_transfers",
    "transfers_of",
    "map_core_block",
    "map_core_transaction",
    "outputs_of",
    "resolve_inputs",
    "satoshis",
    "unresolved",
    "Family",
    "btc_network",
    "btc_script_type",
    "family_of",
    "tron_from_hex",
    "tron_to_hex",
    "chain_for_address",
    "configured_chains",
    "use_chain_variables",
    "Threshold",
    "foreign_digits",
    "parse_threshold",
    "Direction",
    "BLOCKS_PER_REQUEST",
    "BlockTransfers",
    "CONCURRENCY",
    "ChainConfig",
    "ChainConfigError",
    "EtlFileKind",
    "EtlFileResult",
    "EtlImportResult",
    "ExplorerClient",
    "ExplorerRateLimit",
    "IndexReport",
    "IndexedRange",
    "Indexer",
    "InternalSource",
    "NO_USD",
    "PriceApi",
    "PriceBook",
    "PriceImport",
    "PriceTable",
    "RONIN_EXPLOITER",
    "RpcSource",
    "CoreRpcSource",
    "TokenBook",
    "TokenInfo",
    "Transfer",
    "TransferIndex",
    "TransferKind",
    "TransferPrices",
    "UsdLookup",
    "UsdSum",
    "Valuation",
    "WELL_KNOWN",
    "ZERO_ADDRESS",
    "adhoc_chain",
    "amount_text",
    "canonical",
    "chain_arg",
    "checksum",
    "ensure_demo_data",
    "fetch_range",
    "format_amount",
    "from_row",
    "get_chain",
    "import_etl_files",
    "import_price_csv",
    "is_address",
    "load_chains",
    "load_demo",
    "normalise_address",
    "parse_address",
    "price_api_from_settings",
    "remove_demo",
    "short",
    "show_tx",
    "usd_text",
]
