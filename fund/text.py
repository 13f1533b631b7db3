"""Text that people type or spreadsheets carry: invisible characters, Bitpin ids, cells we export.

Each rule here is written once and called by every path that needs it (member page, admin,
import, exports), so the same text is never accepted by one door and refused by another.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.utils.translation import gettext as _

BITPIN_ID_MAX_LENGTH = 100

# Unicode categories that print nothing (or nothing one can tell apart from a space): format
# characters such as the zero-width space and direction marks (Cf), separators such as the
# no-break space (Z*), controls (Cc), and surrogates, private-use and unassigned code points.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc", "Cs", "Co", "Cn"})


class TextRefused(ValueError):
    """Text that cannot be used as it is. The message is meant for the person who typed it."""


def invisible_characters(text: str) -> list[str]:
    """The invisible characters in ``text`` (a plain ASCII space counts as one), as U+XXXX names."""
    return [f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in _INVISIBLE_CATEGORIES]


def has_format_marks(text: str) -> bool:
    """Direction marks, zero-width characters and the like (category Cf): never part of a value."""
    return any(unicodedata.category(ch) == "Cf" for ch in text)


def normalise_bitpin_id(value: Any) -> str:
    """The one spelling of a Bitpin payment id, for every path that records one.

    Surrounding whitespace goes (as every form field strips it); the rest is NFKC-normalised, so
    a full-width or compatibility spelling is the same id as the plain one. An id with a space,
    a no-break space, a zero-width character, a direction mark or any other invisible character
    inside is refused: two ids that look the same must be the same id. Empty text gives "".
    """
    text = unicodedata.normalize("NFKC", str(value or "").strip())
    if len(text) > BITPIN_ID_MAX_LENGTH:
        raise TextRefused(
            _("The Bitpin payment id is too long (at most %(max)s characters).") % {"max": BITPIN_ID_MAX_LENGTH}
        )
    if " " in text:
        raise TextRefused(_("The Bitpin payment id cannot contain spaces."))
    hidden = invisible_characters(text)
    if hidden:
        raise TextRefused(
            _("The Bitpin payment id cannot contain invisible characters (found %(chars)s).")
            % {"chars": ", ".join(dict.fromkeys(hidden))}
        )
    return text


# --- cells of the spreadsheets we export ---------------------------------------------------------------

# OWASP's CSV-injection rule: a cell starting with one of these may be run as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain signed number is data, not a formula: it stays readable as a number (-12.50).
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """A cell every spreadsheet shows as the text it is, never runs (CSV, XLSX, any report).

    Text that a spreadsheet would read as a formula gets a leading apostrophe, OWASP's advice;
    spreadsheets hide it and show the text. Numbers (and text that is just a signed number) are
    left as they are. Used by every export; the import takes the apostrophe off (``unsafe_cell``).
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS) or _PLAIN_NUMBER.fullmatch(value):
        return value
    return f"'{value}"


def unsafe_cell(value: Any) -> Any:
    """The text an exported cell held before ``safe_cell``: so an export imports again unchanged."""
    if isinstance(value, str) and value[:1] == "'" and safe_cell(value[1:]) == value:
        return value[1:]
    return value
