"""Properties of the standalone verifier (fund/static/fund/verify_draw.py), loaded as a module here
for speed (tests/test_draw_proof.py runs it as a separate process): it computes every score as
fund/scoring.py does, accepts the report of any real draw, and rejects that report after any
single change to one member's factors."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fund import proof, scoring
from fund.draw import run_draw
from fund.jalali import JalaliMonth
from fund.models import Loan, Payment, User
from tests.test_scoring import member_factors

M = JalaliMonth(1404, 9)
_PATH = Path(__file__).resolve().parent.parent / "fund" / "static" / "fund" / "verify_draw.py"
_SPEC = importlib.util.spec_from_file_location("verify_draw", _PATH)
verifier = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(verifier)

FACTOR_FIELDS = (
    "balance",
    "months_without_loan",
    "loan_payment_count",
    "last_payment_amount",
    "previous_loan_amount",
    "total_loan_amount_received",
    "total_loans_received",
    "loan_request_amount",
    "has_open_loan",
    "is_leaving",
    "paid_this_month",
)


@given(member_factors)
def test_the_verifier_scores_exactly_as_the_draw_does(factors):
    row = {name: str(value) if isinstance(value, Decimal) else value for name, value in asdict(factors).items()}

    assert verifier.score(row) == scoring.format_score(scoring.score(factors))


member_history = st.fixed_dictionaries(
    {
        "months": st.integers(min_value=1, max_value=9),
        "fee": st.sampled_from([Decimal(20), Decimal(25), Decimal("30.5")]),
        "request": st.sampled_from([Decimal(0), Decimal(20), Decimal(50), Decimal(200), Decimal(1000)]),
        "loan": st.sampled_from([None, Decimal(40), Decimal(100), Decimal(150)]),
        "repaid_months": st.integers(min_value=0, max_value=4),
        "active": st.booleans(),
    }
)


def _lay_down(histories: list[dict]) -> None:
    """Members who all paid for M (fees for their last ``months`` months), some with a past loan."""
    for number, spec in enumerate(histories):
        member = User.objects.create(username=f"p{number}", is_member=True, loan_request_amount=spec["request"])
        months = (M - (spec["months"] - 1)).range_to(M)
        loan = None
        if spec["loan"] is not None and spec["months"] > 1:
            state = Loan.State.ACTIVE if spec["active"] else Loan.State.SETTLED
            loan = Loan.objects.create(
                member=member, amount=spec["loan"], month=months[0], monthly_minimum=Decimal(20), state=state
            )
        for index, month in enumerate(months):
            repays = loan is not None and 0 < index <= spec["repaid_months"] and month < M
            Payment.objects.create(
                member=member,
                month=month,
                fee=spec["fee"],
                repayment=Decimal(10) if repays else Decimal(0),
                loan=loan if repays else None,
                bitpin_id=f"p{number}-{month.index}",
                status=Payment.Status.VERIFIED,
                source=Payment.Source.IMPORT,
            )


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return f"{Decimal(value) + Decimal('0.5')}"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(member_history, min_size=1, max_size=6), st.data())
def test_for_random_funds_the_verifier_accepts_the_draw_and_rejects_any_changed_factor(db, histories, data):
    with transaction.atomic():
        _lay_down(histories)
        draw = run_draw(month=M)
        published = json.loads(proof.downloadable(draw.report, draw.report_hash))
        transaction.set_rollback(True)

    honest = verifier.Checker(published, None)
    honest.run()
    assert honest.mismatches == []

    row = data.draw(st.sampled_from(range(len(published["rows"]))))
    name = data.draw(st.sampled_from(FACTOR_FIELDS))
    published["rows"][row][name] = _changed(published["rows"][row][name])
    changed = verifier.Checker(published, None)
    changed.run()
    assert changed.mismatches, f"a change to {name} of row {row} went unnoticed"
