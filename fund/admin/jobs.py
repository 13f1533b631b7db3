"""django-q2's admin in unfold's look, read by operators and inspectors alike (DESIGN.md: "Job
failures are visible"). Only operators may resubmit or delete jobs or edit schedules."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q import admin as q_admin
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from fund import tasks
from fund.admin.base import RoleAdminMixin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.schedules import SCHEDULES

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


class JobNamesMixin:
    """Jobs and schedules named by what they do; the function's path stays on the detail page."""

    def get_list_display(self, request: HttpRequest) -> tuple:
        names = {"func": "job_display", "name": "name_display", "short_result": "result_display"}
        return tuple(names.get(column, column) for column in super().get_list_display(request) if column != "id")

    @display(description=_("job"), ordering="func")
    def job_display(self, obj: object) -> str:
        func = getattr(obj, "func", "")
        return JOB_NAMES.get(func, func)

    @display(description=_("name"), ordering="name")
    def name_display(self, obj: object) -> object:
        name = obj.name() if callable(obj.name) else obj.name
        if name in SCHEDULE_NAMES:
            return SCHEDULE_NAMES[name]
        return format_html('<span translate="no">{}</span>', name or "—")  # a generated id, not words

    @display(description=_("result"))
    def result_display(self, obj: object) -> str:
        return failure_sentence(str(getattr(obj, "result", "") or ""))


def failure_sentence(result: str) -> str:
    """A failed job's error as a sentence: the worker stores the exception's text, or only its class."""
    if not result or " " in result.strip():
        return Truncator(result).chars(120) or "—"
    # The exception's class name is code, not words: kept left-to-right and marked as not to translate.
    sentence = str(_("The job stopped with an error (%(error)s); it is retried on its schedule."))
    before, _placeholder, after = sentence.partition("%(error)s")
    return format_html('{}<span translate="no" dir="ltr">{}</span>{}', before, result, after)


class JobAdminMixin(JobNamesMixin, RoleAdminMixin):
    actions = ("resubmit",)

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return False  # results are written by the worker; django-q2's own admin offers no add page either

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


@admin.register(Schedule)
class ScheduleAdmin(JobNamesMixin, RoleAdminMixin, q_admin.ScheduleAdmin, ModelAdmin):
    pass


if Conf.ORM or Conf.TESTING:

    @admin.register(OrmQ)
    class QueueAdmin(JobNamesMixin, RoleAdminMixin, q_admin.QueueAdmin, ModelAdmin):
        pass
