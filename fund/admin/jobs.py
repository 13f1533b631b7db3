"""django-q2's admin in unfold's look, read by operators and inspectors alike (DESIGN.md: "Job
failures are visible"). Only operators may resubmit or delete jobs or edit schedules."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q import admin as q_admin
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.admin import ModelAdmin
from unfold.decorators import action

from fund.admin.base import RoleAdminMixin
from fund.admin.confirm import is_confirmed, render_confirmation

for model in (Schedule, Success, Failure, OrmQ):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class JobAdminMixin(RoleAdminMixin):
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
class ScheduleAdmin(RoleAdminMixin, q_admin.ScheduleAdmin, ModelAdmin):
    pass


if Conf.ORM or Conf.TESTING:

    @admin.register(OrmQ)
    class QueueAdmin(RoleAdminMixin, q_admin.QueueAdmin, ModelAdmin):
        pass
