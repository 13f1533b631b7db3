"""/api/payments/…: the fund's configuration, paying this month, my payments."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import HttpError

from fund import ledger, payments
from fund.api import schemas
from fund.api.auth import require_member
from fund.api.errors import responses
from fund.api.tokens import bearer
from fund.jalali import JalaliMonth
from fund.models import Payment
from fund.money import ZERO

router = Router(tags=["payments"], auth=bearer)


@router.get("/config", summary="The fund's configuration", response=responses({200: schemas.ConfigOut}, 401))
def config(request: HttpRequest) -> schemas.ConfigOut:
    """The minimum fee, the maximum repayment months and the minimum monthly repayment."""
    config = ledger.fund_config()
    return schemas.ConfigOut(
        min_membership_fee=config.min_fee,
        max_month_for_loan_payment=config.max_repayment_months,
        min_amount_for_loan_payment=config.min_repayment,
    )


@router.post("/pay", summary="Pay this month", response=responses({201: schemas.PaymentOut}, 400, 401, 403, 409, 422))
def pay(request: HttpRequest, payload: schemas.PayIn) -> Status:
    """Pay this month: stored pending until Bitpin verifies it (``status``). 409 when already paid."""
    member = require_member(request)
    try:
        payment = payments.submit_payment(
            member=member,
            month=JalaliMonth.current(),
            fee=payload.membership_fee,
            repayment=payload.loan if payload.loan is not None else ZERO,
            bitpin_id=payload.bitpin_payment_id,
            source=Payment.Source.MEMBER,
            submitted_by=member,
            loan_request=payload.loan_request_amount,
        )
    except payments.PaymentRefused as refused:
        status = 409 if refused.code == payments.PaymentRefused.ALREADY_PAID else 400
        raise HttpError(status, refused.message) from None
    return Status(201, payment_out(payment))


@router.get("/my-payments", summary="My payments", response=responses({200: list[schemas.PaymentOut]}, 401))
def my_payments(request: HttpRequest) -> list[schemas.PaymentOut]:
    """My payments, newest first, whatever their status."""
    return [payment_out(p) for p in Payment.objects.filter(member=request.auth).order_by("-month", "-pk")]


def payment_out(payment: Payment) -> schemas.PaymentOut:
    repays = payment.loan_id is not None and payment.repayment > ZERO
    return schemas.PaymentOut(
        id=str(payment.pk),
        user_id=payment.member_id,
        amount=payment.total,
        jalali_year=payment.month.year,
        jalali_month=payment.month.month,
        bitpin_payment_id=payment.bitpin_id,
        membership_fee=schemas.MembershipFeeOut(amount=payment.fee),
        loan_payment=schemas.LoanPaymentOut(loan_id=str(payment.loan_id), amount=payment.repayment) if repays else None,
        status=payment.status,
    )
