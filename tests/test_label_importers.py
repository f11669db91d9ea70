"""Label importers on the real data: the bundled copies in tracing/labels/data, the full sets in ../shared (skipped when
absent), and TagPacks written by hand, good and bad."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from storage.db import Database
from storage.models import ANY_EVM, LabelRow
from tracing.errors import InvalidArgument
from tracing.labels import Category, LabelBook
from tracing.labels.importers import load_formats
from tracing.labels.importers.etherscan import (
    BUNDLED_JSON,
    classify,
    load_combined,
    read_etherscan,
    subset,
)
from tracing.labels.importers.forta import BUNDLED_DIR as FORTA_DIR
from tracing.labels.importers.forta import read_forta
from tracing.labels.importers.ofac import BUNDLED_CSV, TORNADO_DELISTED_ON, read_ofac, read_ofac_csv
from tracing.labels.importers.scamsniffer import read_scamsniffer
from tracing.labels.importers.tagpack import TagPackError, read_tagpack
from tracing.labels.importers.tornado import BUNDLED_DIR as TORNADO_DIR
from tracing.labels.importers.tornado import read_tornado, tornado_addresses

from .conftest import shared_data

LAZARUS = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
ROUTER = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"
POOL_10_ETH = "0x910cbd523d972eb0a6f4cae4618ad62622b39dbf"
MULTI_CHAIN_POOL = "0x1e34a77868e19a6647b1f2f47b51ed72dede95dd"
EXAMPLE_PACK = Path(__file__).resolve().parent.parent / "examples" / "tagpack-example.yaml"


def test_every_format_is_registered() -> None:
    assert {"ofac", "tornado", "etherscan", "forta", "scamsniffer", "tagpack"} <= set(load_formats())


# --- Tornado Cash -------------------------------------------------------------------------------------------


def test_tornado_pools_and_routers_are_chain_specific_mixers() -> None:
    result = read_tornado(TORNADO_DIR)
    labels = result.labels
    assert result.notes == ["50 pools/routers, 63 Etherscan-tagged contracts"]
    by_key = {(lb.address, lb.chain): lb for lb in labels}
    assert len(by_key) == len(labels) == 93
    pool = by_key[(POOL_10_ETH, "eth")]
    assert (pool.category, pool.name, pool.confidence) == (Category.MIXER, "Tornado.Cash: 10 ETH pool", 1.0)
    assert pool.details["denomination"] == "10 ETH" and pool.details["etherscan_name"] == "Tornado.Cash: 10 ETH"
    assert by_key[(ROUTER, "eth")].name == "Tornado.Cash: Router"
    # one address, a different pool on each chain
    names = {lb.chain: lb.name for lb in labels if lb.address == MULTI_CHAIN_POOL}
    assert names == {
        "bsc": "Tornado.Cash: 100 BNB pool",
        "gnosis": "Tornado.Cash: 100 xDAI pool",
        "polygon": "Tornado.Cash: 100 MATIC pool",
        "arbitrum": "Tornado.Cash: 100 ETH pool",
        "optimism": "Tornado.Cash: 100 ETH pool",
        "avalanche": "Tornado.Cash: 100 AVAX pool",
    }
    kinds = Counter((lb.details["kind"], lb.details["file"]) for lb in labels)
    assert kinds[("pool", "tornado_cash_instances.csv")] == 42
    assert sum(1 for lb in labels if lb.details.get("kind") == "router") == 7
    assert ANY_EVM not in {lb.chain for lb in labels}


def test_tornado_governance_and_token_contracts_are_not_mixers() -> None:
    labels = {lb.name: lb for lb in read_tornado(TORNADO_DIR).labels if lb.chain == "eth"}
    for name in ("Tornado.Cash: TORN Token", "Tornado.Cash: Governance", "Tornado.Cash: Relayer Registry"):
        assert labels[name].category is Category.OTHER, name
    for name in ("Tornado.Cash: Proxy", "Tornado.Cash: L1 Helper", "Tornado.Cash: 100,000 USDT pool"):
        assert labels[name].category is Category.MIXER, name


def test_tornado_single_file_and_bad_rows(tmp_path: Path) -> None:
    result = read_tornado(TORNADO_DIR / "tornado_cash_instances.csv")
    assert len(result.labels) == 50
    broken = tmp_path / "tornado_cash_instances.csv"
    broken.write_text("chain_id,chain,kind,symbol,denomination,address\n1,ethereum,instance,ETH,1,0x1234\n")
    with pytest.raises(InvalidArgument, match="line 2"):
        read_tornado(broken)


def test_bundled_tornado_files_are_the_shared_ones() -> None:
    shared = shared_data("tornado-cash-contracts")
    for name in ("tornado_cash_instances.csv", "tornado_cash_etherscan_labels.csv"):
        assert (TORNADO_DIR / name).read_bytes() == (shared / name).read_bytes()


# --- OFAC listing history ------------------------------------------------------------------------------------


def test_ofac_keeps_delisted_tornado_addresses_as_history() -> None:
    result = read_ofac_csv(BUNDLED_CSV)
    labels = {lb.address: lb for lb in result.labels}
    active = [lb for lb in result.labels if lb.active]
    delisted = [lb for lb in result.labels if not lb.active]
    assert (len(active), len(delisted)) == (81 + 108 + 516, 90)
    # EVM on every EVM chain, TRON on tron, XBT on bitcoin
    assert Counter(lb.chain for lb in active) == {"*": 81, "tron": 108, "btc": 516}
    assert all(lb.category is Category.SANCTIONS for lb in result.labels)
    lazarus = labels[LAZARUS]
    assert lazarus.active and lazarus.name == "Lazarus Group" and lazarus.details["listed_by"] == "2024-09-27"
    pool = labels[POOL_10_ETH]
    assert pool.delisted_on == TORNADO_DELISTED_ON == date(2025, 3, 21)
    assert pool.name == "Tornado Cash"
    assert pool.details["note"] == "listed on 2024-09-27 snapshot, absent from 2025-11-19 list"
    names = Counter((lb.name, lb.delisted_on) for lb in delisted)
    assert names == {("Tornado Cash", date(2025, 3, 21)): 63, ("OFAC SDN (delisted)", date(2025, 11, 19)): 27}
    assert {lb.address for lb in delisted if lb.name == "Tornado Cash"} <= tornado_addresses()
    assert "90 addresses of earlier lists kept as delisted" in result.notes


GARANTEX_TRON = "TFwjPScaJRCbSWVAywE1S1WgaUgSnyYUbD"  # TRX, GARANTEX EUROPE OU, SDN profile 36025


def test_ofac_tron_addresses_are_labels_of_chain_tron_only() -> None:
    result = read_ofac_csv(BUNDLED_CSV)
    tron = [lb for lb in result.labels if lb.chain == "tron"]
    assert len(tron) == 108 and all(lb.address.startswith("T") and len(lb.address) == 34 for lb in tron)
    assert all(lb.active and lb.category is Category.SANCTIONS for lb in tron)
    assert not [lb for lb in result.labels if lb.chain == ANY_EVM and not lb.address.startswith("0x")]
    garantex = next(lb for lb in tron if lb.address == GARANTEX_TRON)  # kept in its case-sensitive T… form
    assert garantex.name == "GARANTEX EUROPE OU GARANTEX EUROPE OÜ" and garantex.details["assets"] == ["TRX"]
    assert garantex.source_url.endswith("id=36025") and garantex.first_seen == date(2022, 4, 5)
    assets = Counter(asset for lb in tron for asset in lb.details["assets"])  # type: ignore[union-attr]
    assert assets == {"USDT": 78, "TRX": 29, "XBT": 1}  # OFAC files one TRON address under XBT
    assert "108 TRON addresses" in result.notes


def test_ofac_refuses_a_tron_address_with_a_broken_checksum(tmp_path: Path) -> None:
    listed = tmp_path / "sdn.csv"
    broken = GARANTEX_TRON[:-1] + ("E" if GARANTEX_TRON[-1] != "E" else "F")
    listed.write_text(
        "asset,address,sdn_profile_id,sdn_primary_name,party_type,programs,entity_first_listed\n"
        f"TRX,{GARANTEX_TRON},36025,Garantex,Entity,CYBER4,2022-04-05\n"
        f"TRX,{broken},36025,Garantex,Entity,CYBER4,2022-04-05\n"
        f"USDT,{GARANTEX_TRON.lower()},36025,Garantex,Entity,CYBER4,2022-04-05\n"
    )
    result = read_ofac(listed, version="2026-01-15")
    current = [lb for lb in result.labels if lb.active]
    assert [(lb.address, lb.chain) for lb in current] == [(GARANTEX_TRON, "tron")]
    assert result.skipped == 2


def test_evm_and_tron_labels_never_answer_for_each_other(db: Database) -> None:
    from tracing.chain import tron_to_hex
    from tracing.labels import Label

    book = LabelBook(db)
    same_bytes = tron_to_hex(GARANTEX_TRON)  # the TRON address's 20 bytes as an EVM address: another account
    book.add(Label(GARANTEX_TRON, Category.SANCTIONS, "Garantex", "test", chain="tron"))
    book.add(Label(same_bytes, Category.SCAM, "EVM twin", "test"))
    assert [lb.name for lb in book.for_address(GARANTEX_TRON, "tron")] == ["Garantex"]
    with db.session() as session:  # a team label an older version wrote as "every EVM chain" on a T… address
        session.add(LabelRow(address=GARANTEX_TRON, chain=ANY_EVM, category="scam", name="team", source="team:x"))
    assert [(lb.name, lb.chain) for lb in book.for_address(GARANTEX_TRON, "tron")] == [
        ("Garantex", "tron"),
        ("team", "tron"),  # read as what it can only be: a label of the TRON address
    ]
    assert Label(GARANTEX_TRON, Category.SCAM, "team note", "team:console").chain == "tron"  # defaults to its family
    assert [lb.name for lb in book.for_address(same_bytes, "eth")] == ["EVM twin"]
    assert book.for_address(GARANTEX_TRON, "eth") == []


def test_a_newer_ofac_list_delists_against_the_bundled_one(tmp_path: Path) -> None:
    newer = tmp_path / "sdn_2026-01-15.csv"
    newer.write_text(
        "asset,address,sdn_profile_id,sdn_primary_name,party_type,programs,entity_first_listed\n"
        "ETH,0x2222222222222222222222222222222222222222,1,Test Entity,Entity,CYBER2,2026-01-01\n"
    )
    result = read_ofac(newer)
    labels = {lb.address: lb for lb in result.labels}
    assert labels["0x2222222222222222222222222222222222222222"].active
    # gone from the 2026-01-15 list: the entity name comes from the bundled 2025-11-19 list
    assert labels[LAZARUS].name == "Lazarus Group" and labels[LAZARUS].delisted_on == date(2026, 1, 15)
    assert labels[POOL_10_ETH].delisted_on == TORNADO_DELISTED_ON
    garantex = labels[GARANTEX_TRON]  # a TRON address gone from the newer list: delisted, still a tron label
    assert (garantex.delisted_on, garantex.chain, garantex.name) == (
        date(2026, 1, 15),
        "tron",
        "GARANTEX EUROPE OU GARANTEX EUROPE OÜ",
    )
    assert (
        "2026-01-15" in result.label_set.version and "history from 2024-09-27, 2025-11-19" in result.label_set.version
    )
    dated = read_ofac(newer, version="list of 2026-02-01")
    assert dated.label_set.version == "list of 2026-02-01"
    assert {lb.address: lb for lb in dated.labels}[LAZARUS].delisted_on == date(2026, 2, 1)


# --- Etherscan -----------------------------------------------------------------------------------------------


def test_etherscan_full_ethereum_file() -> None:
    path = shared_data("etherscan-labels-brianleect", "etherscan_combinedAllLabels.json")
    assert len(json.loads(path.read_text())) == 29_945  # as SOURCE.md states
    result = read_etherscan(path)
    labels = {lb.address: lb for lb in result.labels}
    assert result.label_set.source == "etherscan" and {lb.chain for lb in result.labels} == {"eth"}
    assert {lb.confidence for lb in result.labels} == {0.9}
    binance = labels["0x28c6c06298d514db089934071355e5743bf21d60"]
    assert (binance.category, binance.name, binance.details["exchange"]) == (Category.EXCHANGE, "Binance 14", "Binance")
    assert labels["0x53d284357ec70ce289d6d64134dfac8e511c8a3d"].details["exchange"] == "Kraken"
    assert labels[ROUTER].category is Category.MIXER
    assert labels[LAZARUS].category is Category.HACK  # "Ronin Bridge Exploiter", tagged ofac-sanctions-lists
    assert labels["0x7a250d5630b4cf539739df2c5dacb4c659f2488d"].category is Category.DEFI  # Uniswap V2: Router 2
    assert labels["0x5acc84a3e955bdd76467d3348077d003f00ffb97"].category is Category.SCAM  # Forsage.io
    tornado = [lb for lb in result.labels if "tornado-cash" in lb.details["explorer_labels"]]  # type: ignore[operator]
    assert len(tornado) == 63  # as SOURCE.md states
    assert Category.SANCTIONS not in {lb.category for lb in result.labels}
    exchanges = Counter(lb.details.get("exchange") for lb in result.labels if lb.category is Category.EXCHANGE)
    for name in ("Binance", "Coinbase", "Kraken", "Huobi", "OKX", "Bitfinex", "KuCoin", "Crypto.com", "Gemini"):
        assert exchanges[name] >= 8, name
    assert exchanges["FTX"] == 8 and exchanges["Gate.io"] == 7


def test_etherscan_leaves_out_blocked_take_action_and_tokens() -> None:
    assert classify("", ["blocked"]) is None
    assert classify("", ["blocked", "ofac-sanctions-lists"]) is None
    assert classify("Multichain Hack Alert 1003", ["take-action"]) is None
    assert classify("HuobiToken (HT)", ["huobi", "otc"]) is None
    assert classify("Kucoin Hacker", ["blocked"]) == (Category.HACK, "Kucoin Hacker")
    assert classify("Fake_Phishing6512", ["blocked"]) == (Category.SCAM, "Fake_Phishing6512")
    assert classify("Tornado.Cash: TORN Token", ["tornado-cash"]) == (Category.OTHER, "Tornado.Cash: TORN Token")


def test_bundled_etherscan_subset_is_what_the_mapping_keeps() -> None:
    full = load_combined(shared_data("etherscan-labels-brianleect", "etherscan_combinedAllLabels.json"))
    bundled = load_combined(BUNDLED_JSON)
    assert bundled == subset(full)
    assert len(bundled) == len(read_etherscan(BUNDLED_JSON).labels) == 2_888


@pytest.mark.parametrize(
    ("explorer", "chain", "source"),
    [
        ("bscscan", "bsc", "bscscan"),
        ("polygonscan", "polygon", "polygonscan"),
        ("arbiscan", "arbitrum", "arbiscan"),
        ("optimism", "optimism", "optimistic-etherscan"),
        ("ftmscan", "fantom", "ftmscan"),
        ("avalanche", "avalanche", "snowtrace"),
    ],
)
def test_etherscan_format_reads_the_other_explorers(explorer: str, chain: str, source: str) -> None:
    path = shared_data("etherscan-labels-brianleect", f"{explorer}_combinedAllLabels.json")
    result = read_etherscan(path)
    assert result.label_set.source == source
    assert result.labels and {lb.chain for lb in result.labels} == {chain}
    assert all(lb.source_url.endswith(lb.address) for lb in result.labels)


def test_etherscan_bsc_heists_and_the_unknown_explorer(tmp_path: Path) -> None:
    result = read_etherscan(shared_data("etherscan-labels-brianleect", "bscscan_combinedAllLabels.json"))
    labels = {lb.address: lb for lb in result.labels}
    assert labels["0xcba47af0547d12fb6b59c105835fab6b2fbc22ed"].category is Category.HACK  # MetaSwap Exploiter
    assert labels["0xb4e502bee63fb4394e682ef53150d4733dc62aa8"].category is Category.SCAM  # Fake_Phishing143
    unnamed = tmp_path / "labels.json"
    unnamed.write_text('{"0x2222222222222222222222222222222222222222": {"name": "Binance 1", "labels": ["binance"]}}')
    with pytest.raises(InvalidArgument, match="cannot tell the explorer"):
        read_etherscan(unnamed)


# --- Forta ---------------------------------------------------------------------------------------------------


def test_forta_dataset_counts_and_categories() -> None:
    result = read_forta(FORTA_DIR)
    assert result.notes[:4] == [
        "1/etherscan_malicious_labels.csv: 7780 rows",
        "1/malicious_smart_contracts.csv: 753 rows",
        "1/phishing_scams.csv: 6726 rows",
        "10/malicious_smart_contracts.csv: 1 rows",
    ]
    assert len(result.labels) == 7469 and {lb.confidence for lb in result.labels} == {0.8}
    by_name = {lb.name: lb for lb in result.labels}
    assert by_name["Upbit Hacker 1"].category is Category.HACK
    assert by_name["Ronin Bridge Exploiter 2"].category is Category.HACK
    assert by_name["Fake_Phishing1772"].category is Category.SCAM
    # the two tags with an embedded comma survive whole
    assert by_name["Amazon.com, Inc. - Common Token (AMZN)"].category is Category.SCAM
    assert "Pay.eth for $1,000,000? https:// (NTFY)" in by_name
    wintermute = by_name["Wintermute Exploiter Multisig"]
    assert wintermute.chain == "optimism" and wintermute.category is Category.HACK


def test_forta_contract_deployers_get_their_own_label() -> None:
    labels = read_forta(FORTA_DIR / "labels" / "1" / "malicious_smart_contracts.csv").labels
    deployer = [lb for lb in labels if lb.address == "0x07e02088d68229300ae503395c6536f09179dc3e"]
    assert [(lb.name, lb.category) for lb in deployer] == [("xToken Exploiter", Category.HACK)]
    assert deployer[0].details["deployed"] == ["0xc5ac25cfc2b8284e84ca47dad21cf1319f732c11"]
    contract = next(lb for lb in labels if lb.address == "0xc5ac25cfc2b8284e84ca47dad21cf1319f732c11")
    assert contract.name == "xToken Exploiter: contract" and str(contract.details["creation_tx"]).startswith("0xae03")
    phishing = next(lb for lb in labels if lb.address == "0x00000006e55a9364b657e3b91cd0411b4fd11ac2")
    assert phishing.category is Category.SCAM


def test_bundled_forta_files_are_the_shared_ones() -> None:
    shared = shared_data("forta-labelled-datasets", "labels")
    for path in sorted((FORTA_DIR / "labels").rglob("*.csv")):
        assert path.read_bytes() == (shared / path.relative_to(FORTA_DIR / "labels")).read_bytes()


def test_forta_rejects_other_files(tmp_path: Path) -> None:
    other = tmp_path / "labels.csv"
    other.write_text("address\n0x2222222222222222222222222222222222222222\n")
    with pytest.raises(InvalidArgument, match="not a Forta"):
        read_forta(other)


# --- ScamSniffer ----------------------------------------------------------------------------------------------


def test_scamsniffer_folder_merges_both_files() -> None:
    folder = shared_data("scamsniffer-scam-database")
    result = read_scamsniffer(folder)
    assert result.notes == ["address.json: 2530 addresses", "combined.json: 2577 domains"]
    # 2,530 in address.json plus the 82 of combined.json's 590 that address.json lacks
    assert len(result.labels) == 2612
    assert {(lb.category, lb.chain, lb.source) for lb in result.labels} == {(Category.SCAM, ANY_EVM, "scamsniffer")}
    with_domains = [lb for lb in result.labels if lb.details.get("domains")]
    assert len(with_domains) == 590
    degen = next(lb for lb in result.labels if lb.address == "0x3da02e1f29bcbed185eca0d3299efd46e6e7e155")
    assert "degenalgo.art" in degen.details["domains"]  # type: ignore[operator]
    assert len(read_scamsniffer(folder / "address.json").labels) == 2530


def test_scamsniffer_small_files(tmp_path: Path) -> None:
    addresses = tmp_path / "address.json"
    addresses.write_text('["0x2222222222222222222222222222222222222222", "not-an-address", 5]')
    result = read_scamsniffer(addresses)
    assert [lb.address for lb in result.labels] == ["0x2222222222222222222222222222222222222222"]
    assert result.skipped == 2
    (tmp_path / "combined.json").write_text('{"evil.example": ["0x2222222222222222222222222222222222222222"]}')
    merged = read_scamsniffer(tmp_path)
    assert [lb.details["domains"] for lb in merged.labels] == [["evil.example"]]
    assert merged.labels[0].name == "ScamSniffer: phishing address (evil.example)"
    (tmp_path / "combined.json").write_text('{"evil.example": "0x2222"}')
    with pytest.raises(InvalidArgument, match="combined.json"):
        read_scamsniffer(tmp_path)


def test_scamsniffer_is_not_bundled() -> None:
    from tracing.labels.bundled import BUNDLED

    assert "scamsniffer" not in {b.source for b in BUNDLED}
    data = Path(__file__).resolve().parent.parent / "tracing" / "data"
    assert not any("scamsniffer" in str(p).lower() for p in data.rglob("*"))


# --- TagPacks -----------------------------------------------------------------------------------------------

GOOD_CSV = """\
# title: Case 2025-117 cash-out
# creator: Europol EC3 test team
# source: https://cases.example/2025-117
# confidence: 0.7
# category: hack

address,name,category,chain,confidence,first_seen,notes
0x3333333333333333333333333333333333333333,Exploiter cash-out 1,,eth,,2025-01-02,"first hop, then bridge"
0x4444444444444444444444444444444444444444,Exploiter's mixer deposit,mixer,*,0.95,,
"""


def test_example_tagpack_imports() -> None:
    result = read_tagpack(EXAMPLE_PACK)
    assert result.label_set.source == "tagpack:acme-fiu-drainer-watch"
    assert result.label_set.version == "2025-07-31" and result.label_set.licence == "internal, TLP:AMBER"
    first, second, third = result.labels
    assert (first.category, first.confidence, first.chain, first.first_seen) == (
        Category.SCAM,
        0.9,
        ANY_EVM,
        date(2023, 5, 14),
    )
    assert first.created_by == "ACME Exchange financial intelligence unit"
    assert second.source_url == "https://intel.acme.example/reports/2025-07-drainer-watch"  # the header's source
    assert (second.confidence, second.chain) == (0.8, "eth")
    assert third.category is Category.EXCHANGE


def test_csv_tagpack_uses_header_defaults(tmp_path: Path) -> None:
    path = tmp_path / "case.csv"
    path.write_text("\ufeff" + GOOD_CSV)  # as a spreadsheet saves it
    result = read_tagpack(path)
    one, two = result.labels
    assert result.label_set.source == "tagpack:case-2025-117-cash-out"
    assert (one.category, one.confidence, one.chain, one.first_seen) == (Category.HACK, 0.7, "eth", date(2025, 1, 2))
    assert one.details["notes"] == "first hop, then bridge"
    assert (two.category, two.confidence, two.chain) == (Category.MIXER, 0.95, ANY_EVM)


def test_yaml_tagpack_reads_unquoted_addresses_as_text(tmp_path: Path) -> None:
    path = tmp_path / "pack.yml"
    path.write_text(
        "title: t\ncreator: c\nsource: https://s.example\n"
        "tags:\n"
        "  - {address: 0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b, name: router, category: mixer, confidence: 1,\n"
        "     first_seen: 2019-12-16 10:00:00}\n"
        "  - {address: 0x12, name: short, category: mixer, confidence: 1}\n"
    )
    with pytest.raises(TagPackError) as caught:
        read_tagpack(path)
    assert caught.value.problems == ["entry 2 (0x12…): “0x12” is not an EVM address (0x + 40 hex digits)"]
    path.write_text(path.read_text().replace("  - {address: 0x12, name: short, category: mixer, confidence: 1}\n", ""))
    assert [(lb.address, lb.first_seen) for lb in read_tagpack(path).labels] == [(ROUTER, date(2019, 12, 16))]


def test_bad_yaml_tagpack_is_rejected_whole_listing_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "title: Bad pack\ncreator: someone\nsource: https://s.example\nconfidance: 0.5\n"
        "tags:\n"
        "  - {address: '0x5555555555555555555555555555555555555555', name: ok, category: scam, confidence: 0.5}\n"
        "  - {address: '0x5555555555555555555555555555555555555555', name: ok, category: scam, confidence: 0.5}\n"
        "  - {address: '0x66', name: x, category: phising, confidence: 1.5}\n"
        "  - {address: '0xD90E2F925DA726b50C4Ed8D0Fb90Ad053324F31b', name: y, category: scam, confidence: 0.5}\n"
        "  - {address: '0x7777777777777777777777777777777777777777', category: scam, confidence: 0.5, colour: red}\n"
        "  - just a string\n"
    )
    with pytest.raises(TagPackError) as caught:
        read_tagpack(path)
    assert caught.value.problems[0].startswith("header: unknown key(s) confidance")
    path.write_text(path.read_text().replace("confidance: 0.5\n", ""))
    with pytest.raises(TagPackError) as caught:
        read_tagpack(path)
    problems = caught.value.problems
    message = str(caught.value)
    assert message.startswith("bad.yaml: 5 problems, nothing imported:")
    assert problems[0] == "entry 2: repeats entry 1 (same address, chain, category and name)"
    assert problems[1].startswith("entry 3 (0x66…): “0x66” is not an EVM address")
    assert "Unknown category “phising”" in problems[1] and "confidence 1.5 is outside 0..1" in problems[1]
    assert problems[2].startswith("entry 4 (0xD90E2F925DA7…): That address fails its EIP-55 checksum")
    assert problems[3] == "entry 5 (0x777777777777…): unknown key(s) colour; name is missing"
    assert problems[4].startswith("entry 6: expected a mapping")


def test_bad_csv_tagpack_names_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        GOOD_CSV.replace("# confidence: 0.7\n", "")
        + "0x8888888888888888888888888888888888888888,no confidence,scam,eth,,2999-01-01,\n"
    )
    with pytest.raises(TagPackError) as caught:
        read_tagpack(path)
    assert caught.value.problems == [
        "line 7 (0x333333333333…): confidence is missing (and the header sets no default)",
        "line 9 (0x888888888888…): confidence is missing (and the header sets no default); "
        "first_seen 2999-01-01 is in the future",
    ]
    path.write_text("# title: x\n# creator: y\naddress,name\n0x8888888888888888888888888888888888888888,n\n")
    with pytest.raises(TagPackError, match="header: source is missing"):
        read_tagpack(path)
    path.write_text(GOOD_CSV.replace("first_seen,notes", "first_seen,note"))
    with pytest.raises(TagPackError, match="unknown column"):
        read_tagpack(path)
    with pytest.raises(InvalidArgument, match="is a .yaml, .yml or .csv"):
        read_tagpack(tmp_path)


def test_two_tagpacks_are_two_sets(db: Database, tmp_path: Path) -> None:
    book = LabelBook(db)
    first = tmp_path / "first.csv"
    first.write_text(GOOD_CSV)
    second = tmp_path / "second.csv"
    second.write_text(GOOD_CSV.replace("Case 2025-117 cash-out", "Case 2025-200"))
    for path in (first, second, first):
        result = read_tagpack(path)
        book.replace_set(result.label_set, result.labels)
    labels = book.for_address("0x3333333333333333333333333333333333333333")
    assert sorted(lb.source for lb in labels) == ["tagpack:case-2025-117-cash-out", "tagpack:case-2025-200"]
    assert {lb.created_by for lb in labels} == {"Europol EC3 test team"}
