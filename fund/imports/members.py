"""The members import: usernames, names, email, loan request, active."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export.fields import Field

from fund.imports.base import BATCH_SIZE, HistoryResource, RowPlan, chunks, first_rows
from fund.imports.cells import AmountWidget, BooleanWidget, TextWidget
from fund.members import create_members
from fund.models import User

# --- members ----------------------------------------------------------------------------------------


class MemberResource(HistoryResource):
    kind = "members"
    HEADERS = {
        "username": ("user", "user name", "member", "نام کاربری", "کاربر", "عضو"),
        "first_name": ("first name", "name", "نام"),
        "last_name": ("last name", "surname", "family name", "نام خانوادگی"),
        "email": ("e-mail", "email address", "ایمیل", "رایانامه", "پست الکترونیک"),
        "loan_request": ("loan request", "loan_request_amount", "درخواست وام"),
        "active": ("is_active", "فعال"),
    }
    REQUIRED = ("username",)

    username = Field(attribute="username", column_name="username", widget=TextWidget(max_length=150, required=True))
    first_name = Field(attribute="first_name", column_name="first_name", widget=TextWidget(max_length=150))
    last_name = Field(attribute="last_name", column_name="last_name", widget=TextWidget(max_length=150))
    email = Field(attribute="email", column_name="email", widget=TextWidget(max_length=254))
    loan_request = Field(
        attribute="loan_request_amount", column_name="loan_request", widget=AmountWidget(required=False)
    )
    active = Field(attribute="is_active", column_name="active", widget=BooleanWidget())

    class Meta:
        model = User
        name = gettext_lazy("Members")
        fields = ("username", "first_name", "last_name", "email", "loan_request", "active")
        export_order = fields

    def check_file(self, plans: list[RowPlan]) -> None:
        validate_username = UnicodeUsernameValidator()
        for plan in plans:
            username, email = plan.values.get("username"), plan.values.get("email")
            if username:
                try:
                    validate_username(username)
                except ValidationError:
                    plan.fail("username", _("A username may hold letters, digits and @ . + - _ only."))
            if email:
                try:
                    validate_email(email)
                except ValidationError:
                    plan.fail("email", _("“%(value)s” is not an email address.") % {"value": email[:60]})
        first = first_rows(plans, lambda plan: plan.values.get("username") or None, _("the same username"))
        taken = set()
        for chunk in chunks(list(first)):
            taken.update(User.objects.filter(username__in=chunk).values_list("username", flat=True))
        for plan in plans:
            if plan.values.get("username") in taken:
                plan.fail("username", _("A user named “%(name)s” already exists.") % {"name": plan.values["username"]})

    def write(self, rows: list[dict[str, Any]]) -> None:
        members = []
        for values in rows:
            members.append(User())
            self.fill(members[-1], values)
        # Imported members log in after the operator sends them a set-password link.
        create_members(members, batch_size=BATCH_SIZE)

    def fill(self, instance: User, values: dict[str, Any]) -> None:
        instance.username = values["username"]
        instance.first_name, instance.last_name = values["first_name"], values["last_name"]
        instance.email, instance.loan_request_amount = values["email"], values["loan_request"]
        instance.is_active, instance.is_member = values["active"], True

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        return queryset.filter(is_member=True)

    def summary(self, good: list[RowPlan]) -> list[str]:
        inactive = sum(1 for plan in good if not plan.values["active"])
        return [_("%(count)d members (%(inactive)d inactive).") % {"count": len(good), "inactive": inactive}]
