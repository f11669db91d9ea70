"""The risk policy, rule by rule (tracing/risk/policy.py; README "How risk is rated"): a service is rated by what
it is and its counterparties are leads; sending to a sanctioned address is severe at any amount, receiving is severe
above the dust floor and probable dusting below it when never answered; timing against the listing date; indirect
exposure graded by value and hops; an amount counted once in the totals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from bot.app import App
from bot.backends.testing import TestBackend
from tests.test_trace import ETH, addr, label, tx
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Direction
from tracing.labels import Category, Label, LabelBook
from tracing.risk.policy import DEFAULT_POLICY, RiskPolicy, assess, rate
from tracing.risk.report import Amount, Exposure, Level, Rule, Timing
from tracing.trace.coverage import Coverage

SUBJECT, SANCTIONED, HACKER, MIDDLE = addr(1), addr(66), addr(77), addr(5)
COVERAGE = Coverage(chains=("eth",), sources=("test",), traced=True, hop_budget=3)
LISTED = date(2022, 4, 14)


def at(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def eth(value: float, usd: float | None = None) -> tuple[Amount, ...]:
    return (Amount(int(Decimal(str(value)) * ETH), None, None, 18, None if usd is None else Decimal(str(usd))),)


def sanctions_label(address: str = SANCTIONED, listed: date | None = LISTED) -> Label:
    details: dict[str, object] = {"address_listed": listed.isoformat()} if listed else {}
    return Label(
        address, Category.SANCTIONS, "Lazarus Group", "ofac-sdn", first_seen=date(2019, 9, 13), details=details
    )


def exposure(
    category: Category = Category.SANCTIONS,
    direction: Direction = Direction.OUT,
    *,
    hops: int = 1,
    counterparty: str = SANCTIONED,
    amounts: tuple[Amount, ...] = eth(1),
    day: str = "2022-05-01",
    labels: tuple[Label, ...] | None = None,
    answered: bool | None = None,
    path: tuple[str, ...] = (),
) -> Exposure:
    if labels is None:
        labels = (sanctions_label(counterparty),) if category is Category.SANCTIONS else ()
    return Exposure(
        category,
        direction,
        hops,
        counterparty,
        labels,
        amounts,
        None,
        ("0x" + "ab" * 32,) * hops,
        path_addresses=path or (SUBJECT, counterparty),
        first_at=at(day),
        last_at=at(day),
        answered=answered,
    )


def report_of(*exposures: Exposure, labels: tuple[Label, ...] = ()) -> object:
    return assess(SUBJECT, "eth", list(labels), list(exposures), COVERAGE)


def test_a_service_is_rated_by_what_it_is_and_its_counterparties_are_leads() -> None:
    hot = Label(SUBJECT, Category.EXCHANGE, "Binance 20", "etherscan", confidence=0.9)
    sent = exposure(day="2022-03-23")
    hacked = exposure(Category.HACK, labels=(Label(SANCTIONED, Category.HACK, "Ronin Bridge Exploiter", "etherscan"),))
    further = exposure(hops=2, counterparty=addr(88), amounts=eth(900), path=(SUBJECT, SANCTIONED, addr(88)))
    report = assess(SUBJECT, "eth", [hot], [sent, hacked, further], COVERAGE)
    assert report.level is Level.LOW and report.service == "Binance 20"
    assert any(r.startswith("1 risky address 2 or more hops away are not leads") for r in report.reasons)
    assert report.exposures == () and report.totals == ()
    (lead,) = report.leads  # one lead per direct counterparty, carrying all its labels
    assert lead.counterparty == SANCTIONED and lead.rule is Rule.LEAD
    assert {lb.category for lb in lead.labels} == {Category.SANCTIONS, Category.HACK}
    assert lead.timing is Timing.BEFORE and "22 days before" in lead.timing_note
    assert any("Rated by what it is, an exchange (Binance 20)" in r and "1 lead" in r for r in report.reasons)


def test_sending_to_a_sanctioned_address_is_severe_at_any_amount() -> None:
    tiny = rate(exposure(amounts=eth(0.0001)))
    assert tiny.rule is Rule.SENT_TO_SANCTIONED and tiny.score >= DEFAULT_POLICY.severe_at
    assert assess(SUBJECT, "eth", [], [tiny], COVERAGE).level is Level.SEVERE


def test_receiving_from_a_sanctioned_address_is_severe_above_the_dust_floor() -> None:
    big = rate(exposure(direction=Direction.IN, amounts=eth(5), answered=False))
    assert big.rule is Rule.RECEIVED_FROM_SANCTIONED
    in_usd = rate(exposure(direction=Direction.IN, amounts=eth(0.1, usd=300), answered=False))
    assert in_usd.rule is Rule.RECEIVED_FROM_SANCTIONED  # $300 on the day is above the $250 floor
    answered = rate(exposure(direction=Direction.IN, amounts=eth(0.1), answered=True))
    assert answered.rule is Rule.RECEIVED_FROM_SANCTIONED  # the subject sent back: not a one-sided dusting


def test_unanswered_dust_from_a_sanctioned_address_is_probable_dusting_not_severe() -> None:
    # the August 2022 Tornado Cash dusting sent 0.1 ETH to public figures' addresses
    dust = exposure(direction=Direction.IN, amounts=eth(0.1), answered=False, day="2022-08-09")
    report = assess(SUBJECT, "eth", [], [dust], COVERAGE)
    (rated,) = report.exposures
    assert rated.rule is Rule.DUSTING and not rated.counted and report.totals == ()  # visible, not a risk total
    assert report.level is Level.LOW
    (why,) = [r for r in report.reasons if "dusting" in r]
    assert "below the dust floor ($250 (0.2 ETH" in why and "never answered" in why and "not rated severe" in why


def test_a_transfer_before_the_listing_is_not_a_sanctions_breach_and_weighs_less() -> None:
    before = rate(exposure(day="2022-03-23", amounts=eth(500)))
    after = rate(exposure(day="2022-05-01", amounts=eth(500)))
    assert (before.timing, before.listed_on, before.rule) == (Timing.BEFORE, LISTED, Rule.PREDATES_LISTING)
    assert "22 days before: OFAC listed this address on 2022-04-14" == before.timing_note
    assert (after.timing, after.rule) == (Timing.AFTER, Rule.SENT_TO_SANCTIONED)
    assert before.score < DEFAULT_POLICY.high_at < after.score
    report = assess(SUBJECT, "eth", [], [before], COVERAGE)
    assert report.level is Level.MEDIUM
    assert any("not a sanctions breach" in r for r in report.reasons)


def test_an_undated_address_of_a_listed_entity_is_treated_as_listed_and_says_so() -> None:
    undated = exposure(labels=(sanctions_label(listed=None),), day="2022-03-23")
    rated = rate(undated)
    assert rated.timing is Timing.UNKNOWN and rated.rule is Rule.SENT_TO_SANCTIONED
    assert "own listing date is unknown (entity listed since 2019-09-13)" in rated.timing_note
    before_entity = rate(exposure(labels=(sanctions_label(listed=None),), day="2018-01-01"))
    assert before_entity.timing is Timing.BEFORE  # the address cannot be listed before its entity


def test_indirect_exposure_is_graded_by_value_and_hops() -> None:
    def score(hops: int, value: float) -> int:
        return rate(exposure(Category.HACK, hops=hops, amounts=eth(value), counterparty=HACKER)).score

    assert score(1, 200) > score(2, 200) > score(4, 200)
    assert score(2, 200) > score(2, 2) > score(2, 0.01)
    far = rate(exposure(hops=3, amounts=eth(500)))
    assert far.rule is Rule.GRADED and far.score < DEFAULT_POLICY.severe_at  # sanctions 3 hops away: graded
    stricter = RiskPolicy(hop_weights=(1.0, 0.5, 0.2))
    assert rate(exposure(Category.HACK, hops=3, amounts=eth(200)), policy=stricter).score < score(3, 200)


def test_an_amount_is_never_counted_under_two_categories() -> None:
    hack = Label(SANCTIONED, Category.HACK, "Ronin Bridge Exploiter", "etherscan")
    sanctioned = exposure(amounts=eth(3275.65))
    same_funds = exposure(Category.HACK, amounts=eth(3275.65), labels=(hack,))
    further = exposure(hops=2, counterparty=addr(88), amounts=eth(1000), path=(SUBJECT, SANCTIONED, addr(88)))
    report = assess(SUBJECT, "eth", [], [sanctioned, same_funds, further], COVERAGE)
    lines = {(e.category, e.counterparty): e for e in report.exposures}
    assert len(lines) == 3  # one line per counterparty and category
    assert lines[(Category.SANCTIONS, SANCTIONED)].counted
    assert not lines[(Category.HACK, SANCTIONED)].counted
    assert "the same funds as its Sanctions line" in lines[(Category.HACK, SANCTIONED)].counted_note
    assert not lines[(Category.SANCTIONS, addr(88))].counted  # these funds went through the first one
    (total,) = report.totals
    assert (total.category, total.counterparties) == (Category.SANCTIONS, 1)
    assert total.amounts[0].value == int(Decimal("3275.65") * ETH)


async def test_risk_command_says_why_dust_from_a_sanctioned_address_is_not_severe(bot: TestBackend, app: App) -> None:
    TransferIndex(app.db).add([tx(66, 1, 0.1, 100), tx(2, 1, 3, 90), tx(1, 3, 2, 200)])
    LabelBook(app.db).add(label(66, Category.SANCTIONS, "Tornado Cash donor"))
    reply = await bot.say(f"/risk {addr(1)}")
    assert "SEVERE" not in reply.text
    assert "probable dusting" in reply.text and "never answered" in reply.text
    assert addr(66).lower() in reply.text.lower()  # the counterparty's address, not only its entity
