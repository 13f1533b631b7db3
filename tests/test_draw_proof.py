"""A draw anyone can check (DESIGN.md, "Proof of the draw", "Payment deadline"): the committed
secret, the seed, the chain of report hashes, the optional beacon and deadline, and the standalone
verifier run as members run it, on reports downloaded from the member page."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from fund import beacon, proof, tasks
from fund.draw import DrawRefused, run_draw
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, SeedCommitment, User
from fund.payments import submit_payment
from tests.fixtures.beacon import randomness_of

M = JalaliMonth(1404, 9)
VERIFIER = Path(__file__).resolve().parent.parent / "fund" / "static" / "fund" / "verify_draw.py"


class Clock:
    """Time is the edge we control: ``clock.at(moment)`` sets what ``timezone.now()`` answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = M.starts_at() + dt.timedelta(days=9, hours=12)
        monkeypatch.setattr(timezone, "now", lambda: self.now.astimezone(dt.UTC))

    def at(self, moment: dt.datetime) -> None:
        self.now = moment

    def forward(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def verify(tmp_path: Path, report: bytes, previous: bytes | None = None) -> tuple[int, str]:
    """Run the verifier as a member would: a separate Python with no site-packages at all."""
    paths = []
    for name, body in (("report.json", report), ("previous.json", previous)):
        if body is not None:
            (tmp_path / name).write_bytes(body)
            paths.append(str(tmp_path / name))
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(VERIFIER), *paths], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout + done.stderr


def download(client, draw: Draw) -> bytes:
    """The report JSON exactly as the member page serves it."""
    viewer = User.objects.members().order_by("pk").first()
    client.force_login(viewer)
    response = client.get(reverse("member-draw-report", args=(draw.month.year, draw.month.month)))
    assert response.status_code == 200
    return response.content


def tampered(body: bytes, change) -> bytes:
    report = json.loads(body)
    change(report)
    return json.dumps(report, ensure_ascii=False).encode()


def paid_members(history, names: list[str], request: int = 50, months: int = 9) -> list[User]:
    """Members asking for ``request`` who paid the ``months`` months up to and including M."""
    members = [history.member(name, request=request) for name in names]
    for member in members:
        history.pay_months(member, M - (months - 1), months)
    return members


# --- the verifier on honest draws ------------------------------------------------------------------------


def test_the_verifier_says_verified_for_an_honest_draw_with_a_tie(history, client, tmp_path):
    paid_members(history, ["ann", "ben", "cid"])
    draw = run_draw(month=M, triggered_by="test")
    assert len(draw.report["pool"]) == 3  # three newcomers tie at "unlimited": the seed decides

    code, output = verify(tmp_path, download(client, draw))

    assert code == 0, output
    assert "verified" in output
    assert draw.report_hash in output  # it prints the hash it computed, to compare with the page


def test_the_verifier_says_verified_for_a_draw_with_scores_and_reasons(history, client, tmp_path):
    ann, ben, cid = paid_members(history, ["ann", "ben", "cid"])
    loan = history.loan(ben, "1404/02", 100, state=Loan.State.SETTLED)
    Payment.objects.filter(member=ben, month__in=[JalaliMonth(1404, 3), JalaliMonth(1404, 4)]).update(
        repayment=50, loan=loan
    )
    history.loan(cid, "1404/05", 60)  # active: out
    User.objects.filter(pk=ann.pk).update(loan_request_amount=Decimal("500"))  # more than the balance: out
    draw = run_draw(month=M)
    reasons = {row["username"]: row["reason"] for row in draw.report["rows"]}
    assert reasons == {"ann": "request_exceeds_balance", "ben": None, "cid": "open_loan"}

    code, output = verify(tmp_path, download(client, draw))

    assert code == 0, output


def test_the_commitment_is_published_before_the_first_payment_and_never_changes(member, other_member, clock):
    FundConfig.load()
    payment = submit_payment(member=member, month=M, fee=Decimal(20), bitpin_id="bp-1", submitted_by=member)
    commitment = SeedCommitment.objects.get(month=M)
    published = (commitment.commitment, commitment.secret, commitment.created_at)
    assert commitment.created_at <= payment.created_at

    clock.forward(days=1)
    submit_payment(member=other_member, month=M, fee=Decimal(20), bitpin_id="bp-2", submitted_by=other_member)
    tasks.publish_commitment()
    proof.ensure_commitment(M, made_by="test")
    Payment.objects.update(status=Payment.Status.VERIFIED)
    draw = run_draw(month=M)

    again = SeedCommitment.objects.get(month=M)
    assert (again.commitment, again.secret, again.created_at) == published
    assert SeedCommitment.objects.count() == 1
    assert draw.report["commitment"]["hash"] == published[0]
    assert draw.report["commitment"]["made_at_upgrade"] is False
    assert draw.report["secret"] == published[1]
    assert hashlib.sha256(published[1].encode()).hexdigest() == published[0]
    # The audit trail records the commitment, never the secret.
    record = SeedCommitment.history.get()
    assert record.commitment == published[0] and not hasattr(record, "secret")


def test_the_daily_job_publishes_the_current_months_commitment_once(db, clock):
    first = tasks.publish_commitment()
    second = tasks.publish_commitment()

    assert first == second == f"{M}: {SeedCommitment.objects.get(month=M).commitment}"
    clock.at(M.next().starts_at() + dt.timedelta(minutes=5))
    tasks.publish_commitment()
    assert sorted(str(c.month) for c in SeedCommitment.objects.all()) == ["1404/09", "1404/10"]


def test_the_seed_cannot_be_supplied_by_whoever_runs_the_draw(history):
    paid_members(history, ["ann", "ben"])

    with pytest.raises(TypeError):
        run_draw(month=M, triggered_by="test", seed="0" * 64)  # type: ignore[call-arg]
    draw = run_draw(month=M, triggered_by="test")

    secret = SeedCommitment.objects.get(month=M).secret
    assert draw.seed == hashlib.sha256((proof.table_hash(draw.report) + secret).encode()).hexdigest()


def test_a_commitment_published_after_the_months_first_payment_refuses_the_draw(history, clock):
    proof.ensure_commitment(M - 1, made_by="test")  # Saghat already committed in earlier months
    clock.forward(hours=1)
    paid_members(history, ["ann", "ben"])
    Payment.objects.filter(month=M).update(source=Payment.Source.MEMBER)  # paid on the member page
    clock.forward(hours=1)
    proof.ensure_commitment(M, made_by="test")  # too late: members could not see it before paying

    with pytest.raises(DrawRefused) as refused:
        run_draw(month=M)

    assert refused.value.code == "late_commitment"
    assert "published after its first payment" in str(refused.value)
    assert not Draw.objects.exists() and not Loan.objects.exists()


def test_in_the_upgrade_month_the_commitment_made_then_is_used_and_the_report_says_so(history, client, tmp_path):
    paid_members(history, ["ann", "ben"])  # paid before Saghat made any commitment
    Payment.objects.filter(month=M).update(source=Payment.Source.MEMBER)

    draw = run_draw(month=M)

    assert draw.report["commitment"]["made_at_upgrade"] is True
    code, output = verify(tmp_path, download(client, draw))
    assert code == 0, output
    assert "made when Saghat was upgraded" in output


# --- tampered copies -------------------------------------------------------------------------------------


def _row(report: dict, username: str) -> dict:
    return next(row for row in report["rows"] if row["username"] == username)


def _change_factor(report: dict) -> None:
    _row(report, "ben")["months_without_loan"] += 1


def _change_score(report: dict) -> None:
    _row(report, "ben")["score"] = "9.000000000"


def _change_reason(report: dict) -> None:
    _row(report, "cid")["reason"] = "no_request"


def _add_pool_member(report: dict) -> None:
    report["pool"] = sorted([*report["pool"], _row(report, "ben")["member_id"]])


def _change_seed(report: dict) -> None:
    report["seed"] = "0" * 64


def _change_secret(report: dict) -> None:
    report["secret"] = "1" * 64


def _change_winner(report: dict) -> None:
    report["winner_id"] = next(m for m in report["pool"] if m != report["winner_id"])


TAMPERINGS = {
    "factor": (_change_factor, "Score of ben"),
    "score": (_change_score, "Score of ben: the report says 9.000000000"),
    "reason": (_change_reason, "Reason for cid"),
    "pool member": (_add_pool_member, "tied pool at the top is wrong"),
    "seed": (_change_seed, "The seed is wrong"),
    "secret": (_change_secret, "SHA-256 of the revealed secret is not the commitment"),
    "winner": (_change_winner, "The winner is wrong"),
}


@pytest.fixture
def honest_report(history, client) -> bytes:
    """ann and dan tie at the top; ben has a finite score; cid is out with an active loan."""
    ann, ben, cid, dan = paid_members(history, ["ann", "ben", "cid", "dan"])
    loan = history.loan(ben, "1404/02", 100, state=Loan.State.SETTLED)
    Payment.objects.filter(member=ben, month__in=[JalaliMonth(1404, 3), JalaliMonth(1404, 4)]).update(
        repayment=50, loan=loan
    )
    history.loan(cid, "1404/05", 60)
    draw = run_draw(month=M)
    assert len(draw.report["pool"]) == 2
    return download(client, draw)


@pytest.mark.parametrize("what", list(TAMPERINGS))
def test_the_verifier_names_what_was_tampered_with(honest_report, tmp_path, what):
    change, words = TAMPERINGS[what]

    code, output = verify(tmp_path, tampered(honest_report, change))

    assert code == 1, output
    assert words in output
    assert "verified" not in output


def test_a_tampered_report_no_longer_matches_its_hash(honest_report, tmp_path):
    code, output = verify(tmp_path, tampered(honest_report, lambda r: r.update(fund_cash="1")))

    assert code == 1
    assert "The report's hash does not match its content" in output


# --- the chain -------------------------------------------------------------------------------------------


@pytest.fixture
def three_draws(history, client) -> list[bytes]:
    for member in paid_members(history, ["ann", "ben", "cid"]):
        history.pay_months(member, M + 1, 2)  # 1404/10 and 1404/11 too
    reports = []
    for month in (M, M + 1, M + 2):
        reports.append(download(client, run_draw(month=month)))
    return reports


def test_each_report_links_to_the_previous_one_and_the_verifier_checks_the_chain(three_draws, tmp_path):
    first, second, third = three_draws
    assert json.loads(first)["previous_hash"] is None
    assert json.loads(second)["previous_hash"] == json.loads(first)["report_hash"]

    code, output = verify(tmp_path, third, second)

    assert code == 0, output


def test_a_deleted_draw_breaks_the_chain(three_draws, tmp_path):
    first, _second, third = three_draws

    code, output = verify(tmp_path, third, first)

    assert code == 1
    assert "The chain is broken" in output


def test_reordered_draws_break_the_chain(three_draws, tmp_path):
    _first, second, third = three_draws

    code, output = verify(tmp_path, second, third)

    assert code == 1
    assert "The chain is broken" in output


def test_a_changed_earlier_draw_breaks_the_chain(three_draws, tmp_path):
    _first, second, third = three_draws
    changed = tampered(
        second, lambda r: r.update(fund_cash="1", report_hash=proof.report_hash({**r, "fund_cash": "1"}))
    )

    code, output = verify(tmp_path, third, changed)

    assert code == 1
    assert "The chain is broken" in output


def test_the_migration_gives_existing_draws_their_hash_and_chain(history, client, tmp_path):
    from importlib import import_module

    from django.apps import apps

    paid_members(history, ["ann", "ben"])
    for month in (M, M + 1):  # draws as they were stored before this change: no commitment, no hash
        Draw.objects.create(
            month=month,
            fund_cash=Decimal(0),
            seed=f"old-{month}",
            report={"month": str(month), "fund_cash": "0", "seed": f"old-{month}", "pool": [], "winner_id": None,
                    "rows": []},
        )  # fmt: skip

    import_module("fund.migrations.0010_proof").chain_existing_draws(apps, None)

    first, second = Draw.objects.order_by("month")
    assert first.report["previous_hash"] is None
    assert second.report["previous_hash"] == first.report_hash == proof.report_hash(first.report)
    code, output = verify(tmp_path, download(client, second), download(client, first))
    assert code == 0, output
    assert "before Saghat committed its seeds" in output


# --- the beacon ------------------------------------------------------------------------------------------


def test_with_a_beacon_the_rounds_value_is_mixed_into_the_seed_and_recorded(
    history, client, tmp_path, fake_beacon, clock
):
    commitment = proof.ensure_commitment(M, made_by="test")  # the round is fixed now, before payments
    paid_members(history, ["ann", "ben", "cid"])
    assert commitment.beacon_round == beacon.round_at(clock.now)
    clock.at(beacon.round_time(commitment.beacon_round) + dt.timedelta(seconds=1))
    fake_beacon.publish_up_to(commitment.beacon_round + 5)

    draw = run_draw(month=M)

    recorded = draw.report["beacon"]
    assert (recorded["round"], recorded["randomness"]) == (
        commitment.beacon_round,
        randomness_of(commitment.beacon_round),
    )
    assert draw.seed == proof.seed_of(proof.table_hash(draw.report), commitment.secret, recorded["randomness"])
    code, output = verify(tmp_path, download(client, draw))
    assert code == 0, output


def test_a_beacon_round_not_out_yet_refuses_the_draw_until_it_is(history, fake_beacon, clock):
    commitment = proof.ensure_commitment(M, made_by="test")
    paid_members(history, ["ann", "ben"])
    clock.at(beacon.round_time(commitment.beacon_round) - dt.timedelta(seconds=5))

    with pytest.raises(DrawRefused) as early:
        run_draw(month=M)
    assert early.value.code == "beacon_pending" and "waits for the randomness beacon" in str(early.value)

    clock.forward(seconds=10)  # due now, but the beacon has not published it yet
    with pytest.raises(DrawRefused) as late:
        run_draw(month=M)
    assert "has not published round" in str(late.value)

    fake_beacon.fail_with(500)
    with pytest.raises(DrawRefused) as broken:
        run_draw(month=M)
    assert "answered 500" in str(broken.value)
    assert not Draw.objects.exists()

    fake_beacon.fail_with(None)
    fake_beacon.publish_up_to(commitment.beacon_round)
    assert run_draw(month=M).report["beacon"]["round"] == commitment.beacon_round


def test_the_verifier_catches_a_beacon_value_swapped_for_another_round(history, client, tmp_path, fake_beacon, clock):
    commitment = proof.ensure_commitment(M, made_by="test")
    paid_members(history, ["ann", "ben"])
    clock.at(beacon.round_time(commitment.beacon_round) + dt.timedelta(seconds=1))
    fake_beacon.publish_up_to(commitment.beacon_round + 1)
    body = download(client, run_draw(month=M))

    def swap(report: dict) -> None:
        report["beacon"].update(
            round=commitment.beacon_round + 1, randomness=randomness_of(commitment.beacon_round + 1)
        )

    code, output = verify(tmp_path, tampered(body, swap))

    assert code == 1
    assert "not the round" in output and "The seed is wrong" in output


# --- the payment deadline --------------------------------------------------------------------------------


def test_after_the_deadline_the_draw_runs_with_those_who_paid(history, client, tmp_path, config, clock):
    config.payment_deadline_day = 5
    config.save()
    ann, ben = paid_members(history, ["ann", "ben"])
    late = history.member("late", request=50)
    history.pay_months(late, M - 8, 8)  # never paid for M

    draw = run_draw(month=M)  # the clock says day 10: the deadline (end of day 5) has passed

    row = next(r for r in draw.report["rows"] if r["username"] == "late")
    assert row["reason"] == "unpaid_by_deadline" and row["eligible"] is False
    assert draw.report["deadline"]["day"] == 5 and draw.report["deadline"]["passed"] is True
    assert draw.winner in (ann, ben)
    code, output = verify(tmp_path, download(client, draw))
    assert code == 0, output
    code, output = verify(tmp_path, tampered(download(client, draw), lambda r: r["deadline"].update(passed=False)))
    assert code == 1 and "deadline" in output


def test_before_the_deadline_the_draw_still_waits_for_everyone(history, config, clock):
    config.payment_deadline_day = 15
    config.save()
    paid_members(history, ["ann"])
    history.member("late", request=50)

    with pytest.raises(DrawRefused) as refused:
        run_draw(month=M)

    assert refused.value.code == "unpaid" and "late" in str(refused.value)


def test_the_deadline_and_the_commitment_show_on_the_member_page(client, member, config, clock):
    config.payment_deadline_day = 15
    config.save()
    client.force_login(member)
    client.cookies["django_language"] = "en"

    page = client.get(reverse("member-home")).content.decode()

    assert "Payment deadline: day 15 of the month (5 days left)" in page
    assert SeedCommitment.objects.get(month=M).commitment in page.replace("<wbr>", "")  # breaks a phone may wrap at


def test_the_deadline_day_must_be_within_every_month(config):
    from django.core.exceptions import ValidationError

    config.payment_deadline_day = 30
    with pytest.raises(ValidationError):
        config.full_clean()


# --- the member's own row, explained --------------------------------------------------------------------


def test_a_member_sees_how_each_factor_follows_from_their_statement(history, client):
    ann, ben = paid_members(history, ["ann", "ben"])
    loan = history.loan(ben, "1404/02", 100, state=Loan.State.SETTLED)
    Payment.objects.filter(member=ben, month__in=[JalaliMonth(1404, 3), JalaliMonth(1404, 4)]).update(
        repayment=50, loan=loan
    )
    run_draw(month=M)
    client.force_login(ben)
    client.cookies["django_language"] = "en"

    home = client.get(reverse("member-home")).content.decode()
    assert 'id="my-factors"' in home and "?draw=1404/09#factors" in home.replace("%2F", "/")

    page = client.get(reverse("member-statement"), {"draw": "1404/09"})
    factors = {f.name: f for f in page.context["explanation"].factors}
    assert factors["months_without_loan"].value == factors["months_without_loan"].in_report == "7"
    assert factors["loan_payment_count"].value == "2" and factors["loan_payment_count"].agrees
    assert factors["balance"].value == "180" and factors["total_loans_received"].lines == [3]
    assert all(f.agrees for f in factors.values())
    assert "Your factors in the draw of Azar 1404" in page.content.decode()


def test_the_report_and_the_verifier_are_for_members_only(history, client, outsider):
    paid_members(history, ["ann"])
    draw = run_draw(month=M)
    client.force_login(outsider)

    assert b"verified" not in client.get(reverse("member-draw-verifier")).content
    assert client.get(reverse("member-draw-report", args=(1404, 9))).status_code == 200  # the not-a-member page
    client.force_login(User.objects.get(username="ann"))
    served = client.get(reverse("member-draw-verifier"))
    assert served.content == VERIFIER.read_bytes()
    assert client.get(reverse("member-draw-report", args=(1404, 8))).status_code == 404
    assert json.loads(download(client, draw))["report_hash"] == draw.report_hash


def test_the_dashboard_shows_the_commitment_and_the_deadline(web, config, clock, history):
    config.payment_deadline_day = 5
    config.save()
    paid_members(history, ["ann"])
    history.member("late", request=50)

    page = web.get(reverse("admin:index")).content.decode()

    assert SeedCommitment.objects.get(month=M).commitment in page
    assert "Payment deadline: day 5 of the month (0 days left)" in page
    assert "Ready to run: the payment deadline has passed" in page


def test_imported_history_is_not_the_months_first_payment(history, clock):
    proof.ensure_commitment(M - 1, made_by="test")
    clock.forward(hours=1)
    paid_members(history, ["ann", "ben"])  # imported: history recorded elsewhere
    clock.forward(hours=1)

    draw = run_draw(month=M)

    assert draw.report["commitment"]["first_payment_at"] is None
    assert draw.report["commitment"]["made_at_upgrade"] is False


def test_importing_this_months_payments_publishes_its_commitment_before_writing_them(history, clock):
    import tablib

    from fund.imports import run_import

    history.member("ann")
    history.member("ben")
    rows = [["ann", str(M - 1), "20"], ["ann", str(M), "20"], ["ben", str(M), "20"]]
    file = tablib.Dataset(*rows, headers=["member", "month", "fee"])

    preview = run_import(kind="payments", dataset=file, file_name="payments.csv", dry_run=True)
    assert preview.ok and not SeedCommitment.objects.exists()  # a preview publishes nothing

    clock.forward(minutes=5)
    assert run_import(kind="payments", dataset=file, file_name="payments.csv").ok

    commitment = SeedCommitment.objects.get()  # this month's only: the earlier month's draw needs none now
    assert (commitment.month, commitment.made_by) == (M, "import")
    assert all(commitment.created_at <= payment.created_at for payment in Payment.objects.filter(month=M))
    assert run_draw(month=M).report["commitment"]["made_at_upgrade"] is False


def test_the_hashes_composed_from_the_rows_are_those_of_the_whole_canonical_form(history):
    paid_members(history, ["ann", "ben", "نگار"])
    report = run_draw(month=M).report
    rows = proof.canonical(report["rows"])

    assert proof.table_hash(report, rows=rows) == proof.table_hash(report) == report["table_hash"]
    assert proof.report_hash(report, rows=rows) == proof.report_hash(report) == Draw.objects.get().report_hash


@pytest.mark.parametrize("deadline", [5, None])
def test_a_leaving_member_is_out_as_leaving_not_as_unpaid_and_the_verifier_agrees(
    history, client, tmp_path, config, clock, deadline
):
    config.payment_deadline_day = deadline
    config.save()
    ann, ben = paid_members(history, ["ann", "ben"])
    leaver = history.member("leaver", request=50)
    history.pay_months(leaver, M - 8, 8)  # owes nothing for M: leaving
    User.objects.filter(pk=leaver.pk).update(leaving_since=clock.now)

    draw = run_draw(month=M)

    reasons = {row["username"]: row["reason"] for row in draw.report["rows"]}
    assert reasons["leaver"] == "leaving"
    code, output = verify(tmp_path, download(client, draw))
    assert code == 0, output
