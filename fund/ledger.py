"""Every derived figure of the fund, read-only: balances, fund cash, loan positions, draw factors.

Nothing here writes. Each function issues a fixed number of queries, whatever the number of
members, months or payments (aggregations run in the database, never a query per row), so the
draw, the dashboard and the member page stay fast on a fund with years of history.
Only *verified* payments count (DESIGN.md, "Payment", rule 7).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from fund import coalesce
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, Payout, User
from fund.money import ZERO, AmountField, money_add, money_sub, quantize

VERIFIED = Payment.Status.VERIFIED
# Sums and subqueries of money come back through AmountField, which rounds them to 8 places.
_MONEY = AmountField()


def _sum(expression: str | F, **filters: Q) -> Coalesce:
    return Coalesce(Sum(expression, **filters), Value(ZERO), output_field=_MONEY)


# --- fund-wide figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class FundTotals:
    fees: Decimal
    repayments: Decimal
    loans_granted: Decimal  # every loan, awaiting payout or paid out: money no longer to lend
    refunds: Decimal = ZERO  # verified refunds to members who left
    refunds_pending: Decimal = ZERO  # refunds recorded, not yet verified: promised, like a loan awaiting payout
    loans_paid_out: Decimal = ZERO  # verified loan payouts: what actually left the wallet

    @property
    def cash(self) -> Decimal:
        """Fund cash = verified fees + verified repayments − loans granted − refunds (DESIGN.md,
        "User and member"). A refund recorded and waiting for Bitpin counts as gone already, as a
        loan awaiting payout does: that money is no longer there to lend."""
        return self.fees + self.repayments - self.loans_granted - self.refunds - self.refunds_pending

    @property
    def expected_wallet_balance(self) -> Decimal:
        """What the Bitpin wallet should hold: verified fees + verified repayments − verified loan
        payouts − verified refunds (DESIGN.md, "User and member")."""
        return self.fees + self.repayments - self.loans_paid_out - self.refunds

    @property
    def outstanding_principal(self) -> Decimal:
        """What members still owe on their loans: loans granted − repaid."""
        return self.loans_granted - self.repayments


def fund_totals(up_to: JalaliMonth | None = None, loans_before: JalaliMonth | None = None) -> FundTotals:
    """The fund's totals: three queries. ``up_to`` limits payments to months ≤ it, ``loans_before``
    limits loans to months < it (the draw's view of a month: DESIGN.md, "Monthly draw", §3).
    Verified payouts and refunds always count: they are money that has left the wallet."""
    payments = Payment.objects.filter(status=VERIFIED)
    if up_to is not None:
        payments = payments.filter(month__lte=up_to)
    paid = payments.aggregate(fees=_sum("fee"), repayments=_sum("repayment"))
    loans = Loan.objects.all() if loans_before is None else Loan.objects.filter(month__lt=loans_before)
    granted = loans.aggregate(total=_sum("amount"))["total"]
    return FundTotals(fees=paid["fees"], repayments=paid["repayments"], loans_granted=granted, **_paid_out())


def _paid_out() -> dict[str, Decimal]:
    """Payouts by kind and status, as FundTotals fields: one query over the (small) payouts table."""
    verified, refund = Q(status=Payout.Status.VERIFIED), Q(kind=Payout.Kind.REFUND)
    return Payout.objects.aggregate(
        refunds=_sum("amount", filter=verified & refund),
        refunds_pending=_sum("amount", filter=Q(status=Payout.Status.PENDING) & refund),
        loans_paid_out=_sum("amount", filter=verified & Q(kind=Payout.Kind.LOAN)),
    )


def expected_wallet_balance() -> Decimal:
    """What the fund's Bitpin wallet should hold now, from the ledger alone (DESIGN.md, "Reconciliation")."""
    return fund_totals().expected_wallet_balance


def pending_inflows() -> Decimal:
    """Payments still waiting for Bitpin: money that may be in the wallet before the ledger counts it."""
    pending = Payment.objects.filter(status=Payment.Status.PENDING)
    return quantize(pending.aggregate(total=_sum(money_add(F("fee"), F("repayment"))))["total"])


# --- members ----------------------------------------------------------------------------------


def with_balance(members: QuerySet[User], up_to: JalaliMonth | None = None) -> QuerySet[User]:
    """Annotate ``balance``: each member's verified membership fees − verified refunds (two subqueries).

    A member who left and was refunded has 0 (DESIGN.md, "User and member"). ``up_to`` is the
    draw's view of a month, in which only members who have not left take part: refunds do not apply.
    """
    payments = Payment.objects.filter(member=OuterRef("pk"), status=VERIFIED)
    if up_to is not None:
        payments = payments.filter(month__lte=up_to)
    total = payments.order_by().values("member").annotate(total=Sum("fee")).values("total")
    fees = Coalesce(Subquery(total, output_field=_MONEY), Value(ZERO), output_field=_MONEY)
    if up_to is not None:
        return members.annotate(balance=fees)
    refunds = (
        Payout.objects.filter(member=OuterRef("pk"), kind=Payout.Kind.REFUND, status=Payout.Status.VERIFIED)
        .order_by()
        .values("member")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    refunded = Coalesce(Subquery(refunds, output_field=_MONEY), Value(ZERO), output_field=_MONEY)
    return members.annotate(balance=money_sub(fees, refunded))


def balance_of(member: User) -> Decimal:
    return with_balance(User.objects.filter(pk=member.pk)).values_list("balance", flat=True).get()


def members_with_standing(month: JalaliMonth, members: QuerySet[User] | None = None) -> QuerySet[User]:
    """Members annotated for lists: balance, this month's payment status, active loan remaining.

    Used by the admin's member list and the dashboard: one query whatever the number of rows.
    """
    members = User.objects.all() if members is None else members
    this_month = Payment.objects.filter(member=OuterRef("pk"), month=month).exclude(status=Payment.Status.REJECTED)
    active = Loan.objects.filter(member=OuterRef("pk"), state=Loan.State.ACTIVE)
    active_remaining = with_repaid(active).values("remaining")[:1]
    return with_balance(members).annotate(
        month_status=Subquery(this_month.values("status")[:1]),
        paid_this_month=Exists(this_month.filter(status=VERIFIED)),
        has_active_loan=Exists(active),
        active_loan_remaining=Subquery(active_remaining, output_field=_MONEY),
    )


def unpaid_members(month: JalaliMonth) -> list[User]:
    """Members who owe ``month``'s fee (a leaving member owes none) without a verified payment: one query."""
    paid = Payment.objects.filter(member=OuterRef("pk"), month=month, status=VERIFIED)
    return list(User.objects.paying().filter(~Exists(paid)).order_by("username"))


@dataclass(frozen=True)
class PaidCount:
    paid: int
    total: int


def paid_count(month: JalaliMonth) -> PaidCount:
    # IN (one indexed read of the month's payments), not EXISTS per member: the member page asks
    # on every visit, and an EXISTS for each of 10,000 members costs ~30 ms.
    paid = Payment.objects.filter(month=month, status=VERIFIED).values("member_id")
    counts = User.objects.paying().aggregate(total=Count("pk"), paid=Count("pk", filter=Q(pk__in=paid)))
    return PaidCount(paid=counts["paid"], total=counts["total"])


# --- loans ------------------------------------------------------------------------------------


def with_repaid(loans: QuerySet[Loan]) -> QuerySet[Loan]:
    """Annotate ``repaid`` (verified repayments) and ``remaining`` on loans: one subquery."""
    repaid = (
        Payment.objects.filter(loan=OuterRef("pk"), status=VERIFIED)
        .order_by()
        .values("loan")
        .annotate(total=Sum("repayment"))
        .values("total")
    )
    return loans.annotate(
        repaid=Coalesce(Subquery(repaid, output_field=_MONEY), Value(ZERO), output_field=_MONEY),
    ).annotate(remaining=money_sub(F("amount"), F("repaid")))


def loan_repaid(loan: Loan, include_pending: bool = False) -> Decimal:
    """Repayments on a loan; with ``include_pending`` also those still waiting for Bitpin."""
    statuses = [VERIFIED, Payment.Status.PENDING] if include_pending else [VERIFIED]
    return Payment.objects.filter(loan=loan, status__in=statuses).aggregate(total=_sum("repayment"))["total"]


def active_loan(member: User) -> Loan | None:
    return with_repaid(Loan.objects.filter(member=member, state=Loan.State.ACTIVE)).first()


def open_loan(member: User) -> Loan | None:
    """The member's loan awaiting payout or being repaid, if any (at most one: DESIGN.md, "Loan")."""
    return with_repaid(Loan.objects.filter(member=member, state__in=Loan.OPEN_STATES)).first()


@dataclass(frozen=True)
class RepaymentBounds:
    """What this month's repayment on a loan may be (DESIGN.md, "Payment", rule 4)."""

    minimum: Decimal
    maximum: Decimal


def repayment_bounds(loan: Loan, still_owed: Decimal) -> RepaymentBounds:
    """Between the loan's monthly minimum and what is still owed; the final instalment may be smaller."""
    still_owed = max(still_owed, ZERO)
    return RepaymentBounds(minimum=min(loan.monthly_minimum, still_owed), maximum=still_owed)


# --- monthly series (dashboard chart, statements) -----------------------------------------------


@dataclass(frozen=True)
class MonthFigures:
    month: JalaliMonth
    fees: Decimal
    repayments: Decimal
    loans_granted: Decimal
    cash_at_end: Decimal

    @property
    def inflow(self) -> Decimal:
        return self.fees + self.repayments


def monthly_series(first: JalaliMonth, last: JalaliMonth) -> list[MonthFigures]:
    """Per month from ``first`` to ``last``: inflow, loans and the fund cash at the month's end.

    Five queries: the totals before ``first``, two GROUP BY month queries and the refunds (few).
    A refund counts in the month it was verified (a pending one in the month it was recorded).
    """
    before = fund_totals(up_to=first.previous(), loans_before=first)
    refunded: dict[JalaliMonth, Decimal] = {}
    refunds = Payout.objects.filter(kind=Payout.Kind.REFUND).exclude(status=Payout.Status.REJECTED)
    for amount, verified_at, created_at in refunds.values_list("amount", "verified_at", "created_at"):
        month = JalaliMonth.from_datetime(verified_at or created_at)
        refunded[month] = refunded.get(month, ZERO) + amount
    # fund_totals counts every refund; the series subtracts each in its own month instead.
    before_cash = before.cash + sum((a for m, a in refunded.items() if m >= first), ZERO)
    paid = {
        row["month"]: row
        for row in Payment.objects.filter(status=VERIFIED, month__gte=first, month__lte=last)
        .values("month")
        .annotate(fees=Sum("fee"), repayments=Sum("repayment"))
        .order_by()
    }
    lent = {
        row["month"]: row["total"]
        for row in Loan.objects.filter(month__gte=first, month__lte=last)
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    cash = before_cash
    series = []
    for month in first.range_to(last):
        row = paid.get(month, {})
        fees, repayments = row.get("fees") or ZERO, row.get("repayments") or ZERO
        loans = lent.get(month) or ZERO
        cash += fees + repayments - loans - refunded.get(month, ZERO)
        series.append(MonthFigures(month, fees, repayments, loans, cash))
    return series


# --- draw factors -------------------------------------------------------------------------------


@dataclass
class MemberFactors:
    """Everything the draw needs to know about one member, as of the draw month (DESIGN.md §3)."""

    member_id: int
    username: str
    display_name: str
    balance: Decimal = ZERO
    months_without_loan: int = 0
    loan_payment_count: int = 0
    last_payment_amount: Decimal = ZERO
    previous_loan_amount: Decimal = ZERO
    total_loan_amount_received: Decimal = ZERO
    total_loans_received: int = 0
    loan_request_amount: Decimal = ZERO
    has_open_loan: bool = False  # awaiting payout or active (DESIGN.md, "Monthly draw", §2)
    is_leaving: bool = False
    paid_this_month: bool = False


def draw_factors_and_totals(
    month: JalaliMonth, members: Iterable[User] | None = None
) -> tuple[list[MemberFactors], FundTotals]:
    """The draw factors of every active member as of ``month`` (in member id order) and today's
    ``fund_totals``, reading the payments table once.

    Payments count up to and including ``month``; loans count when granted before it.

    The draw needs both, and both read every verified payment: the per-member GROUP BY over the
    payments up to ``month`` also sums their repayments, and one small indexed query adds the
    payments after ``month`` (few or none: a draw is for the current month or a recent one).
    Five queries whatever the number of members and months.
    """
    queryset, paid, borrowed = _factor_queries(month, members)
    later = Payment.objects.filter(status=VERIFIED, month__gt=month).aggregate(
        fees=_sum("fee"), repayments=_sum("repayment")
    )
    totals = FundTotals(
        fees=sum((row["balance"] or ZERO for row in paid.values()), later["fees"]),
        repayments=sum((row["repaid"] or ZERO for row in paid.values()), later["repayments"]),
        loans_granted=sum((row["all_total"] or ZERO for row in borrowed.values()), ZERO),
        **_paid_out(),
    )
    return _factors(queryset, paid, borrowed), totals


def _factor_queries(
    month: JalaliMonth, members: Iterable[User] | None
) -> tuple[QuerySet[User], dict[int, dict], dict[int, dict]]:
    """The members (a lazy query) and the two GROUP BYs the factors come from (run here)."""
    payments = Payment.objects.filter(status=VERIFIED, month__lte=month)
    loans = Loan.objects.filter(month__lt=month)
    last_payment = (
        payments.filter(member=OuterRef("pk")).order_by("-month").annotate(total=money_add(F("fee"), F("repayment")))
    )
    last_loan = loans.filter(member=OuterRef("pk")).order_by("-month")
    queryset = (
        User.objects.members()
        .annotate(
            last_payment_amount=Subquery(last_payment.values("total")[:1], output_field=_MONEY),
            previous_loan_amount=Subquery(last_loan.values("amount")[:1], output_field=_MONEY),
            has_open_loan=Exists(Loan.objects.filter(member=OuterRef("pk"), state__in=Loan.OPEN_STATES)),
            paid_this_month=Exists(payments.filter(member=OuterRef("pk"), month=month)),
        )
        .order_by("pk")
    )
    if members is not None:
        queryset = queryset.filter(pk__in=[m.pk for m in members])
    paid = {
        row["member_id"]: row
        for row in payments.values("member_id")
        .annotate(
            balance=Sum("fee"),
            repaid=Sum("repayment"),  # for the fund's totals
            with_repayment=Count("pk", filter=Q(repayment__gt=0)),
            without_repayment=Count("pk", filter=Q(repayment=0)),
        )
        .order_by()
    }
    # Every loan, with the as-of-``month`` figures filtered: all of them count in the fund's totals.
    before = Q(month__lt=month)
    borrowed = {
        row["member_id"]: row
        for row in Loan.objects.values("member_id")
        .annotate(total=Sum("amount", filter=before), count=Count("pk", filter=before), all_total=Sum("amount"))
        .order_by()
    }
    return queryset, paid, borrowed


def _factors(queryset: QuerySet[User], paid: dict[int, dict], borrowed: dict[int, dict]) -> list[MemberFactors]:
    factors = []
    # Plain values, not model instances: a draw reads every member, and a User is costly to build.
    for member in queryset.values(*_FACTOR_COLUMNS):
        pay = paid.get(member["pk"], {})
        loan = borrowed.get(member["pk"], {})
        full_name = f"{member['first_name']} {member['last_name']}".strip()  # as User.get_full_name
        factors.append(
            MemberFactors(
                member_id=member["pk"],
                username=member["username"],
                display_name=full_name or member["username"],
                balance=pay.get("balance") or ZERO,
                months_without_loan=pay.get("without_repayment", 0),
                loan_payment_count=pay.get("with_repayment", 0),
                last_payment_amount=member["last_payment_amount"] or ZERO,
                previous_loan_amount=member["previous_loan_amount"] or ZERO,
                total_loan_amount_received=loan.get("total") or ZERO,
                total_loans_received=loan.get("count", 0),
                loan_request_amount=quantize(member["loan_request_amount"]),
                has_open_loan=member["has_open_loan"],
                is_leaving=member["leaving_since"] is not None,
                paid_this_month=member["paid_this_month"],
            )
        )
    return factors


_FACTOR_COLUMNS = (
    "pk", "username", "first_name", "last_name", "loan_request_amount",
    "last_payment_amount", "previous_loan_amount", "has_open_loan", "paid_this_month", "leaving_since",
)  # fmt: skip


def fund_config() -> FundConfig:
    return FundConfig.load()


# --- the draw inputs' version: the projection's cache key ------------------------------------------

DRAW_INPUTS_VERSION_KEY = "saghat:draw-inputs-version"


def draw_inputs_version() -> str:
    """A token that changes whenever a draw input is written: members, their loan requests, verified
    or rejected payments, loans and their states (issue 13, fault 9).

    It lives in Django's cache, so every process (web workers, the worker) reads the same one. Read
    it *before* the figures it guards: a write in between can then only make a cache miss, never a
    stale hit. A token lost from the cache (evicted, a fresh cache) is replaced by a new one.
    """
    version = cache.get(DRAW_INPUTS_VERSION_KEY)
    if version is None:
        cache.add(DRAW_INPUTS_VERSION_KEY, secrets.token_hex(8), timeout=None)
        version = cache.get(DRAW_INPUTS_VERSION_KEY) or ""
    return version


def draw_inputs_changed() -> None:
    """Called by every service that writes a draw input, inside its transaction.

    The version changes once the transaction commits (never for a rollback), so no process is
    told of data it cannot see yet. Until then this connection's own reads include the write:
    ``draw_inputs_written_here`` tells the projection not to use, or fill, the shared cache. A
    fresh random token, not an increment: two writers committing at once never leave the same value.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        connection.saghat_draw_inputs_written = True
    coalesce.after_commit_once("draw-inputs-version", _new_version)


def draw_inputs_written_here() -> bool:
    """Whether this connection's open transaction wrote a draw input (its reads are not for sharing)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        connection.saghat_draw_inputs_written = False  # committed or rolled back since
    return getattr(connection, "saghat_draw_inputs_written", False)


def _new_version() -> None:
    transaction.get_connection().saghat_draw_inputs_written = False
    cache.set(DRAW_INPUTS_VERSION_KEY, secrets.token_hex(8), timeout=None)
