"""The Bitpin client: one request, one parser, one classification (DESIGN.md, "Bitpin verification").

``GET {BITPIN_API_BASE_URL}/v1/mch/payments/{id}/`` with ``Authorization: Token <key>``; the answer's
``id``, ``amount``, ``currency`` and ``status`` decide. Every answer falls in one of three classes:
VERIFIED, REJECTED (for good: the reason is written on the payment) or RETRY (a passing failure:
the payment stays pending and the sweep tries again later). Another Bitpin contract is a change to
``_request`` and ``_parse`` only.

Every request has an overall deadline (``BITPIN_DEADLINE``), not only per-read timeouts: a server
that drips one byte every few seconds never trips a read timeout, and would otherwise hold a job
until django-q2 kills it with nothing recorded. A request past its deadline is a timeout like any
other, a passing failure.

Nothing here touches the database: the caller (fund.payments) applies the answer.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from fund.money import format_usdt

CURRENCY = "USDT"
COMPLETED_STATUSES = frozenset({"completed", "paid", "confirmed", "done"})
# States in which Bitpin may still complete the payment: asking again later is the right answer.
WAITING_STATUSES = frozenset({"pending", "processing", "in_progress", "waiting", "created", "new", "unconfirmed"})


class Outcome(enum.StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class Answer:
    """What to do with a payment after asking Bitpin; ``detail`` is the note or the error, for a person."""

    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class BitpinPayment:
    id: str
    amount: Decimal
    currency: str
    status: str


class _TryLater(Exception):
    """A passing failure: Bitpin or the network may answer properly next time."""


def make_client() -> httpx.Client:
    """A client for the configured Bitpin API. Thread-safe: the sweep shares one across threads.

    Every request it sends, and the reading of its answer, ends by ``BITPIN_DEADLINE`` seconds.
    """
    timeout = httpx.Timeout(settings.BITPIN_READ_TIMEOUT, connect=settings.BITPIN_CONNECT_TIMEOUT)
    limits = httpx.Limits(max_connections=max(settings.BITPIN_SWEEP_CONCURRENCY, 1) * 2)
    return httpx.Client(
        base_url=settings.BITPIN_API_BASE_URL,
        timeout=timeout,
        headers={"Authorization": f"Token {settings.BITPIN_API_KEY}", "Accept": "application/json"},
        transport=_DeadlineTransport(settings.BITPIN_DEADLINE, limits=limits),
        # Environment proxies would be mounted as other transports, without the deadline.
        trust_env=False,
    )


# --- the overall deadline ------------------------------------------------------------------------
# httpx only knows per-operation timeouts. The transport below records, per thread, when the
# current request must be over; the network streams it opens cap every connect, read and write at
# the time that is left, so the socket itself times out at the deadline (no helper threads, and the
# answer is httpx's ordinary timeout error).
_request_deadline = threading.local()


def _time_left(timeout: float | None) -> float | None:
    deadline = getattr(_request_deadline, "at", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's overall deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _time_left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kwargs: Any) -> httpcore.NetworkStream:
        return _DeadlineStream(super().connect_tcp(host, port, _time_left(timeout), **kwargs))


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline
        # httpx has no public way to choose httpcore's network backend; the pool reads this
        # attribute whenever it opens a connection.
        self._pool._network_backend = _DeadlineBackend()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _request_deadline.at = time.monotonic() + self.deadline
        try:
            response = super().handle_request(request)
            response.read()  # the body too, while the deadline holds (Bitpin's answers are small)
            return response
        finally:
            _request_deadline.at = None


def check_payment(bitpin_id: str, expected: Decimal, *, client: httpx.Client | None = None) -> Answer:
    """Ask Bitpin about ``bitpin_id`` and classify the answer against the payment's total ``expected``."""
    if not bitpin_id:
        return Answer(Outcome.REJECTED, _("No Bitpin payment id was given, so Bitpin cannot confirm it."))
    own_client = client is None
    client = client or make_client()
    try:
        response = _request(client, bitpin_id)
        if response is None:
            return Answer(Outcome.REJECTED, _("Bitpin does not know the payment id “%(id)s”.") % {"id": bitpin_id})
        return classify(_parse(response, bitpin_id), expected)
    except _TryLater as error:
        return Answer(Outcome.RETRY, str(error))
    finally:
        if own_client:
            client.close()


def classify(payment: BitpinPayment, expected: Decimal) -> Answer:
    """DESIGN.md: verified when completed, in USDT and at least the payment's total."""
    status = payment.status.strip().lower()
    if status in WAITING_STATUSES:
        message = _("Bitpin says the payment is still “%(status)s”; it will be checked again.")
        return Answer(Outcome.RETRY, message % {"status": payment.status})
    if status not in COMPLETED_STATUSES:
        message = _("Bitpin reports the payment as “%(status)s”, not completed.")
        return Answer(Outcome.REJECTED, message % {"status": payment.status})
    if payment.currency.strip().upper() != CURRENCY:
        message = _("Bitpin reports the payment in %(currency)s, not USDT.")
        return Answer(Outcome.REJECTED, message % {"currency": payment.currency})
    if payment.amount < expected:
        message = _("Bitpin reports %(paid)s USDT, less than the %(expected)s USDT of this payment.")
        return Answer(
            Outcome.REJECTED, message % {"paid": format_usdt(payment.amount), "expected": format_usdt(expected)}
        )
    message = _("Checked with Bitpin: %(amount)s USDT, %(status)s.")
    return Answer(Outcome.VERIFIED, message % {"amount": format_usdt(payment.amount), "status": payment.status})


def _request(client: httpx.Client, bitpin_id: str, *, collection: str = "payments") -> httpx.Response | None:
    """The HTTP exchange: the response to parse, None for an unknown id, _TryLater otherwise."""
    # The id comes from a person: quoted as one path segment so it cannot reach another URL.
    path = f"/v1/mch/{collection}/{quote(bitpin_id, safe='')}/"
    try:
        response = client.get(path)
    except httpx.TimeoutException:
        raise _TryLater(_("Bitpin did not answer in time.")) from None
    except httpx.RequestError as error:  # connection refused or reset, protocol or decoding errors
        raise _TryLater(_("Could not reach Bitpin: %(error)s") % {"error": type(error).__name__}) from None
    if response.status_code == 404:
        return None
    if response.status_code == 429:
        raise _TryLater(_("Bitpin asked us to slow down (HTTP 429)."))
    if response.status_code in (401, 403):
        # Our key is wrong or expired: not the payment's fault, so it waits for the key to be fixed.
        raise _TryLater(_("Bitpin refused our API key (HTTP %(code)s).") % {"code": response.status_code})
    if response.status_code != 200:
        raise _TryLater(_("Bitpin answered with HTTP %(code)s.") % {"code": response.status_code})
    return response


def _parse(response: httpx.Response, bitpin_id: str) -> BitpinPayment:
    """Read id, amount, currency and status; anything unreadable is a malformed answer (try later)."""
    try:
        # parse_float=Decimal: an amount written as a JSON number must not pass through float.
        data: Any = response.json(parse_float=Decimal)
        payment = BitpinPayment(
            id=str(data["id"]),
            amount=_decimal(data["amount"]),
            currency=str(data["currency"]),
            status=str(data["status"]),
        )
    except (ValueError, KeyError, TypeError, InvalidOperation):
        raise _TryLater(_("Bitpin's answer could not be read.")) from None
    if payment.id != bitpin_id:
        raise _TryLater(_("Bitpin answered about another payment id (“%(id)s”).") % {"id": payment.id[:100]})
    return payment


# --- payouts and the wallet (DESIGN.md, "Loan payout", "Reconciliation with the wallet") ------------


def check_transfer(transfer_id: str, expected: Decimal, *, client: httpx.Client | None = None) -> Answer:
    """Ask Bitpin about the fund's outgoing transfer ``transfer_id`` and classify it against ``expected``.

    ``GET /v1/mch/transfers/{id}/`` answers like a payment (id, amount, currency, status), and the
    same three classes apply, except that a payout's amount must equal what the fund owes exactly.
    """
    own_client = client is None
    client = client or make_client()
    try:
        response = _request(client, transfer_id, collection="transfers")
        if response is None:
            return Answer(Outcome.REJECTED, _("Bitpin does not know the transfer id “%(id)s”.") % {"id": transfer_id})
        return classify_transfer(_parse(response, transfer_id), expected)
    except _TryLater as error:
        return Answer(Outcome.RETRY, str(error))
    finally:
        if own_client:
            client.close()


def classify_transfer(transfer: BitpinPayment, expected: Decimal) -> Answer:
    """Verified when completed, in USDT and for exactly ``expected`` (DESIGN.md, "Loan payout")."""
    status = transfer.status.strip().lower()
    if status in WAITING_STATUSES:
        message = _("Bitpin says the transfer is still “%(status)s”; it will be checked again.")
        return Answer(Outcome.RETRY, message % {"status": transfer.status})
    if status not in COMPLETED_STATUSES:
        message = _("Bitpin reports the transfer as “%(status)s”, not completed.")
        return Answer(Outcome.REJECTED, message % {"status": transfer.status})
    if transfer.currency.strip().upper() != CURRENCY:
        message = _("Bitpin reports the transfer in %(currency)s, not USDT.")
        return Answer(Outcome.REJECTED, message % {"currency": transfer.currency})
    if transfer.amount != expected:
        message = _("Bitpin reports a transfer of %(sent)s USDT, not the %(expected)s USDT recorded.")
        return Answer(
            Outcome.REJECTED, message % {"sent": format_usdt(transfer.amount), "expected": format_usdt(expected)}
        )
    message = _("Checked with Bitpin: %(amount)s USDT sent, %(status)s.")
    return Answer(Outcome.VERIFIED, message % {"amount": format_usdt(transfer.amount), "status": transfer.status})


class WalletUnreadable(Exception):
    """The wallet's balance could not be read now; ``str()`` says why, for a person."""


def wallet_balance(*, client: httpx.Client | None = None) -> Decimal:
    """The fund wallet's USDT balance: ``GET /v1/mch/wallets/USDT/`` → ``balance``.

    Raises WalletUnreadable for every failure (the reading is simply taken again later).
    """
    own_client = client is None
    client = client or make_client()
    try:
        response = _request(client, CURRENCY, collection="wallets")
        if response is None:
            raise WalletUnreadable(_("Bitpin does not know the fund's USDT wallet."))
        try:
            balance = _decimal(response.json(parse_float=Decimal)["balance"])
        except (ValueError, KeyError, TypeError, InvalidOperation):
            raise WalletUnreadable(_("Bitpin's answer could not be read.")) from None
        if balance < 0:
            raise WalletUnreadable(_("Bitpin's answer could not be read."))
        return balance
    except _TryLater as error:
        raise WalletUnreadable(str(error)) from None
    finally:
        if own_client:
            client.close()


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError("amount is not a number")
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidOperation("amount is not finite")
    return number
