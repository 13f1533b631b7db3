"""Every database constraint holds even when a service is bypassed (run on SQLite and PostgreSQL)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User

M = JalaliMonth(1404, 9)


def _payment(member, **fields):
    values = {"member": member, "month": M, "fee": Decimal(20), "bitpin_id": "", "status": Payment.Status.VERIFIED}
    values.update(fields)
    return Payment.objects.create(**values)


def refused(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_one_non_rejected_payment_per_member_and_month(member):
    _payment(member, bitpin_id="a")
    refused(lambda: _payment(member, bitpin_id="b", status=Payment.Status.PENDING))


def test_a_rejected_payment_can_be_submitted_again(member):
    _payment(member, bitpin_id="a", status=Payment.Status.REJECTED)
    _payment(member, bitpin_id="a", status=Payment.Status.PENDING)
    assert Payment.objects.filter(member=member, month=M).count() == 2


def test_a_bitpin_id_is_unique_among_non_rejected_payments(member, other_member):
    _payment(member, bitpin_id="same")
    refused(lambda: _payment(other_member, bitpin_id="same"))
    _payment(other_member, bitpin_id="same", status=Payment.Status.REJECTED)


def test_blank_bitpin_ids_do_not_collide(member, other_member):
    _payment(member)
    _payment(other_member)
    assert Payment.objects.filter(bitpin_id="").count() == 2


def test_one_draw_per_month(db):
    Draw.objects.create(month=M, fund_cash=Decimal(0), seed="s")
    refused(lambda: Draw.objects.create(month=M, fund_cash=Decimal(0), seed="t"))


def test_at_most_one_active_loan_per_member(member):
    Loan.objects.create(member=member, month=M, amount=Decimal(100), monthly_minimum=Decimal(20))
    refused(
        lambda: Loan.objects.create(member=member, month=M.next(), amount=Decimal(100), monthly_minimum=Decimal(20))
    )
    Loan.objects.create(
        member=member, month=M.next(), amount=Decimal(100), monthly_minimum=Decimal(20), state=Loan.State.SETTLED
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda m: _payment(m, fee=Decimal("-1")),
        lambda m: _payment(m, repayment=Decimal("-1")),
        lambda m: Loan.objects.create(member=m, month=M, amount=Decimal("-5"), monthly_minimum=Decimal(20)),
        lambda m: Loan.objects.create(member=m, month=M, amount=Decimal("0"), monthly_minimum=Decimal(20)),
        lambda m: Draw.objects.create(month=M, fund_cash=Decimal(0), seed="s", amount=Decimal("-1")),
        lambda m: User.objects.filter(pk=m.pk).update(loan_request_amount=Decimal("-1")),
    ],
    ids=["fee", "repayment", "loan", "zero-loan", "draw", "loan-request"],
)
def test_amounts_are_never_negative(member, build):
    refused(lambda: build(member))


def test_a_repayment_must_belong_to_a_loan(member):
    refused(lambda: _payment(member, repayment=Decimal(10)))


def test_the_fund_configuration_is_one_row(db):
    FundConfig.load()
    refused(lambda: FundConfig.objects.create(pk=2))
    assert FundConfig.load().min_fee == Decimal(20)


def test_months_are_stored_and_read_back_as_jalali_months(member):
    payment = _payment(member, month="۱۴۰۴/۰۹")
    payment.refresh_from_db()
    assert payment.month == M
    assert Payment.objects.filter(month__gte=JalaliMonth(1404, 1), month__lt="1404/10").count() == 1


def test_a_member_is_an_active_user_marked_member(member, operator):
    inactive = User.objects.create_user("gone", is_member=True, is_active=False)
    assert list(User.objects.members()) == [member]
    assert not operator.is_fund_member and not inactive.is_fund_member


def test_the_maximum_repayment_months_are_bounded(db):
    config = FundConfig.load()
    config.max_repayment_months = 121
    with pytest.raises(ValidationError):
        config.full_clean()
    refused(lambda: FundConfig.objects.update(max_repayment_months=500))
