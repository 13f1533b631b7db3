"""What makes a draw checkable by anyone (DESIGN.md, "Proof of the draw").

- The canonical form of a report: JSON with sorted keys, no insignificant whitespace, UTF-8
  (amounts are already decimal strings in reports), and its SHA-256, the report's hash. Each
  report carries the previous draw's hash, so the draws form a chain that cannot be edited silently.
- The month's secret and its commitment, SHA-256(secret), published before the month's payments.
- The seed: SHA-256 of the text ``table hash ‖ secret ‖ beacon randomness`` (hex strings joined),
  where the table hash is the SHA-256 of the report's frozen table (everything decided before the
  seed: month, fund cash, rows, pool, deadline policy).

The standalone verifier (fund/static/fund/verify_draw.py) repeats these definitions with the
standard library only; keep the two identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone

from fund import beacon, notifications
from fund.deadline import payment_deadline
from fund.jalali import JalaliMonth
from fund.models import Payment, SeedCommitment

# The report's keys that make up its frozen table: fixed before the seed is known.
TABLE_KEYS = ("month", "fund_cash", "rows", "pool", "deadline")
# Reports carry their own hash when downloaded; it is not part of what is hashed.
HASH_KEY = "report_hash"


def canonical(value: Any) -> bytes:
    """The canonical form: sorted keys, no spaces, UTF-8 (not ASCII escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _composed(values: dict[str, Any], rows: bytes | None) -> bytes:
    """``canonical(values)``, reusing ``rows`` (``canonical(values["rows"])``) when given.

    The rows are nearly all of a report (a row per member); the draw writes them once for both
    hashes. An object's canonical form is its sorted ``"key":value`` pairs, so composing gives the
    same bytes as ``canonical`` (the tests and the verifier, which uses ``canonical`` alone, check it).
    """
    if rows is None or "rows" not in values:
        return canonical(values)
    parts = [canonical(key) + b":" + (rows if key == "rows" else canonical(values[key])) for key in sorted(values)]
    return b"{" + b",".join(parts) + b"}"


def report_hash(report: dict[str, Any], *, rows: bytes | None = None) -> str:
    return sha256(_composed({key: value for key, value in report.items() if key != HASH_KEY}, rows))


def table_hash(report: dict[str, Any], *, rows: bytes | None = None) -> str:
    return sha256(_composed({key: report.get(key) for key in TABLE_KEYS}, rows))


def seed_of(table: str, secret: str, beacon_randomness: str = "") -> str:
    """SHA-256 of the table hash, the month's secret and the beacon's value, as one text."""
    return sha256(table + secret + beacon_randomness)


def commitment_of(secret: str) -> str:
    return sha256(secret)


def downloadable(report: dict[str, Any], stored_hash: str) -> bytes:
    """The report as members download it: canonical, with its hash alongside."""
    return canonical({**report, HASH_KEY: stored_hash})


# --- the month's commitment -------------------------------------------------------------------------


def ensure_commitment(month: JalaliMonth, *, made_by: str) -> SeedCommitment:
    """The month's commitment, made now if it does not exist yet. Never changes an existing one.

    Called by the daily job at the start of each month, and on demand before anything that needs
    it: a payment for the month, the member page, the draw. The unique month makes a second
    caller (another worker, a double click) find the first one's commitment.
    """
    existing = SeedCommitment.objects.filter(month=month).first()
    if existing is not None:
        return existing
    secret = secrets.token_hex(32)
    url = beacon.configured_url()
    try:
        with transaction.atomic():
            return SeedCommitment.objects.create(
                month=month,
                commitment=commitment_of(secret),
                secret=secret,
                made_by=made_by[:30],
                created_at=timezone.now(),
                beacon_url=url,
                beacon_round=_beacon_round(month) if url else None,
            )
    except IntegrityError:
        return SeedCommitment.objects.get(month=month)


def _beacon_round(month: JalaliMonth) -> int:
    """A round whose value nobody knows yet: the deadline's moment, else a while after now.

    Fixed now, before the month's payments close (DESIGN.md, "Proof of the draw").
    """
    now = timezone.now()
    deadline = payment_deadline(month)
    if deadline is not None and deadline.ends_at > now:
        return beacon.round_at(deadline.ends_at)
    return beacon.round_at(now + dt.timedelta(seconds=settings.DRAW_BEACON_DELAY))


def publish_month_commitment() -> str:
    """The daily job: the current Tehran month's commitment (a no-op once it exists)."""
    with transaction.atomic():
        commitment = ensure_commitment(JalaliMonth.current(), made_by="schedule")
        # Members hear of the commitment from this job, whoever made it first (a payment, the member
        # page): the outbox keeps one message per month, member and channel, so later runs send nothing.
        notifications.seed_committed(month=commitment.month, commitment=commitment.commitment)
    return f"{commitment.month}: {commitment.commitment}"


def first_payment_at(month: JalaliMonth) -> dt.datetime | None:
    """When the month's first payment was recorded by a member or the operator, whatever became of it.

    Imported rows do not count: an import brings history recorded elsewhere (usually of months long
    past), written in bulk without the payment service that publishes the commitment first.
    """
    payments = Payment.objects.filter(month=month).exclude(source=Payment.Source.IMPORT)
    return payments.aggregate(first=Min("created_at"))["first"]


def made_at_upgrade(commitment: SeedCommitment, first_payment: dt.datetime | None) -> bool | None:
    """Whether the commitment may serve the month's draw: False when it was published before the
    month's first payment (the rule), True when the month's payments began before Saghat made any
    commitment at all (the month of the upgrade: the commitment made then is used and the report
    says so), None when it came too late and the draw must refuse."""
    if first_payment is None or commitment.created_at <= first_payment:
        return False
    earliest = SeedCommitment.objects.aggregate(first=Min("created_at"))["first"]
    return True if first_payment < earliest else None
