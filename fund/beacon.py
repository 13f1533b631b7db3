"""The public randomness beacon client: a drand-style HTTP API (DESIGN.md, "Proof of the draw").

``GET {url}/public/{round}`` answers ``{"round": n, "randomness": hex, "signature": hex, ...}``,
where ``randomness`` is the SHA-256 of ``signature``. A round is a moment: round 1 is the chain's
genesis time and a new round comes every ``period`` seconds, so a round can be fixed in advance
and its value is known to nobody until that moment has passed. A round not out yet gets a 404.

Settings (from the environment): ``DRAW_BEACON_URL`` (empty: no beacon), ``DRAW_BEACON_GENESIS``
and ``DRAW_BEACON_PERIOD`` (the chain's; drand's default chain unless set), ``DRAW_BEACON_DELAY``
(seconds after the commitment when no payment deadline fixes the round), and the timeouts.

Nothing here touches the database: fund.proof fixes the round and fund.draw records the value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

_HEX = re.compile(r"^[0-9a-f]+$")


class BeaconUnavailable(Exception):
    """The round's value cannot be had now. ``str()`` is for a person; ``not_yet`` means "try later"."""

    def __init__(self, message: str, *, not_yet: bool = False) -> None:
        super().__init__(message)
        self.not_yet = not_yet


@dataclass(frozen=True)
class BeaconValue:
    url: str
    round: int
    randomness: str
    signature: str

    def as_report(self) -> dict[str, object]:
        return {"url": self.url, "round": self.round, "randomness": self.randomness, "signature": self.signature}


def configured_url() -> str:
    return (settings.DRAW_BEACON_URL or "").rstrip("/")


def round_at(moment: dt.datetime) -> int:
    """The first round whose value is published at or after ``moment`` (so unknown before it)."""
    genesis, period = settings.DRAW_BEACON_GENESIS, settings.DRAW_BEACON_PERIOD
    elapsed = moment.timestamp() - genesis
    return max(1, math.ceil(elapsed / period) + 1)


def round_time(number: int) -> dt.datetime:
    """When round ``number`` is published."""
    seconds = settings.DRAW_BEACON_GENESIS + (number - 1) * settings.DRAW_BEACON_PERIOD
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def fetch_round(url: str, number: int) -> BeaconValue:
    """The value of round ``number``; raises BeaconUnavailable (``not_yet`` for a round not out yet)."""
    timeout = httpx.Timeout(settings.DRAW_BEACON_READ_TIMEOUT, connect=settings.DRAW_BEACON_CONNECT_TIMEOUT)
    try:
        with httpx.Client(base_url=url, timeout=timeout, headers={"Accept": "application/json"}) as client:
            response = client.get(f"/public/{number}")
    except httpx.HTTPError as error:
        raise BeaconUnavailable(
            _("The randomness beacon could not be reached (%(error)s); the draw will try again.")
            % {"error": type(error).__name__},
            not_yet=True,
        ) from error
    if response.status_code == 404 or response.status_code == 425:
        raise BeaconUnavailable(
            _("The randomness beacon has not published round %(round)s yet (due %(when)s UTC); the draw waits for it.")
            % {"round": number, "when": round_time(number).strftime("%Y-%m-%d %H:%M:%S")},
            not_yet=True,
        )
    if response.status_code != 200:
        raise BeaconUnavailable(
            _("The randomness beacon answered %(status)s; the draw will try again.") % {"status": response.status_code},
            not_yet=True,
        )
    return _parse(url, number, response)


def _parse(url: str, number: int, response: httpx.Response) -> BeaconValue:
    try:
        body = response.json()
        value = BeaconValue(
            url=url,
            round=int(body["round"]),
            randomness=str(body["randomness"]).lower(),
            signature=str(body["signature"]).lower(),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise BeaconUnavailable(_("The randomness beacon's answer could not be read.")) from error
    if value.round != number or not _HEX.match(value.randomness) or not _HEX.match(value.signature):
        raise BeaconUnavailable(_("The randomness beacon answered for another round or with malformed values."))
    # drand's randomness is the SHA-256 of the signature: a value that is not cannot be recorded.
    if len(value.signature) % 2 or hashlib.sha256(bytes.fromhex(value.signature)).hexdigest() != value.randomness:
        raise BeaconUnavailable(_("The randomness beacon's value does not match its signature."))
    return value
