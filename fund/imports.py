"""Spreadsheet import and export of the fund's history (DESIGN.md, "Spreadsheet import").

Three kinds, each a django-import-export resource with the same columns for import and export:
members, past loans and past payments. The admin (fund.admin.imports) and the command
``import_history`` both run them, the command through ``run_import`` below.

How an import works, and why:
- Headers are accepted in English or Persian and normalised once (``before_import``).
- A whole-file check runs before any row is written: every cell is parsed by the resource's
  widgets (which share the foundation's parsing: JalaliMonth.parse, parse_amount) and the rules
  that span rows (duplicates, which loan a repayment repays, one loan at a time) are checked with
  the file and the database together. Each bad row gets its row number and a plain reason.
- The rows are then written with bulk inserts from the checked values; a file with any bad row
  writes nothing (``rollback_on_validation_errors`` is always on).
- After a payment import the loans' states are recomputed (fund.loans.recompute_states).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any, ClassVar

import tablib
from django.contrib.auth.hashers import make_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import resources, widgets
from import_export.fields import Field
from import_export.formats import base_formats
from import_export.results import Result, RowResult

from fund.jalali import JalaliMonth, to_ascii_digits
from fund.loans import check_repayments, history_loan, loans_of_members, recompute_states, settle_earlier_loans
from fund.models import FundConfig, Loan, Payment, User
from fund.money import ZERO, format_usdt, parse_amount

PREVIEW_ROWS = 50
BATCH_SIZE = 5000
LOOKUP_ALL_ABOVE = 2000  # more values than this: read the column once instead of IN (…) queries
ROW = NON_FIELD_ERRORS  # the key of a problem that concerns the row, not one cell

# Direction marks and the byte-order mark: invisible, common in Persian spreadsheets, never data.
_INVISIBLE = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Thousands separators are fine only in the right places: 1,234,567.5 yes; 1,5 or 1.000,5 no.
_GROUP_SEPARATORS = ",٬،"
# Unicode's control characters (category Cc): C0, DEL and C1. A regex: this runs for every cell.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_GROUPED = re.compile(r"^\d{1,3}(?:[,٬،]\d{3})+(?:[.٫]\d*)?$")
_TRUE = {"1", "yes", "y", "true", "t", "active", "بله", "بلی", "آری", "فعال", "درست"}
_FALSE = {"0", "no", "n", "false", "f", "inactive", "خیر", "نه", "غیرفعال", "غیر فعال", "نادرست"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, missing columns). For the person."""


# --- cells ------------------------------------------------------------------------------------------


def _visible(text: str) -> str:
    # The search first: most cells have no marks, and this runs for every cell of 100,000 rows.
    return _INVISIBLE.sub("", text) if _INVISIBLE.search(text) else text


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not _visible(value).strip())


def cell_text(value: Any) -> str:
    """A cell as text: XLSX numbers lose their ".0", invisible marks and stray spaces go."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return _visible(str(value)).strip()


def plain_cell_text(value: Any) -> str:
    """A text cell that may be stored: control characters (NUL above all, which PostgreSQL cannot
    store) are refused with a plain reason instead of failing in the database."""
    text = cell_text(value)
    if _CONTROL.search(text):
        raise ValueError(_("This cell contains a control character (such as NUL); remove it."))
    return text


def clean_month(value: Any, *, latest: JalaliMonth) -> JalaliMonth:
    """A month cell: 1403/05, 1403-5, ۱۴۰۳/۰۵, 140305, or a date cell; never after ``latest``."""
    if _is_blank(value):
        raise ValueError(_("Enter the month, like 1403/05."))
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        month = _month_of_date(value)
    elif isinstance(value, bool):
        raise ValueError(_("Write the month like 1403/05."))
    elif isinstance(value, int | float):
        month = _month_of_number(value)
    else:
        month = JalaliMonth.parse(_visible(str(value)))
    if month > latest:
        raise ValueError(
            _("%(month)s is in the future: the current month is %(current)s.") % {"month": month, "current": latest}
        )
    return month


def _month_of_date(day: dt.date) -> JalaliMonth:
    # A spreadsheet that read "1403-05" as a date keeps the Jalali year and month as typed;
    # a real (Gregorian) date stands for the Jalali month it falls in.
    if 1300 <= day.year <= 1600:
        return JalaliMonth(day.year, day.month)
    return JalaliMonth.from_date(day)


def _month_of_number(number: int | float) -> JalaliMonth:
    # Only the stored form 140305 is unambiguous; 1403.1 could be 1403/01 or 1403/10.
    if isinstance(number, float) and not number.is_integer():
        raise ValueError(_("Write the month as text, like 1403/05, not as the number %(value)s.") % {"value": number})
    if not 130001 <= number <= 160012:
        raise ValueError(_("Write the month like 1403/05."))
    return JalaliMonth.from_int(int(number))


def clean_amount(value: Any, *, required: bool = True, positive: bool = False) -> Decimal:
    """An amount cell, through the foundation's parse_amount; blank is 0 when not required."""
    if _is_blank(value):
        if required:
            raise ValueError(_("Enter an amount."))
        return ZERO
    if isinstance(value, dt.date | dt.datetime | dt.time):
        raise ValueError(_("A date is not an amount."))
    if isinstance(value, str):
        value = _visible(value)
        _check_grouping(value)
    amount = parse_amount(value)
    if positive and amount <= ZERO:
        raise ValueError(_("The amount must be more than 0."))
    return amount


def _check_grouping(text: str) -> None:
    """parse_amount drops thousands separators; refuse them where they cannot be thousands (1,5)."""
    if not any(sep in text for sep in _GROUP_SEPARATORS):
        return  # most cells: no separator at all
    compact = to_ascii_digits(text).strip().replace(" ", "").replace("\u00a0", "").replace("\u200c", "")
    if any(sep in compact for sep in _GROUP_SEPARATORS) and not _GROUPED.match(compact.lstrip("+-")):
        raise ValueError(
            _("“%(value)s” has its separators in the wrong places: write 1500 or 1.5.") % {"value": text.strip()[:40]}
        )


def clean_bool(value: Any) -> bool:
    if _is_blank(value):
        return True
    if isinstance(value, bool):
        return value
    text = cell_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(_("Write yes or no, not “%(value)s”.") % {"value": text[:40]})


def render_amount(value: Decimal | None) -> str:
    """Export form of an amount: plain digits, no grouping, at least two decimals (1234.50)."""
    return "" if value is None else format_usdt(value).replace(",", "")


# --- widgets (shared by import and export) ----------------------------------------------------------


class MonthWidget(widgets.Widget):
    def __init__(self) -> None:
        super().__init__(coerce_to_string=True)
        self.latest: JalaliMonth | None = None  # set per import: nothing after the current month

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> JalaliMonth:
        return clean_month(value, latest=self.latest or JalaliMonth.current())

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class AmountWidget(widgets.Widget):
    def __init__(self, *, required: bool = True, positive: bool = False) -> None:
        super().__init__(coerce_to_string=True)
        self.required, self.positive = required, positive

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> Decimal:
        return clean_amount(value, required=self.required, positive=self.positive)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return render_amount(value)


class TextWidget(widgets.Widget):
    def __init__(self, *, max_length: int, required: bool = False) -> None:
        super().__init__(coerce_to_string=True)
        self.max_length, self.required = max_length, required

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> str:
        text = plain_cell_text(value)
        if self.required and not text:
            raise ValueError(_("This cell is required."))
        if len(text) > self.max_length:
            raise ValueError(_("Use at most %(count)d characters.") % {"count": self.max_length})
        return text

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class BooleanWidget(widgets.Widget):
    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> bool:
        return clean_bool(value)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "yes" if value else "no"


class MemberWidget(widgets.Widget):
    """A member by username, looked up in a dict loaded once per import (no query per row)."""

    def __init__(self) -> None:
        super().__init__(coerce_to_string=True)
        self.directory: dict[str, User] | None = None

    def load(self) -> None:
        self.directory = {user.username: user for user in User.objects.all()}

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> User:
        if self.directory is None:
            self.load()
        assert self.directory is not None
        name = plain_cell_text(value)
        if not name:
            raise ValueError(_("Enter the member's username."))
        user = self.directory.get(name) or self.directory.get(to_ascii_digits(name))
        if user is None:
            raise ValueError(_("Unknown member “%(name)s”.") % {"name": name[:60]})
        if not user.is_member:
            raise ValueError(_("“%(name)s” is not a member of the fund.") % {"name": user.username})
        return user

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else value.username


# --- the checked file -------------------------------------------------------------------------------


@dataclass
class RowPlan:
    """One data row after the whole-file check: its values, or why it cannot be imported."""

    number: int
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    blank: bool = False

    def fail(self, column: str, message: str) -> None:
        self.errors.setdefault(column, []).append(str(message))

    @property
    def ok(self) -> bool:
        return not self.blank and not self.errors


class HistoryResult(Result):
    """An import's result plus what the preview and the command show: a summary and the first rows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary: list[str] = []
        self.preview_headers: list[str] = []
        self.preview_rows: list[tuple[int, list[str]]] = []

    def problem_rows(self) -> list[dict[str, Any]]:
        """Each bad row once, with every reason and its cells as written: what the preview lists."""
        return [
            {
                "number": row.number,
                "line": row.number + 1,
                "reasons": [
                    ("" if column == ROW else column, str(message))
                    for column, messages in row.error_dict.items()
                    for message in messages
                ],
                "cells": [cell_text(value) for value in row.values],
            }
            for row in self.invalid_rows
        ]

    @property
    def more_rows(self) -> int:
        """Good rows beyond the preview's first ones."""
        return max(self.totals["new"] - len(self.preview_rows), 0)


class LeanRowResult(RowResult):
    """A row result without the instance's text: str(payment) costs a translation per row, and the
    admin log entries that would show it are off (IMPORT_EXPORT_SKIP_ADMIN_LOG)."""

    def add_instance_info(self, instance: Any) -> None:
        self.object_id = getattr(instance, "pk", None)


class HistoryResource(resources.ModelResource):
    """What the three kinds share: headers, the whole-file check, bulk writing, summary and preview."""

    kind: ClassVar[str]
    # column → other names accepted in a header (English and Persian); REQUIRED must be present.
    HEADERS: ClassVar[dict[str, tuple[str, ...]]]
    REQUIRED: ClassVar[tuple[str, ...]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plans: list[RowPlan] = []
        self.to_write: list[RowPlan] = []
        self.file_name = ""
        self.note = ""
        self.user: User | None = None
        self.latest = JalaliMonth.current()

    @classmethod
    def get_result_class(cls) -> type[Result]:
        return HistoryResult

    @classmethod
    def get_row_result_class(cls) -> type[RowResult]:
        return LeanRowResult

    def import_data(self, dataset: tablib.Dataset, **kwargs: Any) -> Result:
        # All or nothing, whoever calls: a file with one bad row writes nothing (LIBRARIES.md).
        kwargs["rollback_on_validation_errors"] = True
        kwargs["use_transactions"] = True
        return super().import_data(dataset, **kwargs)

    # --- the whole-file check ---
    def before_import(self, dataset: tablib.Dataset, **kwargs: Any) -> None:
        self.file_name = PurePath(str(kwargs.get("file_name") or "")).name
        self.note = self.imported_note()
        user = kwargs.get("user")
        self.user = user if isinstance(user, User) and user.pk else None
        self.plans = []
        normalise_headers(dataset, self.HEADERS, self.REQUIRED)
        for field_ in self.fields.values():
            if isinstance(field_.widget, MonthWidget):
                field_.widget.latest = self.latest
            if isinstance(field_.widget, MemberWidget):
                field_.widget.load()
        rows = [dict(zip(dataset.headers, values, strict=False)) for values in dataset]
        self.plans = [self.parse_row(number, row) for number, row in enumerate(rows, 1)]
        self.check_file([plan for plan in self.plans if not plan.blank])
        if all(plan.ok or plan.blank for plan in self.plans):
            self.prepare_write()

    def parse_row(self, number: int, row: dict[str, Any]) -> RowPlan:
        plan = RowPlan(number)
        if all(_is_blank(value) for value in row.values()):
            plan.blank = True
            return plan
        for name, field_ in self.fields.items():
            try:
                plan.values[name] = field_.widget.clean(row.get(name))
            except ValueError as error:
                plan.fail(name, str(error))
        return plan

    def check_file(self, plans: list[RowPlan]) -> None:
        """Rules that span rows and the database; subclasses add theirs."""

    def prepare_write(self) -> None:
        """Changes to existing rows that the new rows need (run only when every row is good)."""

    # --- writing: the checked rows, all at once ---
    def _plan(self, row_number: int | None) -> RowPlan | None:
        if row_number is None or not 0 < row_number <= len(self.plans):
            return None
        return self.plans[row_number - 1]

    def import_row(self, row: dict, instance_loader: Any, **kwargs: Any) -> RowResult:
        # A good row was checked and parsed by the whole-file check: it is only counted here and
        # written with the others in bulk_create. Bad and blank rows take the library's way, which
        # reports them (import_instance below).
        plan = self._plan(kwargs.get("row_number"))
        if plan is None or not plan.ok:
            return super().import_row(row, instance_loader, **kwargs)
        self.to_write.append(plan)
        row_result = self.get_row_result_class()()
        row_result.import_type = RowResult.IMPORT_TYPE_NEW
        return row_result

    def bulk_create(
        self, using_transactions: bool, dry_run: bool, raise_errors: bool, batch_size: int | None = None, result=None
    ) -> None:
        """Write every good row in one go once all rows are counted (a dry run is rolled back)."""
        plans, self.to_write = self.to_write, []
        if not plans or not (using_transactions or not dry_run):
            return
        if any(plan.errors for plan in self.plans):
            return  # nothing of a file with a bad row is kept, so nothing is written
        try:
            self.write([plan.values for plan in plans])
        except Exception as error:  # a database refusal: reported for the file, as the library does
            # COPY fails outside Django's cursor wrapper, so Django does not know the transaction
            # is broken: roll back to the caller's savepoint, or every later query fails too.
            transaction.set_rollback(True)
            if isinstance(error, IntegrityError) or str(getattr(error, "sqlstate", "") or "").startswith("23"):
                error = ImportFileError(_written_meanwhile())
            self.handle_import_error(result, error, raise_errors)

    def write(self, rows: list[dict[str, Any]]) -> None:
        instances = []
        for values in rows:
            instance = self._meta.model()
            self.fill(instance, values)
            instances.append(instance)
        self._meta.model.objects.bulk_create(instances, batch_size=self._meta.batch_size)

    def import_instance(self, instance: Any, row: dict, **kwargs: Any) -> None:
        plan = self._plan(kwargs.get("row_number"))
        if plan is None or plan.blank:
            # No plan: the file itself was refused (its error is reported once, not per row).
            instance._saghat_skip = True
            return
        if plan.errors:
            raise ValidationError(plan.errors)
        self.fill(instance, plan.values)

    def fill(self, instance: Any, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def skip_row(self, instance: Any, original: Any, row: dict, import_validation_errors: Any = None) -> bool:
        # Blank lines (common at the end of a spreadsheet) are neither written nor reported.
        return getattr(instance, "_saghat_skip", False) and not import_validation_errors

    def after_import(self, dataset: tablib.Dataset, result: Result, **kwargs: Any) -> None:
        # No super(): import-export resets the id sequence to the largest id this transaction can
        # see, which moves it back below ids that concurrent submissions have taken, so their next
        # inserts collide on the primary key. Our files never carry ids: the sequence is always right.
        if isinstance(result, HistoryResult):
            good = [plan for plan in self.plans if plan.ok]
            result.summary = self.summary(good)
            result.preview_headers = self.preview_headers()
            result.preview_rows = [(plan.number, self.preview_row(plan.values)) for plan in good[:PREVIEW_ROWS]]
        if not result.has_validation_errors() and not result.has_errors():
            self.after_write()

    def after_write(self) -> None:
        """Work after a successful write (dry runs too: they are rolled back with the rest)."""

    def summary(self, good: list[RowPlan]) -> list[str]:
        return []

    def columns(self) -> list[tuple[str, Field]]:
        """The file's columns in their order (the same for import, export and the preview)."""
        return [(name, self.fields[name]) for name in self._meta.fields]

    def preview_headers(self) -> list[str]:
        return [field_.column_name for _name, field_ in self.columns()]

    def preview_row(self, values: dict[str, Any]) -> list[str]:
        return [field_.widget.render(values.get(name)) for name, field_ in self.columns()]

    def imported_note(self) -> str:
        return _("imported from %(file)s") % {"file": self.file_name} if self.file_name else _("imported")


def _header_key(text: Any) -> str:
    key = to_ascii_digits(cell_text(text)).lower().replace("ي", "ی").replace("ك", "ک").replace("\u200c", " ")
    return re.sub(r"[\s\-]+", "_", key).strip("_")


def normalise_headers(dataset: tablib.Dataset, headers: dict[str, tuple[str, ...]], required: Iterable[str]) -> None:
    """Rename accepted header spellings to the canonical column names; refuse missing or doubled ones."""
    names = {_header_key(alias): column for column, aliases in headers.items() for alias in (column, *aliases)}
    renamed = [names.get(_header_key(header), cell_text(header)) for header in dataset.headers or []]
    doubled = sorted({name for name in renamed if name in headers and renamed.count(name) > 1})
    if doubled:
        raise ImportFileError(_("The column “%(column)s” appears twice.") % {"column": doubled[0]})
    missing = [column for column in required if column not in renamed]
    if missing:
        raise ImportFileError(
            _("The file has no “%(missing)s” column. Its first line must name the columns: %(columns)s.")
            % {"missing": missing[0], "columns": ", ".join(headers)}
        )
    if renamed:
        dataset.headers = renamed


def _written_meanwhile() -> str:
    return _(
        "Some of these rows were written by someone else while this file was imported (another import "
        "or a payment): nothing was imported. Check the file again."
    )


def copy_rows(model: type[Model], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows with PostgreSQL's COPY. Each row gives database-ready values by attribute name
    (``member_id``, a month as its integer); a field it leaves out gets the field's default."""
    fields = [field_ for field_ in model._meta.concrete_fields if not field_.primary_key]
    defaults = {field_.attname: field_.get_db_prep_save(field_.get_default(), connection) for field_ in fields}
    names = [field_.attname for field_ in fields]
    columns = ", ".join(connection.ops.quote_name(field_.column) for field_ in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([row[name] if name in row else defaults[name] for name in names])


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_rows(plans: Iterable[RowPlan], key: Any, same: str) -> dict[Any, int]:
    """Flag every row whose ``key(plan)`` repeats an earlier row's; return key → first row number."""
    seen: dict[Any, int] = {}
    for plan in plans:
        value = key(plan)
        if value is None:
            continue
        if value in seen:
            plan.fail(ROW, _("Duplicate of row %(row)d (%(same)s).") % {"row": seen[value], "same": same})
        else:
            seen[value] = plan.number
    return seen


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
        use_bulk, batch_size, skip_diff, skip_html_diff = True, BATCH_SIZE, True, True
        force_init_instance, report_skipped, clean_model_instances = True, False, False

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
        first = _first_rows(plans, lambda plan: plan.values.get("username") or None, _("the same username"))
        taken = set()
        for chunk in _chunks(list(first)):
            taken.update(User.objects.filter(username__in=chunk).values_list("username", flat=True))
        for plan in plans:
            if plan.values.get("username") in taken:
                plan.fail("username", _("A user named “%(name)s” already exists.") % {"name": plan.values["username"]})

    def fill(self, instance: User, values: dict[str, Any]) -> None:
        instance.username = values["username"]
        instance.first_name, instance.last_name = values["first_name"], values["last_name"]
        instance.email, instance.loan_request_amount = values["email"], values["loan_request"]
        instance.is_active, instance.is_member = values["active"], True
        # Imported members log in after the operator sends them a set-password link.
        instance.password = make_password(None)

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        return queryset.filter(is_member=True)

    def summary(self, good: list[RowPlan]) -> list[str]:
        inactive = sum(1 for plan in good if not plan.values["active"])
        return [_("%(count)d members (%(inactive)d inactive).") % {"count": len(good), "inactive": inactive}]


# --- loans ------------------------------------------------------------------------------------------


@dataclass
class KnownLoan:
    """A loan as the whole-file check sees it: from the database or from the file."""

    member_id: int
    month: JalaliMonth
    amount: Decimal
    pk: int | None = None
    state: str = Loan.State.ACTIVE
    plan: RowPlan | None = None
    repaid: Decimal = ZERO  # running total while repayments are walked in month order

    def owed(self) -> Decimal:
        return self.amount - self.repaid


@dataclass(frozen=True)
class Repayment:
    loan_id: int
    member_id: int
    month: JalaliMonth
    amount: Decimal


def _loans_of(member_ids: Iterable[int]) -> dict[int, list[KnownLoan]]:
    loans: dict[int, list[KnownLoan]] = defaultdict(list)
    for chunk in _chunks(sorted(set(member_ids))):
        for pk, member_id, month, amount, state in Loan.objects.filter(member_id__in=chunk).values_list(
            "pk", "member_id", "month", "amount", "state"
        ):
            loans[member_id].append(KnownLoan(member_id, month, amount, pk=pk, state=state))
    return loans


def _repayments_of(member_ids: Iterable[int]) -> list[Repayment]:
    """Verified repayments already recorded for these members (only verified money counts)."""
    found = []
    for chunk in _chunks(sorted(set(member_ids))):
        rows = Payment.objects.filter(
            member_id__in=chunk, status=Payment.Status.VERIFIED, repayment__gt=0, loan__isnull=False
        ).values_list("loan_id", "member_id", "month", "repayment")
        found.extend(Repayment(*row) for row in rows)
    return found


class LoanResource(HistoryResource):
    kind = "loans"
    HEADERS = {
        "member": ("username", "user", "عضو", "نام کاربری"),
        "month": ("month granted", "granted", "ماه", "ماه دریافت", "ماه اعطا"),
        "amount": ("loan", "loan amount", "مبلغ", "مبلغ وام"),
    }
    REQUIRED = ("member", "month", "amount")

    member = Field(attribute="member", column_name="member", widget=MemberWidget())
    month = Field(attribute="month", column_name="month", widget=MonthWidget())
    amount = Field(attribute="amount", column_name="amount", widget=AmountWidget(positive=True))

    class Meta:
        model = Loan
        name = gettext_lazy("Loans")
        fields = ("member", "month", "amount")
        export_order = fields
        use_bulk, batch_size, skip_diff, skip_html_diff = True, BATCH_SIZE, True, True
        force_init_instance, report_skipped, clean_model_instances = True, False, False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.to_settle: list[int] = []
        self.config = FundConfig.load()

    def check_file(self, plans: list[RowPlan]) -> None:
        valid = [plan for plan in plans if "member" in plan.values and "month" in plan.values]
        _first_rows(
            valid, lambda plan: (plan.values["member"].pk, plan.values["month"]), _("the same member and month")
        )
        member_ids = {plan.values["member"].pk for plan in valid}
        loans = _loans_of(member_ids)
        for plan in valid:
            member, month = plan.values["member"], plan.values["month"]
            if any(loan.month == month for loan in loans[member.pk]):
                plan.fail(ROW, _("“%(name)s” already has a loan granted in %(month)s.") % {
                    "name": member.username, "month": month})  # fmt: skip
        self._check_still_repaid(valid, loans, _repayments_of(member_ids))
        self._decide_states([plan for plan in valid if plan.ok], loans)

    def _check_still_repaid(
        self, plans: list[RowPlan], loans: dict[int, list[KnownLoan]], repayments: list[Repayment]
    ) -> None:
        """A second loan while one is still being repaid, as far as the recorded payments show.

        Payments may be imported after the loans, so an earlier loan counts as still being repaid
        in month M only when it was not paid off before M and repayments to it are recorded in M
        or later. Missing evidence is checked when the payments are imported.
        """
        by_loan: dict[int, list[Repayment]] = defaultdict(list)
        for repayment in repayments:
            by_loan[repayment.loan_id].append(repayment)
        for plan in plans:
            member, month = plan.values["member"], plan.values["month"]
            for loan in loans[member.pk]:
                paid = by_loan.get(loan.pk or 0, [])
                before = sum((r.amount for r in paid if r.month < month), ZERO)
                if loan.month < month and before < loan.amount and any(r.month >= month for r in paid):
                    plan.fail(ROW, _(
                        "“%(name)s” was still repaying the loan of %(earlier)s in %(month)s "
                        "(its repayments continue after that); a member repays one loan at a time."
                    ) % {"name": member.username, "earlier": loan.month, "month": month})  # fmt: skip

    def _decide_states(self, plans: list[RowPlan], loans: dict[int, list[KnownLoan]]) -> None:
        """Only a member's latest loan can be active (one loan at a time): earlier ones were settled
        before it was granted. The payment import confirms the states from the repayments."""
        new_loans: dict[int, list[KnownLoan]] = defaultdict(list)
        for plan in plans:
            member = plan.values["member"]
            new_loans[member.pk].append(KnownLoan(member.pk, plan.values["month"], plan.values["amount"], plan=plan))
        self.to_settle = []
        for member_id, added in new_loans.items():
            latest = max([*loans[member_id], *added], key=lambda loan: loan.month)
            for loan in added:
                assert loan.plan is not None
                loan.plan.values["state"] = Loan.State.ACTIVE if loan is latest else Loan.State.SETTLED
            self.to_settle += [
                loan.pk for loan in loans[member_id] if loan is not latest and loan.state == Loan.State.ACTIVE
            ]

    def prepare_write(self) -> None:
        # The one-active-loan constraint: settle the earlier loan before the later one is written.
        settle_earlier_loans(self.to_settle)

    def fill(self, instance: Loan, values: dict[str, Any]) -> None:
        history_loan(
            instance, member_id=values["member"].pk, month=values["month"], amount=values["amount"],
            config=self.config, state=values.get("state", Loan.State.ACTIVE), note=self.note,
        )  # fmt: skip

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        return queryset.select_related("member")

    def summary(self, good: list[RowPlan]) -> list[str]:
        if not good:
            return [_("No loans.")]
        months = sorted(plan.values["month"] for plan in good)
        total = sum((plan.values["amount"] for plan in good), ZERO)
        return [
            _("%(count)d loans, %(total)s USDT in all, granted %(first)s–%(last)s.")
            % {"count": len(good), "total": format_usdt(total), "first": months[0], "last": months[-1]}
        ]


# --- payments ---------------------------------------------------------------------------------------


class PaymentResource(HistoryResource):
    kind = "payments"
    HEADERS = {
        "member": ("username", "user", "عضو", "نام کاربری"),
        "month": ("ماه",),
        "fee": ("membership fee", "membership_fee", "حق عضویت", "حق_عضویت"),
        "repayment": ("loan repayment", "loan_repayment", "instalment", "installment", "قسط", "قسط وام", "بازپرداخت"),
        "bitpin_id": ("bitpin", "bitpin id", "bitpin payment id", "payment id", "شناسه بیت پین", "شناسه پرداخت"),
    }
    REQUIRED = ("member", "month", "fee")

    member = Field(attribute="member", column_name="member", widget=MemberWidget())
    month = Field(attribute="month", column_name="month", widget=MonthWidget())
    fee = Field(attribute="fee", column_name="fee", widget=AmountWidget())
    repayment = Field(attribute="repayment", column_name="repayment", widget=AmountWidget(required=False))
    bitpin_id = Field(attribute="bitpin_id", column_name="bitpin_id", widget=TextWidget(max_length=100))

    class Meta:
        model = Payment
        name = gettext_lazy("Payments")
        fields = ("member", "month", "fee", "repayment", "bitpin_id")
        export_order = fields
        use_bulk, batch_size, skip_diff, skip_html_diff = True, BATCH_SIZE, True, True
        force_init_instance, report_skipped, clean_model_instances = True, False, False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repaying_members: set[int] = set()
        self.loan_months: dict[int, JalaliMonth] = {}
        self.now = timezone.now()

    def check_file(self, plans: list[RowPlan]) -> None:
        for plan in plans:
            if plan.values.get("fee") == ZERO and plan.values.get("repayment") == ZERO:
                plan.fail(ROW, _("A payment needs a membership fee or a loan repayment."))
        valid = [plan for plan in plans if "member" in plan.values and "month" in plan.values]
        _first_rows(
            valid, lambda plan: (plan.values["member"].pk, plan.values["month"]), _("the same member and month")
        )
        self._check_already_paid(valid)
        self._check_bitpin_ids(plans)
        self._tie_repayments([plan for plan in valid if plan.ok])
        # Under the loans' row locks, with the payments still waiting for Bitpin: the walk above
        # read the verified history only (fault 1 of issue 13).
        tied = sorted(
            (plan for plan in valid if plan.ok and plan.values.get("loan_id")), key=lambda p: p.values["month"]
        )
        refusals = check_repayments((plan.number, plan.values["loan_id"], plan.values["repayment"]) for plan in tied)
        for plan in tied:
            if plan.number in refusals:
                plan.fail("repayment", refusals[plan.number])

    def _check_already_paid(self, plans: list[RowPlan]) -> None:
        if not plans:
            return
        months = [plan.values["month"] for plan in plans]
        recorded = Payment.objects.exclude(status=Payment.Status.REJECTED).filter(
            month__gte=min(months), month__lte=max(months)
        )
        paid: set[tuple[int, JalaliMonth]] = set()
        # Only the file's members: a fund's other payments (millions in a large one) cannot clash.
        for chunk in _chunks(sorted({plan.values["member"].pk for plan in plans})):
            paid.update(recorded.filter(member_id__in=chunk).values_list("member_id", "month"))
        for plan in plans:
            member, month = plan.values["member"], plan.values["month"]
            if (member.pk, month) in paid:
                plan.fail(ROW, _("“%(name)s” already has a payment for %(month)s.") % {
                    "name": member.username, "month": month})  # fmt: skip

    def _check_bitpin_ids(self, plans: list[RowPlan]) -> None:
        first = _first_rows(plans, lambda plan: plan.values.get("bitpin_id") or None, _("the same Bitpin id"))
        in_use = Payment.objects.exclude(status=Payment.Status.REJECTED).exclude(bitpin_id="")
        used: set[str] = set()
        if len(first) > LOOKUP_ALL_ABOVE:
            # One pass over the ids in use beats hundreds of IN (…) queries for a large file.
            used.update(in_use.values_list("bitpin_id", flat=True).iterator(chunk_size=10_000))
        for chunk in _chunks(list(first)) if len(first) <= LOOKUP_ALL_ABOVE else ():
            used.update(in_use.filter(bitpin_id__in=chunk).values_list("bitpin_id", flat=True))
        for plan in plans:
            if plan.values.get("bitpin_id") in used:
                plan.fail("bitpin_id", _("The Bitpin id “%(id)s” is already used by another payment.") % {
                    "id": plan.values["bitpin_id"]})  # fmt: skip

    def _tie_repayments(self, plans: list[RowPlan]) -> None:
        """Tie each repayment to the loan active in its month, walking each member's months in order.

        The loan active in month M: granted before M (a loan is repaid from the month after it
        is granted) and not yet repaid by the repayments of the months before M — those already
        recorded (verified) and the earlier rows of this file. More than one such loan breaks the
        rule of one loan at a time.
        """
        repaying = [plan for plan in plans if plan.values["repayment"] > ZERO]
        self.repaying_members = {plan.values["member"].pk for plan in repaying}
        loans = _loans_of(self.repaying_members)
        self.loan_months = {loan.pk: loan.month for member_loans in loans.values() for loan in member_loans if loan.pk}
        by_pk = {loan.pk: loan for member_loans in loans.values() for loan in member_loans}
        events: dict[int, list[tuple[JalaliMonth, Repayment | RowPlan]]] = defaultdict(list)
        for recorded in _repayments_of(self.repaying_members):
            events[recorded.member_id].append((recorded.month, recorded))
        for plan in repaying:
            events[plan.values["member"].pk].append((plan.values["month"], plan))
        for member_id, member_events in events.items():
            last_row: RowPlan | None = None
            for month, event in sorted(member_events, key=lambda item: item[0]):
                if isinstance(event, Repayment):
                    if event.loan_id in by_pk:
                        by_pk[event.loan_id].repaid += event.amount
                else:
                    self._tie(event, month, loans[member_id])
                    last_row = event
            # Once a repayment of this member is refused the final positions mean nothing.
            if last_row is not None and all(plan.ok for _month, plan in member_events if isinstance(plan, RowPlan)):
                self._check_one_loan_owed(last_row, loans[member_id])

    def _tie(self, plan: RowPlan, month: JalaliMonth, loans: list[KnownLoan]) -> None:
        name, repayment = plan.values["member"].username, plan.values["repayment"]
        open_loans = [loan for loan in loans if loan.month < month and loan.owed() > ZERO]
        if not open_loans:
            plan.fail("repayment", _(
                "“%(name)s” had no loan being repaid in %(month)s "
                "(a loan is repaid from the month after it is granted, until it is paid off)."
            ) % {"name": name, "month": month})  # fmt: skip
        elif len(open_loans) > 1:
            granted = ", ".join(str(loan.month) for loan in sorted(open_loans, key=lambda loan: loan.month))
            plan.fail("repayment", _(
                "“%(name)s” owed on more than one loan in %(month)s (granted %(granted)s); "
                "a member repays one loan at a time."
            ) % {"name": name, "month": month, "granted": granted})  # fmt: skip
        elif repayment > open_loans[0].owed():
            plan.fail("repayment", _(
                "The repayment %(repayment)s is more than the %(owed)s USDT still owed on the loan of %(granted)s."
            ) % {"repayment": format_usdt(repayment), "owed": format_usdt(open_loans[0].owed()),
                 "granted": open_loans[0].month})  # fmt: skip
        else:
            open_loans[0].repaid += repayment
            plan.values["loan_id"] = open_loans[0].pk

    def _check_one_loan_owed(self, last_row: RowPlan, loans: list[KnownLoan]) -> None:
        """After the file a member may still owe on one loan at most (the one-active-loan rule)."""
        owed = sorted((loan for loan in loans if loan.owed() > ZERO), key=lambda loan: loan.month)
        if len(owed) > 1:
            last_row.fail(ROW, _(
                "After this file “%(name)s” would still owe on %(count)d loans (granted %(granted)s): "
                "the repayments that finish the loan of %(first)s are missing."
            ) % {"name": last_row.values["member"].username, "count": len(owed),
                 "granted": ", ".join(str(loan.month) for loan in owed), "first": owed[0].month})  # fmt: skip

    def write(self, rows: list[dict[str, Any]]) -> None:
        if connection.vendor != "postgresql":
            super().write(rows)
            return
        # PostgreSQL's COPY: every row was checked above, so the write is the database's fastest
        # (100,000 payments in about a second, where bulk_create takes five).
        user_id = self.user.pk if self.user else None
        copy_rows(
            Payment,
            (
                {
                    "member_id": values["member"].pk,
                    "month": int(values["month"]),
                    "fee": values["fee"],
                    "repayment": values["repayment"],
                    "loan_id": values.get("loan_id"),
                    "bitpin_id": values["bitpin_id"],
                    "status": Payment.Status.VERIFIED.value,
                    "source": Payment.Source.IMPORT.value,
                    "note": self.note,
                    "created_at": self.now,
                    "submitted_by_id": user_id,
                    "verified_by_id": user_id,
                    "verified_at": self.now,
                }  # fmt: skip
                for values in rows
            ),
        )

    def fill(self, instance: Payment, values: dict[str, Any]) -> None:
        # Ids, not objects: the relation descriptors cost more than the rest of the row.
        instance.member_id = values["member"].pk
        instance.month, instance.fee, instance.repayment = values["month"], values["fee"], values["repayment"]
        instance.loan_id = values.get("loan_id")
        instance.bitpin_id = values["bitpin_id"]
        instance.status, instance.source = Payment.Status.VERIFIED, Payment.Source.IMPORT
        instance.note = self.note
        instance.submitted_by_id = instance.verified_by_id = self.user.pk if self.user else None
        instance.verified_at = self.now

    def after_write(self) -> None:
        if self.repaying_members:
            recompute_states(loans_of_members(self.repaying_members))

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        # History is what was verified: pending and rejected payments would come back as verified.
        return queryset.filter(status=Payment.Status.VERIFIED).select_related("member")

    def preview_headers(self) -> list[str]:
        return [*super().preview_headers(), _("repays the loan of")]

    def preview_row(self, values: dict[str, Any]) -> list[str]:
        loan_month = self.loan_months.get(values.get("loan_id") or 0)
        return [*super().preview_row(values), str(loan_month) if loan_month else ""]

    def summary(self, good: list[RowPlan]) -> list[str]:
        if not good:
            return [_("No payments.")]
        months = sorted(plan.values["month"] for plan in good)
        fees = sum((plan.values["fee"] for plan in good), ZERO)
        repaid = [plan.values["repayment"] for plan in good if plan.values["repayment"] > ZERO]
        members = {plan.values["member"].pk for plan in good}
        return [
            _("%(count)d payments from %(members)d members, %(first)s–%(last)s.")
            % {"count": len(good), "members": len(members), "first": months[0], "last": months[-1]},
            _("Membership fees %(fees)s USDT; %(repayments)d loan repayments, %(repaid)s USDT.")
            % {"fees": format_usdt(fees), "repayments": len(repaid), "repaid": format_usdt(sum(repaid, ZERO))},
        ]


RESOURCES: dict[str, type[HistoryResource]] = {
    MemberResource.kind: MemberResource,
    LoanResource.kind: LoanResource,
    PaymentResource.kind: PaymentResource,
}


# --- the shared runner (the command; tests) ---------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A reason a file cannot be imported: a row's cell, a row, or (row None) the file itself."""

    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        where = _("row %(row)d (line %(line)d)") % {"row": self.row, "line": self.row + 1}
        if self.column and self.column != ROW:
            return f"{where}, {self.column}: {self.message}"
        return f"{where}: {self.message}"


@dataclass
class ImportOutcome:
    kind: str
    file_name: str
    dry_run: bool
    rows: int
    written: int
    problems: list[Problem]
    summary: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def problems_of(result: Result) -> list[Problem]:
    """Every problem of an import result, in row order: file errors first."""
    found = [Problem(None, "", _error_text(error.error)) for error in result.base_errors]
    for row in result.invalid_rows:
        for column, messages in row.error_dict.items():
            found += [Problem(row.number, column, str(message)) for message in messages]
    for row in result.error_rows:
        found += [Problem(row.number, "", _error_text(error.error)) for error in row.errors]
    return sorted(found, key=lambda problem: (problem.row is not None, problem.row or 0))


def _error_text(error: BaseException) -> str:
    if isinstance(error, ImportFileError | ValueError) or hasattr(error, "message"):
        return str(getattr(error, "message", error))
    return _("Unexpected error: %(error)s") % {"error": error}


def load_dataset(*, content: bytes, file_name: str) -> tablib.Dataset:
    """Read CSV (UTF-8) or XLSX by the file's extension. Raises ImportFileError with a plain reason."""
    suffix = PurePath(file_name).suffix.lower()
    try:
        if suffix == ".csv":
            return base_formats.CSV(encoding="utf-8-sig").create_dataset(content.decode("utf-8-sig"))
        if suffix == ".xlsx":
            return base_formats.XLSX().create_dataset(content)
    except UnicodeDecodeError:
        raise ImportFileError(_("The CSV file is not UTF-8 text; save it as “CSV UTF-8”.")) from None
    except Exception as error:  # tablib and openpyxl raise many kinds for a damaged file
        raise ImportFileError(_("The file could not be read: %(error)s") % {"error": str(error)[:200]}) from None
    raise ImportFileError(_("Use a .csv or .xlsx file, not “%(name)s”.") % {"name": file_name})


def run_import(
    *, kind: str, dataset: tablib.Dataset, file_name: str, dry_run: bool = False, user: User | None = None
) -> ImportOutcome:
    """Check and (unless ``dry_run``) write one file of history. Nothing is written when any row is bad."""
    if kind not in RESOURCES:
        raise ImportFileError(_("Unknown kind “%(kind)s”: use members, loans or payments.") % {"kind": kind})
    resource = RESOURCES[kind]()
    result = resource.import_data(dataset, dry_run=dry_run, file_name=file_name, user=user)
    problems = problems_of(result)
    if not problems and not any(plan.ok for plan in resource.plans):
        problems = [Problem(None, "", _("The file has no rows to import."))]
    written = 0 if problems or dry_run else result.totals["new"]
    summary = result.summary if isinstance(result, HistoryResult) else []
    return ImportOutcome(kind, file_name, dry_run, len(dataset), written, problems, summary)
