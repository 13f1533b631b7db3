"""What must hold for any fund at any moment, computed from the raw rows, not through fund.ledger.

Used after every step of the state machine, after mixed load and after faults. Each check is
stated once here so that every reliability test asks the same questions of the database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from fund import ledger
from fund.models import Draw, Loan, Payment, Payout, User
from fund.money import ZERO

VERIFIED, REJECTED = Payment.Status.VERIFIED, Payment.Status.REJECTED


def payment_rows() -> list[dict]:
    return list(Payment.objects.values("id", "member_id", "month", "fee", "repayment", "status", "loan_id"))


def payout_rows() -> list[dict]:
    return list(Payout.objects.values("id", "kind", "member_id", "loan_id", "amount", "status"))


def _paid_out(payouts: list[dict], kind: str, statuses: tuple[str, ...] = (VERIFIED,)) -> Decimal:
    return sum((p["amount"] for p in payouts if p["kind"] == kind and p["status"] in statuses), ZERO)


def cash_from_rows(rows: list[dict], payouts: list[dict] | None = None) -> Decimal:
    """Fund cash = verified fees + verified repayments − all loans granted − refunds recorded and not
    rejected (DESIGN.md, "User and member"; a refund waiting for Bitpin is promised, like a loan
    awaiting payout)."""
    payouts = payout_rows() if payouts is None else payouts
    paid = sum((r["fee"] + r["repayment"] for r in rows if r["status"] == VERIFIED), ZERO)
    refunds = _paid_out(payouts, Payout.Kind.REFUND, (VERIFIED, Payout.Status.PENDING))
    return paid - sum(Loan.objects.values_list("amount", flat=True), ZERO) - refunds


def expected_wallet_from_rows(rows: list[dict], payouts: list[dict] | None = None) -> Decimal:
    """Expected wallet balance = verified fees + verified repayments − verified payouts − verified refunds."""
    payouts = payout_rows() if payouts is None else payouts
    paid = sum((r["fee"] + r["repayment"] for r in rows if r["status"] == VERIFIED), ZERO)
    return paid - _paid_out(payouts, Payout.Kind.LOAN) - _paid_out(payouts, Payout.Kind.REFUND)


def assert_fund_cash_adds_up(rows: list[dict]) -> None:
    cash = cash_from_rows(rows)
    assert ledger.fund_totals().cash == cash, "the ledger's fund cash differs from the rows"
    assert cash >= ZERO, f"fund cash is negative: {cash}"


def assert_wallet_adds_up(rows: list[dict]) -> None:
    """The expected wallet balance follows the money that really moved, and never holds less than fund cash."""
    payouts = payout_rows()
    expected = expected_wallet_from_rows(rows, payouts)
    assert ledger.expected_wallet_balance() == expected, "the ledger's expected wallet balance differs from the rows"
    cash = cash_from_rows(rows, payouts)
    assert cash <= expected, f"fund cash {cash} is more than the wallet should hold, {expected}"


def assert_balances_are_verified_fees(rows: list[dict]) -> None:
    """Balance = verified fees − verified refunds (a member who left and was refunded has 0)."""
    fees: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        if r["status"] == VERIFIED:
            fees[r["member_id"]] += r["fee"]
    for p in payout_rows():
        if p["kind"] == Payout.Kind.REFUND and p["status"] == VERIFIED:
            fees[p["member_id"]] -= p["amount"]
    for member in ledger.with_balance(User.objects.all()):
        assert member.balance == fees[member.pk], f"{member.username}: balance {member.balance} ≠ {fees[member.pk]}"
        if member.left_at is not None:
            assert not member.is_active and member.balance == ZERO, f"{member.username} left with {member.balance}"


def assert_one_counting_payment_per_member_and_month(rows: list[dict]) -> None:
    counting = Counter((r["member_id"], r["month"]) for r in rows if r["status"] != REJECTED)
    doubled = {key for key, times in counting.items() if times > 1}
    assert not doubled, f"members paid twice for a month: {doubled}"


def assert_one_draw_per_month_and_one_active_loan_per_member() -> None:
    months = list(Draw.objects.values_list("month", flat=True))
    assert len(months) == len(set(months)), "a month was drawn twice"
    open_loans = list(Loan.objects.filter(state__in=Loan.OPEN_STATES).values_list("member_id", flat=True))
    assert len(open_loans) == len(set(open_loans)), "a member has two open loans"
    for draw in Draw.objects.exclude(winner=None).select_related("loan"):
        loan = draw.loan
        assert (loan.member_id, loan.month, loan.amount) == (draw.winner_id, draw.month, draw.amount), draw


def assert_loans_paid_out_exactly_when_a_payout_is_verified() -> None:
    verified = {p["loan_id"] for p in payout_rows() if p["kind"] == Payout.Kind.LOAN and p["status"] == VERIFIED}
    for loan in Loan.objects.filter(state=Loan.State.AWAITING_PAYOUT):
        assert loan.pk not in verified, f"{loan} is paid out but still awaits its payout"
        assert not loan.repayments.exists(), f"{loan} is repaid before its payout"
    drawn = set(Draw.objects.exclude(loan=None).values_list("loan_id", flat=True))
    for loan in Loan.objects.exclude(state=Loan.State.AWAITING_PAYOUT).filter(pk__in=drawn):
        assert loan.pk in verified, f"{loan} was granted by a draw and is {loan.state} without a verified payout"


def assert_loans_settled_exactly_when_repaid(rows: list[dict]) -> None:
    for loan in Loan.objects.all():
        mine = [r for r in rows if r["loan_id"] == loan.pk]
        verified = sum((r["repayment"] for r in mine if r["status"] == VERIFIED), ZERO)
        counting = sum((r["repayment"] for r in mine if r["status"] != REJECTED), ZERO)
        assert counting <= loan.amount, f"{loan} is over-repaid: {counting}"
        assert (loan.state == Loan.State.SETTLED) == (verified >= loan.amount), f"{loan}: {loan.state}, {verified}"


def assert_no_loan_over_repaid(rows: list[dict]) -> None:
    """Verified repayments never exceed the loan's amount, and neither do verified and pending together."""
    amounts = dict(Loan.objects.values_list("pk", "amount"))
    verified: dict[int, Decimal] = defaultdict(lambda: ZERO)
    counting: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        if r["loan_id"] is not None and r["status"] != REJECTED:
            counting[r["loan_id"]] += r["repayment"]
            if r["status"] == VERIFIED:
                verified[r["loan_id"]] += r["repayment"]
    over = {pk: (verified[pk], counting[pk], amount) for pk, amount in amounts.items() if counting[pk] > amount}
    assert not over, f"loans repaid past their amount (verified, with pending, amount): {over}"


def assert_ledger_adds_up() -> None:
    """Every invariant at once (a few queries whatever the size of the fund)."""
    rows = payment_rows()
    assert_fund_cash_adds_up(rows)
    assert_balances_are_verified_fees(rows)
    assert_one_counting_payment_per_member_and_month(rows)
    assert_one_draw_per_month_and_one_active_loan_per_member()
    assert_loans_settled_exactly_when_repaid(rows)
    assert_no_loan_over_repaid(rows)
    assert_wallet_adds_up(rows)
    assert_loans_paid_out_exactly_when_a_payout_is_verified()
