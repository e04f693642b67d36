"""Providers through the real client libraries, faked only at the transport."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses

from iqms.core.config import Settings
from iqms.core.enums import NotifyChannel
from iqms.core.errors import ConfigError
from iqms.core.notify.base import (
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    mask_recipient,
)
from iqms.core.notify.console import ConsoleProvider
from iqms.core.notify.firebase_push import FirebasePushProvider
from iqms.core.notify.providers import build_providers, check_provider_settings
from iqms.core.notify.twilio_sms import TwilioSmsProvider
from tests.test_notify_support import (
    FCM_URL,
    TWILIO_FROM,
    TWILIO_MESSAGES_URL,
    TWILIO_SID,
    TWILIO_TOKEN,
    FakeGoogleCredential,
    RecordingTwilioHttp,
)


def twilio_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "sms_provider": "twilio",
        "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_from_number": TWILIO_FROM,
        "push_provider": "none",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def sms(to: str = "+447911123456", body: str = "Clinic: ticket A-001, please go to Room 1 now."):
    return OutgoingMessage(channel=NotifyChannel.SMS, recipient=to, body=body)


# ---- Twilio ----------------------------------------------------------------------------------
def test_twilio_finds_a_message_it_accepted_by_recipient_text_and_time() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    http = RecordingTwilioHttp(clock=lambda: now - timedelta(hours=3))
    provider = TwilioSmsProvider.from_settings(twilio_settings(), http_client=http)
    old_copy = provider.send_blocking(sms())  # the same text three hours ago: another visit
    http.clock = lambda: now
    provider.send_blocking(sms(body="Clinic: ticket A-002, please go to Room 2 now."))
    provider.send_blocking(sms(to="+447911123457"))
    assert provider.find_sent_blocking(sms(), now - timedelta(minutes=1)) is None
    assert provider.find_sent_blocking(sms(), now - timedelta(hours=4)) == old_copy
    listed = [r for r in http.requests if r.method == "GET"]
    assert listed and all(r.url == TWILIO_MESSAGES_URL for r in listed)


def test_twilio_posts_to_from_and_body_to_the_messages_endpoint() -> None:
    http = RecordingTwilioHttp()
    provider = TwilioSmsProvider.from_settings(twilio_settings(), http_client=http)
    sid = provider.send_blocking(sms())
    assert sid.startswith("SM")
    (request,) = http.requests
    assert request.method == "POST"
    assert request.url == TWILIO_MESSAGES_URL
    assert request.auth == (TWILIO_SID, TWILIO_TOKEN)
    assert request.data == {
        "To": "+447911123456",
        "From": TWILIO_FROM,
        "Body": "Clinic: ticket A-001, please go to Room 1 now.",
    }


def test_twilio_messaging_service_sender() -> None:
    http = RecordingTwilioHttp()
    service = "MG" + "a" * 32
    provider = TwilioSmsProvider.from_settings(
        twilio_settings(twilio_from_number=service), http_client=http
    )
    provider.send_blocking(sms())
    assert http.requests[0].data["MessagingServiceSid"] == service
    assert "From" not in http.requests[0].data


def test_twilio_invalid_number_is_permanent() -> None:
    http = RecordingTwilioHttp()
    http.answer(
        400,
        {
            "code": 21211,
            "message": "The 'To' number +1555 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )
    provider = TwilioSmsProvider.from_settings(twilio_settings(), http_client=http)
    with pytest.raises(PermanentDeliveryError) as info:
        provider.send_blocking(sms("+1555"))
    assert info.value.code == "21211"
    assert "21211" in str(info.value)


@pytest.mark.parametrize(
    ("status", "code"), [(503, 20503), (500, 20500), (429, 20429), (401, 20003)]
)
def test_twilio_server_errors_rate_limits_and_credentials_are_transient(
    status: int, code: int
) -> None:
    http = RecordingTwilioHttp()
    http.answer(status, {"code": code, "message": "try later", "status": status})
    provider = TwilioSmsProvider.from_settings(twilio_settings(), http_client=http)
    with pytest.raises(TransientDeliveryError) as info:
        provider.send_blocking(sms())
    assert info.value.code == str(code)


def test_twilio_network_failure_is_transient() -> None:
    class Down(RecordingTwilioHttp):
        def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise requests.ConnectTimeout("timed out")

    provider = TwilioSmsProvider.from_settings(twilio_settings(), http_client=Down())
    with pytest.raises(TransientDeliveryError, match="cannot reach Twilio"):
        provider.send_blocking(sms())


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"twilio_account_sid": None}, "IQMS_TWILIO_ACCOUNT_SID"),
        ({"twilio_account_sid": "AC123"}, "IQMS_TWILIO_ACCOUNT_SID"),
        ({"twilio_auth_token": None}, "IQMS_TWILIO_AUTH_TOKEN"),
        ({"twilio_auth_token": "abc def"}, "IQMS_TWILIO_AUTH_TOKEN"),
        ({"twilio_from_number": None}, "IQMS_TWILIO_FROM_NUMBER"),
        ({"twilio_from_number": "07700 900123"}, "IQMS_TWILIO_FROM_NUMBER"),
    ],
)
def test_twilio_settings_are_checked_at_start_naming_the_setting(
    overrides: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_providers(twilio_settings(**overrides))
    assert info.value.setting == setting
    assert str(info.value).startswith(setting)


def test_twilio_verify_rejects_wrong_credentials_at_start() -> None:
    http = RecordingTwilioHttp()
    http.answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
    provider = TwilioSmsProvider.from_settings(twilio_settings(), http_client=http)
    with pytest.raises(ConfigError) as info:
        provider.verify_blocking()
    assert info.value.setting == "IQMS_TWILIO_AUTH_TOKEN"
    assert http.requests[0].method == "GET"
    assert http.requests[0].url == f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}.json"
    http.answer(200, {"sid": TWILIO_SID, "status": "active"})
    provider.verify_blocking()


# ---- Firebase --------------------------------------------------------------------------------
@pytest.fixture
def firebase() -> FirebasePushProvider:
    provider = FirebasePushProvider(credential=FakeGoogleCredential(), project_id="demo")
    yield provider
    provider.close()


def push(token: str = "device-token-123") -> OutgoingMessage:
    return OutgoingMessage(
        channel=NotifyChannel.PUSH,
        recipient=token,
        title="Riverside Clinic",
        body="Riverside Clinic: ticket A-001, please go to Room 1 now.",
        data={"kind": "called", "ticket": "A-001"},
    )


@responses.activate
def test_firebase_sends_token_title_and_body(firebase: FirebasePushProvider) -> None:
    responses.post(FCM_URL, json={"name": "projects/demo/messages/0:1234"})
    assert firebase.send_blocking(push()) == "projects/demo/messages/0:1234"
    (call,) = responses.calls
    assert call.request.headers["Authorization"] == "Bearer fake"
    message = json.loads(call.request.body)["message"]
    assert message == {
        "token": "device-token-123",
        "notification": {
            "title": "Riverside Clinic",
            "body": "Riverside Clinic: ticket A-001, please go to Room 1 now.",
        },
        "data": {"kind": "called", "ticket": "A-001"},
    }


def _fcm_error(status: int, grpc: str, fcm: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"code": status, "message": "error", "status": grpc}
    if fcm:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm}
        ]
    return {"error": error}


@responses.activate
def test_firebase_unregistered_token_is_permanent_and_clears_the_token(
    firebase: FirebasePushProvider,
) -> None:
    responses.post(FCM_URL, status=404, json=_fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
    with pytest.raises(PermanentDeliveryError) as info:
        firebase.send_blocking(push())
    assert info.value.clear_push_token is True


@responses.activate
def test_firebase_unavailable_is_transient(firebase: FirebasePushProvider) -> None:
    responses.post(FCM_URL, status=503, json=_fcm_error(503, "UNAVAILABLE"))
    with pytest.raises(TransientDeliveryError):
        firebase.send_blocking(push())


@responses.activate
def test_firebase_invalid_argument_is_permanent_but_keeps_the_token(
    firebase: FirebasePushProvider,
) -> None:
    responses.post(
        FCM_URL, status=400, json=_fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
    )
    with pytest.raises(PermanentDeliveryError) as info:
        firebase.send_blocking(push())
    assert info.value.clear_push_token is False


def test_firebase_credentials_file_is_checked_at_start(tmp_path: Path) -> None:
    def settings_with(path: Path | None) -> Settings:
        return Settings(  # type: ignore[call-arg]
            _env_file=None,
            sms_provider="none",
            push_provider="firebase",
            firebase_credentials_file=path,
        )

    cases = [
        (None, "is not set"),
        (tmp_path / "missing.json", "does not exist"),
    ]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    cases.append((bad_json, "is not a JSON file"))
    not_account = tmp_path / "user.json"
    not_account.write_text(json.dumps({"type": "authorized_user"}))
    cases.append((not_account, "is not a service account key"))
    broken_key = tmp_path / "key.json"
    broken_key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "demo",
                "client_email": "x@demo.iam.gserviceaccount.com",
                "private_key": "not a key",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    cases.append((broken_key, "not a usable service account key"))
    for path, problem in cases:
        with pytest.raises(ConfigError) as info:
            check_provider_settings(settings_with(path))
        assert info.value.setting == "IQMS_FIREBASE_CREDENTIALS_FILE"
        assert problem in str(info.value)


# ---- console and helpers -----------------------------------------------------------------------
def test_console_provider_prints_one_line_per_message() -> None:
    out = io.StringIO()
    provider = ConsoleProvider(NotifyChannel.SMS, out)
    provider_id = provider.send_blocking(
        sms(body="Clinic: ticket A-001,\nplease go to Room 1 now.")
    )
    assert provider_id.startswith("console-")
    assert (
        out.getvalue() == "[sms to +447911123456] Clinic: ticket A-001, please go to Room 1 now.\n"
    )


def test_provider_choice_follows_settings() -> None:
    settings = Settings(_env_file=None, sms_provider="console", push_provider="console")  # type: ignore[call-arg]
    providers = build_providers(settings)
    assert {c: p.name for c, p in providers.items()} == {
        NotifyChannel.SMS: "console",
        NotifyChannel.PUSH: "console",
    }
    none = Settings(_env_file=None, sms_provider="none", push_provider="none")  # type: ignore[call-arg]
    assert build_providers(none) == {}


def test_masking_hides_most_of_a_number_or_token() -> None:
    assert mask_recipient("+447911123456") == "+44******3456"
    assert mask_recipient("device-token-123") == "devi...-123"
