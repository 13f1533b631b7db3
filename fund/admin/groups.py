"""Groups in unfold's look, under the same roles: operators manage them (the Inspectors group
is one), inspectors read them."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from fund.admin.base import RoleAdminMixin

if admin.site.is_registered(Group):
    admin.site.unregister(Group)

# Deleting a group lists the rows that put people in it, which Django names "User_groups object (3)"
# under "User-group relationship" (generated, never translated): each is named by its person instead.
Membership = get_user_model().groups.through
Membership.__str__ = lambda row: str(row.user)
Membership._meta.verbose_name = _("membership of the group")
Membership._meta.verbose_name_plural = _("memberships of the group")


@admin.register(Group)
class GroupAdmin(RoleAdminMixin, BaseGroupAdmin, ModelAdmin):
    # Roles are decided by the group's name (fund.admin.roles), never by permission rows, whose
    # names Django stores in English: the field would only mislead.
    fields = ("name",)
