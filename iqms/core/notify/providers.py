"""Choosing the providers from settings (and failing early, naming the setting, when unusable)."""

from __future__ import annotations

from typing import TextIO

from iqms.core.config import PushProvider, Settings, SmsProvider
from iqms.core.enums import NotifyChannel
from iqms.core.errors import ConfigError
from iqms.core.notify.base import NotificationProvider


def provider_timeout(settings: Settings) -> float:
    """Seconds a provider call may take: well inside the lease, so a slow send is never re-sent."""
    return float(max(2, min(15, settings.notify_lease_seconds // 3)))


def enabled_channels(settings: Settings) -> frozenset[NotifyChannel]:
    """The channels a provider is configured for (``none`` disables a channel)."""
    channels = set()
    if settings.sms_provider != SmsProvider.NONE:
        channels.add(NotifyChannel.SMS)
    if settings.push_provider != PushProvider.NONE:
        channels.add(NotifyChannel.PUSH)
    return frozenset(channels)


def check_provider_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` if a chosen provider lacks credentials (no network, no clients)."""
    if settings.sms_provider == SmsProvider.TWILIO:
        from iqms.core.notify.twilio_sms import check_twilio_settings

        check_twilio_settings(settings)
    if settings.push_provider == PushProvider.FIREBASE:
        from iqms.core.notify.firebase_push import load_firebase_credential

        load_firebase_credential(settings)


def build_sms_provider(settings: Settings, *, stream: TextIO | None = None) -> NotificationProvider:
    """The SMS provider chosen by ``IQMS_SMS_PROVIDER``."""
    if settings.sms_provider == SmsProvider.TWILIO:
        from iqms.core.notify.twilio_sms import TwilioSmsProvider

        return TwilioSmsProvider.from_settings(settings, timeout=provider_timeout(settings))
    if settings.sms_provider == SmsProvider.CONSOLE:
        from iqms.core.notify.console import ConsoleProvider

        return ConsoleProvider(NotifyChannel.SMS, stream)
    raise ConfigError(
        "IQMS_SMS_PROVIDER", "is 'none'; set it to 'twilio' (or 'console') to send SMS"
    )


def build_push_provider(
    settings: Settings, *, stream: TextIO | None = None
) -> NotificationProvider:
    """The push provider chosen by ``IQMS_PUSH_PROVIDER``."""
    if settings.push_provider == PushProvider.FIREBASE:
        from iqms.core.notify.firebase_push import FirebasePushProvider

        return FirebasePushProvider.from_settings(settings, timeout=provider_timeout(settings))
    if settings.push_provider == PushProvider.CONSOLE:
        from iqms.core.notify.console import ConsoleProvider

        return ConsoleProvider(NotifyChannel.PUSH, stream)
    raise ConfigError(
        "IQMS_PUSH_PROVIDER", "is 'none'; set it to 'firebase' (or 'console') to send push messages"
    )


def build_providers(
    settings: Settings, *, stream: TextIO | None = None
) -> dict[NotifyChannel, NotificationProvider]:
    """Every configured provider, by channel; ``ConfigError`` naming the first bad setting."""
    providers: dict[NotifyChannel, NotificationProvider] = {}
    try:
        if NotifyChannel.SMS in enabled_channels(settings):
            providers[NotifyChannel.SMS] = build_sms_provider(settings, stream=stream)
        if NotifyChannel.PUSH in enabled_channels(settings):
            providers[NotifyChannel.PUSH] = build_push_provider(settings, stream=stream)
    except BaseException:
        for provider in providers.values():
            provider.close()
        raise
    return providers
