"""SMS through Twilio's Programmable Messaging API (the official ``twilio`` client)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from iqms.core.config import Settings
from iqms.core.enums import NotifyChannel
from iqms.core.errors import ConfigError
from iqms.core.notify.base import (
    NotificationProvider,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
# An alphanumeric sender id: up to 11 letters, digits and spaces, at least one letter.
ALPHANUMERIC_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")

# HTTP statuses worth retrying; everything else 4xx is about this message or number.
_TRANSIENT_STATUSES = {401, 403, 408, 409, 425, 429}
# How many of a number's newest messages are compared when reconciling, and the clock
# difference allowed between this computer and Twilio.
RECONCILE_LOOKBACK = 20
RECONCILE_CLOCK_SKEW = timedelta(minutes=2)


def check_twilio_settings(settings: Settings) -> tuple[str, str, str]:
    """The account SID, auth token and sender from settings; ``ConfigError`` naming what is wrong."""
    sid = (settings.twilio_account_sid or "").strip()
    if not sid:
        raise ConfigError(
            "IQMS_TWILIO_ACCOUNT_SID", "is not set (needed for IQMS_SMS_PROVIDER=twilio)"
        )
    if not ACCOUNT_SID_RE.match(sid):
        raise ConfigError(
            "IQMS_TWILIO_ACCOUNT_SID", "is not a Twilio account SID (AC followed by 32 hex digits)"
        )
    token = (
        settings.twilio_auth_token.get_secret_value().strip() if settings.twilio_auth_token else ""
    )
    if not token:
        raise ConfigError(
            "IQMS_TWILIO_AUTH_TOKEN", "is not set (needed for IQMS_SMS_PROVIDER=twilio)"
        )
    if any(ch.isspace() for ch in token):
        raise ConfigError("IQMS_TWILIO_AUTH_TOKEN", "contains spaces; paste the token exactly")
    sender = (settings.twilio_from_number or "").strip()
    if not sender:
        raise ConfigError(
            "IQMS_TWILIO_FROM_NUMBER", "is not set (a Twilio number such as +15017122661)"
        )
    if not (
        E164_RE.match(sender)
        or MESSAGING_SERVICE_SID_RE.match(sender)
        or ALPHANUMERIC_SENDER_RE.match(sender)
    ):
        raise ConfigError(
            "IQMS_TWILIO_FROM_NUMBER",
            "must be a number in international format (+15017122661), a messaging service "
            "SID (MG...) or an alphanumeric sender id of up to 11 characters",
        )
    return sid, token, sender


def _describe(exc: Any) -> str:
    text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    text = " ".join(str(text).split())
    return text[:300] or type(exc).__name__


class TwilioSmsProvider(NotificationProvider):
    """Sends SMS with ``client.messages.create``; classifies Twilio's errors."""

    channel = NotifyChannel.SMS
    name = "twilio"
    can_reconcile = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        http_client: Any | None = None,
        timeout: float = 15.0,
    ) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.account_sid = account_sid
        self.sender = sender
        self._client = Client(
            account_sid,
            auth_token,
            http_client=http_client or TwilioHttpClient(timeout=timeout),
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, http_client: Any | None = None, timeout: float = 15.0
    ) -> TwilioSmsProvider:
        sid, token, sender = check_twilio_settings(settings)
        return cls(
            account_sid=sid,
            auth_token=token,
            sender=sender,
            http_client=http_client,
            timeout=timeout,
        )

    def describe(self) -> str:
        return f"sms via twilio (account {self.account_sid[:6]}..., sender {self.sender})"

    def send_blocking(self, message: OutgoingMessage) -> str:
        import requests
        from twilio.base.exceptions import TwilioException

        kwargs: dict[str, Any] = {"to": message.recipient, "body": message.body}
        if MESSAGING_SERVICE_SID_RE.match(self.sender):
            kwargs["messaging_service_sid"] = self.sender
        else:
            kwargs["from_"] = self.sender
        try:
            sent = self._client.messages.create(**kwargs)
        except requests.RequestException as exc:
            raise TransientDeliveryError(
                f"cannot reach Twilio: {type(exc).__name__}", code="network"
            ) from None
        except TwilioException as exc:
            raise self._classify(exc) from None
        except OSError as exc:
            raise TransientDeliveryError(f"cannot reach Twilio: {exc}", code="network") from None
        return str(sent.sid)

    def find_sent_blocking(self, message: OutgoingMessage, since: datetime) -> str | None:
        """Look through the recipient's newest messages for this one (same text, from us,
        created since ``since``): Twilio's message list is the record of what it accepted."""
        import requests
        from twilio.base.exceptions import TwilioException

        kwargs: dict[str, Any] = {"to": message.recipient, "limit": RECONCILE_LOOKBACK}
        if not MESSAGING_SERVICE_SID_RE.match(self.sender):
            kwargs["from_"] = self.sender
        try:
            listed = self._client.messages.list(**kwargs)
        except requests.RequestException as exc:
            raise TransientDeliveryError(
                f"cannot reach Twilio: {type(exc).__name__}", code="network"
            ) from None
        except TwilioException as exc:
            raise TransientDeliveryError(
                f"Twilio could not list messages: {_describe(exc)}"
            ) from None
        except OSError as exc:
            raise TransientDeliveryError(f"cannot reach Twilio: {exc}", code="network") from None
        body = " ".join(message.body.split())
        for sent in listed:
            created = getattr(sent, "date_created", None)
            if created is not None and created < since - RECONCILE_CLOCK_SKEW:
                continue
            if " ".join(str(sent.body or "").split()) == body and sent.sid:
                return str(sent.sid)
        return None

    @staticmethod
    def _classify(exc: Exception) -> TransientDeliveryError | PermanentDeliveryError:
        status = getattr(exc, "status", None)
        code = getattr(exc, "code", None)
        code_text = str(code) if code is not None else None
        what = f"Twilio error {code_text}: {_describe(exc)}" if code_text else _describe(exc)
        if status is None or status >= 500 or status in _TRANSIENT_STATUSES:
            if status in (401, 403):
                what = f"Twilio rejected the credentials ({what})"
            return TransientDeliveryError(what, code=code_text)
        return PermanentDeliveryError(what, code=code_text)

    def verify_blocking(self) -> None:
        import requests
        from twilio.base.exceptions import TwilioException

        try:
            self._client.api.v2010.accounts(self.account_sid).fetch()
        except requests.RequestException as exc:
            raise TransientDeliveryError(
                f"cannot reach Twilio: {type(exc).__name__}", code="network"
            ) from None
        except TwilioException as exc:
            status = getattr(exc, "status", None)
            if status in (401, 403):
                raise ConfigError(
                    "IQMS_TWILIO_AUTH_TOKEN",
                    "was rejected by Twilio for IQMS_TWILIO_ACCOUNT_SID "
                    f"{self.account_sid[:6]}... ({_describe(exc)})",
                ) from None
            if status == 404:
                raise ConfigError(
                    "IQMS_TWILIO_ACCOUNT_SID", "names no Twilio account this token can see"
                ) from None
            raise TransientDeliveryError(
                f"Twilio could not check the account: {_describe(exc)}"
            ) from None
