"""Persian pages read Persian: Persian digits in the text, and dates in the Jalali calendar.

Two mechanisms, each in one place, instead of a fix in every template and message:

- ``PersianDigitsMiddleware``: in an HTML page served in Persian, every number in the page's *text*
  is written with Persian digits and Persian separators (``1,234.50`` → ``۱٬۲۳۴٫۵۰``), whatever
  produced it: a template, a message, a form error, django-q2's or unfold's own pages. Left as they
  are: attribute values (so inputs keep what was typed, and links and data keep working), scripts and
  styles, ``<textarea>``, ``<pre>``/``<code>``, any element marked ``translate="no"`` (user names,
  Bitpin ids: values a person typed), and any word with Latin letters in it (``member12``,
  ``a1@example.org``). The middle dot separator "·" becomes the Persian comma: next to Persian
  digits a dot reads as a zero ("· ۱۹" looks like "۱۹۰").
- ``use_jalali_dates()`` (called once when the app loads): Django's date formatting
  (``formats.date_format``, which the admin's lists and fields, the ``date`` filter and ``{{ value }}``
  of a date all go through) writes dates in the Jalali calendar while Persian is active, with
  Django's own Persian formats ("۱۱ آذر ۱۴۰۵، ساعت ۱۰:۵۴"). Times are already in Tehran time
  (``TIME_ZONE``). English pages keep the Gregorian calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import jdatetime
from django.http import HttpRequest, HttpResponse
from django.utils import formats
from django.utils.translation import get_language

from fund.jalali import MONTH_NAMES_FA, to_persian_digits


def persian_active() -> bool:
    return (get_language() or "").startswith("fa")


# --- digits ---------------------------------------------------------------------------------------

# Pieces of HTML the text between them is taken from: comments, whole elements whose content is
# not text (script, style, textarea), and tags. A tag ends at the first ">" outside its quoted
# attribute values: Alpine's expressions hold ">" (unfold's ``items.length > 0``), and their digits
# must stay Latin or the browser refuses the expression.
_IN_TAG = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""
_HTML_PIECES = re.compile(
    rf"(<!--.*?-->|<script\b.*?</script\s*>|<style\b.*?</style\s*>|<textarea\b.*?</textarea\s*>|<{_IN_TAG}>)",
    re.DOTALL | re.IGNORECASE,
)
_TAG = re.compile(rf"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9-]*)({_IN_TAG})>")
_KEEP_AS_TYPED = re.compile(r"""\btranslate\s*=\s*["']?no\b""", re.IGNORECASE)
_CODE_ELEMENTS = frozenset({"pre", "code", "kbd", "samp"})
_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
# A word of the text, or a character reference (&#39;) that must stay as it is.
_WORD = re.compile(r"&#?[0-9A-Za-z]+;|[^\s&]+")
_LATIN = re.compile(r"[A-Za-z@]")
_NUMBER_MARK = re.compile(r"(?<=\d)[.,](?=\d)")
_NUMBER_MARKS = {".": "٫", ",": "٬"}
_DIGIT = re.compile(r"\d")


def persian_number_text(text: str) -> str:
    """Digits and number separators of ``text`` in Persian, except in words with Latin letters."""
    if not _DIGIT.search(text) and "·" not in text:
        return text
    text = text.replace(" · ", "، ").replace("·", "،")
    return _WORD.sub(_persian_word, text)


def _persian_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word.startswith("&") and word.endswith(";") or _LATIN.search(word) or not _DIGIT.search(word):
        return word
    return to_persian_digits(_NUMBER_MARK.sub(lambda mark: _NUMBER_MARKS[mark.group(0)], word))


def persian_digits_in_html(html: str) -> str:
    """``html`` with Persian digits in its text (see the module's docstring for what is left alone)."""
    out: list[str] = []
    kept: list[list[Any]] = []  # open elements whose text is kept as it is: [name, depth]
    for index, piece in enumerate(_HTML_PIECES.split(html)):
        if index % 2 == 0:  # text between tags
            out.append(piece if kept else persian_number_text(piece))
            continue
        out.append(piece)
        tag = _TAG.match(piece)
        if tag is None:
            continue
        closing, name, rest = tag.group(1), tag.group(2).lower(), tag.group(3)
        if name in _VOID_ELEMENTS or rest.rstrip().endswith("/"):
            continue
        if kept and kept[-1][0] == name:
            kept[-1][1] += -1 if closing else 1
            if kept[-1][1] == 0:
                kept.pop()
        elif not closing and (name in _CODE_ELEMENTS or _KEEP_AS_TYPED.search(rest)):
            kept.append([name, 1])
    return "".join(out)


class PersianDigitsMiddleware:
    """Persian digits in the text of every HTML page served in Persian."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            persian_active()
            and not response.streaming
            and response.get("Content-Type", "").startswith("text/html")
            and not response.get("Content-Encoding")
        ):
            charset = response.charset or "utf-8"
            response.content = persian_digits_in_html(response.content.decode(charset)).encode(charset)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response


# --- dates ------------------------------------------------------------------------------------------


def jalali_format(value: dt.date, format_string: str) -> str:
    """Django's date format characters, applied to ``value`` in the Jalali calendar."""
    if isinstance(value, dt.datetime):
        day = jdatetime.datetime.fromgregorian(datetime=value)
    else:
        day = jdatetime.date.fromgregorian(date=value)
    parts = {
        "Y": f"{day.year:04d}",
        "y": f"{day.year % 100:02d}",
        "m": f"{day.month:02d}",
        "n": str(day.month),
        "d": f"{day.day:02d}",
        "j": str(day.day),
        "F": MONTH_NAMES_FA[day.month - 1],
        "N": MONTH_NAMES_FA[day.month - 1],
        "M": MONTH_NAMES_FA[day.month - 1],
        "b": MONTH_NAMES_FA[day.month - 1],
    }
    if isinstance(value, dt.datetime):
        parts |= {
            "H": f"{value.hour:02d}",
            "G": str(value.hour),
            "i": f"{value.minute:02d}",
            "s": f"{value.second:02d}",
        }
    out, escaped = [], False
    for char in format_string:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(parts.get(char, "" if char in _NOT_JALALI else char))
    return to_persian_digits("".join(out).strip())


# Django's format characters with no Jalali meaning here (weekdays, time zones, AM/PM …): dropped.
_NOT_JALALI = frozenset("DlLwzWtIEOTZcrUeSAaPfgh")
_gregorian_date_format = formats.date_format


def _date_format(value: Any, format: str | None = None, use_l10n: bool | None = None) -> str:
    if persian_active() and isinstance(value, dt.date):
        return jalali_format(value, formats.get_format(format or "DATE_FORMAT", use_l10n=use_l10n))
    return _gregorian_date_format(value, format, use_l10n)


def use_jalali_dates() -> None:
    """Django's date formatting writes Jalali dates while Persian is active (see the docstring)."""
    formats.date_format = _date_format
