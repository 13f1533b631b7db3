"""Who may do what in the back office: the operator changes things, the inspector only reads.

The roles are decided here, once, and every admin class, action and the admin gate middleware
ask these functions. They are method-based on purpose (dotted permissions on unfold actions
break ``migrate`` on a fresh database), so a role never depends on per-model permission rows.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group

from fund.models import User

INSPECTORS = "Inspectors"


def is_operator(user: User | AnonymousUser) -> bool:
    """The fund's operator (``is_main``) or a superuser: may read and change everything."""
    return bool(user.is_authenticated and user.is_active and user.is_staff and (user.is_superuser or user.is_main))


def is_inspector(user: User | AnonymousUser) -> bool:
    """A staff member of the "Inspectors" group: reads everything, changes nothing.

    Cached on the user object: the admin asks many times per page and the answer must not cost
    a query each time (list pages keep a fixed number of queries).
    """
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    cached = getattr(user, "_saghat_is_inspector", None)
    if cached is None:
        cached = user.groups.filter(name=INSPECTORS).exists()
        user._saghat_is_inspector = cached  # type: ignore[union-attr]
    return cached


def may_read(user: User | AnonymousUser) -> bool:
    """Whoever may enter the back office at all."""
    return is_operator(user) or is_inspector(user)


def inspectors_group() -> Group:
    """The inspectors' group, created the first time it is needed (idempotent)."""
    group, _created = Group.objects.get_or_create(name=INSPECTORS)
    return group
