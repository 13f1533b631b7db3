"""An example fund with consistent history: the newcomer's demo and the benchmarks' data generator.

History is written with bulk inserts (thousands of members × years in seconds), as if imported:
every payment verified, loans granted only while the fund had the cash, repaid at their monthly
minimum, settled when fully repaid. The figures obey every rule the ledger and the draw rely on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from fund import loans
from fund.jalali import JalaliMonth
from fund.members import create_members
from fund.models import FundConfig, Loan, User
from fund.money import ZERO
from fund.payments import history_payment, write_history_payments

FIRST_NAMES = ["Ali", "Sara", "Reza", "Maryam", "Hossein", "Zahra", "Mehdi", "Fatemeh", "Amir", "Narges",
               "Kaveh", "Leila", "Babak", "Shirin", "Omid", "Parisa"]  # fmt: skip
LAST_NAMES = ["Ahmadi", "Karimi", "Hosseini", "Rezaei", "Moradi", "Jafari", "Rahimi", "Mohammadi",
              "Sadeghi", "Ebrahimi", "Nazari", "Ghasemi"]  # fmt: skip
BATCH = 5000


@dataclass
class DemoSummary:
    members: int
    payments: int
    loans: int
    active_loans: int
    first_month: JalaliMonth
    last_month: JalaliMonth


@dataclass
class _OpenLoan:
    loan: Loan
    remaining: Decimal


def generate_fund(
    *,
    members: int = 12,
    months: int = 12,
    last_month: JalaliMonth | None = None,
    password: str | None = None,
    seed: int = 1404,
    username_prefix: str = "member",
) -> DemoSummary:
    """Create ``members`` members with ``months`` months of verified history ending at ``last_month``
    (default: the month before the current one, so this month is still open for payments)."""
    rng = random.Random(seed)
    config = FundConfig.load()
    last = last_month or JalaliMonth.current().previous()
    first = last - (months - 1)
    now = timezone.now()

    with transaction.atomic():
        start = User.objects.filter(username__startswith=username_prefix).count()
        people = [
            User(
                username=f"{username_prefix}{start + i + 1}",
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                email=f"{username_prefix}{start + i + 1}@example.org",
                loan_request_amount=Decimal(rng.choice([0, 100, 150, 200, 300, 400, 500])),
            )
            for i in range(members)
        ]
        people = create_members(people, password=password, batch_size=BATCH)
        fees = {p.pk: Decimal(rng.choice([20, 20, 25, 30, 50])) for p in people}

        open_loans: dict[int, _OpenLoan] = {}
        payments: list[dict] = []
        settled: list[Loan] = []
        loans_made = 0
        cash = ZERO
        for month in first.range_to(last):
            # Loans granted this month are repaid from next month on (like a draw's loan).
            for member in people:
                fee = fees[member.pk]
                repayment, loan = ZERO, None
                opened = open_loans.get(member.pk)
                if opened and opened.loan.month < month:
                    loan = opened.loan
                    repayment = min(loan.monthly_minimum, opened.remaining)
                    opened.remaining -= repayment
                    if opened.remaining == ZERO:
                        loans.settle_in_history(loan, month)
                        settled.append(loan)
                        del open_loans[member.pk]
                cash += fee + repayment
                payments.append(
                    history_payment(
                        member_id=member.pk, month=month, fee=fee, repayment=repayment,
                        loan_id=loan.pk if loan else None, bitpin_id="",
                        note="",  # an example row needs no note (a stored English one shows on Persian pages)
                        recorded_by_id=None, at=now,
                    )
                )  # fmt: skip
            if len(payments) >= BATCH:
                write_history_payments(payments, batch_size=BATCH)
                payments = []
            # About one loan per month for a small fund, more for a large one, while cash allows.
            # Settle in the database before new loans: one active loan per member is a constraint.
            loans.write_settlements(settled)
            settled = []
            new_loans: list[Loan] = []
            for _ in range(max(1, len(people) // 12)):
                borrower = rng.choice(people)
                amount = Decimal(rng.choice([100, 150, 200, 300]))
                # No loan in the last month: that month's loan is its draw's (launch runs it), and a
                # loan outside the draw would show as "has an active loan" with no loan counted.
                if borrower.pk in open_loans or amount > cash or month in (first, last):
                    continue
                loan = loans.history_loan(
                    Loan(), member_id=borrower.pk, month=month, amount=amount, config=config,
                    state=Loan.State.ACTIVE, note="",
                )  # fmt: skip
                new_loans.append(loan)
                open_loans[borrower.pk] = _OpenLoan(loan, amount)
                cash -= amount
            loans.write_history_loans(new_loans, batch_size=BATCH)
            loans_made += len(new_loans)
        write_history_payments(payments, batch_size=BATCH)
        loans.write_settlements(settled)
        # Members repaying a loan are not asking for another.
        User.objects.filter(pk__in=list(open_loans)).update(loan_request_amount=ZERO)

    return DemoSummary(
        members=len(people),
        payments=len(people) * months,
        loans=loans_made,
        active_loans=len(open_loans),
        first_month=first,
        last_month=last,
    )
