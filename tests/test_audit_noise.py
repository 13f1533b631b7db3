"""The audit trail records changes, not visits: logging in writes no entry, and a member who sets
their own password through their link is named as the one who did it."""

from __future__ import annotations

from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from fund.models import User


def test_logging_in_records_when_but_writes_no_audit_entry(client, member, config):
    entries = member.history.count()
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-1404"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.last_login is not None
    assert member.history.count() == entries


def test_a_member_setting_their_own_password_is_named_in_the_audit_trail(client, history):
    newcomer = history.member("dariush")
    newcomer.set_unusable_password()
    newcomer.save()
    uid = urlsafe_base64_encode(force_bytes(newcomer.pk))
    url = reverse("password-set", kwargs={"uidb64": uid, "token": default_token_generator.make_token(newcomer)})
    form_url = client.get(url, follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": "a-long-fund-pass-1404", "new_password2": "a-long-fund-pass-1404"})
    latest = User.objects.get(pk=newcomer.pk).history.latest()
    assert latest.history_user == newcomer
