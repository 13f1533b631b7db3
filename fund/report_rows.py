"""How a draw report's rows are shown: one presenter for the member page, the admin and the dashboard.

A report (a real draw's or the projection's, which has the same shape) keeps codes and plain
values; the pages need the reason in the reader's language and whether a row is the reader's own,
the winner's or in the tied pool. Rows are copied, never changed: reports are shared by caches.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from fund.draw import reason_label


def present_rows(
    report: dict[str, Any] | None, *, viewer_id: int | None = None, rows: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """``rows`` (default: all the report's rows), each with ``reason_label``, ``mine``, ``is_winner``
    and ``in_pool`` added."""
    report = report or {}
    pool = set(report.get("pool") or [])
    winner_id = report.get("winner_id")
    shown = report.get("rows", []) if rows is None else rows
    return [
        {
            **row,
            "reason_label": reason_label(row.get("reason")),
            "mine": viewer_id is not None and row.get("member_id") == viewer_id,
            "is_winner": winner_id is not None and row.get("member_id") == winner_id,
            "in_pool": row.get("member_id") in pool,
        }
        for row in shown
    ]


def pool_names(report: dict[str, Any]) -> list[str]:
    names = {row["member_id"]: row.get("username", "") for row in report.get("rows", [])}
    return [names.get(member_id, str(member_id)) for member_id in report.get("pool") or []]


def winner_label(report: dict[str, Any]) -> str:
    winner_id = report.get("winner_id")
    for row in report.get("rows", []):
        if winner_id is not None and row.get("member_id") == winner_id:
            return f"{row.get('name') or row.get('username')} ({row.get('username')})"
    return _("no one qualified")
