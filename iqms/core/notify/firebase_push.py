"""Push messages through Firebase Cloud Messaging (the official ``firebase-admin`` SDK)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
import warnings
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


def load_firebase_credential(settings: Settings) -> tuple[Any, str]:
    """The service-account credential and project id from settings; ``ConfigError`` if unusable."""
    from firebase_admin import credentials

    path = settings.firebase_credentials_file
    if path is None:
        raise ConfigError(
            "IQMS_FIREBASE_CREDENTIALS_FILE",
            "is not set (a service account JSON file, needed for IQMS_PUSH_PROVIDER=firebase)",
        )
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError("IQMS_FIREBASE_CREDENTIALS_FILE", f"{path} does not exist")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("IQMS_FIREBASE_CREDENTIALS_FILE", f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError:
        raise ConfigError("IQMS_FIREBASE_CREDENTIALS_FILE", f"{path} is not a JSON file") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(
            "IQMS_FIREBASE_CREDENTIALS_FILE",
            f"{path} is not a service account key (download one from the Firebase console)",
        )
    try:
        credential = credentials.Certificate(info)
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid key"
        raise ConfigError(
            "IQMS_FIREBASE_CREDENTIALS_FILE", f"{path} is not a usable service account key: {first}"
        ) from None
    project_id = (settings.firebase_project_id or credential.project_id or "").strip()
    if not project_id:
        raise ConfigError("IQMS_FIREBASE_PROJECT_ID", "is not set and the key names no project")
    return credential, project_id


class FirebasePushProvider(NotificationProvider):
    """Sends one notification per push token with ``messaging.send``."""

    channel = NotifyChannel.PUSH
    name = "firebase"

    def __init__(self, *, credential: Any, project_id: str, timeout: float = 15.0) -> None:
        import firebase_admin

        self.project_id = project_id
        self._app = firebase_admin.initialize_app(
            credential,
            options={"projectId": project_id, "httpTimeout": timeout},
            name=f"iqms-{uuid.uuid4().hex}",
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 15.0) -> FirebasePushProvider:
        credential, project_id = load_firebase_credential(settings)
        return cls(credential=credential, project_id=project_id, timeout=timeout)

    def describe(self) -> str:
        return f"push via firebase (project {self.project_id})"

    def send_blocking(self, message: OutgoingMessage) -> str:
        import requests
        from firebase_admin import exceptions, messaging
        from google.auth import exceptions as auth_exceptions

        with warnings.catch_warnings():
            # FCM registration tokens are what patients' apps register; the SDK now
            # prefers installation ids (``fid``) and warns about ``token``.
            warnings.simplefilter("ignore", DeprecationWarning)
            fcm_message = messaging.Message(
                token=message.recipient,
                notification=messaging.Notification(title=message.title, body=message.body),
                data=dict(message.data) or None,
            )
        try:
            return str(messaging.send(fcm_message, app=self._app))
        except (messaging.UnregisteredError, messaging.SenderIdMismatchError) as exc:
            raise PermanentDeliveryError(
                f"push token is no longer registered ({_describe(exc)})",
                code=_code(exc),
                clear_push_token=True,
            ) from None
        except exceptions.InvalidArgumentError as exc:
            raise PermanentDeliveryError(
                f"Firebase refused the message: {_describe(exc)}", code=_code(exc)
            ) from None
        except (
            exceptions.UnauthenticatedError,
            exceptions.PermissionDeniedError,
            exceptions.ResourceExhaustedError,
            exceptions.UnavailableError,
            exceptions.InternalError,
            exceptions.DeadlineExceededError,
            exceptions.UnknownError,
            exceptions.AbortedError,
            exceptions.CancelledError,
        ) as exc:
            raise TransientDeliveryError(f"Firebase: {_describe(exc)}", code=_code(exc)) from None
        except exceptions.FirebaseError as exc:
            raise PermanentDeliveryError(
                f"Firebase refused the message: {_describe(exc)}", code=_code(exc)
            ) from None
        except (requests.RequestException, auth_exceptions.TransportError) as exc:
            raise TransientDeliveryError(
                f"cannot reach Firebase: {type(exc).__name__}", code="network"
            ) from None
        except auth_exceptions.RefreshError as exc:
            raise TransientDeliveryError(
                f"Google refused the service account: {exc}", code="credentials"
            ) from None

    def verify_blocking(self) -> None:
        from google.auth import exceptions as auth_exceptions

        try:
            self._app.credential.get_access_token()
        except auth_exceptions.RefreshError as exc:
            raise ConfigError(
                "IQMS_FIREBASE_CREDENTIALS_FILE", f"was rejected by Google ({exc})"
            ) from None
        except (auth_exceptions.TransportError, OSError) as exc:
            raise TransientDeliveryError(
                f"cannot reach Google to check the key: {type(exc).__name__}", code="network"
            ) from None

    def close(self) -> None:
        import firebase_admin

        def delete() -> None:
            try:
                firebase_admin.delete_app(self._app)
            except ValueError:
                pass  # already deleted

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            delete()
            return
        # The SDK closes its async HTTP client with asyncio.run(), which cannot run
        # inside an event loop: do it on a short-lived thread.
        thread = threading.Thread(target=delete, name="firebase-close")
        thread.start()
        thread.join()


def _code(exc: Any) -> str | None:
    code = getattr(exc, "code", None)
    return str(code) if code else None


def _describe(exc: Any) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
