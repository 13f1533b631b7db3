"""A manual decision racing Bitpin's answer on PostgreSQL: the payout is decided once, the loan activated once."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone, translation

from fund.models import Loan, Payout
from fund.payouts import PayoutRefused, record_loan_payout, reject_payout, verify_payout_with_bitpin
from tests.conftest import THIS_MONTH, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def english_in_this_month(monkeypatch):
    moment = THIS_MONTH.starts_at() + dt.timedelta(days=9, hours=12)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    with translation.override("en"):
        yield


@pytest.mark.parametrize("rounds", range(5))
def test_a_manual_rejection_racing_bitpins_verification_decides_once(history, operator, fake_bitpin, rounds):
    member = history.member(f"winner{rounds}")
    history.pay_months(member, THIS_MONTH - 12, 12)
    loan = history.loan(member, THIS_MONTH, 100, state=Loan.State.AWAITING_PAYOUT)
    payout = record_loan_payout(loan=loan, transfer_id=f"tr-{rounds}", amount=Decimal(100), by=operator)
    fake_bitpin.set_transfer(f"tr-{rounds}", "completed", amount="100", delay=0.05 * rounds)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def bitpin_job() -> None:
        try:
            with translation.override("en"):
                barrier.wait(timeout=10)
                outcomes.append(verify_payout_with_bitpin(payout_id=payout.pk))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    def operator_rejects() -> None:
        try:
            with translation.override("en"):
                barrier.wait(timeout=10)
                reject_payout(payout=payout, by=operator, note="wrong address")
                outcomes.append("rejected by hand")
        except PayoutRefused as refusal:
            outcomes.append(refusal.message)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=bitpin_job), threading.Thread(target=operator_rejects)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    decided = Payout.objects.get(pk=payout.pk)
    loan = Loan.objects.get(pk=loan.pk)
    history_rows = list(decided.history.order_by("history_id").values_list("status", flat=True))
    assert history_rows.count("verified") + history_rows.count("rejected") == 1, history_rows
    if decided.status == Payout.Status.VERIFIED:
        assert loan.state == Loan.State.ACTIVE
        assert "This payout is already verified" in " ".join(outcomes)
    else:
        assert decided.status == Payout.Status.REJECTED and decided.note == "wrong address"
        assert loan.state == Loan.State.AWAITING_PAYOUT
        assert f"payout {payout.pk} was decided meanwhile" in " ".join(outcomes) or "already rejected" in " ".join(
            outcomes
        )
