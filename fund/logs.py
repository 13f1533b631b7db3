"""Logging filters: what the console prints for a refused request."""

from __future__ import annotations

import logging


class NoTracebackForForbidden(logging.Filter):
    """Django logs every 403 with the PermissionDenied's traceback; a refusal is not a fault, so it
    keeps its one line ("Forbidden (Permission denied): /path")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
