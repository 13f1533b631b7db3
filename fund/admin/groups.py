"""Groups in unfold's look, under the same roles: operators manage them (the Inspectors group
is one), inspectors read them."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.models import Group
from unfold.admin import ModelAdmin

from fund.admin.base import RoleAdminMixin

if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(RoleAdminMixin, BaseGroupAdmin, ModelAdmin):
    # Roles are decided by the group's name (fund.admin.roles), never by permission rows, whose
    # names Django stores in English: the field would only mislead.
    fields = ("name",)
