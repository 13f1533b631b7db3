"""Notifications in the back office: the outbox (with "send again") and who has linked which chat.

Both are read-only lists: rows are written by fund.notifications and fund.bot only. The outbox
list never counts the whole table (a draw writes a row per member and channel).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, DropdownFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from fund import notifications
from fund.admin.base import RoleAdminMixin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import badge, moment, person, typed
from fund.models import ChatLink, Notification

STATUS_LABELS = {
    Notification.Status.PENDING: "warning",
    Notification.Status.SENT: "success",
    Notification.Status.FAILED: "danger",
    Notification.Status.NOT_SENT: "default",
}


class EventFilter(DropdownFilter):
    title = _("event")
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(kind, str(label)) for kind, label in notifications.EVENT_LABELS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(event=self.value()) if self.value() else queryset


class _ReadOnly:
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(_ReadOnly, RoleAdminMixin, ModelAdmin):
    list_display = (
        "created_display",
        "event_display",
        "member_display",
        "channel",
        "status_display",
        "attempts",
        "error_full_display",
    )
    list_filter = (
        ("status", ChoicesDropdownFilter),
        ("channel", ChoicesDropdownFilter),
        EventFilter,
    )
    search_fields = ("member__username", "member__first_name", "member__last_name", "=key")
    list_select_related = ("member",)
    paginator = InfinitePaginator
    show_full_result_count = False
    list_disable_select_all = True
    list_per_page = 50
    ordering = ("-id",)
    actions = ("send_again",)
    readonly_fields = (
        "event_display",
        "key",
        "member",
        "channel",
        "language",
        "subject_display",
        "text_display",
        "status_display",
        "attempts",
        "next_attempt_display",
        "error_display",
        "created_display",
        "sent_display",
    )
    fields = readonly_fields

    # The message as it was written for its reader (in their language, with its link), and the Bot
    # API's own words: shown as they are, not as the page's language.
    @display(description=_("subject"))
    def subject_display(self, obj: Notification) -> Any:
        return typed(obj.subject)

    @display(description=_("text"))
    def text_display(self, obj: Notification) -> Any:
        return typed(obj.text)

    @display(description=_("last delivery error"))
    def error_full_display(self, obj: Notification) -> Any:
        return typed(obj.last_error)

    @display(description=_("written"), ordering="id")
    def created_display(self, obj: Notification) -> Any:
        return moment(obj.created_at)

    @display(description=_("sent at"))
    def sent_display(self, obj: Notification) -> Any:
        return moment(obj.sent_at)

    @display(description=_("next delivery attempt"))
    def next_attempt_display(self, obj: Notification) -> Any:
        return moment(obj.next_attempt_at)

    @display(description=_("event"), ordering="event")
    def event_display(self, obj: Notification) -> str:
        return str(notifications.EVENT_LABELS.get(obj.event, obj.event))

    @display(description=_("recipient"), ordering="member__username")
    def member_display(self, obj: Notification) -> Any:
        return person(obj.member)

    @display(description=_("status"), ordering="status")
    def status_display(self, obj: Notification) -> Any:
        return badge(obj.status, obj.get_status_display(), STATUS_LABELS)

    @display(description=_("last delivery error"))
    def error_display(self, obj: Notification) -> str:
        return Truncator(obj.last_error).chars(60) or "—"

    @action(description=_("Send again"), permissions=["operate"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[Notification]) -> HttpResponse | None:
        selected = list(queryset.select_related("member")[:500])
        if not is_confirmed(request):
            return render_confirmation(
                request,
                self,
                title=_("Send notifications again"),
                question=_("Send these notifications again? Each goes back to the queue, also one already sent."),
                objects=selected,
                bulk_action="send_again",
                submit_label=_("Send again"),
            )
        count = notifications.resend([n.pk for n in selected])
        self.message_user(
            request,
            ngettext(
                "%(count)d notification was queued to be sent again.",
                "%(count)d notifications were queued to be sent again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )
        return None


class LinkStateFilter(DropdownFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("linked", _("linked")), ("broken", _("broken")), ("waiting", _("waiting for the bot"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        match self.value():
            case "linked":
                return queryset.filter(chat_id__isnull=False, broken_at__isnull=True)
            case "broken":
                return queryset.filter(broken_at__isnull=False)
            case "waiting":
                return queryset.filter(chat_id__isnull=True)
        return queryset


@admin.register(ChatLink)
class ChatLinkAdmin(_ReadOnly, RoleAdminMixin, ModelAdmin):
    list_display = ("member_display", "channel", "state_display", "linked_display", "broken_reason")
    list_filter = (("channel", ChoicesDropdownFilter), LinkStateFilter)
    search_fields = ("member__username", "member__first_name", "member__last_name")
    list_select_related = ("member",)
    ordering = ("member__username", "channel")
    fields = ("member", "channel", "chat_id", "linked_at", "broken_at", "broken_reason", "token_expires_at")
    readonly_fields = fields

    @display(description=_("member"), ordering="member__username")
    def member_display(self, obj: ChatLink) -> Any:
        return person(obj.member)

    @display(description=_("state"))
    def state_display(self, obj: ChatLink) -> Any:
        if obj.broken_at is not None:
            return badge("broken", _("broken"), {"broken": "danger"})
        if obj.chat_id is not None:
            return badge("linked", _("linked"), {"linked": "success"})
        return badge("waiting", _("waiting for the bot"), {"waiting": "warning"})

    @display(description=_("linked at"), ordering="linked_at")
    def linked_display(self, obj: ChatLink) -> Any:
        return moment(obj.linked_at)
