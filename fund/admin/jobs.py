"""django-q2's admin in unfold's look, read by operators and inspectors alike (DESIGN.md: "Job
failures are visible"). Only operators may resubmit or delete jobs or edit schedules."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q import admin as q_admin
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Schedule, Success, Task
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from fund import tasks
from fund.admin.base import RoleAdminMixin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import moment, month_label, typed
from fund.jalali import JalaliDateTimeFormField, JalaliMonth
from fund.schedules import SCHEDULES
from fund.templatetags.saghat import jdate

# What each job does, in the reader's language, instead of the function's dotted path.
JOB_NAMES = {
    **{func: _(name) for name, func, _minutes in SCHEDULES},  # each scheduled job by its schedule's name
    tasks.VERIFY_PAYMENT: _("Verify a payment with Bitpin"),
    tasks.SWEEP_PENDING_PAYMENTS: _("Retry pending Bitpin verifications"),
    tasks.RUN_DRAW: _("Run a month's draw"),
    tasks.AUTO_DRAW: _("Run the month's draw when everyone has paid"),
    tasks.SEND_REMINDERS: _("Remind members who have not paid"),
    tasks.PUBLISH_COMMITMENT: _("Publish the month's seed commitment"),
    tasks.VERIFY_PAYOUT: _("Verify a loan payout with Bitpin"),
    tasks.RECONCILE_WALLET: _("Compare the wallet with the ledger"),
    tasks.CHECK_IMPORT: _("Check an imported file"),
    tasks.WRITE_IMPORT: _("Write an imported file"),
    tasks.HEARTBEAT: _("Worker heartbeat"),
}
SCHEDULE_NAMES = {name: _(name) for name, _func, _minutes in SCHEDULES}  # stored in English, shown translated

for model in (Schedule, Success, Failure, OrmQ):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


def _job_title(job: Task | OrmQ) -> str:
    func = _field(job, "func")
    return str(JOB_NAMES.get(func, func))


# django-q2 names a job by a generated phrase ("juliet-oregon-four"), and a queued one "OrmQ object
# (1)": page titles, breadcrumbs and delete summaries name each by what it does instead.
Task.__str__ = _job_title
OrmQ.__str__ = _job_title
Schedule.__str__ = lambda schedule: str(SCHEDULE_NAMES.get(schedule.name) or schedule.name or _job_title(schedule))


class JobNamesMixin:
    """Jobs and schedules named by what they do; the function's path stays on the detail page."""

    def get_list_display(self, request: HttpRequest) -> tuple:
        names = {"func": "job_display", "name": "name_display", "short_result": "result_display"}
        return tuple(names.get(column, column) for column in super().get_list_display(request) if column != "id")

    def get_list_display_links(self, request: HttpRequest, list_display: tuple) -> tuple:
        return tuple(list_display[:1])  # django-q2 links its "id" and "name" columns, replaced above

    @display(description=_("job"), ordering="func")
    def job_display(self, obj: object) -> str:
        func = _field(obj, "func")
        return JOB_NAMES.get(func, func)

    @display(description=_("name"), ordering="name")
    def name_display(self, obj: object) -> object:
        name = _field(obj, "name")
        if name in SCHEDULE_NAMES:
            return SCHEDULE_NAMES[name]
        return format_html('<span translate="no">{}</span>', name or "—")  # a generated id, not words

    @display(description=_("result"))
    def result_display(self, obj: object) -> str:
        return failure_sentence(str(getattr(obj, "result", "") or ""))

    @display(description=_("arguments"))
    def arguments_display(self, obj: object) -> str:
        return arguments_summary(_field(obj, "func"), _field(obj, "args") or (), _field(obj, "kwargs") or {})


def _field(obj: object, name: str) -> Any:
    """A job's field: a column of a finished job, a method reading the payload of a queued one."""
    value = getattr(obj, name, None)
    return value() if callable(value) else value


# What each job's arguments are, in order (fund.tasks): shown as "payment: 12", not as a Python tuple.
ARGUMENT_NAMES = {
    tasks.VERIFY_PAYMENT: (_("payment"),),
    tasks.VERIFY_PAYOUT: (_("payout"),),
    tasks.RUN_DRAW: (_("month"), _("started by")),
    tasks.CHECK_IMPORT: (_("import"),),
    tasks.WRITE_IMPORT: (_("import"),),
}


def arguments_summary(func: str, args: tuple | list, kwargs: dict) -> str:
    """A job's arguments for people: each named by what it is, months as months, text as written."""
    if not args and not kwargs:
        return str(_("none"))
    names = ARGUMENT_NAMES.get(func, ())
    parts = [
        format_html("{}: {}", names[index], _argument(value)) if index < len(names) else _argument(value)
        for index, value in enumerate(args)
    ]
    parts += [
        format_html('<span translate="no" dir="ltr">{}</span>: {}', key, _argument(v)) for key, v in kwargs.items()
    ]
    return format_html_join(" · ", "{}", ((part,) for part in parts))


def _argument(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return format_html('<span translate="no" dir="ltr">{}</span>', repr(value))
    if isinstance(value, int):
        return str(value)
    try:
        return month_label(JalaliMonth.parse(value))
    except ValueError:
        return typed(value)


def _sentence_with_code(sentence: str, code: str) -> str:
    """``sentence`` with its placeholder replaced by ``code``: kept left-to-right, not translated."""
    before, after = re.split(r"%\(\w+\)s", sentence, maxsplit=1)
    return format_html('{}<span translate="no" dir="ltr">{}</span>{}', before, code, after)


TRACEBACK = " : Traceback"  # the worker stores a failure as f"{error} : {traceback}"


def failure_sentence(result: str) -> str:
    """A failed job's error as a sentence: the worker stores the exception's text (or only its class),
    then " : " and the traceback, which the job's page shows apart."""
    error = result.partition(TRACEBACK)[0].strip()
    if not error:
        return "—"
    # The exception's text is the program's, not words for people: kept as written, inside a sentence.
    sentence = str(_("The job stopped with an error (%(error)s); it is retried on its schedule."))
    return _sentence_with_code(sentence, Truncator(error).chars(120))


def outcome_sentence(result: object) -> str:
    """A finished job's result as a sentence: a count, nothing, or the note the job wrote."""
    if result is None or result == "":
        return str(_("Done."))
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        return str(_("Done; the job's count: %(count)s.") % {"count": result})
    sentence = str(_("Done; the job's note: %(note)s"))
    return _sentence_with_code(sentence, Truncator(str(result)).chars(300))


class JobAdminMixin(JobNamesMixin, RoleAdminMixin):
    actions = ("resubmit",)
    # A job's page in words: what it did, with what, when, and how it ended (django-q2 shows the
    # pickled arguments and result as Python). The function's path and a failure's traceback stay
    # as written, for whoever fixes the program.
    fields = (
        "job_display",
        "name_display",
        "arguments_display",
        ("started_display", "stopped_display"),
        "outcome_display",
        "attempt_count",
        "func_display",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple:
        return tuple(field for row in self.fields for field in (row if isinstance(row, tuple) else (row,)))

    @display(description=_("started at"))
    def started_display(self, obj: object) -> object:
        return moment(obj.started)

    @display(description=_("finished at"))
    def stopped_display(self, obj: object) -> object:
        return moment(obj.stopped)

    @display(description=_("function"))
    def func_display(self, obj: object) -> str:
        return format_html('<span translate="no" dir="ltr">{}</span>', obj.func)

    @display(description=_("result"))
    def outcome_display(self, obj: object) -> str:
        if obj.success:
            return outcome_sentence(obj.result)
        error, traceback, rest = str(obj.result or "").partition(TRACEBACK)
        if not traceback:
            return failure_sentence(error)
        return format_html(
            '{}<pre dir="ltr" class="mt-2 overflow-x-auto text-xs">{}</pre>',
            failure_sentence(error),
            "Traceback" + rest,
        )

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return False  # results are written by the worker; django-q2's own admin offers no add page either

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a job's record is read (and resubmitted or deleted), never edited: no save buttons

    @action(description=_("Resubmit the selected jobs to the queue"), permissions=["operate"])
    def resubmit(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        jobs = list(queryset)
        if not is_confirmed(request):
            return render_confirmation(
                request,
                self,
                title=_("Resubmit jobs"),
                question=_("Run these jobs again? Each runs once more in the worker."),
                objects=jobs,
                bulk_action="resubmit",
                submit_label=_("Resubmit"),
            )
        q_admin.resubmit_task(self, request, queryset)
        count = len(jobs)
        self.message_user(
            request,
            ngettext("%(count)d job resubmitted.", "%(count)d jobs resubmitted.", count) % {"count": count},
            messages.SUCCESS,
        )
        return None


@admin.register(Success)
class SuccessAdmin(JobAdminMixin, q_admin.TaskAdmin, ModelAdmin):
    pass


@admin.register(Failure)
class FailureAdmin(JobAdminMixin, q_admin.FailAdmin, ModelAdmin):
    pass


class ScheduleForm(forms.ModelForm):
    """A schedule in the operator's words: the job chosen by what it does, the next run as a Jalali
    date and Tehran time. Arguments, hooks and clusters (none of Saghat's jobs takes them) stay as stored."""

    func = forms.ChoiceField(label=_("job"), widget=UnfoldAdminSelectWidget)
    next_run = JalaliDateTimeFormField(
        label=Schedule._meta.get_field("next_run").verbose_name,
        widget=UnfoldAdminTextInputWidget(attrs={"dir": "ltr", "maxlength": 40, "placeholder": "1405/09/11 14:30"}),
        help_text=_("A Jalali date and a Tehran time, like 1405/09/11 14:30 (Persian or Latin digits)."),
    )

    class Meta:
        model = Schedule
        # No "cron": Saghat does not install croniter, without which django-q2 cannot run such a schedule.
        fields = ("name", "func", "schedule_type", "minutes", "repeats", "next_run")
        help_texts = {
            "name": _("A name to tell this schedule apart in the lists."),
            "minutes": _("For the “minutes” type only: how many minutes between two runs."),
            "repeats": _("How many more times the job runs; −1 runs it for ever."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "func" in self.fields:  # an inspector's form has no fields: they read, the admin shows values
            choices = [(func, str(name)) for func, name in JOB_NAMES.items()]
            current = self.instance.func if self.instance.pk else ""
            if current and current not in JOB_NAMES:  # made outside Saghat: kept, shown as its path
                choices.append((current, current))
            self.fields["func"].choices = choices
        if "schedule_type" in self.fields:
            types = self.fields["schedule_type"]
            types.choices = [choice for choice in types.choices if choice[0] != Schedule.CRON]


@admin.register(Schedule)
class ScheduleAdmin(JobNamesMixin, RoleAdminMixin, q_admin.ScheduleAdmin, ModelAdmin):
    form = ScheduleForm
    fields = ScheduleForm.Meta.fields

    def get_fields(self, request: HttpRequest, obj: Schedule | None = None) -> tuple:
        shown = {}
        # Saghat's own schedules are found by their stored name (fund.schedules): shown translated, not renamed.
        if obj is not None and obj.name in SCHEDULE_NAMES:
            shown["name"] = "name_display"
        if not self.has_change_permission(request, obj):  # a reader sees the job by name, not its path
            shown["func"] = "job_display"
        return tuple(shown.get(field, field) for field in self.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Schedule | None = None) -> tuple:
        return (*super().get_readonly_fields(request, obj), "name_display", "job_display")


if Conf.ORM or Conf.TESTING:

    @admin.register(OrmQ)
    class QueueAdmin(JobNamesMixin, RoleAdminMixin, q_admin.QueueAdmin, ModelAdmin):
        # The queue's rows hold a signed payload: shown as the job, its arguments and when it was queued.
        list_display = ("queued_display", "arguments_display", "lock_display")
        list_filter = ()  # the cluster's key: one value, a name in code
        fields = ("queued_display", "arguments_display", "lock_display")
        readonly_fields = fields

        def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
            return False  # jobs are queued by Saghat, never typed in

        def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
            return False  # a queued job is read or deleted, not edited

        @display(description=_("queued job"))
        def queued_display(self, obj: OrmQ) -> str:
            return _("%(job)s, queued at %(at)s") % {"job": self.job_display(obj), "at": jdate(obj.task.get("started"))}

        @display(description=OrmQ._meta.get_field("lock").verbose_name)
        def lock_display(self, obj: OrmQ) -> object:
            return moment(obj.lock)
