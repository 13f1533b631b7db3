"""The ledger always adds up: a hypothesis state machine lives through many months of a fund.

Members join and leave, pay (with right and wrong amounts), Bitpin answers every way it can,
the operator decides by hand, draws run, history is imported. After every step the database is
compared with figures the test computes itself from the raw rows, and with a shadow record of
what each payment must have become:

- fund cash = verified fees + verified repayments − loans granted − refunds, never negative;
- expected wallet balance = verified fees + verified repayments − verified payouts − verified
  refunds, and fund cash ≤ expected wallet balance;
- each balance = the member's verified fees − verified refunds (0 for a member who left);
- at most one counting payment per member and month, one draw per month, one open loan per member;
- a drawn loan leaves "awaiting payout" exactly when its payout is verified, and is never repaid before;
- a loan is settled exactly when its verified repayments reach its amount, and never over-repaid
  (verified repayments, and verified with pending ones, never exceed its amount);
- no payment or payout is lost, none changes status other than as its answers say;
- a wallet reading is flagged exactly when it differs from the ledger by more than the tolerance.

The service is never asked to decide what the test expects: the test states the rule (DESIGN.md)
and checks that the service agreed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections import defaultdict
from decimal import Decimal

import pytest
import tablib
from django.db import transaction
from django.utils import timezone, translation
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fund import proof
from fund.draw import DrawRefused, run_draw
from fund.imports import run_import
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, Payout, User
from fund.money import ZERO
from fund.payments import (
    PaymentRefused,
    change_loan_request,
    reject_payment,
    submit_payment,
    verify_by_hand,
    verify_with_bitpin,
)
from fund.payouts import (
    PayoutRefused,
    record_leaving,
    record_loan_payout,
    reject_payout,
    verify_payout_by_hand,
    verify_payout_with_bitpin,
)
from fund.reconciliation import take_reading
from tests.reliability import invariants

FIRST_MONTH = JalaliMonth(1403, 1)
MAX_MEMBERS = 6
PENDING, VERIFIED, REJECTED = Payment.Status.PENDING, Payment.Status.VERIFIED, Payment.Status.REJECTED

# What each fake Bitpin answer must do to a pending payment (DESIGN.md, "Bitpin verification").
BITPIN_OUTCOMES = {
    "completed": VERIFIED,
    "too_small": REJECTED,
    "unknown": REJECTED,
    "failed": REJECTED,
    "wrong_currency": REJECTED,
    "pending": PENDING,
    "error500": PENDING,
    "error429": PENDING,
    "malformed": PENDING,
}
# Answers after which Bitpin must be asked again later: the attempt is counted and its error noted.
ASK_AGAIN = {"pending", "error500", "error429", "malformed"}
# What each answer about an outgoing transfer must do to a pending payout ("short": 1 USDT less).
TRANSFER_OUTCOMES = {**BITPIN_OUTCOMES, "too_small": REJECTED, "short": REJECTED}

amounts = st.sampled_from(["0", "10", "19.99999999", "20", "25.5", "40", "75", "120", "400"]).map(Decimal)
hiccups = st.sampled_from([None, None, "pending", "error500", "error429", "malformed"])
rarely = st.integers(0, 4).map(lambda n: n == 0)
# Mostly what a member would type, sometimes what the rules refuse.
fees = st.sampled_from(["20", "20", "25.5", "40", "120", "19.99999999", "0"]).map(Decimal)
repayment_choices = st.sampled_from(["minimum", "minimum", "maximum", "between", "none", "below", "above"])


class Clock:
    """The edges the test controls: what timezone.now() says, and the month's secret (the draw's
    tie-break follows from it: a random secret would make one history's winner differ between runs,
    which hypothesis cannot replay)."""

    def __init__(self) -> None:
        self.moment = FIRST_MONTH.starts_at() + dt.timedelta(days=9, hours=12)
        self.secrets = itertools.count()

    def now(self) -> dt.datetime:
        return self.moment.astimezone(dt.UTC)

    def token_hex(self, nbytes: int = 32) -> str:
        return hashlib.sha256(f"secret {next(self.secrets)}".encode()).hexdigest()[: 2 * nbytes]


class FundLife(RuleBasedStateMachine):
    def __init__(self, clock: Clock, bitpin) -> None:
        super().__init__()
        # Each run lives in a savepoint of the test's transaction and is rolled back in teardown.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.clock = clock
        clock.moment = FIRST_MONTH.starts_at() + dt.timedelta(days=9, hours=12)
        clock.secrets = itertools.count()
        self.bitpin = bitpin
        self.config = FundConfig.load()
        self.members: list[User] = []
        self.shadow: dict[int, str] = {}  # payment id → the status it must have
        self.attempts: dict[int, int] = defaultdict(int)
        self.payouts: dict[int, str] = {}  # payout id → the status it must have
        self.ids = itertools.count(1)

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @property
    def month(self) -> JalaliMonth:
        return JalaliMonth.current()

    def active(self) -> list[User]:
        """Members who still pay: active and not leaving (read again: leaving changes them)."""
        return list(User.objects.paying().filter(pk__in=[m.pk for m in self.members]).order_by("pk"))

    def pick(self, index: int, among: list | None = None):
        among = self.members if among is None else among
        return among[index % len(among)]

    # --- the test's own arithmetic (independent of fund.ledger) --------------------------------------

    def expected_repayment_window(self, member: User) -> tuple[Loan, Decimal, Decimal] | None:
        """DESIGN.md rule 4, computed here: (loan, minimum, maximum) or None without a loan to repay."""
        # Repaid from the month after the payout was verified (imported loans: after the month granted).
        loan = Loan.objects.filter(member=member, state=Loan.State.ACTIVE).first()
        if loan is not None and (loan.paid_out_month or loan.month) >= self.month:
            loan = None
        if loan is None:
            return None
        counted = sum(
            (r["repayment"] for r in invariants.payment_rows() if r["loan_id"] == loan.pk and r["status"] != REJECTED),
            ZERO,
        )
        owed = max(loan.amount - counted, ZERO)
        return loan, min(loan.monthly_minimum, owed), owed

    def has_counting_payment(self, member: User, month: JalaliMonth) -> bool:
        return any(
            r["member_id"] == member.pk and r["month"] == month and r["status"] != REJECTED
            for r in invariants.payment_rows()
        )

    @initialize(requests=st.lists(amounts, min_size=2, max_size=4))
    def the_fund_starts(self, requests: list[Decimal]) -> None:
        for request in requests:
            self.a_member_joins(request)

    # --- people -------------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.members) < MAX_MEMBERS)
    @rule(request=amounts)
    def a_member_joins(self, request: Decimal) -> None:
        number = len(self.members) + 1
        self.members.append(User.objects.create_user(f"m{number}", is_member=True, loan_request_amount=request))

    @precondition(lambda self: len(self.active()) > 1)
    @rule(index=st.integers(0, MAX_MEMBERS), answer=st.none() | st.sampled_from(sorted(TRANSFER_OUTCOMES)))
    def a_member_leaves(self, index: int, answer: str | None) -> None:
        """The operator records a member leaving with the refund sent; Bitpin may answer about it at once."""
        member = self.pick(index, self.active())
        rows = invariants.payment_rows()
        balance = sum((r["fee"] for r in rows if r["member_id"] == member.pk and r["status"] == VERIFIED), ZERO)
        should_leave = (
            not Loan.objects.filter(member=member, state__in=Loan.OPEN_STATES).exists()
            and not any(r["member_id"] == member.pk and r["status"] == PENDING for r in rows)
            and balance <= invariants.cash_from_rows(rows)
        )
        try:
            refund = record_leaving(member=member, transfer_id=f"tr-{next(self.ids)}", by=None)
        except PayoutRefused:
            event("leaving refused")
            assert not should_leave, "a member who may leave was refused"
            assert User.objects.get(pk=member.pk).leaving_since is None
            return
        assert should_leave, "a member with an open loan, a pending payment or too large a refund left"
        member = User.objects.get(pk=member.pk)
        if refund is None:
            assert balance == ZERO and not member.is_active
            return
        event("member leaving")
        assert refund.amount == balance and member.is_leaving
        self.payouts[refund.pk] = PENDING
        if answer:
            self.bitpin_answers_one_payout(refund, answer)

    @precondition(lambda self: self.active())
    @rule(index=st.integers(0, MAX_MEMBERS), amount=amounts)
    def a_member_changes_the_loan_request(self, index: int, amount: Decimal) -> None:
        member = self.pick(index, self.active())
        change_loan_request(member=member, amount=amount)
        assert User.objects.get(pk=member.pk).loan_request_amount == amount

    # --- paying -----------------------------------------------------------------------------------------

    @precondition(lambda self: self.active())
    @rule(
        index=st.integers(0, MAX_MEMBERS),
        fee=fees,
        repayment=repayment_choices,
        reuse_bitpin_id=rarely,
        answer=st.none() | st.sampled_from(sorted(BITPIN_OUTCOMES)),
    )
    def a_member_pays(
        self, index: int, fee: Decimal, repayment: str, reuse_bitpin_id: bool, answer: str | None
    ) -> None:
        """A member submits this month's payment; with ``answer`` Bitpin is asked about it at once."""
        member = self.pick(index, self.active())
        window = self.expected_repayment_window(member)
        amount, repayment_ok = self.choose_repayment(window, repayment)
        used = list(Payment.objects.exclude(status=REJECTED).values_list("bitpin_id", flat=True))
        bitpin_id = used[0] if reuse_bitpin_id and used else f"bp-{next(self.ids)}"
        should_accept = (
            fee >= self.config.min_fee
            and repayment_ok
            and not self.has_counting_payment(member, self.month)
            and bitpin_id not in used
        )
        before = Payment.objects.count()
        try:
            payment = submit_payment(
                member=member, month=self.month, fee=fee, repayment=amount, bitpin_id=bitpin_id, submitted_by=member
            )
        except PaymentRefused:
            event("payment refused")
            assert not should_accept, "a valid payment was refused"
            assert Payment.objects.count() == before, "a refused payment wrote something"
            return
        assert should_accept, f"an invalid payment was accepted: fee {fee}, repayment {amount} ({repayment})"
        assert payment.status == PENDING
        event("payment accepted")
        self.shadow[payment.pk] = PENDING
        if answer:
            self.bitpin_answers_one(payment, answer)

    def choose_repayment(self, window: tuple[Loan, Decimal, Decimal] | None, how: str) -> tuple[Decimal, bool]:
        """A repayment amount of the chosen kind and whether DESIGN.md's rule 4 allows it."""
        if window is None or window[2] == ZERO:
            # Nothing to repay: only 0 is allowed.
            return (Decimal("20"), False) if how == "above" else (ZERO, True)
        _loan, low, high = window
        chosen = {
            "none": ZERO,
            "minimum": low,
            "maximum": high,
            "between": (low + high) / 2,
            "below": low - Decimal("0.01"),
            "above": high + Decimal("0.01"),
        }[how].quantize(Decimal("0.00000001"))
        return max(chosen, ZERO), low <= chosen <= high

    @precondition(lambda self: self.active())
    @rule(pay_off=st.booleans(), hiccup=hiccups)
    def everyone_pays_and_bitpin_confirms(self, pay_off: bool, hiccup: str | None) -> None:
        """The month every member pays the right amount and Bitpin confirms each: what makes a draw possible.

        With a ``hiccup``, Bitpin first fails for a passing reason: the payments wait, then verify.
        """
        for member in self.active():
            if self.has_counting_payment(member, self.month):
                continue
            window = self.expected_repayment_window(member)
            repayment = (window[2] if pay_off else window[1]) if window else ZERO
            payment = submit_payment(
                member=member,
                month=self.month,
                fee=Decimal("30"),
                repayment=repayment,
                bitpin_id=f"bp-{next(self.ids)}",
            )
            self.shadow[payment.pk] = PENDING
        for payment in Payment.objects.filter(status=PENDING, month=self.month):
            if hiccup:
                self.bitpin_answers_one(payment, hiccup)
            self.bitpin_answers_one(payment, "completed")

    # --- deciding -------------------------------------------------------------------------------------

    @precondition(lambda self: PENDING in self.shadow.values())
    @rule(index=st.integers(0, 50), answer=st.sampled_from(sorted(BITPIN_OUTCOMES)))
    def bitpin_answers(self, index: int, answer: str) -> None:
        pending = [pk for pk, status in self.shadow.items() if status == PENDING]
        self.bitpin_answers_one(Payment.objects.get(pk=self.pick(index, sorted(pending))), answer)

    def bitpin_answers_one(self, payment: Payment, answer: str) -> None:
        amount = payment.total if answer == "completed" else None
        self.bitpin.set(payment.bitpin_id, answer, amount=amount)
        verify_with_bitpin(payment_id=payment.pk)
        event(f"Bitpin answered {answer}")
        self.shadow[payment.pk] = BITPIN_OUTCOMES[answer]
        if answer in ASK_AGAIN:
            self.attempts[payment.pk] += 1
        after = Payment.objects.get(pk=payment.pk)
        assert after.attempts == self.attempts[payment.pk]
        if answer in ASK_AGAIN:
            assert after.last_error and after.next_attempt_at, "a passing failure must be noted and retried"

    @precondition(lambda self: self.shadow)
    @rule(index=st.integers(0, 50), verify=st.booleans())
    def the_operator_decides_by_hand(self, index: int, verify: bool) -> None:
        payment = Payment.objects.get(pk=self.pick(index, sorted(self.shadow)))
        operator = User.objects.filter(username="operator").first() or User.objects.create_user(
            "operator", is_main=True, is_staff=True
        )
        decide = verify_by_hand if verify else reject_payment
        try:
            decide(payment=payment, by=operator, note="checked the bank statement")
        except PaymentRefused:
            assert self.shadow[payment.pk] != PENDING, "a pending payment could not be decided"
            return
        assert self.shadow[payment.pk] == PENDING, "a decided payment was decided again"
        self.shadow[payment.pk] = VERIFIED if verify else REJECTED

    # --- payouts and the wallet ---------------------------------------------------------------------------

    def loans_to_pay_out(self) -> list[Loan]:
        in_play = Payout.objects.exclude(status=REJECTED).values("loan_id")
        return list(Loan.objects.filter(state=Loan.State.AWAITING_PAYOUT).exclude(pk__in=in_play).order_by("pk"))

    @precondition(lambda self: self.loans_to_pay_out())
    @rule(index=st.integers(0, 10), answer=st.none() | st.sampled_from(sorted(TRANSFER_OUTCOMES)), wrong=rarely)
    def the_operator_records_a_payout(self, index: int, answer: str | None, wrong: bool) -> None:
        loan = self.pick(index, self.loans_to_pay_out())
        amount = loan.amount - Decimal("0.01") if wrong else loan.amount
        try:
            payout = record_loan_payout(loan=loan, transfer_id=f"tr-{next(self.ids)}", amount=amount, by=None)
        except PayoutRefused:
            assert wrong, "a right payout was refused"
            assert not Payout.objects.filter(loan=loan).exclude(status=REJECTED).exists()
            return
        assert not wrong, "a payout of the wrong amount was recorded"
        self.payouts[payout.pk] = PENDING
        if answer:
            self.bitpin_answers_one_payout(payout, answer)

    @precondition(lambda self: PENDING in self.payouts.values())
    @rule(index=st.integers(0, 50), answer=st.sampled_from(sorted(TRANSFER_OUTCOMES)))
    def bitpin_answers_a_payout(self, index: int, answer: str) -> None:
        pending = sorted(pk for pk, status in self.payouts.items() if status == PENDING)
        self.bitpin_answers_one_payout(Payout.objects.get(pk=self.pick(index, pending)), answer)

    def bitpin_answers_one_payout(self, payout: Payout, answer: str) -> None:
        if answer == "short":
            self.bitpin.set_transfer(payout.transfer_id, "completed", amount=payout.amount - 1)
        else:
            self.bitpin.set_transfer(
                payout.transfer_id, answer, amount=payout.amount if answer == "completed" else None
            )
        verify_payout_with_bitpin(payout_id=payout.pk)
        event(f"Bitpin answered {answer} about a payout")
        self.payouts[payout.pk] = TRANSFER_OUTCOMES[answer]

    @precondition(lambda self: self.payouts)
    @rule(index=st.integers(0, 50), verify=st.booleans())
    def the_operator_decides_a_payout_by_hand(self, index: int, verify: bool) -> None:
        payout = Payout.objects.get(pk=self.pick(index, sorted(self.payouts)))
        decide = verify_payout_by_hand if verify else reject_payout
        try:
            decide(payout=payout, by=None, note="checked in the exchange")
        except PayoutRefused:
            assert self.payouts[payout.pk] != PENDING, "a pending payout could not be decided"
            return
        assert self.payouts[payout.pk] == PENDING, "a decided payout was decided again"
        self.payouts[payout.pk] = VERIFIED if verify else REJECTED

    @rule(offset=st.sampled_from(["0", "0.01", "-0.005", "0.02", "-3", "25"]).map(Decimal))
    def the_wallet_is_read(self, offset: Decimal) -> None:
        expected = invariants.expected_wallet_from_rows(invariants.payment_rows())
        wallet = max(expected + offset, ZERO)
        self.bitpin.set_wallet(str(wallet))
        reading = take_reading(job="test")
        assert reading.expected_balance == expected and reading.wallet_balance == wallet
        assert reading.flagged == (abs(wallet - expected) > self.config.reconciliation_tolerance)
        event("wallet flagged" if reading.flagged else "wallet matches")

    # --- the draw -------------------------------------------------------------------------------------

    @precondition(lambda self: self.active())
    @rule(pay_off=st.booleans(), hiccup=hiccups)
    def a_whole_month_goes_by(self, pay_off: bool, hiccup: str | None) -> None:
        """The usual month: everyone pays, Bitpin confirms, the draw runs, the next month begins."""
        self.everyone_pays_and_bitpin_confirms(pay_off, hiccup)
        self.the_draw_is_triggered()
        for loan in self.loans_to_pay_out():  # the winner receives the money
            payout = record_loan_payout(loan=loan, transfer_id=f"tr-{next(self.ids)}", amount=loan.amount, by=None)
            self.payouts[payout.pk] = PENDING
            if hiccup:
                self.bitpin_answers_one_payout(payout, hiccup)
            self.bitpin_answers_one_payout(payout, "completed")
        self.a_month_passes()

    @rule()
    def the_draw_is_triggered(self) -> None:
        month = self.month
        existing = Draw.objects.filter(month=month).first()
        unpaid = [
            m
            for m in User.objects.paying()  # a leaving member owes nothing
            if not Payment.objects.filter(member=m, month=month, status=VERIFIED).exists()
        ]
        candidates = self.eligible_before_draw(month)
        loans_before = Loan.objects.count()
        try:
            draw = run_draw(month=month, triggered_by="test")
        except DrawRefused:
            event("draw refused")
            assert existing is None and (unpaid or not User.objects.paying().exists())
            assert not Draw.objects.filter(month=month).exists(), "a refused draw left a record"
            return
        if existing is not None:
            assert draw.pk == existing.pk and Loan.objects.count() == loans_before
            return
        assert not unpaid, "the draw ran while a member had not paid"
        if draw.winner_id is None:
            assert not candidates
            assert Loan.objects.count() == loans_before
            return
        event("draw granted a loan")
        assert draw.winner_id in candidates, "the winner was not eligible"
        assert draw.amount == candidates[draw.winner_id]
        assert Loan.objects.count() == loans_before + 1
        assert User.objects.get(pk=draw.winner_id).loan_request_amount == ZERO

    def eligible_before_draw(self, month: JalaliMonth) -> dict[int, Decimal]:
        """Who may win (DESIGN.md §2 and §4), by the test's own sums: member id → request."""
        rows = invariants.payment_rows()
        cash = invariants.cash_from_rows(rows)
        eligible = {}
        for member in User.objects.paying():
            balance = sum(
                (
                    r["fee"]
                    for r in rows
                    if r["member_id"] == member.pk and r["status"] == VERIFIED and r["month"] <= month
                ),
                ZERO,
            )
            request = member.loan_request_amount
            has_loan = Loan.objects.filter(member=member, state__in=Loan.OPEN_STATES).exists()
            if not has_loan and ZERO < request <= balance and request <= cash:
                eligible[member.pk] = request
        return eligible

    # --- history and time ---------------------------------------------------------------------------------

    @precondition(lambda self: self.members and self.month > FIRST_MONTH)
    @rule(index=st.integers(0, MAX_MEMBERS), back=st.integers(1, 12), fee=amounts, bad_header=st.booleans())
    def history_is_imported(self, index: int, back: int, fee: Decimal, bad_header: bool) -> None:
        member = self.pick(index)
        month = max(self.month - back, FIRST_MONTH)
        header = ["member", "month", "fee"] if not bad_header else ["member", "mnth", "fee"]
        dataset = tablib.Dataset(headers=header)
        dataset.append([member.username, str(month), str(fee)])
        should_import = (
            not bad_header
            and fee > ZERO
            and month < self.month
            and not self.has_counting_payment(member, month)
            and User.objects.get(pk=member.pk).leaving_since is None  # a leaving member's history is closed
        )
        before = Payment.objects.count()
        outcome = run_import(kind="payments", dataset=dataset, file_name="history.csv")
        if not should_import:
            assert not outcome.ok, f"a bad history row was accepted: {month}, {fee}"
            assert Payment.objects.count() == before, "a refused import wrote something"
            return
        assert outcome.ok, [str(p) for p in outcome.problems]
        event("history imported")
        payment = Payment.objects.get(member=member, month=month, source=Payment.Source.IMPORT)
        assert payment.status == VERIFIED and payment.fee == fee
        self.shadow[payment.pk] = VERIFIED

    def owed_counting_pending(self, loan: Loan) -> Decimal:
        """What is still owed on a loan by the test's own sums: amount − verified − pending repayments."""
        counted = sum(
            (r["repayment"] for r in invariants.payment_rows() if r["loan_id"] == loan.pk and r["status"] != REJECTED),
            ZERO,
        )
        return loan.amount - counted

    @precondition(lambda self: self.members)
    @rule(index=st.integers(0, MAX_MEMBERS), back=st.integers(0, 3), amount=amounts)
    def a_loan_is_imported(self, index: int, back: int, amount: Decimal) -> None:
        """History brings a member's first loan, granted in a past month (or this one), within the fund's cash."""
        active = self.active()  # a leaving or departed member's history is closed (the import refuses it)
        if not active:
            return
        member = self.pick(index, active)
        month = max(self.month - back, FIRST_MONTH)
        cash = invariants.cash_from_rows(invariants.payment_rows())
        if Loan.objects.filter(member=member).exists() or not ZERO < amount <= cash:
            return  # history the fund could not have had: not what this step is about
        dataset = tablib.Dataset([member.username, str(month), str(amount)], headers=["member", "month", "amount"])
        outcome = run_import(kind="loans", dataset=dataset, file_name="loans.csv")
        assert outcome.ok, [str(p) for p in outcome.problems]
        event("loan imported")

    def free_month(self, member: User, after: JalaliMonth, back: int) -> JalaliMonth | None:
        """A month after ``after``, ``back`` months before this one or earlier, without a counting payment."""
        month = self.month - back
        while month > after and month >= FIRST_MONTH:
            if not self.has_counting_payment(member, month):
                return month
            month = month.previous()
        return None

    @precondition(lambda self: self.members)
    @rule(index=st.integers(0, MAX_MEMBERS), back=st.integers(0, 4), how=st.sampled_from(["all", "part", "above"]))
    def a_repayment_is_imported(self, index: int, back: int, how: str) -> None:
        """History repays a member's only loan in a past month: accepted exactly when it fits within
        what is still owed, counting the repayments still waiting for Bitpin (issue 13, fault 1)."""
        # Not a leaving or departed member: their history is closed (the import refuses it).
        with_one_loan = [m for m in self.active() if Loan.objects.filter(member=m).count() == 1]
        if not with_one_loan:
            return
        member = self.pick(index, with_one_loan)
        loan = Loan.objects.get(member=member)
        if loan.state == Loan.State.AWAITING_PAYOUT:
            return  # nothing is owed before the money reached the member (DESIGN.md, "Loan payout")
        # Repayments are due from the month after the payout (an imported loan: after it was granted).
        month = self.free_month(member, loan.paid_out_month or loan.month, back)
        if month is None:
            return
        owed = self.owed_counting_pending(loan)
        repayment = {"all": owed, "part": owed / 2, "above": owed + Decimal("0.01")}[how].quantize(Decimal("0.01"))
        if repayment <= ZERO:
            repayment = Decimal("1")
        dataset = tablib.Dataset(
            [member.username, str(month), "20", str(repayment)], headers=["member", "month", "fee", "repayment"]
        )
        before = Payment.objects.count()
        outcome = run_import(kind="payments", dataset=dataset, file_name="repayments.csv")
        if repayment > owed:
            assert not outcome.ok, f"an import repaid {repayment} where {owed} was owed"
            assert Payment.objects.count() == before, "a refused import wrote something"
            event("overpaying import refused")
            return
        assert outcome.ok, [str(p) for p in outcome.problems]
        payment = Payment.objects.get(member=member, month=month, source=Payment.Source.IMPORT)
        assert (payment.status, payment.loan_id, payment.repayment) == (VERIFIED, loan.pk, repayment)
        self.shadow[payment.pk] = VERIFIED
        event("repayment imported")

    @precondition(lambda self: self.active())
    @rule(index=st.integers(0, MAX_MEMBERS))
    def a_repayment_waits_for_bitpin_while_history_repays_the_loan(self, index: int) -> None:
        """The issue's scenario as one step: a repayment left pending, a month passes, history repays the
        loan in the new month, then Bitpin completes the pending one."""
        member = self.pick(index, self.active())
        window = self.expected_repayment_window(member)
        if window is None or window[2] == ZERO or self.has_counting_payment(member, self.month):
            return
        loan, _low, high = window
        payment = submit_payment(
            member=member, month=self.month, fee=Decimal("20"), repayment=high, bitpin_id=f"bp-{next(self.ids)}"
        )
        self.shadow[payment.pk] = PENDING
        self.bitpin_answers_one(payment, "pending")
        self.a_month_passes()
        dataset = tablib.Dataset(
            [member.username, str(self.month), "20", str(high)], headers=["member", "month", "fee", "repayment"]
        )
        before = Payment.objects.count()
        outcome = run_import(kind="payments", dataset=dataset, file_name="repayments.csv")
        assert not outcome.ok, "history repaid a loan already covered by a payment waiting for Bitpin"
        assert Payment.objects.count() == before
        event("history repaying a loan covered by a pending payment refused")
        self.bitpin_answers_one(payment, "completed")

    @rule()
    def a_month_passes(self) -> None:
        self.clock.moment = self.month.next().starts_at() + dt.timedelta(days=9, hours=12)

    # --- what must always hold (tests/reliability/invariants.py) ---------------------------------------

    @invariant()
    def the_ledger_adds_up(self) -> None:
        rows = invariants.payment_rows()
        invariants.assert_fund_cash_adds_up(rows)
        invariants.assert_balances_are_verified_fees(rows)
        invariants.assert_one_counting_payment_per_member_and_month(rows)
        invariants.assert_one_draw_per_month_and_one_active_loan_per_member()
        invariants.assert_loans_settled_exactly_when_repaid(rows)
        invariants.assert_no_loan_over_repaid(rows)
        invariants.assert_wallet_adds_up(rows)
        invariants.assert_loans_paid_out_exactly_when_a_payout_is_verified()
        if Loan.objects.filter(state=Loan.State.SETTLED).exists():
            event("a loan was settled")

    @invariant()
    def no_payment_is_lost_or_changed_behind_our_back(self) -> None:
        statuses = dict(Payment.objects.values_list("id", "status"))
        assert statuses == self.shadow
        assert dict(Payout.objects.values_list("id", "status")) == self.payouts


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock.now)
    monkeypatch.setattr(proof.secrets, "token_hex", clock.token_hex)
    return clock


@pytest.mark.django_db
def test_the_ledger_adds_up_through_any_history(clock, fake_bitpin):
    with translation.override("en"):
        run_state_machine_as_test(
            lambda: FundLife(clock, fake_bitpin),
            settings=settings(
                max_examples=50,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
