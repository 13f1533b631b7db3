"""Members in the back office: the list with each member's standing, creation without a password,
the set-password link to send them, their statement, and their payments and loans."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.tokens import default_token_generator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.html import format_html
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.decorators import action, display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminTextInputWidget

from fund import ledger, members, payments, payouts, statement
from fund.admin.base import FundModelAdmin, ReadOnlyInlineMixin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import badge, change_link, money, month_label, person
from fund.admin.filters import HasActiveLoanFilter, PaidThisMonthFilter
from fund.admin.imports import MemberImportExportMixin
from fund.admin.payments import STATUS_LABELS
from fund.admin.payouts import MemberPayoutInline
from fund.jalali import JalaliMonth
from fund.models import Loan, Payment, User
from fund.templatetags.saghat import usdt


class MemberCreationForm(forms.ModelForm):
    """A new member without a password: the operator sends them a link to choose their own."""

    class Meta:
        model = User
        fields = ("username", "first_name", "last_name", "email", "is_member", "loan_request_amount")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["is_member"].initial = True

    def save(self, commit: bool = True) -> User:
        # Nobody, the operator included, knows this member's password until they choose one.
        user = super().save(commit=False)
        return members.create_member(user) if commit else user


class MemberChangeForm(UserChangeForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        amount = cleaned.get("loan_request_amount")
        if amount and not (cleaned.get("is_active") and cleaned.get("is_member")):
            self.add_error("loan_request_amount", _("Only an active member can ask for a loan: set it to 0."))
        return cleaned


class LeavingForm(forms.Form):
    transfer_id = forms.CharField(
        label=_("Bitpin transfer id of the refund"),
        max_length=100,
        widget=UnfoldAdminTextInputWidget(attrs={"dir": "ltr", "autocomplete": "off"}),
        help_text=_("Send the refund from the fund's Bitpin wallet first, then enter the transfer's id."),
    )

    def __init__(self, *args: Any, refund: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not refund:
            del self.fields["transfer_id"]  # nothing to send


def set_password_url(request: HttpRequest, user: User) -> str:
    """The member's one-time link to choose a password (Django's token: void once used or expired)."""
    path = reverse(
        "password-set",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return request.build_absolute_uri(path)


class MemberPaymentInline(ReadOnlyInlineMixin, TabularInline):
    model = Payment
    fk_name = "member"
    verbose_name_plural = _("payments (newest first)")
    fields = ("month_display", "fee_display", "repayment_display", "status_display", "source", "bitpin_id")
    readonly_fields = fields
    ordering = ("-month", "-id")

    @display(description=_("month"))
    def month_display(self, obj: Payment) -> Any:
        return change_link(obj, month_label(obj.month))

    @display(description=_("membership fee (USDT)"))
    def fee_display(self, obj: Payment) -> Any:
        return money(obj.fee)

    @display(description=_("loan repayment (USDT)"))
    def repayment_display(self, obj: Payment) -> Any:
        return money(obj.repayment)

    @display(description=_("status"))
    def status_display(self, obj: Payment) -> Any:
        return badge(obj.status, obj.get_status_display(), STATUS_LABELS)


class MemberLoanInline(ReadOnlyInlineMixin, TabularInline):
    model = Loan
    verbose_name_plural = _("loans (newest first)")
    fields = ("month_display", "amount_display", "remaining_display", "state")
    readonly_fields = fields
    ordering = ("-month", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Loan]:
        return ledger.with_repaid(super().get_queryset(request))

    @display(description=_("month granted"))
    def month_display(self, obj: Loan) -> Any:
        return change_link(obj, month_label(obj.month))

    @display(description=_("amount (USDT)"))
    def amount_display(self, obj: Loan) -> Any:
        return money(obj.amount)

    @display(description=_("remaining (USDT)"))
    def remaining_display(self, obj: Loan) -> Any:
        return money(getattr(obj, "remaining", None))


@admin.register(User)
class MemberAdmin(FundModelAdmin, BaseUserAdmin, MemberImportExportMixin):
    form = MemberChangeForm
    add_form = MemberCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = (
        "member_display",
        "balance_display",
        "loan_remaining_display",
        "loan_request_display",
        "paid_display",
        "is_active",
    )
    list_filter = (PaidThisMonthFilter, HasActiveLoanFilter, "is_active", "is_member", "is_main")
    search_fields = ("username", "first_name", "last_name", "email")
    ordering = ("username",)
    list_per_page = 50
    inlines = (MemberPaymentInline, MemberLoanInline, MemberPayoutInline)
    readonly_fields = ("standing_display", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "standing_display")}),
        (_("Person"), {"fields": ("first_name", "last_name", "email")}),
        (_("In the fund"), {"fields": ("is_member", "loan_request_amount")}),
        (
            _("Roles"),
            {
                "fields": ("is_active", "is_main", "is_staff", "groups"),
                "description": _(
                    "Operators need both “operator” and “staff status”. Inspectors need “staff status” "
                    "and the Inspectors group: they read everything and change nothing."
                ),
            },
        ),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "fields": ("username", "first_name", "last_name", "email", "is_member", "loan_request_amount"),
                "description": _("No password: after saving you get a link the member opens to choose one."),
            },
        ),
    )
    actions_row = ("set_password_link",)
    actions_detail = ("set_password_link", "statement_page", "statement_download", "leave_fund")

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "groups":
            # A handful of roles: ticks read better than a two-list selector.
            kwargs["widget"] = UnfoldAdminCheckboxSelectMultipleWidget
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: User | None) -> tuple:
        return self.inlines if obj is not None else ()  # a new member has no history yet

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return ledger.members_with_standing(JalaliMonth.current(), super().get_queryset(request))

    # --- list columns ------------------------------------------------------------------------

    @display(description=_("member"), ordering="username")
    def member_display(self, obj: User) -> Any:
        return person(obj)

    @display(description=_("balance (USDT)"), ordering="balance")
    def balance_display(self, obj: User) -> Any:
        return money(obj.balance)

    @display(description=_("active loan remaining (USDT)"), ordering="active_loan_remaining")
    def loan_remaining_display(self, obj: User) -> Any:
        return money(obj.active_loan_remaining) if obj.active_loan_remaining is not None else "—"

    @display(description=_("loan request (USDT)"), ordering="loan_request_amount")
    def loan_request_display(self, obj: User) -> Any:
        return money(obj.loan_request_amount)

    @display(description=_("paid this month"), boolean=True, ordering="paid_this_month")
    def paid_display(self, obj: User) -> bool:
        return obj.paid_this_month

    @display(description=_("standing"))
    def standing_display(self, obj: User) -> Any:
        if obj.pk is None:
            return "—"
        if obj.left_at is not None and not obj.is_active:
            return format_html("{} · {} {} USDT", _("Left the fund"), _("Balance"), money(obj.balance))
        if obj.is_leaving:
            return format_html(
                "{} · {} {} USDT", _("Leaving: the refund is being checked"), _("Balance"), money(obj.balance)
            )
        if obj.active_loan_remaining is None:
            loan = _("no active loan")
        else:
            loan = format_html("{} {} USDT", _("active loan remaining"), money(obj.active_loan_remaining))
        return format_html(
            "{} {} USDT · {} · {}",
            _("Balance"),
            money(obj.balance),
            loan,
            _("paid this month") if obj.paid_this_month else _("not paid this month"),
        )

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            members.create_member(obj)
            return
        if "loan_request_amount" in form.changed_data:
            # The loan request changes through the same service as on the member page, first: the
            # member may be leaving the fund in this same form (an inactive member asks nothing).
            updated = payments.change_loan_request(member=obj, amount=obj.loan_request_amount)
            obj.loan_request_amount = updated.loan_request_amount
        members.save_member(obj)

    # --- creation: no password, then the link ---------------------------------------------------

    def response_add(self, request: HttpRequest, obj: User, post_url_continue: str | None = None) -> HttpResponse:
        if "_popup" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        return HttpResponseRedirect(reverse("admin:fund_user_set_password_link", args=(obj.pk,)))

    @action(description=_("Set-password link"), icon="key", permissions=["operate"], url_path="set-password-link")
    def set_password_link(self, request: HttpRequest, object_id: str) -> HttpResponse:
        # Making a token writes nothing (it is derived from the user's state), so GET is right here.
        user = get_object_or_404(User, pk=object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Set-password link for %(user)s") % {"user": user},
            "member": user,
            "link": set_password_url(request, user),
            "opts": self.model._meta,
            "original": user,
        }
        return TemplateResponse(request, "admin/fund/user/set_password_link.html", context)

    # --- statement -----------------------------------------------------------------------------

    @action(description=_("Statement"), icon="receipt_long", permissions=["view"], url_path="statement")
    def statement_page(self, request: HttpRequest, object_id: str) -> HttpResponse:
        member = get_object_or_404(User, pk=object_id)
        rows = statement.statement_rows(member)
        context = {
            "member": member,
            "config": ledger.fund_config(),
            "rows": rows,
            "totals": statement.statement_totals(rows),
            "csv_url": reverse("admin:fund_user_statement_download", args=(member.pk,)),
            "back_url": reverse("admin:fund_user_change", args=(member.pk,)),
        }
        return render(request, "fund/statement.html", context)

    @action(description=_("Statement (CSV)"), icon="download", permissions=["view"], url_path="statement-csv")
    def statement_download(self, request: HttpRequest, object_id: str) -> HttpResponse:
        member = get_object_or_404(User, pk=object_id)
        response = HttpResponse(statement.statement_csv(member), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{statement.statement_filename(member)}"'
        return response

    # --- a member leaving (DESIGN.md, "A member leaving") ---------------------------------------------

    def has_leave_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        """The "Leaves the fund" button: for operators, on an active member."""
        if not self.has_operate_permission(request):
            return False
        return object_id is None or User.objects.filter(pk=object_id, is_active=True, is_member=True).exists()

    @action(description=_("Leaves the fund"), icon="logout", permissions=["leave"], url_path="leave")
    def leave_fund(self, request: HttpRequest, object_id: str) -> HttpResponse:
        member = get_object_or_404(User, pk=object_id)
        quote = payouts.leaving_quote(member)
        if quote.refusal:
            self.message_user(request, quote.refusal, messages.ERROR)
            return redirect("admin:fund_user_change", member.pk)
        form = LeavingForm(request.POST if is_confirmed(request) else None, refund=quote.refund > 0)
        if form.is_valid():
            try:
                refund = payouts.record_leaving(
                    member=member, transfer_id=form.cleaned_data.get("transfer_id", ""), by=request.user
                )
            except payouts.PayoutRefused as refused:
                form.add_error(refused.field if refused.field in form.fields else None, refused.message)
            else:
                if refund is None:
                    text = _("%(member)s has left the fund: there was nothing to refund.")
                else:
                    text = _(
                        "%(member)s is leaving; the refund is checked with Bitpin and they become inactive once it is verified."
                    )
                self.message_user(request, text % {"member": member.username}, messages.SUCCESS)
                return redirect("admin:fund_user_change", member.pk)
        values = {"refund": usdt(quote.refund), "cash": usdt(quote.fund_cash)}
        return render_confirmation(
            request,
            self,
            title=_("A member leaves the fund"),
            question=_("Does %(member)s leave the fund?") % {"member": member.get_full_name() or member.username},
            form=form,
            details=[
                _("Refund: %(refund)s USDT (their balance).") % values,
                _("Fund cash: %(cash)s USDT, which covers the refund.") % values,
                _(
                    "From now on they are out of the draws, owe no fees and cannot pay. Once the refund is "
                    "verified they become inactive with a balance of 0; their history stays."
                ),
            ],
            submit_label=_("Record the leaving"),
            danger=True,
            cancel_url=reverse("admin:fund_user_change", args=(member.pk,)),
        )
