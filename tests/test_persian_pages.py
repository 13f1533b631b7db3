"""Every page reachable by GET, in Persian, as the operator, a member and an inspector, reads Persian.

The crawl starts at the member page and the back office and follows every link of the site
(GET only; each kind of address once or twice, ids aside). A page fails on:
- a Latin digit, outside values a person typed (user names, names, Bitpin ids, e-mail addresses,
  the fund's name; those are also inside elements marked ``translate="no"``, which are skipped);
- a Gregorian month name (English or Persian) or a Gregorian year;
- an English word that is not on ALLOWED_WORDS below (each with its reason).

Inputs' values and attributes are not text and are not checked; icons (ligature names such as
"payments") are not text either.

Strings added since the last translation pass have no Persian yet: the test finds them (every msgid
of fund/, config/ and templates/ whose Persian is missing) and tolerates their English until the
translation pass. To list them: ``uv run python manage.py shell -c "from tests.test_persian_pages
import pending_msgids; print(*sorted(set(pending_msgids())), sep=chr(10))"``. locale/PENDING.txt adds the ones
it cannot find that way (third-party strings, a brand "translated" as itself).
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from fund import draw, payments, tasks
from fund.demo import generate_fund
from fund.jalali import JalaliMonth, to_persian_digits
from fund.models import FundConfig, Payment, User
from fund.schedules import ensure_schedules

ROOT = Path(__file__).resolve().parents[1]
PENDING = ROOT / "locale" / "PENDING.txt"

ALLOWED_WORDS = {
    "USDT": "the currency's code: Persian writes it in Latin letters too",
    "CSV": "the file format's name, written so in Persian",
    "XLSX": "the file format's name, written so in Persian",
    "JSON": "the file format's name, written so in Persian (import-export's format list)",
    "TSV": "the file format's name, written so in Persian (import-export's format list)",
    "XLS": "the file format's name, written so in Persian (import-export's format list)",
    "YAML": "the file format's name, written so in Persian (import-export's format list)",
    "HTML": "the file format's name, written so in Persian (import-export's format list)",
    "ODS": "the file format's name, written so in Persian (import-export's format list)",
    "English": "the language switch names each language in itself",
    "fa": "the language switch's code for Persian (unfold's switch shows codes)",
    "en": "the language switch's code for English (unfold's switch shows codes)",
    "PDF": "the file format's name, written so in Persian (the statement's print-to-PDF hint)",
    "csv": "the file format's name as import-export lists it",
    "xlsx": "the file format's name as import-export lists it",
    "SHA": "the hash algorithm's name (SHA-۲۵۶), written so in Persian",
    "Bitpin": "the exchange's brand where it names the service, e.g. in the API's address",
}

GREGORIAN_MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "ژانویه", "فوریه", "مارس", "آوریل", "مه", "ژوئن", "ژوئیه", "اوت", "سپتامبر", "اکتبر",
    "نوامبر", "دسامبر",
}  # fmt: skip
GREGORIAN_YEAR = re.compile(r"^(19|20|۱۹|۲۰)[0-9۰-۹]{2}$")
TOKEN = re.compile(r"[^\s()\[\]{}،,.:;!?؟«»\"'“”/|—–\-+=*#…·]+")

SKIPPED_PATHS = ("/logout", "/i18n/", "/static/", "/media/", "statement.csv", "/export/", "/favicon")
PAGES_PER_KIND = 2
MAX_PAGES = 400


class PageText(HTMLParser):
    """The text a person reads: no script, style, form values, icons or ``translate="no"`` values."""

    SKIP = {"script", "style", "textarea", "template", "code", "pre", "noscript", "kbd"}  # kbd: key names
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[str] = []
        self._stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if tag in self.VOID:
            return
        classes = values.get("class") or ""
        hidden = (
            tag in self.SKIP
            or values.get("translate") == "no"
            or "material-symbols" in classes
            or (self._stack and self._stack[-1][1])
        )
        self._stack.append((tag, bool(hidden)))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                return

    def handle_data(self, data: str) -> None:
        if not (self._stack and self._stack[-1][1]) and data.strip():
            self.chunks.append(" ".join(data.split()))


GETTEXT_CALLS = {
    "_",
    "gettext",
    "gettext_lazy",
    "gettext_noop",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
}
TEMPLATE_STRING = re.compile(
    r"""{%\s*(?:translate|trans)\s+"((?:[^"\\]|\\.)*)"|{%\s*blocktrans(?:late)?\b[^%]*%}(.*?){%\s*(?:plural|endblocktrans(?:late)?)""",
    re.DOTALL,
)


def source_msgids() -> set[str]:
    """Every msgid of Saghat's own code and templates (what makemessages would extract)."""
    msgids: set[str] = set()
    for path in [*(ROOT / "fund").rglob("*.py"), *(ROOT / "config").rglob("*.py")]:
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in GETTEXT_CALLS:
                strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                msgids.update(strings[1:] if name.startswith("pgettext") else strings)
    for path in (ROOT / "templates").rglob("*.html"):
        content = path.read_text()
        for simple, block in TEMPLATE_STRING.findall(content):
            text = simple or re.sub(r"{{\s*(\w+)[^}]*}}", r"%(\1)s", block)
            msgids.add(" ".join(text.split()))
        msgids.update(re.findall(r"""\b_\(\s*"((?:[^"\\]|\\.)*)"\s*\)""", content))  # {% tag title=_("…") %}
    return msgids


def pending_msgids() -> list[str]:
    """Msgids with no Persian yet (new since the last translation pass), and locale/PENDING.txt."""
    with translation.override("fa"):
        pending = [msgid for msgid in source_msgids() if msgid.strip() and gettext(msgid) == msgid]
    if PENDING.exists():
        pending += [
            line.strip() for line in PENDING.read_text().splitlines() if line.strip() and not line.startswith("#")
        ]
    return pending


def pending_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for line in sorted(set(pending_msgids()), key=len, reverse=True):
        parts = re.split(r"%\(\w+\)[sd]|%[sd]|\{[^}]*\}", " ".join(line.split()))
        # The page shows the msgid's digits in Persian; the admin capitalises column titles.
        text = ".{0,200}?".join(re.sub(r"\d", "[0-9۰-۹]", re.escape(part)) for part in parts)
        patterns.append(re.compile(text, re.IGNORECASE))
    return patterns


def problems_on(text: str, typed: set[str], pending: list[re.Pattern[str]]) -> list[str]:
    """What is wrong with a piece of text, once typed values and pending msgids are taken out (in
    both orders: a typed value may contain a pending word, a pending msgid a typed one)."""

    def without_typed(text: str) -> str:
        for value in sorted((v for v in typed if len(v) > 3), key=len, reverse=True):
            if value in text:
                text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", text)  # "operator" ≠ "operators"
        return text

    def without_pending(text: str) -> str:
        for pattern in pending:
            text = pattern.sub(" ", text)
        return text

    first = problems_in(without_pending(without_typed(text)), typed)
    second = set(problems_in(without_typed(without_pending(text)), typed))
    return [problem for problem in first if problem in second]


def problems_in(text: str, typed: set[str]) -> list[str]:
    found = []
    for token in TOKEN.findall(text):
        if token in typed or token.lower() in typed:
            continue
        if token.lower() in GREGORIAN_MONTHS:
            found.append(f"Gregorian month {token!r}")
        elif GREGORIAN_YEAR.match(token):
            found.append(f"Gregorian year {token!r}")
        elif re.search(r"[0-9]", token):
            found.append(f"Latin digit in {token!r}")
        elif re.search(r"[A-Za-z]", token) and token not in ALLOWED_WORDS:
            found.append(f"English {token!r}")
    return found


def kind_of(path: str) -> str:
    return re.sub(r"/\d+/", "/N/", path)


def crawl(client, starts: list[str], typed: set[str]) -> dict[str, list[str]]:
    pending = pending_patterns()
    seen: set[str] = set()
    per_kind: dict[str, int] = {}
    queue = deque(starts)
    failures: dict[str, list[str]] = {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code in (301, 302):
            location = response["Location"]
            if urlsplit(location).path.startswith("/") and not urlsplit(location).netloc:
                queue.append(location)
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        parser = PageText()
        parser.feed(response.content.decode())
        # The page's own object ids (a notification numbered 2081 on PostgreSQL, whose sequences run on
        # across tests) are numbers, not Gregorian years.
        ids = {to_persian_digits(part) for part in urlsplit(url).path.split("/") if part.isdigit()}
        found = [p for chunk in parser.chunks for p in problems_on(chunk, typed | ids, pending)]
        if found:
            failures[url] = sorted(set(found))
        for href in parser.links:
            href = urldefrag(href)[0]
            parts = urlsplit(href)
            if parts.netloc or not parts.path.startswith("/") or parts.query:
                continue
            if any(skip in parts.path for skip in SKIPPED_PATHS):
                continue
            kind = kind_of(parts.path)
            if parts.path not in seen and per_kind.get(kind, 0) < PAGES_PER_KIND:
                per_kind[kind] = per_kind.get(kind, 0) + 1
                queue.append(parts.path)
    return failures


@pytest.fixture
def example_fund(db):
    """The example fund of `launch`, with jobs of every kind and a payment of each state."""
    FundConfig.load()
    ensure_schedules()
    summary = generate_fund(members=6, months=6, password="member-pass-1404")
    draw.run_draw(month=summary.last_month, triggered_by="example fund")
    User.objects.create_superuser("operator", password="operator-pass-1404", is_main=True)
    User.objects.create_user("ivy", password="ivy-pass-1404")
    call_command("create_inspector_group", "--add", "ivy", stdout=open("/dev/null", "w"))
    month = JalaliMonth.current()
    member = next(m for m in User.objects.filter(is_member=True) if not payments.repayment_due(member=m, month=month))
    pending = payments.submit_payment(
        member=member, month=month, fee=FundConfig.load().min_fee, bitpin_id="bp-rejected-now"
    )
    payments.reject_payment(payment=pending, by=User.objects.get(username="operator"), note="شناسه اشتباه بود")
    now = timezone.now() - dt.timedelta(hours=3)
    job = {"func": "fund.tasks.sweep_pending_payments", "started": now, "stopped": now}
    Task.objects.create(id="ok1", name="ok-job", success=True, result="3", **job)
    Task.objects.create(id="bad1", name="bad-job", success=False, result="ConnectError", **job)
    async_task(tasks.SWEEP_PENDING_PAYMENTS)  # one job waiting in the queue
    assert Schedule.objects.exists() and Payment.objects.exists()


def typed_values() -> set[str]:
    values: set[str] = {"member-pass-1404"}
    for user in User.objects.all():
        values |= {user.username, user.first_name, user.last_name, user.email, user.get_full_name()}
    values |= set(Payment.objects.exclude(bitpin_id="").values_list("bitpin_id", flat=True))
    values |= set(Payment.objects.exclude(note="").values_list("note", flat=True))  # notes people wrote
    values |= set(Group.objects.values_list("name", flat=True))
    values.add(FundConfig.load().name)  # the fund's name, as the operator set it  # a group's name is data (Inspectors)
    values |= {user.username[:1].upper() for user in User.objects.all()}  # the avatar's initial
    values |= {"ok-job", "bad-job", "ok1", "bad1"}
    return {value for value in values if value} | {value.lower() for value in values if value}


@pytest.mark.parametrize(
    ("username", "starts"),
    [
        ("operator", ["/admin/", "/"]),
        ("member1", ["/", "/statement/", "/draw/table/", "/ranking/", "/admin/"]),
        ("ivy", ["/admin/", "/"]),
    ],
)
def test_every_page_reads_persian(client, example_fund, username, starts):
    client.force_login(User.objects.get(username=username))
    client.cookies["django_language"] = "fa"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fa"
    failures = crawl(client, [*starts, "/no-such-page/"], typed_values())
    report = "\n".join(f"{url}: {', '.join(found)}" for url, found in sorted(failures.items()))
    assert not failures, f"Persian pages with Latin digits, Gregorian dates or English:\n{report}"


def test_the_login_and_password_pages_read_persian(client, example_fund):
    client.cookies["django_language"] = "fa"
    failures = crawl(client, ["/login/", "/password/reset/", "/password/reset/sent/"], typed_values())
    report = "\n".join(f"{url}: {', '.join(found)}" for url, found in sorted(failures.items()))
    assert not failures, report
