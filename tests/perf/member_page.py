"""Scenario 3: the member page of a member with years of history, in process and under gunicorn.

The fund first gets this month's draw committed (so the page shows a real latest draw with every
member's row, as it does in a fund that has been running), and it is removed afterwards.

- Server time: the page through Django's test client (every middleware, the view, the template),
  for a member with the full history and an active loan; the baseline is the same page for a
  member who joined last month (one payment): equal queries and a ratio near 1 mean the page does
  not grow with a member's history.
- Throughput: gunicorn on 127.0.0.1 (sync workers, 2 × cores + 1), 20 clients at once sending a
  bounded number of requests with the member's session; the baseline is one client at a time.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.test import Client

from fund.draw import run_draw
from fund.jalali import JalaliMonth
from fund.models import Draw, Loan, Payment, User
from tests.fixtures.worker import database_url
from tests.perf.fund import Fund, Sizes
from tests.perf.harness import Figure, Row, repeat

NEWCOMER = "perf-newcomer"
CLIENTS = 20
BASE_DIR = Path(settings.BASE_DIR)


# --- the fund around the page --------------------------------------------------------------------


@dataclass
class DrawMade:
    draw: Draw
    winner_request: Decimal | None


def commit_draw(month: JalaliMonth) -> DrawMade | None:
    if Draw.objects.filter(month=month).exists():
        return None  # kept from an earlier run: leave it
    winner_before = {m.pk: m.loan_request_amount for m in User.objects.members().filter(loan_request_amount__gt=0)}
    draw = run_draw(month=month, triggered_by="benchmark")
    return DrawMade(draw, winner_before.get(draw.winner_id))


def undo_draw(made: DrawMade | None) -> None:
    if made is None:
        return
    draw = made.draw
    loan_id, winner_id = draw.loan_id, draw.winner_id
    Draw.objects.filter(pk=draw.pk).delete()
    Draw.history.filter(id=draw.pk).delete()
    if loan_id:
        Loan.objects.filter(pk=loan_id).delete()
        Loan.history.filter(id=loan_id).delete()
        User.objects.filter(pk=winner_id).update(loan_request_amount=made.winner_request)


def long_member(fund: Fund) -> User:
    """A member with the whole history and an active loan: the fullest page there is."""
    loan = (
        Loan.objects.filter(state=Loan.State.ACTIVE, member__username__startswith="member", month__lt=fund.last_month)
        .order_by("member_id")
        .first()
    )
    return loan.member if loan else User.objects.members().order_by("pk").first()


def newcomer(fund: Fund) -> User:
    """A member who joined last month and was lent money then: the same sections, one month of history."""
    remove_newcomer()
    person = User.objects.create_user(NEWCOMER, first_name="New", is_member=True)
    Payment.objects.create(
        member=person, month=fund.last_month, fee=Decimal(20), status=Payment.Status.VERIFIED,
        source=Payment.Source.IMPORT, note="perf",
    )  # fmt: skip
    Loan.objects.create(member=person, amount=Decimal(100), month=fund.last_month, monthly_minimum=Decimal(20))
    return person


def remove_newcomer() -> None:
    Payment.objects.filter(member__username=NEWCOMER).delete()
    Loan.objects.filter(member__username=NEWCOMER).delete()
    User.history.filter(username=NEWCOMER).delete()
    User.objects.filter(username=NEWCOMER).delete()


# --- in process ----------------------------------------------------------------------------------


def page_sample(member: User, times: int):
    client = Client()
    client.force_login(member)
    shown = member.get_full_name() or member.username

    def get() -> None:
        response = client.get("/")
        if response.status_code != 200 or shown.encode() not in response.content:
            raise SystemExit(f"the member page answered {response.status_code} for {member.username}")

    return repeat(get, times=times, warmup=2), client.cookies[settings.SESSION_COOKIE_NAME].value


# --- gunicorn ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, workers: int) -> None:
        self.port = _free_port()
        self.workers = workers
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        env = {**os.environ, "DATABASE_URL": database_url()}
        command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(self.workers), "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=BASE_DIR, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _get(self.port, "/healthz", "")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise SystemExit("gunicorn did not start within a minute")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def _get(port: int, path: str, session: str, connection: http.client.HTTPConnection | None = None) -> tuple[int, int]:
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"} if session else {}
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.getheader("Connection", "").lower() == "close":
        conn.close()
    return response.status, len(body)


@dataclass
class Load:
    seconds: float
    requests: int
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def load(port: int, session: str, *, clients: int, requests: int) -> Load:
    """``clients`` threads send ``requests`` GETs of the member page in all; every answer must be 200."""
    remaining = [requests]
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            start = time.perf_counter()
            status, _length = _get(port, "/", session, conn)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append(str(status))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if failures:
        raise SystemExit(f"gunicorn answered {len(failures)} requests with {sorted(set(failures))}")
    return Load(seconds, requests, latencies)


def _latency(result: Load) -> str:
    ordered = sorted(result.latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms, {result.requests} requests"


# --- the scenario ----------------------------------------------------------------------------------


def run(fund: Fund, sizes: Sizes) -> list[Row]:
    made = commit_draw(fund.last_month)
    try:
        member = long_member(fund)
        months = Payment.objects.filter(member=member).count()
        ours, session = page_sample(member, sizes.page_requests)
        new = newcomer(fund)
        baseline, _session = page_sample(new, sizes.page_requests)
        workers = 2 * (os.cpu_count() or 1) + 1
        with Gunicorn(workers) as server:
            load(server.port, session, clients=CLIENTS, requests=CLIENTS)  # warm every worker
            concurrent = load(server.port, session, clients=CLIENTS, requests=sizes.http_requests)
            single = load(server.port, session, clients=1, requests=max(sizes.http_requests // 4, 10))
    finally:
        remove_newcomer()
        undo_draw(made)
    members = User.objects.members().count()
    ours_figure, baseline_figure = Figure.of(ours), Figure.of(baseline)
    return [
        Row(
            scenario="3. Member page",
            what=f"GET / for a member with {months} months and an active loan ({members:,} members in the draw table)",
            ours=ours_figure,
            baseline=baseline_figure,
            baseline_what="same page, member with 1 month (and a loan)",
            target="< 50 ms median, bounded queries",
            met=ours_figure.value < 0.05 and ours_figure.queries == baseline_figure.queries,
        ),
        Row(
            scenario="3. Member page",
            what=f"throughput: gunicorn ({workers} workers), {CLIENTS} clients at once",
            ours=Figure(concurrent.rate, "req/s", None, 1, _latency(concurrent)),
            baseline=Figure(single.rate, "req/s", None, 1, _latency(single)),
            baseline_what="one client at a time",
            target="report",
        ),
    ]
