#!/usr/bin/env python3
"""Check a Saghat draw yourself, without trusting the fund's server.

Needs nothing but Python 3.10 or newer (the standard library). Download a draw's report (JSON) from
the member page, and the report of the draw before it if you want to check the chain too, then run:

    python3 verify_draw.py report-1404-09.json [report-1404-08.json]

It recomputes every member's score from the published factors with the published formula and
rounding, every reason for being out, the ranks, the tied pool, the report's hash and the link to
the previous report, checks that SHA-256(secret) is the commitment published before the month's
payments, recomputes the seed (SHA-256 of table hash + secret + beacon value) and the winner, and
checks the payment-deadline policy. It prints "verified" or each mismatch in plain words (English
and Persian), and exits with status 0 (verified) or 1 (a mismatch, or a file it cannot read).

The rules it repeats are Saghat's (fund/scoring.py, fund/draw.py, fund/proof.py in the repository).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sys
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext

# --- the score (DESIGN.md, "Monthly draw", §3), exactly as fund/scoring.py computes it -------------

ONE, ZERO = Decimal(1), Decimal(0)
PLACES = Decimal(1).scaleb(-9)  # scores are compared at 9 decimal places
CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)
UNLIMITED = "unlimited"


def log(value: Decimal | int) -> Decimal:
    """Natural logarithm where a value <= 1 counts as 0."""
    value = Decimal(value)
    return ZERO if value <= ONE else value.ln(CONTEXT)


def score(row: dict) -> str:
    """The score's text: "unlimited" or the number with exactly 9 decimals."""
    with localcontext(CONTEXT):
        denominator = (
            Decimal(row["last_payment_amount"])
            * int(row["loan_payment_count"])
            * log(Decimal(row["total_loan_amount_received"]))
            * int(row["total_loans_received"])
            * log(Decimal(row["loan_request_amount"]))
        )
        if denominator == ZERO:
            return UNLIMITED
        numerator = (
            log(Decimal(row["previous_loan_amount"])) * log(Decimal(row["balance"])) * int(row["months_without_loan"])
        )
        value = ZERO if numerator <= ZERO else numerator / denominator
        return f"{value.quantize(PLACES):f}"


def sort_key(text: str) -> tuple[int, Decimal]:
    if text == UNLIMITED:
        return (1, ZERO)
    with localcontext(CONTEXT):
        return (0, Decimal(text).quantize(PLACES))


# --- eligibility (DESIGN.md §2, §4 and "Payment deadline"), in Saghat's order ----------------------


def reason_before_score(row: dict, deadline_passed: bool) -> str | None:
    # Reports made before this verifier existed do not list the leaving and open-loan flags: for
    # those two reasons the report's own word is taken.
    leaving = row["is_leaving"] if "is_leaving" in row else row.get("reason") == "leaving"
    if leaving:
        return "leaving"
    if deadline_passed and not row["paid_this_month"]:
        return "unpaid_by_deadline"
    if "has_open_loan" in row:
        if row["has_open_loan"]:
            return "open_loan"
    elif row.get("reason") in ("active_loan", "open_loan"):
        return row["reason"]
    request = Decimal(row["loan_request_amount"])
    if request <= ZERO:
        return "no_request"
    if request > Decimal(row["balance"]):
        return "request_exceeds_balance"
    return None


# --- the proof (DESIGN.md, "Proof of the draw"), exactly as fund/proof.py defines it --------------

TABLE_KEYS = ("month", "fund_cash", "rows", "pool", "deadline")
HASH_KEY = "report_hash"


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def report_hash(report: dict) -> str:
    return sha256(canonical({key: value for key, value in report.items() if key != HASH_KEY}))


def table_hash(report: dict) -> str:
    return sha256(canonical({key: report.get(key) for key in TABLE_KEYS}))


def pick_winner(seed: str, pool: list[int]) -> int | None:
    """The seeded tie-break: Python's random.Random seeded with the seed text, over the sorted pool."""
    return random.Random(seed).choice(sorted(pool)) if pool else None


# --- the checks -----------------------------------------------------------------------------------


class Checker:
    def __init__(self, report: dict, previous: dict | None) -> None:
        self.report = report
        self.previous = previous
        self.mismatches: list[tuple[str, str]] = []
        self.notes: list[tuple[str, str]] = []

    def mismatch(self, english: str, persian: str) -> None:
        self.mismatches.append((english, persian))

    def note(self, english: str, persian: str) -> None:
        self.notes.append((english, persian))

    def run(self) -> None:
        self.check_hash()
        self.check_chain()
        deadline_passed = self.check_deadline()
        self.check_rows(deadline_passed)
        if self.report.get("format", 1) >= 2:
            self.check_commitment()
            self.check_seed()
        else:
            self.note(
                "This draw ran before Saghat committed its seeds in advance: its seed cannot be checked.",
                "این قرعه‌کشی پیش از آن انجام شد که صقت بذر را از پیش متعهد شود: بذر آن قابل بررسی نیست.",
            )
        self.check_winner()

    # The report's own hash, and the chain.
    def check_hash(self) -> None:
        computed = report_hash(self.report)
        self.note(f"Report hash (SHA-256): {computed}", f"هش گزارش (SHA-256): {computed}")
        claimed = self.report.get(HASH_KEY)
        if claimed is not None and claimed != computed:
            self.mismatch(
                f"The report's hash does not match its content: it says {claimed}, the content gives {computed}.",
                f"هش گزارش با محتوای آن نمی‌خواند: در گزارش {claimed} آمده ولی محتوا {computed} می‌دهد.",
            )

    def check_chain(self) -> None:
        if self.previous is None:
            return
        previous_hash = report_hash(self.previous)
        claimed = self.previous.get(HASH_KEY)
        if claimed is not None and claimed != previous_hash:
            self.mismatch(
                "The previous report's hash does not match its content.",
                "هش گزارش قبلی با محتوای آن نمی‌خواند.",
            )
        if self.report.get("previous_hash") != previous_hash:
            self.mismatch(
                f"The chain is broken: this report links to {self.report.get('previous_hash')}, but the previous "
                f"report ({self.previous.get('month')}) has the hash {previous_hash}. A draw was changed, deleted "
                "or put out of order.",
                f"زنجیره گسسته است: این گزارش به {self.report.get('previous_hash')} پیوند دارد ولی هش گزارش قبلی "
                f"({self.previous.get('month')}) {previous_hash} است. قرعه‌کشی‌ای تغییر کرده، حذف شده یا جابه‌جا شده است.",
            )
        elif "previous_month" in self.report and self.report["previous_month"] != self.previous.get("month"):
            self.mismatch(
                "The report names another month as the previous draw's.",
                "گزارش ماه دیگری را به‌عنوان قرعه‌کشی قبلی نام می‌برد.",
            )

    # The payment deadline policy.
    def check_deadline(self) -> bool:
        deadline = self.report.get("deadline")
        rows = self.report.get("rows", [])
        if deadline is None:
            passed = False
        else:
            passed = bool(deadline.get("passed"))
            drawn_at = self.report.get("drawn_at")
            if drawn_at and deadline.get("ends_at"):
                really = dt.datetime.fromisoformat(drawn_at) >= dt.datetime.fromisoformat(deadline["ends_at"])
                if really != passed:
                    self.mismatch(
                        "The deadline policy is wrong: the report says the deadline had "
                        + ("passed" if passed else "not passed")
                        + " when the draw ran, but the times say otherwise.",
                        "سیاست مهلت پرداخت نادرست است: زمان‌های گزارش با گذشتن یا نگذشتن مهلت نمی‌خواند.",
                    )
        if not passed and self.report.get("seed") is not None:
            for row in rows:
                leaving = row.get("is_leaving") or row.get("reason") == "leaving"  # owes no fee
                if not row.get("paid_this_month", True) and not leaving:
                    self.mismatch(
                        f"{row.get('username')} had not paid for the month, yet the draw ran without a passed deadline.",
                        f"{row.get('username')} پرداخت این ماه را نکرده بود، ولی قرعه‌کشی بی‌آنکه مهلتی گذشته باشد انجام شد.",
                    )
        return passed

    # Every row: reason, score, eligibility; then ranks and the pool.
    def check_rows(self, deadline_passed: bool) -> None:
        fund_cash = Decimal(self.report["fund_cash"])
        candidates = []
        for row in self.report.get("rows", []):
            name = row.get("username")
            try:
                reason = reason_before_score(row, deadline_passed)
                expected_score = None
                if reason is None:
                    expected_score = score(row)
                    if Decimal(row["loan_request_amount"]) > fund_cash:
                        reason = "exceeds_fund_cash"
            except (KeyError, TypeError, ValueError, InvalidOperation):
                self.mismatch(f"The row of {name} is missing a factor or has a malformed one.",
                              f"سطر {name} یکی از عامل‌ها را ندارد یا مقدارش نادرست است.")  # fmt: skip
                continue
            if row.get("score") != expected_score:
                self.mismatch(
                    f"Score of {name}: the report says {row.get('score')}, the factors give {expected_score}.",
                    f"امتیاز {name}: در گزارش {row.get('score')} آمده ولی عامل‌ها {expected_score} می‌دهند.",
                )
            if row.get("reason") != reason:
                self.mismatch(
                    f"Reason for {name}: the report says {row.get('reason')}, the rules give {reason}.",
                    f"دلیل بیرون‌ماندن {name}: در گزارش {row.get('reason')} آمده ولی قواعد {reason} می‌دهند.",
                )
            if bool(row.get("eligible")) != (reason is None):
                self.mismatch(f"Eligibility of {name} is wrong.", f"واجد شرایط بودن {name} نادرست است.")
            if reason is None:
                candidates.append((sort_key(expected_score), row))
        self.check_ranks(candidates)

    def check_ranks(self, candidates: list) -> None:
        candidates.sort(key=lambda pair: pair[0], reverse=True)
        expected_rank, rank, previous = {}, 0, None
        for position, (key, row) in enumerate(candidates, start=1):
            if key != previous:
                rank, previous = position, key
            expected_rank[row.get("member_id")] = rank
        for row in self.report.get("rows", []):
            wanted = expected_rank.get(row.get("member_id"))
            if row.get("rank") != wanted:
                self.mismatch(
                    f"Rank of {row.get('username')}: the report says {row.get('rank')}, the scores give {wanted}.",
                    f"رتبه {row.get('username')}: در گزارش {row.get('rank')} آمده ولی امتیازها {wanted} می‌دهند.",
                )
        pool = sorted(member for member, rank in expected_rank.items() if rank == 1)
        if sorted(self.report.get("pool") or []) != pool or len(self.report.get("pool") or []) != len(pool):
            self.mismatch(
                f"The tied pool at the top is wrong: the report says {self.report.get('pool')}, the ranks give {pool}.",
                f"گروه هم‌امتیازِ صدر نادرست است: در گزارش {self.report.get('pool')} آمده ولی رتبه‌ها {pool} می‌دهند.",
            )

    # The commitment, the beacon and the seed.
    def check_commitment(self) -> None:
        commitment = self.report.get("commitment") or {}
        secret = self.report.get("secret") or ""
        if sha256(secret) != commitment.get("hash"):
            self.mismatch(
                "SHA-256 of the revealed secret is not the commitment published before the month's payments.",
                "SHA-256 راز افشاشده با تعهدی که پیش از پرداخت‌های ماه منتشر شده بود برابر نیست.",
            )
        published, first_payment = commitment.get("published_at"), commitment.get("first_payment_at")
        if commitment.get("made_at_upgrade"):
            self.note(
                "This month's commitment was made when Saghat was upgraded, after the month's payments had begun.",
                "تعهد این ماه هنگام به‌روزرسانی صقت و پس از آغاز پرداخت‌های ماه ساخته شد.",
            )
            earlier = (self.previous or {}).get("commitment")
            if earlier and not earlier.get("made_at_upgrade"):
                self.mismatch(
                    "The report says its commitment was made at the upgrade, but the previous draw already had one "
                    "published in advance.",
                    "گزارش می‌گوید تعهدش هنگام به‌روزرسانی ساخته شد، ولی قرعه‌کشی قبلی از پیش تعهد منتشرشده داشت.",
                )
        elif (
            published
            and first_payment
            and dt.datetime.fromisoformat(published) > dt.datetime.fromisoformat(first_payment)
        ):
            self.mismatch(
                "The commitment was published after the month's first payment.",
                "تعهد پس از نخستین پرداخت ماه منتشر شده است.",
            )

    def check_seed(self) -> None:
        report = self.report
        table = table_hash(report)
        if report.get("table_hash") != table:
            self.mismatch(
                "The frozen table (members' factors, scores, reasons, ranks, pool, fund cash, deadline) does not "
                "match its recorded hash: the table was changed after the draw.",
                "جدول ثابت‌شده (عامل‌ها، امتیازها، دلیل‌ها، رتبه‌ها، گروه صدر، موجودی صندوق، مهلت) با هش ثبت‌شده‌اش "
                "نمی‌خواند: جدول پس از قرعه‌کشی تغییر کرده است.",
            )
        beacon = report.get("beacon")
        wanted_round = (report.get("commitment") or {}).get("beacon_round")
        randomness = ""
        if wanted_round is not None or beacon is not None:
            randomness = self.check_beacon(beacon, wanted_round)
        seed = sha256(table + (report.get("secret") or "") + randomness)
        if report.get("seed") != seed:
            self.mismatch(
                f"The seed is wrong: the report says {report.get('seed')}, SHA-256(table hash + secret"
                f"{' + beacon value' if randomness else ''}) gives {seed}.",
                f"بذر نادرست است: در گزارش {report.get('seed')} آمده ولی محاسبه {seed} می‌دهد.",
            )

    def check_beacon(self, beacon: dict | None, wanted_round: int | None) -> str:
        if not beacon:
            self.mismatch(
                f"The beacon round {wanted_round} was fixed in advance, but the report records no beacon value.",
                f"دور {wanted_round} بیکن از پیش تعیین شده بود، ولی گزارش مقدار بیکن را ثبت نکرده است.",
            )
            return ""
        if beacon.get("round") != wanted_round:
            self.mismatch(
                f"The beacon value is for round {beacon.get('round')}, not the round {wanted_round} fixed in advance.",
                f"مقدار بیکن مربوط به دور {beacon.get('round')} است، نه دور {wanted_round} که از پیش تعیین شده بود.",
            )
        signature, randomness = str(beacon.get("signature", "")), str(beacon.get("randomness", ""))
        try:
            matches = hashlib.sha256(bytes.fromhex(signature)).hexdigest() == randomness
        except ValueError:
            matches = False
        if not matches:
            self.mismatch(
                "The beacon's randomness is not the SHA-256 of its signature.",
                "مقدار تصادفی بیکن برابر SHA-256 امضای آن نیست.",
            )
        self.note(
            f"Beacon: {beacon.get('url')} round {beacon.get('round')}; compare its randomness with the beacon's own "
            f"page: {beacon.get('url')}/public/{beacon.get('round')}",
            f"بیکن: {beacon.get('url')} دور {beacon.get('round')}؛ مقدار آن را با صفحه خود بیکن مقایسه کنید.",
        )
        return randomness

    def check_winner(self) -> None:
        seed = self.report.get("seed")
        if seed is None:
            self.mismatch("The report has no seed: it is not a draw's report.", "گزارش بذر ندارد: گزارش قرعه‌کشی نیست.")
            return
        winner = pick_winner(seed, list(self.report.get("pool") or []))
        if self.report.get("winner_id") != winner:
            self.mismatch(
                f"The winner is wrong: the report says member {self.report.get('winner_id')}, the seed and the pool "
                f"give member {winner}.",
                f"برنده نادرست است: در گزارش عضو {self.report.get('winner_id')} آمده ولی بذر و گروه صدر عضو "
                f"{winner} را می‌دهند.",
            )


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python3 verify_draw.py REPORT.json [PREVIOUS_REPORT.json]")
        return 1
    try:
        report = _load(argv[1])
        previous = _load(argv[2]) if len(argv) == 3 else None
        checker = Checker(report, previous)
        checker.run()
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as error:
        print(f"The report cannot be read: {error}")
        print(f"گزارش خوانده نمی‌شود: {error}")
        return 1
    print(f"Draw of {report.get('month')} / قرعه‌کشی {report.get('month')}")
    for english, persian in checker.notes:
        print(f"- {english}\n  {persian}")
    if checker.mismatches:
        count = len(checker.mismatches)
        print(f"MISMATCH: {count} thing(s) do not match / ناهمخوانی: {count} مورد با محاسبه نمی‌خواند")
        for english, persian in checker.mismatches:
            print(f"* {english}\n  {persian}")
        return 1
    print("verified / تأیید شد")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
