"""Bitcoin labels: OFAC's XBT addresses scoped to bitcoin, GraphSense's TagPacks read by the TagPack importer as
they are published, the ransomware receipts, and a label never matching an address of another family."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import ANY_EVM
from storage.db import Database
from tracing.errors import InvalidArgument
from tracing.labels import ANY_BTC, Category, Label, LabelBook, LabelSet, label_applies
from tracing.labels.bundled import GRAPHSENSE_DIR
from tracing.labels.importers.ofac import BUNDLED_CSV, read_ofac, read_ofac_csv
from tracing.labels.importers.receipts import BUNDLED_CSV as RECEIPTS_CSV
from tracing.labels.importers.receipts import read_receipts
from tracing.labels.importers.tagpack import TagPackError, read_tagpack

from .conftest import shared_data

GARANTEX = "3Lpoy53K625zVeE47ZasiG5jGkAxJ27kh1"  # OFAC XBT, GARANTEX EUROPE OU
NETWALKER = "1C7FeXMf18mGrcF59DJTkmxnRfkKeG1KFZ"  # receipts (ransomwhere) and GraphSense: Netwalker (Mailto)
TRON_UNDER_XBT = "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq"  # OFAC filed this TRON address under XBT: a TRON label
SEGWIT = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"  # BIP-173's example P2WPKH
LAZARUS = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"


def test_ofac_xbt_addresses_become_bitcoin_labels_only() -> None:
    result = read_ofac_csv(BUNDLED_CSV)
    labels = {lb.address: lb for lb in result.labels}
    garantex = labels[GARANTEX]
    assert garantex.chain == ANY_BTC and garantex.category is Category.SANCTIONS and garantex.active
    assert garantex.name.startswith("GARANTEX EUROPE") and garantex.details["programs"] == ["CYBER4", "RUSSIA-EO14024"]
    assert garantex.source_url == "https://sanctionssearch.ofac.treas.gov/Details.aspx?id=36025"
    assert garantex.details["listed_by"] == "2024-09-27"  # on the bundled 2024 snapshot too
    assert labels[LAZARUS].chain == ANY_EVM
    assert labels[TRON_UNDER_XBT].chain == "tron" and "516 bitcoin addresses" in result.notes


def test_an_imported_list_checks_bitcoin_addresses_and_their_asset(tmp_path: Path) -> None:
    newer = tmp_path / "sdn_2026-01-15.csv"
    newer.write_text(
        "asset,address,sdn_profile_id,sdn_primary_name,party_type,programs,entity_first_listed\n"
        f"XBT,{SEGWIT.upper()},1,Segwit Holder,Entity,CYBER2,2026-01-01\n"
        f"BCH,1BoatSLRHtKNngkdXEeobR76b53LETtpyT,2,Cash Holder,Entity,CYBER2,2026-01-01\n"
        f"XBT,1BoatSLRHtKNngkdXEeobR76b53LETtpyX,3,Typo Holder,Entity,CYBER2,2026-01-01\n"
    )
    result = read_ofac(newer)
    active = {lb.address: lb for lb in result.labels if lb.active}
    assert set(active) == {SEGWIT}  # bech32 in lower case; a BCH row and a bad checksum are no bitcoin label
    assert active[SEGWIT].chain == ANY_BTC
    assert result.skipped == 2
    assert {lb.address: lb for lb in result.labels}[GARANTEX].delisted_on is not None  # gone from that list


def test_labels_match_only_addresses_of_their_family(db: Database) -> None:
    assert label_applies(ANY_BTC, GARANTEX, "btc") and label_applies(ANY_BTC, GARANTEX, "bitcoin-main")
    # An "every EVM chain" row on a bitcoin address (a team label made before chain families) is a bitcoin label:
    # an address's shape says its family (and a bitcoin address is never asked about on an EVM chain: the commands
    # refuse that before any lookup).
    assert label_applies(ANY_EVM, GARANTEX, "btc")
    assert not label_applies(ANY_BTC, LAZARUS, "eth") and label_applies(ANY_EVM, LAZARUS, "eth")
    book = LabelBook(db)
    book.replace_set(
        LabelSet("test", "1", "", ""),
        [
            Label(GARANTEX, Category.SANCTIONS, "scoped", "test", chain=ANY_BTC),
            Label(GARANTEX, Category.SCAM, "filed as EVM", "test", chain=ANY_EVM),
            Label(LAZARUS, Category.SCAM, "misfiled as bitcoin", "test", chain=ANY_BTC),
        ],
    )
    assert [lb.name for lb in book.for_address(GARANTEX, "btc")] == ["scoped", "filed as EVM"]
    assert [lb.name for lb in book.for_address(GARANTEX, "mybtc")] == ["scoped", "filed as EVM"]  # any bitcoin chain
    assert book.for_address(LAZARUS, "eth") == []


# --- GraphSense TagPacks ------------------------------------------------------------------------------------------


def test_the_bundled_ransomwhere_csv_reads_as_graphsense_yaml_does() -> None:
    original = shared_data("graphsense-tagpacks", "packs", "ransomwhere.yaml")
    bundled = read_tagpack(GRAPHSENSE_DIR / "ransomwhere.csv")
    assert bundled.labels == read_tagpack(original).labels and len(bundled.labels) == 7_457
    netwalker = next(lb for lb in bundled.labels if lb.address == NETWALKER)
    assert (netwalker.category, netwalker.name, netwalker.chain) == (Category.RANSOMWARE, "Netwalker (Mailto)", ANY_BTC)
    assert netwalker.confidence == 0.5 and netwalker.source_url == "https://ransomwhe.re/"
    for name in ("blender_io.yaml", "hydra.yaml", "hacks.yaml", "lazarus.yaml", "wasabi_collector.yaml"):
        assert (GRAPHSENSE_DIR / name).read_bytes() == shared_data("graphsense-tagpacks", "packs", name).read_bytes()


def test_graphsense_concepts_confidence_and_currencies(tmp_path: Path) -> None:
    pack = tmp_path / "mixed.yaml"
    pack.write_text(
        "title: Mixed pack\ncreator: GraphSense Core Team\nconfidence: authority_data\ncategory: user\n"
        "source: https://example.org/notice\nlabel: Someone\n"
        "tags:\n"
        f"- {{address: {GARANTEX}, currency: BTC, abuse: sanction}}\n"
        f"- {{address: {SEGWIT}, currency: BTC, category: coinjoin, label: Mix, confidence: web_crawl}}\n"
        f"- {{address: '{LAZARUS}', currency: ETH, category: exchange, abuse: service_hack, label: Thief}}\n"
        "- {address: LaMT348PWRnrqeeWArpwQPbuanpXDZGEUz, currency: LTC}\n"
        f"- {{address: {NETWALKER}, currency: BTC, source: https://tag.example/1, actor: someone}}\n"
        f"- {{address: {NETWALKER}, currency: BTC, source: https://tag.example/2, actor: someone}}\n"
    )
    result = read_tagpack(pack)
    labels = {lb.address: lb for lb in result.labels}
    sanction = labels[GARANTEX]  # a third party's "sanction" is no sanctions label: OFAC's list is the source
    assert sanction.category is Category.OTHER and sanction.details["abuse"] == "sanction"
    assert (sanction.chain, sanction.confidence, sanction.name) == (ANY_BTC, 0.6, "Someone")
    assert (labels[SEGWIT].category, labels[SEGWIT].confidence, labels[SEGWIT].name) == (Category.MIXER, 0.2, "Mix")
    assert (labels[LAZARUS].category, labels[LAZARUS].chain) == (Category.HACK, ANY_EVM)  # the abuse wins
    assert labels[NETWALKER].source_url == "https://tag.example/1" and labels[NETWALKER].details["actor"] == "someone"
    assert "1 tag(s) of LTC skipped (no chain of it here)" in result.notes and result.skipped == 1
    assert "1 repeated tag(s) merged" in result.notes


def test_a_graphsense_pack_with_a_bad_bitcoin_address_or_an_unmapped_concept_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "bad.yaml"
    pack.write_text(
        "title: Bad\ncreator: c\nsource: https://s.example\ncurrency: BTC\nconfidence: forensic\n"
        "tags:\n"
        "- {address: 1C7FeXMf18mGrcF59DJTkmxnRfkKeG1KFX, abuse: ransomware}\n"
        f"- {{address: {NETWALKER}, abuse: terrorism_financing, label: x}}\n"
    )
    with pytest.raises(TagPackError) as caught:
        read_tagpack(pack)
    assert "fails its checksum" in caught.value.problems[0]
    assert "GraphSense concept “terrorism_financing” has no category here" in caught.value.problems[1]


# --- the receipts -------------------------------------------------------------------------------------------------


def test_receipts_are_ransomware_labels_with_their_amounts(tmp_path: Path) -> None:
    result = read_receipts(RECEIPTS_CSV)
    labels = {lb.address: lb for lb in result.labels}
    assert len(labels) == 1_013 and all(lb.chain == ANY_BTC for lb in labels.values())
    netwalker = labels[NETWALKER]
    assert (netwalker.category, netwalker.confidence) == (Category.RANSOMWARE, 0.7)
    assert netwalker.details["received_btc"] == "215.03633742" and netwalker.source_url.startswith("https://arxiv")
    expanded = [lb for lb in labels.values() if lb.details["found_by"] == "expandedCluster"]
    assert len(expanded) == 256 and {lb.confidence for lb in expanded} == {0.5}
    bad = tmp_path / "addresses.csv"
    bad.write_text(f"address,type,amountReceivedUSD,amountReceivedBTC\n{LAZARUS},ransomwhere,1,1\n{GARANTEX},x,1,1\n")
    with pytest.raises(InvalidArgument, match="2 problem") as caught:
        read_receipts(bad)
    assert "addresses.csv:2: “0x098b" in str(caught.value) and "addresses.csv:3: unknown type “x”" in str(caught.value)
