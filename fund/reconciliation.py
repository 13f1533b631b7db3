"""Reconciliation: the fund's real Bitpin wallet compared with the ledger (DESIGN.md, "Reconciliation with the wallet").

A reading stores when, the wallet's USDT balance, the expected wallet balance from the ledger
(fund.ledger), their difference (wallet − expected), the payments still pending (money that may
already be in the wallet though the ledger does not count it yet: it explains a positive
difference) and who or what took it. A difference beyond the configured tolerance is flagged.

The daily job and the admin's action call ``take_reading``; with a Bitpin key the wallet is
read from Bitpin, without one the operator types the balance they see in the exchange.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fund import bitpin, ledger, notifications
from fund.models import FundConfig, Reconciliation, User
from fund.money import AmountError, check_amount, format_usdt


class ReadingRefused(Exception):
    """No reading could be taken now. ``str()`` is the message for a person."""


def take_reading(*, typed_balance: Decimal | None = None, by: User | None = None, job: str = "") -> Reconciliation:
    """Read the wallet (or take the operator's typed figure) and store it beside the ledger's figure.

    A typed balance is what the operator sees in the exchange; without one the wallet is read from
    Bitpin, which needs the API key. Raises ReadingRefused, writing nothing, when neither is possible.
    """
    if typed_balance is not None:
        wallet, source = _typed(typed_balance), Reconciliation.Source.TYPED
    elif not settings.BITPIN_API_KEY:
        raise ReadingRefused(_("No Bitpin key is configured: type the wallet's balance as the exchange shows it."))
    else:
        try:
            wallet, source = bitpin.wallet_balance(), Reconciliation.Source.BITPIN
        except bitpin.WalletUnreadable as error:
            raise ReadingRefused(_("The wallet could not be read: %(error)s") % {"error": error}) from None
    with transaction.atomic():
        # The ledger's figures in one consistent snapshot with the reading's row.
        totals = ledger.fund_totals()
        expected = totals.expected_wallet_balance
        tolerance = FundConfig.load().reconciliation_tolerance
        difference = wallet - expected
        reading = Reconciliation.objects.create(
            taken_at=timezone.now(),
            wallet_balance=wallet,
            expected_balance=expected,
            difference=difference,
            pending_inflows=ledger.pending_inflows(),
            tolerance=tolerance,
            flagged=abs(difference) > tolerance,
            source=source,
            taken_by=by,
            taken_by_job=job[:100],
        )
        notifications.reconciliation_flagged(reading)
    return reading


def _typed(value: Decimal) -> Decimal:
    try:
        return check_amount(Decimal(value))
    except (AmountError, ArithmeticError, TypeError, ValueError) as error:
        raise ReadingRefused(str(error) if isinstance(error, AmountError) else _("Enter an amount.")) from None


def reconcile_daily() -> str:
    """The daily job: a reading from Bitpin, or a line saying why none was taken (never a failed job)."""
    try:
        reading = take_reading(job="daily reconciliation")
    except ReadingRefused as refused:
        return str(refused)
    return describe(reading)


def describe(reading: Reconciliation) -> str:
    values = {
        "wallet": format_usdt(reading.wallet_balance),
        "expected": format_usdt(reading.expected_balance),
        "difference": format_usdt(reading.difference),
    }
    if reading.flagged:
        return (
            _(
                "The wallet holds %(wallet)s USDT; the ledger says %(expected)s USDT: a difference of %(difference)s USDT."
            )
            % values
        )
    return _("The wallet holds %(wallet)s USDT; the ledger says %(expected)s USDT: they match.") % values


def latest_reading() -> Reconciliation | None:
    return Reconciliation.objects.order_by("-taken_at", "-pk").first()
