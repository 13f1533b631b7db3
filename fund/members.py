"""Members: the one way a member is created — without a password (DESIGN.md, "Members").

The admin's add form, the API, the member import and the example fund all create members here.
Nobody, the operator included, knows a new member's password: the operator sends a set-password
link (fund.admin.members). The example fund alone gives its members a known password.
"""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.db import transaction

from fund import ledger
from fund.models import User


def create_member(member: User) -> User:
    """Save a new user (built by a form from what the operator typed) without a usable password."""
    member.set_unusable_password()
    with transaction.atomic():
        member.save()
        ledger.draw_inputs_changed()
    return member


def create_members(members: list[User], *, password: str | None = None, batch_size: int = 5000) -> list[User]:
    """Create many members at once (an import, the example fund): one INSERT per batch.

    Without ``password`` each member gets an unusable one, as ``create_member`` gives; the example
    fund passes one password that all its members share (hashed once, not once per member).
    """
    hashed = make_password(password) if password else None
    for member in members:
        member.is_member = True
        member.password = hashed or make_password(None)
    with transaction.atomic():
        created = User.objects.bulk_create(members, batch_size=batch_size)
        ledger.draw_inputs_changed()
    return created


def save_member(member: User, *, fields: list[str] | None = None) -> User:
    """Save the operator's change to an existing member (name, e-mail, active or not, roles)."""
    with transaction.atomic():
        member.save(update_fields=fields)
        ledger.draw_inputs_changed()
    return member
