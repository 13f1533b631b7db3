"""Running a month's draw, exactly once, and the projected ranking (DESIGN.md, "Monthly draw").

``run_draw`` is the one entry point that writes: the admin action, the member page's button, the
schedule and the tests reach it (directly or through the django-q2 job). ``project_ranking``
builds the same report with the same code, without writing, to show "if the draw ran now".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from fund import beacon, ledger, loans, notifications, proof, scoring
from fund.deadline import Deadline, payment_deadline
from fund.jalali import JalaliMonth
from fund.ledger import MemberFactors
from fund.models import Draw, FundConfig, SeedCommitment, User
from fund.money import ZERO, canonical_amount, format_usdt

# Why a member is out of a draw. Codes are stored in reports: never rename one.
REASONS: dict[str, Any] = {
    "unpaid_by_deadline": gettext_lazy("did not pay by the deadline"),
    "active_loan": gettext_lazy("has an active loan"),  # reports from before loans awaited their payout
    "open_loan": gettext_lazy("has an open loan"),
    "leaving": gettext_lazy("is leaving"),
    "no_request": gettext_lazy("is not asking for a loan"),
    "request_exceeds_balance": gettext_lazy("asks for more than their balance"),
    "exceeds_fund_cash": gettext_lazy("asks for more than the fund's cash"),
}


def reason_label(code: str | None) -> str:
    """The reason a member is out, in the active language ("" for a member who is in)."""
    if not code:
        return ""
    return str(REASONS.get(code, code))


def request_outlook(member: User) -> str | None:
    """What the draw will do with the member's saved loan request, when it leaves them out as it
    stands (it decides at its own time, so such a request is kept, not refused); None when it counts."""
    amount = member.loan_request_amount
    if amount <= ZERO:
        return None
    if ledger.open_loan(member) is not None:
        return _("While your loan is open the draw leaves you out; your request counts once the loan is repaid.")
    balance = ledger.balance_of(member)
    if amount > balance:
        message = _(
            "Your request is more than your balance (%(balance)s USDT): the draw leaves you out until your "
            "balance reaches it."
        )
        return message % {"balance": format_usdt(balance)}
    return None


class DrawRefused(Exception):
    """The draw cannot run (or be queued) now. ``str()`` is the message for a person."""

    def __init__(
        self, message: str, *, code: str, unpaid: list[User] | None = None, unpaid_count: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.unpaid: list[User] = list(unpaid or [])
        self.unpaid_count = len(self.unpaid) if unpaid_count is None else unpaid_count

    @classmethod
    def not_paid(cls, month: JalaliMonth, unpaid: list[User]) -> DrawRefused:
        message = ngettext(
            "The draw for %(month)s cannot run yet: %(count)d member has not paid: %(names)s.",
            "The draw for %(month)s cannot run yet: %(count)d members have not paid: %(names)s.",
            len(unpaid),
        ) % {"month": month, "count": len(unpaid), "names": ", ".join(m.username for m in unpaid)}
        return cls(message, code="unpaid", unpaid=unpaid)

    @classmethod
    def not_paid_count(cls, month: JalaliMonth, count: int) -> DrawRefused:
        message = ngettext(
            "The draw for %(month)s cannot run yet: %(count)d member has not paid.",
            "The draw for %(month)s cannot run yet: %(count)d members have not paid.",
            count,
        ) % {"month": month, "count": count}
        return cls(message, code="unpaid", unpaid_count=count)

    @classmethod
    def already_drawn(cls, month: JalaliMonth) -> DrawRefused:
        return cls(_("The draw for %(month)s has already run.") % {"month": month}, code="already_drawn")


# What a new report holds beside the table: its commitment, secret, beacon, seed and chain link.
# Reports made before proofs existed have no "format" (their hashes were given by migration).
REPORT_FORMAT = 2

# --- the report: one builder for the draw and the projection ------------------------------------


def _out_reason(factors: MemberFactors, *, deadline_passed: bool) -> str | None:
    """DESIGN.md §2 and "Payment deadline", checked in this order so each member gets the first
    reason that applies. The verifier (fund/static/fund/verify_draw.py) checks them in the same order
    from the row's fields: keep the two identical."""
    if factors.is_leaving:
        return "leaving"  # owes no more fees, so never "did not pay"
    if deadline_passed and not factors.paid_this_month:
        return "unpaid_by_deadline"
    if factors.has_open_loan:
        return "open_loan"
    if factors.loan_request_amount <= ZERO:
        return "no_request"
    if factors.loan_request_amount > factors.balance:
        return "request_exceeds_balance"
    return None


def _row(factors: MemberFactors) -> dict[str, Any]:
    return {
        "member_id": factors.member_id,
        "username": factors.username,
        "name": factors.display_name,
        "balance": canonical_amount(factors.balance),
        "months_without_loan": factors.months_without_loan,
        "loan_payment_count": factors.loan_payment_count,
        "last_payment_amount": canonical_amount(factors.last_payment_amount),
        "previous_loan_amount": canonical_amount(factors.previous_loan_amount),
        "total_loan_amount_received": canonical_amount(factors.total_loan_amount_received),
        "total_loans_received": factors.total_loans_received,
        "loan_request_amount": canonical_amount(factors.loan_request_amount),
        "paid_this_month": factors.paid_this_month,
        "is_leaving": factors.is_leaving,
        "has_open_loan": factors.has_open_loan,
        "score": None,
        "eligible": False,
        "reason": None,
        "rank": None,
    }


def build_report(
    month: JalaliMonth, factors: list[MemberFactors], fund_cash: Decimal, deadline: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Eligibility, scores, the fund-cash check, ranks and the tied pool at the top.

    Pure: the real draw and the projection both call it with what the ledger says, so the two
    can never disagree. ``deadline`` is the payment deadline's policy (``Deadline.as_report``), or
    None without one. The seed and the winner are added by the caller.
    """
    deadline_passed = bool(deadline and deadline.get("passed"))
    rows, candidates = [], []
    for member in factors:
        row = _row(member)
        row["reason"] = _out_reason(member, deadline_passed=deadline_passed)
        if row["reason"] is None:
            value = scoring.score(member)
            row["score"] = scoring.format_score(value)
            # DESIGN.md §4: money already lent is not available, so the check is against fund cash.
            if member.loan_request_amount > fund_cash:
                row["reason"] = "exceeds_fund_cash"
            else:
                candidates.append((scoring.sort_key(value), row))
        row["eligible"] = row["reason"] is None
        rows.append(row)
    _rank(candidates)
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["username"]))
    return {
        "month": str(month),
        "fund_cash": canonical_amount(fund_cash),
        "seed": None,
        "pool": sorted(row["member_id"] for row in rows if row["rank"] == 1),
        "winner_id": None,
        "deadline": deadline,
        "rows": rows,
    }


def _rank(candidates: list[tuple[tuple[int, Decimal], dict[str, Any]]]) -> None:
    """Competition ranking by score, best first: equal scores share a rank (1, 1, 3, …)."""
    candidates.sort(key=lambda pair: pair[0], reverse=True)
    rank, previous = 0, None
    for position, (key, row) in enumerate(candidates, start=1):
        if key != previous:
            rank, previous = position, key
        row["rank"] = rank


def _ranking(month: JalaliMonth, deadline: Deadline | None) -> dict[str, Any]:
    """The report as the ledger stands now: a fixed number of queries, whatever the number of members."""
    factors, totals = ledger.draw_factors_and_totals(month)
    return build_report(month, factors, totals.cash, deadline.as_report() if deadline else None)


def pick_winner(seed: str, pool: list[int]) -> int | None:
    """The seeded tie-break: anyone with the report's seed and pool gets the same member id."""
    if not pool:
        return None
    return random.Random(seed).choice(sorted(pool))


def rederive_winner(draw: Draw) -> int | None:
    """Re-run a recorded draw's tie-break from its report: equals ``draw.winner_id`` when honest."""
    return pick_winner(draw.report.get("seed") or draw.seed, list(draw.report.get("pool") or []))


# --- running the draw ------------------------------------------------------------------------------


def readiness(month: JalaliMonth, *, names: bool = True, config: FundConfig | None = None) -> DrawRefused | None:
    """Why the draw for ``month`` cannot run now, or None: the one answer to "is the draw ready?".

    The draw itself, the queue (admin action, member page), the schedule and the pages all ask
    here (DESIGN.md, "Monthly draw" §1 and "Payment deadline"). ``names=False`` counts the unpaid
    instead of naming them: two small queries for a page that shows only how many.
    """
    if Draw.objects.filter(month=month).exists():
        return DrawRefused.already_drawn(month)
    if month > JalaliMonth.current():
        return DrawRefused(
            _("The draw for %(month)s cannot run before that month begins.") % {"month": month}, code="future_month"
        )
    deadline = payment_deadline(month, config)
    after_deadline = deadline is not None and deadline.passed()
    if names:
        unpaid = ledger.unpaid_members(month)
        if unpaid and not after_deadline:
            return DrawRefused.not_paid(month, unpaid)
        has_members = bool(unpaid) or User.objects.paying().exists()
    else:
        counts = ledger.paid_count(month)
        if counts.paid < counts.total and not after_deadline:
            return DrawRefused.not_paid_count(month, counts.total - counts.paid)
        has_members = counts.total > 0
    if not has_members:
        return DrawRefused(_("The fund has no active members to draw from."), code="no_members")
    return _beacon_refusal(month)


def _beacon_refusal(month: JalaliMonth) -> DrawRefused | None:
    """With a beacon, the draw waits until the month's round has been published."""
    round_number = SeedCommitment.objects.filter(month=month).values_list("beacon_round", flat=True).first()
    if round_number and beacon.round_time(round_number) > timezone.now():
        when = timezone.localtime(beacon.round_time(round_number))
        return DrawRefused(
            _("The draw for %(month)s waits for the randomness beacon's round %(round)s, due at %(when)s.")
            % {"month": month, "round": round_number, "when": when.strftime("%Y-%m-%d %H:%M")},
            code="beacon_pending",
        )
    return None


def run_draw(*, month: JalaliMonth, triggered_by: str = "") -> Draw:
    """Run the draw for ``month`` once: returns the existing draw when it has already run.

    Raises DrawRefused, writing no draw, when it cannot run (see ``readiness``), when the month's
    commitment was published too late, or when the beacon's round is not available yet. The
    caller cannot choose the seed: it comes from the frozen table, the month's committed secret
    and the beacon (fund/proof.py).
    """
    config = FundConfig.load()  # the lock below needs the row to exist
    # Counting is enough to refuse early; the names are read only for the refusal's message.
    refusal = readiness(month, names=False, config=config)
    if refusal is not None and refusal.code == "already_drawn":
        return Draw.objects.get(month=month)
    if refusal is not None:
        raise readiness(month, config=config) or refusal
    commitment = proof.ensure_commitment(month, made_by="draw")
    # Fetched before the lock: no network call while holding it.
    beacon_value = _beacon_value(commitment)
    try:
        with transaction.atomic():
            # The lock that makes the draw happen once across processes and machines: every
            # draw locks the configuration row first, so a second trigger waits here and then
            # finds the first one's draw. (On SQLite, IMMEDIATE transactions already serialise.)
            config = FundConfig.objects.select_for_update().get(pk=FundConfig.SINGLETON_ID)
            existing = Draw.objects.filter(month=month).first()
            if existing is not None:
                return existing
            refusal = readiness(month, names=False, config=config)
            if refusal is not None and refusal.code != "beacon_pending":  # the value is already in hand
                raise readiness(month, config=config) or refusal
            return _draw(
                month=month, config=config, triggered_by=triggered_by, commitment=commitment, beacon_value=beacon_value
            )
    except IntegrityError:
        # The unique month is the backstop should the lock ever be bypassed.
        existing = Draw.objects.filter(month=month).first()
        if existing is None:
            raise
        return existing


def _beacon_value(commitment: SeedCommitment) -> beacon.BeaconValue | None:
    if not commitment.beacon_round:
        return None
    try:
        return beacon.fetch_round(commitment.beacon_url, commitment.beacon_round)
    except beacon.BeaconUnavailable as unavailable:
        raise DrawRefused(str(unavailable), code="beacon_pending") from unavailable


def _proof(month: JalaliMonth, commitment: SeedCommitment) -> dict[str, Any]:
    """The commitment as the report records it; refuses a commitment published too late."""
    first_payment = proof.first_payment_at(month)
    upgrade = proof.made_at_upgrade(commitment, first_payment)
    if upgrade is None:
        raise DrawRefused(
            _(
                "The draw for %(month)s cannot run: the month's seed commitment was published after its first "
                "payment, so members could not see it in advance."
            )
            % {"month": month},
            code="late_commitment",
        )
    return {
        "hash": commitment.commitment,
        "published_at": commitment.created_at.isoformat(),
        "first_payment_at": first_payment.isoformat() if first_payment else None,
        "made_at_upgrade": upgrade,
        "beacon_round": commitment.beacon_round,
    }


def _draw(
    *,
    month: JalaliMonth,
    config: FundConfig,
    triggered_by: str,
    commitment: SeedCommitment,
    beacon_value: beacon.BeaconValue | None,
) -> Draw:
    committed = _proof(month, commitment)
    report = _ranking(month, payment_deadline(month, config))
    rows = proof.canonical(report["rows"])  # written once for both hashes: a row per member
    table = proof.table_hash(report, rows=rows)
    seed = proof.seed_of(table, commitment.secret, beacon_value.randomness if beacon_value else "")
    winner_id = pick_winner(seed, report["pool"])
    # The chain: each report carries the hash of the draw run before it.
    previous = Draw.objects.order_by("-pk").values("report_hash", "month").first()
    report.update(
        format=REPORT_FORMAT,
        table_hash=table,
        commitment=committed,
        secret=commitment.secret,
        beacon=beacon_value.as_report() if beacon_value else None,
        seed=seed,
        winner_id=winner_id,
        previous_hash=previous["report_hash"] if previous else None,
        previous_month=str(previous["month"]) if previous else None,
        drawn_at=timezone.now().isoformat(),
    )
    winner, loan, amount = None, None, ZERO
    if winner_id is not None:
        winner = User.objects.get(pk=winner_id)
        amount = next(Decimal(r["loan_request_amount"]) for r in report["rows"] if r["member_id"] == winner_id)
        loan = loans.grant_loan(member=winner, amount=amount, month=month, config=config)
        # DESIGN.md, "Loan": after winning, the member's loan request returns to 0.
        winner.loan_request_amount = ZERO
        winner.save(update_fields=["loan_request_amount"])
    draw = Draw.objects.create(
        month=month,
        winner=winner,
        loan=loan,
        amount=amount,
        fund_cash=Decimal(report["fund_cash"]),
        seed=seed,
        report=report,
        report_hash=proof.report_hash(report, rows=rows),
        triggered_by=triggered_by[:150],
    )
    notifications.draw_result(draw)
    return draw


def describe(draw: Draw) -> str:
    """One line for job results and messages."""
    if draw.winner_id is None:
        return _("Draw of %(month)s: no one qualified for a loan.") % {"month": draw.month}
    return _("Draw of %(month)s: %(member)s receives a loan of %(amount)s USDT.") % {
        "month": draw.month,
        "member": draw.winner.username,
        "amount": format_usdt(draw.amount),
    }


def queue_draw(*, month: JalaliMonth, triggered_by: str) -> None:
    """Check now, then let the worker run the draw: the admin action and the member page call this.

    Raises DrawRefused when the month is already drawn or cannot be drawn yet.
    """
    from fund import tasks

    refusal = readiness(month)
    if refusal is not None:
        raise refusal
    tasks.queue(tasks.RUN_DRAW, str(month), triggered_by)


def run_draw_job(*, month: JalaliMonth, triggered_by: str) -> str:
    """The job's body: a refusal is a result to read, not a failed job to retry."""
    try:
        return describe(run_draw(month=month, triggered_by=triggered_by))
    except DrawRefused as refusal:
        return str(refusal)


def run_automatic_draw() -> str:
    """The scheduled job: draws the current month once everyone has paid (or the deadline has
    passed), when enabled. A beacon round not out yet is tried again at the next run."""
    if not FundConfig.load().auto_draw:
        return _("The automatic draw is off.")
    month = JalaliMonth.current()
    refusal = readiness(month)
    if refusal is not None:
        return str(refusal)
    return run_draw_job(month=month, triggered_by="schedule")


# --- state and projection for the pages ---------------------------------------------------------


@dataclass
class DrawState:
    """This month's draw as the dashboard and the member page show it."""

    month: JalaliMonth
    draw: Draw | None
    unpaid: list[User] = field(default_factory=list)  # empty when not asked for by name
    can_run: bool = False
    refusal: str = ""  # why it cannot run now, for a person ("" when it can or has run, or not asked for)
    unpaid_count: int = 0
    deadline: Deadline | None = None

    @property
    def after_deadline(self) -> bool:
        """The payment deadline has passed: the draw runs with those who have paid."""
        return self.deadline is not None and self.deadline.passed()


def draw_state(month: JalaliMonth, *, names: bool = True, config: FundConfig | None = None) -> DrawState:
    """This month's draw: run, ready to run, or waiting (with who has not paid, and the deadline).

    ``names=False`` is for a page that shows only how many have not paid: two small queries
    instead of reading every unpaid member (thousands early in a large fund's month).
    """
    # The report (a row per member) is not needed to say whether and whom a draw has chosen.
    draw = Draw.objects.filter(month=month).select_related("winner", "loan").defer("report").first()
    config = config or FundConfig.load()
    deadline = payment_deadline(month, config)
    if draw is not None:
        return DrawState(month=month, draw=draw, deadline=deadline)
    refusal = readiness(month, names=names, config=config)
    if refusal is None:
        return DrawState(month=month, draw=None, can_run=True, deadline=deadline)
    return DrawState(
        month=month,
        draw=None,
        unpaid=refusal.unpaid,
        refusal=str(refusal) if names else "",
        unpaid_count=refusal.unpaid_count,
        deadline=deadline,
    )


def projection_month(month: JalaliMonth, state: DrawState | None = None) -> JalaliMonth:
    """The month "if the draw ran now" is about: ``month`` until its draw has run, then the next one.

    ``state`` is ``month``'s draw state when the caller has it (saves a query).
    """
    drawn = state.draw is not None if state is not None else Draw.objects.filter(month=month).exists()
    return month.next() if drawn else month


def project_ranking(month: JalaliMonth | None = None) -> dict[str, Any]:
    """ "If the draw ran now": the draw's report for ``month`` (default: the current month).

    Works before everyone has paid: members are ranked on what they have paid so far
    (``paid_this_month`` tells who still owes this month). No seed is drawn: ``winner_id`` is the
    member who would win outright, or None when ``pool`` holds a tie the draw would break.
    """
    month = month or JalaliMonth.current()
    report = _ranking(month, payment_deadline(month))
    report["winner_id"] = report["pool"][0] if len(report["pool"]) == 1 else None
    report["projected_at"] = timezone.now().isoformat()
    return report


# --- reading reports on every page view ------------------------------------------------------------
# A report holds a row per member: at 10,000 members the projection reads every verified payment
# (about a second) and a stored report is megabytes of JSON. Pages read them on every visit, so the
# projection is kept in Django's cache under the draw inputs' version (shared by every process, see
# ledger.draw_inputs_version), and each process keeps the latest reports it used in memory.
# Callers must not change what they get: copy rows before decorating.
PROJECTION_CACHE_SECONDS = 24 * 60 * 60
_PROJECTIONS: dict[str, dict[str, Any]] = {}
_REPORTS: dict[tuple[int, str], dict[str, Any]] = {}
_KEPT = 4


def _keep(kept: dict, key: Any, value: dict[str, Any]) -> dict[str, Any]:
    if len(kept) >= _KEPT:
        kept.pop(next(iter(kept)))  # the oldest: dicts keep insertion order
    kept[key] = value
    return value


@dataclass(frozen=True)
class ReportIndex:
    """What pages look up in a report besides its first rows: where each member's row is."""

    positions: dict[int, int]  # member id → index in the report's rows
    eligible: int


_INDEXES: dict[int, tuple[dict[str, Any], ReportIndex]] = {}


def report_index(report: dict[str, Any]) -> ReportIndex:
    """The report's index, built once for each report the caches above hold (kept by identity)."""
    entry = _INDEXES.get(id(report))
    if entry is not None and entry[0] is report:
        return entry[1]
    rows = report.get("rows", [])
    index = ReportIndex(
        positions={row.get("member_id"): position for position, row in enumerate(rows)},
        eligible=sum(1 for row in rows if row.get("eligible")),
    )
    if len(_INDEXES) >= 2 * _KEPT:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(report)] = (report, index)  # the report itself is kept so its id cannot be reused
    return index


def current_projection(month: JalaliMonth | None = None, config: FundConfig | None = None) -> dict[str, Any]:
    """``project_ranking``, computed again only once a draw input has been written (by any process).

    Its ``projected_at`` says when it was computed, which is what the pages show.
    """
    month = month or JalaliMonth.current()
    if ledger.draw_inputs_written_here():
        return project_ranking(month)  # this transaction's own writes: never shared, never kept
    # Read first: a write after it only makes the next visit recompute, never serves stale figures.
    key = f"saghat:projection:{int(month)}:{ledger.draw_inputs_version()}:{_deadline_key(month, config)}"
    report = _PROJECTIONS.get(key)
    if report is None:
        report = cache.get(key)
        if report is None:
            report = project_ranking(month)
            cache.set(key, report, PROJECTION_CACHE_SECONDS)
        _keep(_PROJECTIONS, key, report)
    return report


def _deadline_key(month: JalaliMonth, config: FundConfig | None) -> str:
    """The deadline policy changes the projection too: when the fund sets one, and when it passes."""
    deadline = payment_deadline(month, config)
    return f"{deadline.day}{'p' if deadline.passed() else ''}" if deadline else "-"


def stored_report(draw: Draw) -> dict[str, Any]:
    """A draw's report, read once per process: a draw never changes once it has run.

    Works with a draw loaded without its report (``defer("report")``); the seed, random for every
    draw, keeps two databases' draws with the same id apart.
    """
    key = (draw.pk, draw.seed)
    cached = _REPORTS.get(key)
    if cached is None:
        cached = _keep(_REPORTS, key, Draw.objects.values_list("report", flat=True).get(pk=draw.pk))
    return cached
