"""Password rules and hashing, and the signed login tokens (no database needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from iqms.core.config import Settings
from iqms.core.errors import AuthenticationFailed, ValidationError
from iqms.core.schemas.users import normalise_username
from iqms.core.security.passwords import (
    MAX_PASSWORD_BYTES,
    check_password_rules,
    hash_password,
    verify_password,
)
from iqms.core.security.tokens import decode_token, issue_token
from tests.conftest import make_settings


@pytest.fixture
def cheap(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "sqlite:///unused.db")


@pytest.mark.parametrize(
    ("password", "username", "message"),
    [
        ("short", None, "at least 10 characters"),
        ("x" * 73, None, f"at most {MAX_PASSWORD_BYTES} bytes"),
        ("é" * 37, None, f"at most {MAX_PASSWORD_BYTES} bytes"),  # 74 bytes in UTF-8
        ("Rita.Reception", "rita.reception", "same as the username"),
        (" " * 12, None, "must not be blank"),
        ("good-password\x00", None, "control characters"),
        ("tab\tin-the-middle", None, "control characters"),
    ],
)
def test_password_rules_explain_what_is_wrong(
    password: str, username: str | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        check_password_rules(password, username=username)
    assert err.value.field == "password"
    assert password.strip() == "" or password not in str(err.value)


@hyp_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=10, max_size=30
    ).filter(lambda p: p.strip() != "" and len(p.encode()) <= MAX_PASSWORD_BYTES)
)
def test_any_acceptable_password_round_trips(tmp_path_factory, password: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("h"), "sqlite:///unused.db")
    check_password_rules(password, username="someone")
    hashed = hash_password(settings, password)
    assert password not in hashed
    assert verify_password(settings, password, hashed) == (True, None)
    assert verify_password(settings, password + "!", hashed)[0] is False


def test_verify_never_raises_on_odd_input(cheap: Settings) -> None:
    hashed = hash_password(cheap, "good-password-1")
    assert verify_password(cheap, "x" * 200, hashed) == (False, None)
    assert verify_password(cheap, "good-password-1", "not-a-hash") == (False, None)
    assert verify_password(cheap, "good-password-1", "") == (False, None)


def test_usernames_are_normalised_and_checked() -> None:
    assert normalise_username("  Rita.R ") == "rita.r"
    for bad in ("r", "-rita", "rita smith", "x" * 65, "rïta"):
        with pytest.raises(ValueError, match="username must be"):
            normalise_username(bad)


def test_tokens_carry_the_account_and_expire(cheap: Settings) -> None:
    now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    user_id = uuid.uuid4()
    token = issue_token(
        cheap, user_id=user_id, username="rita", role="staff", token_version=3, now=now
    )
    claims = decode_token(cheap, token, now=now + timedelta(hours=7, minutes=59))
    assert (claims.user_id, claims.username, claims.role, claims.token_version) == (
        user_id,
        "rita",
        "staff",
        3,
    )
    assert claims.expires_at == now + timedelta(minutes=cheap.token_lifetime_minutes)
    with pytest.raises(AuthenticationFailed, match="expired"):
        decode_token(cheap, token, now=now + timedelta(hours=8))
    other = cheap.model_copy(update={"secret_key": None, "secret_key_file": None})
    with pytest.raises(AuthenticationFailed, match="not valid"):
        decode_token(other, token, now=now)
