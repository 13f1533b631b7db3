"""The fund's data and the rules the database itself enforces.

Business rules live in the services (payments.py, draw.py); the constraints here make the
impossible impossible even when a service is bypassed or two processes race (DESIGN.md, STYLE.md §3).
Derived figures (balances, fund cash, repaid amounts) are not stored: see ledger.py.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from fund.audit import AuditedHistory
from fund.jalali import JalaliMonthField
from fund.money import AmountField


class MemberQuerySet(models.QuerySet):
    def members(self) -> MemberQuerySet:
        """Active users who take part in the fund (pay each month, may win loans)."""
        return self.filter(is_active=True, is_member=True)

    def paying(self) -> MemberQuerySet:
        """Members who owe this month's fee: active, not leaving (DESIGN.md, "A member leaving")."""
        return self.members().filter(leaving_since__isnull=True)


class FundUserManager(UserManager.from_queryset(MemberQuerySet)):  # type: ignore[misc]
    pass


class User(AbstractUser):
    """Everyone who logs in. ``is_main`` is the operator; ``is_member`` takes part in the fund."""

    is_main = models.BooleanField(_("operator"), default=False, help_text=_("May use the back office (admin)."))
    is_member = models.BooleanField(_("member"), default=False, help_text=_("Pays each month and may win loans."))
    loan_request_amount = AmountField(
        _("loan request (USDT)"), default=Decimal("0"), help_text=_("USDT wanted if chosen; 0 means not asking.")
    )
    # The language of the messages the member receives (notifications, bot answers).
    language = models.CharField(
        _("language"), max_length=8, choices=[("fa", _("Persian")), ("en", _("English"))], default="fa"
    )

    # A member leaving (DESIGN.md, "A member leaving"): set when the operator records it; the
    # member stays active (out of draws, owing nothing) until the refund payout is verified, then
    # is made inactive and ``left_at`` says when. Only fund.payouts writes these two fields.
    leaving_since = models.DateTimeField(_("leaving since"), null=True, blank=True, editable=False)
    left_at = models.DateTimeField(_("left the fund at"), null=True, blank=True, editable=False)

    objects = FundUserManager()
    history = AuditedHistory(excluded_fields=["password", "last_login"])

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(condition=Q(loan_request_amount__gte=0), name="user_loan_request_not_negative"),
        ]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username

    @property
    def is_fund_member(self) -> bool:
        return self.is_active and self.is_member

    @property
    def is_leaving(self) -> bool:
        """Recorded as leaving, refund not yet verified."""
        return self.is_active and self.leaving_since is not None


# Ten years: a longer schedule is a typo, and SQLite would store what PostgreSQL's smallint refuses.
MAX_REPAYMENT_MONTHS = 120
# Every Jalali month has at least 29 days (DESIGN.md, "Payment deadline").
MAX_DEADLINE_DAY = 29


DEFAULT_FUND_NAME = gettext_noop("Saghat friendly fund")


class FundConfig(models.Model):
    """The fund's one row of configuration (DESIGN.md, "Fund configuration")."""

    SINGLETON_ID = 1

    name = models.CharField(_("fund name"), max_length=120, default=_("Saghat friendly fund"))
    min_fee = AmountField(_("minimum monthly membership fee (USDT)"), default=Decimal("20"))
    max_repayment_months = models.PositiveSmallIntegerField(
        _("maximum loan repayment months"),
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REPAYMENT_MONTHS)],
        help_text=_("Between 1 and 120 months."),
    )
    min_repayment = AmountField(_("minimum monthly loan repayment (USDT)"), default=Decimal("20"))
    auto_draw = models.BooleanField(
        _("run the draw automatically"),
        default=False,
        help_text=_("Run the month's draw by itself once every member has paid."),
    )
    reminder_days_before = models.PositiveSmallIntegerField(
        _("remind unpaid members this many days before the month ends"),
        null=True,
        blank=True,
        help_text=_("Leave empty to send no reminders."),
    )
    payment_deadline_day = models.PositiveSmallIntegerField(
        _("payment deadline (day of the month)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DEADLINE_DAY)],
        help_text=_(
            "Optional, 1 to 29. After this day (Tehran time) the draw may run with the members who have paid; "
            "the others are out with “did not pay by the deadline”. Leave empty to wait for every member."
        ),
    )
    reconciliation_tolerance = AmountField(
        _("reconciliation tolerance (USDT)"),
        default=Decimal("0.01"),
        help_text=_("A wallet reading further than this from the ledger is flagged."),
    )

    history = AuditedHistory()

    class Meta:
        verbose_name = _("fund configuration")
        verbose_name_plural = _("fund configuration")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="fundconfig_single_row"),
            models.CheckConstraint(condition=Q(min_fee__gt=0), name="fundconfig_min_fee_positive"),
            models.CheckConstraint(condition=Q(min_repayment__gt=0), name="fundconfig_min_repayment_positive"),
            models.CheckConstraint(condition=Q(max_repayment_months__gt=0), name="fundconfig_max_months_positive"),
            models.CheckConstraint(
                condition=Q(max_repayment_months__lte=MAX_REPAYMENT_MONTHS), name="fundconfig_max_months_bounded"
            ),
            models.CheckConstraint(
                condition=Q(payment_deadline_day__isnull=True)
                | Q(payment_deadline_day__gte=1, payment_deadline_day__lte=MAX_DEADLINE_DAY),
                name="fundconfig_deadline_day_in_month",
            ),
            models.CheckConstraint(
                condition=Q(reconciliation_tolerance__gte=0), name="fundconfig_tolerance_not_negative"
            ),
        ]

    def __str__(self) -> str:
        # The default name is stored untranslated and shown in the reader's language; a name the
        # operator chose is shown as written.
        return gettext(self.name)

    @classmethod
    def load(cls) -> FundConfig:
        """The configuration row, created with the defaults the first time it is needed."""
        config, _created = cls.objects.get_or_create(pk=cls.SINGLETON_ID, defaults={"name": DEFAULT_FUND_NAME})
        return config


class Loan(models.Model):
    class State(models.TextChoices):
        AWAITING_PAYOUT = "awaiting_payout", _("awaiting payout")
        ACTIVE = "active", _("active")
        SETTLED = "settled", _("settled")

    # A member's open loan: the one they may hold at most (DESIGN.md, "Loan").
    OPEN_STATES = (State.AWAITING_PAYOUT, State.ACTIVE)

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("member"), on_delete=models.PROTECT, related_name="loans"
    )
    amount = AmountField(_("amount (USDT)"))
    month = JalaliMonthField(_("month granted"), db_index=True)
    monthly_minimum = AmountField(_("monthly minimum repayment (USDT)"))
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.ACTIVE)
    # The month the payout was verified: repayments are due from the month after it (DESIGN.md,
    # "Loan payout"). Empty for imported loans, which are repaid from the month after they were granted.
    paid_out_month = JalaliMonthField(_("month paid out"), null=True, blank=True)
    # Cached from the verified repayments (ledger.loan_repaid is the truth) so that the state,
    # which the one-active-loan constraint needs, can be reconciled; see payments.settle_loan.
    settled_month = JalaliMonthField(_("month settled"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    history = AuditedHistory()

    class Meta:
        verbose_name = _("loan")
        verbose_name_plural = _("loans")
        ordering = ["-month", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="loan_amount_positive"),
            models.CheckConstraint(condition=Q(monthly_minimum__gt=0), name="loan_monthly_minimum_positive"),
            models.UniqueConstraint(
                fields=["member"], condition=Q(state__in=["awaiting_payout", "active"]), name="loan_one_open_per_member"
            ),
            models.UniqueConstraint(fields=["member", "month"], name="loan_one_per_member_and_month"),
        ]
        indexes = [models.Index(fields=["member", "month"], name="loan_member_month")]

    def __str__(self) -> str:
        return _("%(member)s: %(amount)s USDT in %(month)s") % {
            "member": self.member_id and self.member.username,
            "amount": self.amount,
            "month": self.month,
        }


class CheckedWithBitpin(models.Model):
    """What money checked with Bitpin carries, coming in (Payment) or going out (Payout): its
    status, the decision — who made it, when, and the note saying why — and the bookkeeping of the
    retry sweep (fund.verification writes both, for either kind)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        VERIFIED = "verified", _("verified")
        REJECTED = "rejected", _("rejected")

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    verified_at = models.DateTimeField(_("verified or rejected at"), null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("verified or rejected by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    note = models.TextField(_("verification note"), blank=True)
    # Bitpin checks that failed for a passing reason: the sweep retries with back-off.
    attempts = models.PositiveIntegerField(_("verification attempts"), default=0)
    last_error = models.TextField(_("last verification error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next verification attempt"), null=True, blank=True)

    class Meta:
        abstract = True


class Payment(CheckedWithBitpin):
    class Source(models.TextChoices):
        MEMBER = "member", _("member page")
        ADMIN = "admin", _("admin")
        IMPORT = "import", _("import")

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("member"), on_delete=models.PROTECT, related_name="payments"
    )
    month = JalaliMonthField(_("month"))
    fee = AmountField(_("membership fee (USDT)"))
    repayment = AmountField(_("loan repayment (USDT)"), default=Decimal("0"))
    loan = models.ForeignKey(
        Loan,
        verbose_name=_("loan"),
        on_delete=models.PROTECT,
        related_name="repayments",
        null=True,
        blank=True,
    )
    bitpin_id = models.CharField(_("Bitpin payment id"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MEMBER)
    created_at = models.DateTimeField(_("submitted"), auto_now_add=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )

    history = AuditedHistory()

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-month", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(fee__gte=0), name="payment_fee_not_negative"),
            models.CheckConstraint(condition=Q(repayment__gte=0), name="payment_repayment_not_negative"),
            models.CheckConstraint(
                condition=Q(repayment=0) | Q(loan__isnull=False), name="payment_repayment_needs_loan"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "verified", "rejected"]), name="payment_status_known"
            ),
            models.UniqueConstraint(
                fields=["member", "month"],
                condition=~Q(status="rejected"),
                name="payment_one_per_member_and_month",
            ),
            models.UniqueConstraint(
                fields=["bitpin_id"],
                condition=~Q(status="rejected") & ~Q(bitpin_id=""),
                name="payment_bitpin_id_unique",
            ),
        ]
        indexes = [
            # Covering the amounts: a member's balance or last payment is read from the index
            # alone (the member list sorted by balance sums 10,000 members' fees in ~0.2 s, not ~0.9 s).
            models.Index(
                fields=["member", "status", "month"], include=["fee", "repayment"], name="payment_member_status_month"
            ),
            models.Index(fields=["month", "status"], name="payment_month_status"),
            models.Index(fields=["status", "next_attempt_at"], name="payment_status_next_attempt"),
            models.Index(fields=["loan", "status"], name="payment_loan_status"),
        ]

    def __str__(self) -> str:
        return _("%(member)s for %(month)s") % {"member": self.member_id and self.member.username, "month": self.month}

    @property
    def total(self) -> Decimal:
        return self.fee + self.repayment


class Draw(models.Model):
    """A month's draw. Exists only once it has run: a refused draw leaves no row (DESIGN.md §1)."""

    month = JalaliMonthField(_("month"), unique=True)
    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("winner"),
        on_delete=models.PROTECT,
        related_name="draws_won",
        null=True,
        blank=True,
    )
    loan = models.OneToOneField(
        Loan, verbose_name=_("loan"), on_delete=models.PROTECT, related_name="draw", null=True, blank=True
    )
    amount = AmountField(_("amount (USDT)"), default=Decimal("0"))
    fund_cash = AmountField(_("fund cash at the draw (USDT)"))
    seed = models.CharField(_("tie-break seed"), max_length=64)
    report = models.JSONField(_("report"), default=dict)
    # SHA-256 of the report's canonical form (fund/proof.py); the next draw's report carries it.
    report_hash = models.CharField(_("report hash (SHA-256)"), max_length=64, blank=True)
    triggered_by = models.CharField(_("triggered by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("run at"), auto_now_add=True)

    # A draw is never changed once run, so its history needs no second copy of the report: a row
    # per member, megabytes in a large fund, which would double the cost of writing every draw.
    history = AuditedHistory(excluded_fields=["report"])

    class Meta:
        verbose_name = _("draw")
        verbose_name_plural = _("draws")
        ordering = ["-month"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="draw_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(winner__isnull=True, loan__isnull=True) | Q(winner__isnull=False, loan__isnull=False),
                name="draw_winner_has_loan",
            ),
        ]

    def __str__(self) -> str:
        return _("Draw of %(month)s") % {"month": self.month}


class Reminder(models.Model):
    """A late-payment reminder sent; unique so a member is reminded at most once a month."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("member"), on_delete=models.CASCADE, related_name="reminders"
    )
    month = JalaliMonthField(_("month"))
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [models.UniqueConstraint(fields=["member", "month"], name="reminder_once_per_member_month")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.month}"


class ImportJob(models.Model):
    """A large spreadsheet import run by the background worker instead of the web request.

    The upload is kept only until the job has finished with it (checked and refused, or written):
    then ``content`` is emptied. What the page shows (summary, problems, first rows) is kept.
    """

    class State(models.TextChoices):
        CHECKING = "checking", _("checking")
        CHECKED = "checked", _("checked, waiting for confirmation")
        WRITING = "writing", _("writing")
        DONE = "done", _("imported")
        REFUSED = "refused", _("refused")

    kind = models.CharField(_("kind"), max_length=20)
    file_name = models.CharField(_("file name"), max_length=255)
    content = models.BinaryField(_("file content"), blank=True, default=b"")
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.CHECKING)
    rows = models.PositiveIntegerField(_("rows"), default=0)
    written = models.PositiveIntegerField(_("rows written"), default=0)
    outcome = models.JSONField(_("outcome"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last change"), auto_now=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")

    def __str__(self) -> str:
        return f"{self.kind}: {self.file_name}"


class Payout(CheckedWithBitpin):
    """USDT sent from the fund's wallet: a loan to its winner, or a refund to a member who leaves.

    Recorded by the operator with the Bitpin transfer id, checked with Bitpin like a payment
    (DESIGN.md, "Loan payout", "A member leaving"); only fund.payouts changes it.
    """

    class Kind(models.TextChoices):
        LOAN = "loan", _("loan payout")
        REFUND = "refund", _("refund")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("member"), on_delete=models.PROTECT, related_name="payouts"
    )
    loan = models.ForeignKey(
        Loan, verbose_name=_("loan"), on_delete=models.PROTECT, related_name="payouts", null=True, blank=True
    )
    amount = AmountField(_("amount (USDT)"))
    transfer_id = models.CharField(_("Bitpin transfer id"), max_length=100)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )

    history = AuditedHistory()

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "verified", "rejected"]), name="payout_status_known"
            ),
            models.CheckConstraint(
                condition=Q(kind="loan", loan__isnull=False) | Q(kind="refund", loan__isnull=True),
                name="payout_loan_only_for_loans",
            ),
            # One payout in play per loan and per leaving member: a rejected one may be recorded again.
            models.UniqueConstraint(
                fields=["loan"], condition=~Q(status="rejected") & Q(kind="loan"), name="payout_one_per_loan"
            ),
            models.UniqueConstraint(
                fields=["member"], condition=~Q(status="rejected") & Q(kind="refund"), name="payout_one_refund"
            ),
            models.UniqueConstraint(
                fields=["transfer_id"], condition=~Q(status="rejected"), name="payout_transfer_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="payout_status_next_attempt")]

    def __str__(self) -> str:
        return _("%(kind)s of %(amount)s USDT to %(member)s") % {
            "kind": self.get_kind_display(),
            "amount": self.amount,
            "member": self.member_id and self.member.username,
        }


class Reconciliation(models.Model):
    """A reading of the fund's Bitpin wallet compared with the ledger (DESIGN.md, "Reconciliation")."""

    class Source(models.TextChoices):
        BITPIN = "bitpin", _("read from Bitpin")
        TYPED = "typed", _("typed by the operator")

    taken_at = models.DateTimeField(_("taken at"), default=timezone.now, db_index=True)
    wallet_balance = AmountField(_("wallet balance (USDT)"))
    expected_balance = AmountField(_("expected wallet balance (USDT)"))
    difference = models.DecimalField(_("difference (USDT)"), max_digits=20, decimal_places=8)
    pending_inflows = AmountField(_("payments still pending (USDT)"), default=Decimal("0"))
    tolerance = AmountField(_("tolerance (USDT)"))
    flagged = models.BooleanField(_("difference beyond tolerance"), default=False)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("taken by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    taken_by_job = models.CharField(_("taken by job"), max_length=100, blank=True)

    history = AuditedHistory()

    class Meta:
        verbose_name = _("reconciliation")
        verbose_name_plural = _("reconciliations")
        ordering = ["-taken_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(wallet_balance__gte=0), name="reconciliation_wallet_not_negative"),
        ]

    def __str__(self) -> str:
        return _("Wallet reading of %(when)s") % {"when": self.taken_at}


class WorkerHeartbeat(models.Model):
    """When a worker last ran the heartbeat job: one row, written by ``fund.health.heartbeat``."""

    beat_at = models.DateTimeField(_("last heartbeat"))

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.beat_at.isoformat()


class SeedCommitment(models.Model):
    """A month's secret and its published SHA-256 (DESIGN.md, "Proof of the draw").

    Made at the start of the month (or on demand, see fund/proof.py) and never changed: the
    commitment is shown from then on, the secret only in the draw's report. The beacon round, when a
    public randomness beacon is configured, is fixed here too, before the month's payments close.
    """

    month = JalaliMonthField(_("month"), unique=True)
    commitment = models.CharField(_("commitment (SHA-256 of the secret)"), max_length=64)
    secret = models.CharField(_("secret"), max_length=64)
    created_at = models.DateTimeField(_("published at"), default=timezone.now)
    made_by = models.CharField(_("made by"), max_length=30, blank=True)
    beacon_url = models.URLField(_("randomness beacon"), blank=True)
    beacon_round = models.PositiveBigIntegerField(_("beacon round"), null=True, blank=True)

    # The audit trail shows when each commitment was made and by whom, never the secret itself.
    history = AuditedHistory(excluded_fields=["secret"])

    class Meta:
        verbose_name = _("seed commitment")
        verbose_name_plural = _("seed commitments")
        ordering = ["-month"]

    def __str__(self) -> str:
        return _("Seed commitment of %(month)s") % {"month": self.month}


# --- notifications (DESIGN.md, "Notifications") -----------------------------------------------------


class Channel(models.TextChoices):
    """Where a notification goes. NONE records one that nobody could receive (shown in the admin)."""

    EMAIL = "email", _("e-mail")
    TELEGRAM = "telegram", _("Telegram")
    BALE = "bale", _("Bale")
    NONE = "none", _("no channel")


CHAT_CHANNELS = (Channel.TELEGRAM, Channel.BALE)


class ChatLink(models.Model):
    """A member's Telegram or Bale chat, bound by a one-time ``/start`` token from their page.

    The token is kept until the bot receives it (or it expires); binding clears it, so a token
    works once. A chat the bot may no longer write to (blocked, deleted) is marked broken:
    nothing is sent there until the member links it again.
    """

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("member"), on_delete=models.CASCADE, related_name="chat_links"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices[1:3])
    chat_id = models.BigIntegerField(_("chat id"), null=True, blank=True)
    start_token = models.CharField(_("linking token"), max_length=64, null=True, blank=True, unique=True)
    token_expires_at = models.DateTimeField(_("linking token expires at"), null=True, blank=True)
    linked_at = models.DateTimeField(_("linked at"), null=True, blank=True)
    broken_at = models.DateTimeField(_("broken at"), null=True, blank=True)
    broken_reason = models.CharField(_("why it is broken"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("linked chat")
        verbose_name_plural = _("linked chats")
        ordering = ["member__username", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["member", "channel"], name="chatlink_one_per_member_channel"),
            # One chat speaks for one member: a second member cannot take over someone's chat.
            models.UniqueConstraint(
                fields=["channel", "chat_id"], condition=Q(chat_id__isnull=False), name="chatlink_chat_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.channel}"

    @property
    def is_linked(self) -> bool:
        return self.chat_id is not None

    @property
    def is_usable(self) -> bool:
        return self.chat_id is not None and self.broken_at is None


class ChannelOptOut(models.Model):
    """A channel the member chose not to be notified on (every channel is on by default)."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("member"), on_delete=models.CASCADE, related_name="channel_opt_outs"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices[:3])

    class Meta:
        verbose_name = _("channel turned off")
        verbose_name_plural = _("channels turned off")
        constraints = [models.UniqueConstraint(fields=["member", "channel"], name="channeloptout_once")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.channel}"


class Notification(models.Model):
    """The outbox: one message for one member on one channel, written with the event it tells of.

    Unique per (event, key, member, channel): an event fired twice writes nothing the second
    time, so nothing is sent twice. The worker delivers pending rows and records the outcome.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting to be sent")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        NOT_SENT = "not_sent", _("not sent: no channel configured")

    event = models.CharField(_("event"), max_length=40)
    key = models.CharField(
        _("event key"), max_length=80, help_text=_("Which occurrence of the event, e.g. a payment id.")
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=8, default="fa")
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    text = models.TextField(_("text"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("delivery attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next delivery attempt"), null=True, blank=True)
    last_error = models.TextField(_("last delivery error"), blank=True)
    created_at = models.DateTimeField(_("written"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "key", "member", "channel"], name="notification_once"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return _("Notification %(id)s") % {"id": self.pk}


class BotCursor(models.Model):
    """Where the polling job left off reading a bot's updates (getUpdates' offset), per channel."""

    channel = models.CharField(_("channel"), max_length=10, unique=True)
    offset = models.BigIntegerField(_("next update id"), default=0)

    class Meta:
        verbose_name = _("bot update cursor")
        verbose_name_plural = _("bot update cursors")

    def __str__(self) -> str:
        return f"{self.channel}: {self.offset}"
