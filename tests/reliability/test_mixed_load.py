"""Mixed load on PostgreSQL: payments, verifications, draws and imports all at once.

A real qcluster worker verifies payments against the fake Bitpin server while threads of this
process (each on its own database connection) act as members double-clicking "pay", an operator
re-queueing and deciding by hand, the scheduled sweep, three draw triggers and two operators
importing the same history file at the same moment. Afterwards nothing is lost or doubled and
every ledger invariant holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
import tablib
from django.db import connection, transaction
from django.utils import translation

from fund.draw import DrawRefused, run_draw
from fund.imports import ImportFileError, PaymentResource, problems_of, run_import
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User
from fund.payments import (
    PaymentRefused,
    change_loan_request,
    requeue_verification,
    submit_payment,
    sweep_pending_payments,
    verify_by_hand,
)
from tests.conftest import requires_postgres
from tests.reliability.invariants import assert_ledger_adds_up

pytestmark = [requires_postgres, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

MEMBERS = 12
DEADLINE_SECONDS = 90
PENDING, VERIFIED, REJECTED = Payment.Status.PENDING, Payment.Status.VERIFIED, Payment.Status.REJECTED


class Load:
    """Threads that start together and record anything that is not a refusal meant for a person."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.done = threading.Event()
        self.start_line = threading.Barrier(1)

    def add(self, name: str, body: Callable[[], None]) -> None:
        self.threads.append(threading.Thread(target=self._run, args=(name, body), name=name))

    def _run(self, name: str, body: Callable[[], None]) -> None:
        self.start_line.wait(timeout=30)
        self.guard(name, body)

    def guard(self, name: str, body: Callable[..., None], *args: object) -> None:
        """Run ``body`` on this thread's own connection, recording any error a person would see as a 500."""
        try:
            with translation.override("en"):
                body(*args)
        except BaseException as error:  # noqa: BLE001  (reported by the test)
            self.errors.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            connection.close()

    def run(self, until: Callable[[], bool]) -> None:
        self.start_line = threading.Barrier(len(self.threads))
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not until() and time.monotonic() < deadline and not self.errors:
            time.sleep(0.2)
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def keep_going(self) -> bool:
        return not self.done.is_set()


def history_file(members: list[User], month: JalaliMonth) -> tablib.Dataset:
    dataset = tablib.Dataset(headers=["member", "month", "fee"])
    for member in members:
        dataset.append([member.username, str(month), "20"])
    return dataset


def test_mixed_load_loses_nothing_and_breaks_no_invariant(fake_bitpin, qcluster_worker):
    month = JalaliMonth.current()  # the worker runs with the real clock
    FundConfig.load()
    members = [
        User.objects.create_user(f"m{i:02}", is_member=True, loan_request_amount=Decimal(30 if i % 3 == 0 else 0))
        for i in range(MEMBERS)
    ]
    for member in members:
        for past in (month - 2, month - 1):
            Payment.objects.create(member=member, month=past, fee=Decimal(20), status=VERIFIED, source="import")
    rejected_first = {m.username for m in members[::4]}  # Bitpin does not know their first id
    flapping = {m.username for m in members[1::4]}  # Bitpin fails for a while, then confirms
    by_hand = {m.username for m in members[2::4]}  # the operator verifies these by hand
    fake_bitpin.set_default("completed")
    for name in rejected_first:
        fake_bitpin.set(f"bp-{name}-1", "unknown")
    for name in flapping:
        fake_bitpin.sequence(f"bp-{name}-1", ["error500", "malformed", "error429", "completed"])
    for name in by_hand:
        fake_bitpin.set(f"bp-{name}-1", "pending", delay=0.2)
    operator = User.objects.create_user("operator", is_main=True, is_staff=True)
    imports: list[bool] = []
    draws: list[int] = []
    load = Load()

    def a_member_pays(member: User) -> Callable[[], None]:
        def body() -> None:
            double_click = [threading.Thread(target=load.guard, args=(f"click {member}", pay_once, member, 1))
                            for _ in range(2)]  # fmt: skip
            for click in double_click:
                click.start()
            for click in double_click:
                click.join()
            change_loan_request(member=member, amount=member.loan_request_amount)
            while load.keep_going():  # pay again once a payment is rejected (DESIGN.md rule 2)
                if Payment.objects.filter(member=member, month=month).exclude(status=REJECTED).exists():
                    time.sleep(0.1)
                    continue
                pay_once(member, 2)

        return body

    def pay_once(member: User, attempt: int) -> None:
        try:
            submit_payment(member=member, month=month, fee=Decimal(20), bitpin_id=f"bp-{member.username}-{attempt}")
        except PaymentRefused:
            pass  # the other click won, or the payment is still waiting

    def the_operator_works() -> None:
        while load.keep_going():
            waiting = Payment.objects.filter(month=month, status=PENDING)
            requeue_verification(payment_ids=list(waiting.filter(attempts__gt=0).values_list("pk", flat=True)))
            for payment in waiting.filter(member__username__in=by_hand):
                try:
                    verify_by_hand(payment=payment, by=operator, note="seen on the bank statement")
                except PaymentRefused:
                    pass  # Bitpin's answer came first
            time.sleep(0.3)

    def the_sweep_runs() -> None:
        while load.keep_going():
            sweep_pending_payments()
            time.sleep(0.2)

    def the_draw_is_triggered() -> None:
        while load.keep_going() and not Draw.objects.filter(month=month).exists():
            try:
                draws.append(run_draw(month=month, triggered_by=threading.current_thread().name).pk)
            except DrawRefused:
                time.sleep(0.1)

    def history_is_imported(past: JalaliMonth) -> Callable[[], None]:
        def body() -> None:
            try:
                outcome = run_import(kind="payments", dataset=history_file(members, past), file_name="history.csv")
            except ImportFileError:
                imports.append(False)
            else:
                imports.append(outcome.ok)

        return body

    for member in members:
        load.add(f"member {member.username}", a_member_pays(member))
    load.add("operator", the_operator_works)
    load.add("sweep", the_sweep_runs)
    for n in range(3):
        load.add(f"draw trigger {n}", the_draw_is_triggered)
    for n in range(2):
        load.add(f"import {n} of {month - 6}", history_is_imported(month - 6))
    load.add(f"import of {month - 5}", history_is_imported(month - 5))

    def settled() -> bool:
        return Draw.objects.filter(month=month).exists() and not Payment.objects.filter(status=PENDING).exists()

    load.run(until=settled)

    assert not load.errors, "\n\n".join(load.errors)
    assert settled(), f"the load did not settle in {DEADLINE_SECONDS} s; worker log:\n{qcluster_worker.log()[-2000:]}"
    # Every member paid this month exactly once; the ones Bitpin did not know paid twice, once rejected.
    for member in members:
        statuses = sorted(Payment.objects.filter(member=member, month=month).values_list("status", flat=True))
        assert statuses == ([REJECTED, VERIFIED] if member.username in rejected_first else [VERIFIED]), member
    # The same history file imported twice at once: written once; the other file once.
    assert sorted(imports) == [False, True, True]
    for past in (month - 6, month - 5):
        assert Payment.objects.filter(month=past).count() == MEMBERS
    # One draw, from however many triggers; each verified payment was decided once.
    assert len(set(draws)) == 1 and Draw.objects.count() == 1
    assert Loan.objects.count() == Draw.objects.exclude(winner=None).count()
    for payment in Payment.objects.filter(status=VERIFIED).exclude(source=Payment.Source.IMPORT):
        assert payment.history.filter(status=VERIFIED).count() == 1, payment
    assert_ledger_adds_up()


class ImportThatLetsAPaymentIn(PaymentResource):
    """The payments import, with a member's submission landing right after its rows are written
    and before its transaction ends: the moment a concurrent payment is most exposed."""

    def __init__(self, during_write: Callable[[], None], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.during_write = during_write

    def write(self, rows: list) -> None:
        super().write(rows)  # the checked rows HistoryResource writes in one go
        self.during_write()


def test_a_payment_submitted_while_an_import_is_writing_is_never_refused_or_lost(db_members):
    month = JalaliMonth.current()
    importer, payer, later = db_members
    inserted, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def submit_and_wait() -> None:
        try:
            with transaction.atomic():
                submit_payment(member=payer, month=month, fee=Decimal(20), bitpin_id="bp-during-import")
                inserted.set()
                go.wait(timeout=30)  # committed only after the import has finished
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
            inserted.set()
        finally:
            connection.close()

    during = threading.Thread(target=submit_and_wait)

    def let_the_payment_in() -> None:
        during.start()
        assert inserted.wait(timeout=30)

    resource = ImportThatLetsAPaymentIn(let_the_payment_in)
    result = resource.import_data(history_file([importer], month - 3), dry_run=False, file_name="history.csv")
    assert not result.has_errors() and not result.has_validation_errors()
    go.set()
    during.join(timeout=30)
    assert errors == []
    # The next payment anyone submits gets a fresh id, not one the import handed out again.
    submit_payment(member=later, month=month, fee=Decimal(20), bitpin_id="bp-after-import")
    assert Payment.objects.filter(month=month).count() == 2
    assert Payment.objects.filter(month=month - 3).count() == 1


@pytest.fixture
def db_members(transactional_db) -> list[User]:
    FundConfig.load()
    return [User.objects.create_user(name, is_member=True) for name in ("importer", "payer", "later")]


class ImportThatWaits(PaymentResource):
    """The payments import, announcing when it is about to write its checked rows."""

    def __init__(self, about_to_write: threading.Event, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.about_to_write = about_to_write

    def write(self, rows: list) -> None:
        self.about_to_write.set()
        super().write(rows)


def test_the_same_file_imported_twice_at_once_is_written_once_and_the_other_says_why(db_members):
    month = JalaliMonth.current()
    members = db_members
    second_ready = threading.Event()
    outcomes: list = []

    def second_import() -> None:
        try:
            with translation.override("en"):
                resource = ImportThatWaits(second_ready)
                outcomes.append(resource.import_data(history_file(members, month - 4), file_name="again.csv"))
        except BaseException as error:  # noqa: BLE001
            outcomes.append(error)
            second_ready.set()
        finally:
            connection.close()

    second = threading.Thread(target=second_import)

    def start_the_second_import() -> None:
        # The first import has written but not committed; the second has checked the file (it saw
        # no payments yet) and is about to write the same rows when the first one commits.
        second.start()
        assert second_ready.wait(timeout=30)

    first = ImportThatLetsAPaymentIn(start_the_second_import)
    result = first.import_data(history_file(members, month - 4), dry_run=False, file_name="history.csv")
    second.join(timeout=60)

    assert not result.has_errors() and not result.has_validation_errors()
    [refused] = outcomes
    assert not isinstance(refused, BaseException), refused
    problems = [str(problem) for problem in problems_of(refused)]
    assert problems and all("written by someone else" in problem for problem in problems), problems
    assert Payment.objects.filter(month=month - 4).count() == len(members)
    assert_ledger_adds_up()
