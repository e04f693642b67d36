"""Patients on their own phones: self-registration, and logging in by SMS code or birth date.

These are the entry points before a patient is logged in, so they are public
operations; what protects them:

* **SMS codes** (``IQMS_PATIENT_LOGIN=sms``, or ``auto`` with an SMS provider):
  a six-digit code goes out through the notification outbox in the patient's
  language. Only an HMAC of it (keyed with the signing secret) is stored, with
  its expiry (``IQMS_PATIENT_CODE_MINUTES``); a code dies after
  :data:`MAX_CODE_ATTEMPTS` wrong tries or its first use, and one phone number
  gets at most ``IQMS_PATIENT_CODE_REQUESTS`` codes an hour. The answer to a
  request is the same whether or not the number is registered.
* **MRN + date of birth** (``birth_date``, or ``auto`` without SMS): after
  ``IQMS_LOCKOUT_THRESHOLD`` failures for one record within
  ``IQMS_LOCKOUT_MINUTES``, further tries are refused until the window passes
  (the lockout staff accounts have).

A successful login returns the same signed token staff get, for the patient's
account: a ``users`` row with role ``patient`` linked to the patient record,
created at the first login (no password: it logs in with codes). Tokens are
revoked as any account's are (token version), and a patient principal reaches
only the patient's own record and tickets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from iqms.core.config import PatientLogin, Settings
from iqms.core.enums import NotifyChannel, Role
from iqms.core.errors import AuthenticationFailed, ConfigError, Conflict, RateLimited
from iqms.core.errors import ValidationError as CoreValidationError
from iqms.core.models import Patient, PatientLoginCode, User
from iqms.core.notify.base import mask_recipient
from iqms.core.notify.outbox import enqueue_message
from iqms.core.notify.providers import enabled_channels
from iqms.core.schemas.access import LoginCodeSent, SelfRegistration, SelfRegistrationResult
from iqms.core.schemas.clinic import parse
from iqms.core.schemas.common import normalise_phone
from iqms.core.schemas.users import LoginResult
from iqms.core.security import accounts
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Principal
from iqms.core.security.sessions import principal_for_user
from iqms.core.security.tokens import issue_token, token_expiry
from iqms.core.service import Context, operation

CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5
CODE_REQUEST_WINDOW = timedelta(hours=1)
SMS = "sms"
BIRTH_DATE = "birth_date"
# Patient accounts made at the first login have no password (they log in with codes):
# this is not a hash any scheme accepts, so a password login always fails.
NO_PASSWORD = "!no-password"
REGISTRAR = "self-registration"


# ---- helpers ------------------------------------------------------------------------------------
def _require_method(settings: Settings, wanted: PatientLogin) -> None:
    method = settings.effective_patient_login
    if method is wanted:
        if wanted is PatientLogin.SMS and NotifyChannel.SMS not in enabled_channels(settings):
            raise ConfigError(
                "IQMS_PATIENT_LOGIN", "is sms but IQMS_SMS_PROVIDER is none: no code can be sent"
            )
        return
    if method is PatientLogin.OFF:
        raise CoreValidationError("patient login is not offered here; please ask at reception")
    if method is PatientLogin.SMS:
        raise CoreValidationError(
            "this clinic logs patients in with a code sent by SMS; ask for a code with your "
            "phone number"
        )
    raise CoreValidationError(
        "this clinic does not send login codes; log in with your record number (MRN) and "
        "date of birth"
    )


def _phone(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CoreValidationError("give your mobile phone number", field="phone")
    try:
        return normalise_phone(value)
    except ValueError as exc:
        raise CoreValidationError(str(exc), field="phone") from None


def _birth_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise CoreValidationError(
            "date of birth must be a date like 1984-02-11", field="date_of_birth"
        ) from None


def code_hash(settings: Settings, challenge_id: uuid.UUID, code: str) -> str:
    """The stored form of a login code: an HMAC keyed with the signing secret."""
    key = settings.signing_secret().encode("utf-8")
    return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


async def _patients_with_phone(ctx: Context, phone: str, born: date | None) -> Sequence[Patient]:
    stmt = select(Patient).where(Patient.phone == phone).order_by(Patient.mrn).limit(10)
    if born is not None:
        stmt = stmt.where(Patient.date_of_birth == born)
    return (await ctx.s.execute(stmt)).scalars().all()


async def _send_code(ctx: Context, phone: str, born: date | None) -> LoginCodeSent:
    """Rate-check, store the hashed code and queue the SMS (all in the caller's transaction)."""
    settings = ctx.settings
    now = ctx.now()
    recent = (
        (
            await ctx.s.execute(
                select(PatientLoginCode.created_at)
                .where(
                    PatientLoginCode.method == SMS,
                    PatientLoginCode.lookup == phone,
                    PatientLoginCode.created_at > now - CODE_REQUEST_WINDOW,
                )
                .order_by(PatientLoginCode.created_at)
            )
        )
        .scalars()
        .all()
    )
    masked = mask_recipient(phone)
    if len(recent) >= settings.patient_code_requests:
        wait = recent[len(recent) - settings.patient_code_requests] + CODE_REQUEST_WINDOW - now
        minutes = max(1, round(wait.total_seconds() / 60))
        raise RateLimited(
            f"too many codes asked for {masked}; try again in {minutes} minutes",
            retry_after=int(wait.total_seconds()) + 1,
        )
    matches = await _patients_with_phone(ctx, phone, born)
    challenge = PatientLoginCode(
        id=uuid.uuid4(),
        method=SMS,
        lookup=phone,
        patient_id=matches[0].id if len(matches) == 1 else None,
        created_at=now,
        expires_at=now + timedelta(minutes=settings.patient_code_minutes),
        attempts=0,
    )
    if matches:
        code = _new_code()
        challenge.code_hash = code_hash(settings, challenge.id, code)
        await enqueue_message(
            ctx.s,
            settings,
            channel=NotifyChannel.SMS,
            recipient=phone,
            language=matches[0].language or "en",
            kind="login_code",
            fields={"code": code, "minutes": settings.patient_code_minutes},
            now=now,
            patient_id=challenge.patient_id,
        )
    ctx.s.add(challenge)
    await ctx.s.flush()
    await log_action(
        ctx,
        action="patient.login_code_requested",
        target=("patient", challenge.patient_id) if challenge.patient_id else None,
        details={"phone": masked, "sent": bool(matches), "patients": len(matches)},
    )
    return LoginCodeSent(sent_to=masked, expires_in_minutes=settings.patient_code_minutes)


async def _account_for(ctx: Context, patient: Patient) -> User:
    """The patient's login account, created at the first login (no password)."""
    user = (
        await ctx.s.execute(select(User).where(User.patient_id == patient.id))
    ).scalar_one_or_none()
    if user is not None:
        if not user.active:
            raise AuthenticationFailed("this account is disabled; please ask at reception")
        return user
    base = f"patient-{patient.mrn.lower()}"
    username = base
    for n in range(2, 100):
        taken = (
            await ctx.s.execute(select(User.id).where(User.username == username))
        ).scalar_one_or_none()
        if taken is None:
            break
        username = f"{base}-{n}"
    user = User(
        id=uuid.uuid4(),
        username=username,
        full_name=patient.full_name,
        role=Role.PATIENT,
        password_hash=NO_PASSWORD,
        active=True,
        failed_logins=0,
        token_version=1,
        patient_id=patient.id,
    )
    ctx.s.add(user)
    await ctx.s.flush()
    await log_action(
        ctx,
        action="user.created",
        target=("user", user.id),
        details={"username": user.username, "role": Role.PATIENT.value, "via": "patient login"},
    )
    return user


async def _log_in(ctx: Context, patient: Patient, *, method: str) -> LoginResult:
    """Sign the patient's account in (in the caller's write transaction)."""
    now = ctx.now()
    user = await _account_for(ctx, patient)
    user.last_login_at = now
    principal = await principal_for_user(ctx.s, user)
    await log_action(
        ctx.as_principal(principal),
        action="auth.login",
        target=("user", user.id),
        details={"username": user.username, "method": method},
    )
    token = issue_token(
        ctx.settings,
        user_id=user.id,
        username=user.username,
        role=Role.PATIENT.value,
        token_version=user.token_version,
        now=now,
    )
    return LoginResult(
        token=token,
        principal=principal,
        expires_at=token_expiry(ctx.settings, now),
        user=await accounts.user_out(ctx.s, user, now),
    )


# ---- operations ---------------------------------------------------------------------------------
@operation(None, public=True)
async def self_register(
    ctx: Context,
    *,
    full_name: str,
    phone: str | None = None,
    date_of_birth: Any = None,
    national_id: str | None = None,
    notify_channel: str | None = None,
    language: str = "en",
) -> SelfRegistrationResult:
    """A patient registers on their phone; then logs in with an SMS code or the new MRN."""
    from iqms.core.services import patients

    settings = ctx.settings
    method = settings.effective_patient_login
    if method is PatientLogin.OFF:
        raise CoreValidationError(
            "this clinic does not offer registration online; please register at reception"
        )
    _require_method(settings, method)
    data = parse(
        SelfRegistration,
        full_name=full_name,
        phone=phone,
        date_of_birth=date_of_birth,
        national_id=national_id,
        notify_channel=notify_channel,
        language=language,
    )
    if data.date_of_birth is None:
        raise CoreValidationError("give your date of birth", field="date_of_birth")
    if method is PatientLogin.SMS and data.phone is None:
        raise CoreValidationError(
            "give your mobile phone number: the login code comes by SMS", field="phone"
        )
    same: Patient | None = None
    if data.phone is not None:
        found = await _patients_with_phone(ctx, data.phone, data.date_of_birth)
        same = found[0] if found else None
    if same is None and data.national_id:
        holder = (
            await ctx.s.execute(select(Patient.id).where(Patient.national_id == data.national_id))
        ).scalar_one_or_none()
        if holder is not None:
            raise Conflict(
                "this national id is already registered; please ask at reception",
                field="national_id",
            )
    if same is not None and method is PatientLogin.BIRTH_DATE:
        raise Conflict(
            "you are already registered; please ask at reception for your record number (MRN)",
            field="phone",
        )
    mrn: str | None = None
    if same is None:
        channel = data.notify_channel
        if channel is None:
            channel = (
                NotifyChannel.SMS
                if data.phone and NotifyChannel.SMS in enabled_channels(settings)
                else NotifyChannel.NONE
            )
        created = await patients.register(
            ctx.as_principal(Principal.system(REGISTRAR)),
            full_name=data.full_name,
            phone=data.phone,
            date_of_birth=data.date_of_birth,
            national_id=data.national_id,
            notify_channel=channel.value,
            language=data.language,
        )
        mrn = created.mrn
        await log_action(
            ctx, action="patient.self_registered", target=("patient", created.id),
            details={"mrn": created.mrn},
        )  # fmt: skip
    if method is PatientLogin.SMS:
        assert data.phone is not None
        # Someone already registered gets a login code too: the answer gives nothing away.
        sent = await _send_code(ctx, data.phone, data.date_of_birth)
        return SelfRegistrationResult(login=PatientLogin.SMS, code=sent)
    return SelfRegistrationResult(login=PatientLogin.BIRTH_DATE, mrn=mrn)


@operation(None, public=True)
async def request_login_code(
    ctx: Context, *, phone: str, date_of_birth: Any = None
) -> LoginCodeSent:
    """Send a one-time login code by SMS to a registered patient's phone."""
    _require_method(ctx.settings, PatientLogin.SMS)
    return await _send_code(ctx, _phone(phone), _birth_date(date_of_birth))


@operation(None, public=True, readonly=True)
async def login_with_code(
    ctx: Context, *, phone: str, code: str, date_of_birth: Any = None
) -> LoginResult:
    """Log a patient in with the code sent to their phone; returns a signed login token."""
    settings = ctx.settings
    _require_method(settings, PatientLogin.SMS)
    number = _phone(phone)
    born = _birth_date(date_of_birth)
    typed = code.strip().replace(" ", "") if isinstance(code, str) else ""
    now = ctx.now()
    failure: str | None = None
    async with ctx.db.transaction() as session:
        wctx = ctx.bind(session)
        challenge = (
            await session.execute(
                select(PatientLoginCode)
                .where(
                    PatientLoginCode.method == SMS,
                    PatientLoginCode.lookup == number,
                    PatientLoginCode.code_hash.is_not(None),
                )
                .order_by(PatientLoginCode.created_at.desc())
                .limit(1)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if (
            challenge is None
            or challenge.code_hash is None
            or challenge.used_at is not None
            or challenge.expires_at <= now
            or challenge.attempts >= MAX_CODE_ATTEMPTS
        ):
            failure = "this code has expired or was already used; ask for a new code"
        elif not hmac.compare_digest(challenge.code_hash, code_hash(settings, challenge.id, typed)):
            challenge.attempts += 1
            left = MAX_CODE_ATTEMPTS - challenge.attempts
            failure = (
                f"wrong code; {left} {'try' if left == 1 else 'tries'} left"
                if left
                else "wrong code; ask for a new code"
            )
            await log_action(
                wctx,
                action="patient.login_failed",
                target=("patient", challenge.patient_id) if challenge.patient_id else None,
                details={"method": SMS, "phone": mask_recipient(number), "attempts_left": left},
            )
        if failure is None:
            assert challenge is not None
            if challenge.patient_id is not None and born is None:
                patient = await session.get(Patient, challenge.patient_id)
                candidates = [patient] if patient is not None else []
            else:
                candidates = list(await _patients_with_phone(wctx, number, born))
            if len(candidates) > 1:
                raise CoreValidationError(
                    "several patients share this phone number; give your date of birth too",
                    field="date_of_birth",
                )
            if not candidates:
                failure = "no patient with this phone number and date of birth is registered"
            else:
                challenge.used_at = now
                return await _log_in(wctx, candidates[0], method=SMS)
    raise AuthenticationFailed(failure)


@operation(None, public=True, readonly=True)
async def login_with_birth_date(ctx: Context, *, mrn: str, date_of_birth: Any) -> LoginResult:
    """Log a patient in with their record number (MRN) and date of birth (clinics without SMS)."""
    settings = ctx.settings
    _require_method(settings, PatientLogin.BIRTH_DATE)
    record = (mrn or "").strip().upper()[:32] if isinstance(mrn, str) else ""
    born = _birth_date(date_of_birth)
    if not record:
        raise CoreValidationError("give your record number (MRN)", field="mrn")
    if born is None:
        raise CoreValidationError("give your date of birth", field="date_of_birth")
    now = ctx.now()
    window = timedelta(minutes=settings.lockout_minutes)
    failure: str
    async with ctx.db.transaction() as session:
        wctx = ctx.bind(session)
        failed: list[datetime] = list(
            (
                await session.execute(
                    select(PatientLoginCode.created_at)
                    .where(
                        PatientLoginCode.method == BIRTH_DATE,
                        PatientLoginCode.lookup == record,
                        PatientLoginCode.used_at.is_(None),
                        PatientLoginCode.created_at > now - window,
                    )
                    .order_by(PatientLoginCode.created_at)
                )
            ).scalars()
        )
        threshold = settings.lockout_threshold
        if len(failed) >= threshold:
            wait = failed[len(failed) - threshold] + window - now
            raise RateLimited(
                f"too many failed logins for this record; try again in "
                f"{max(1, round(wait.total_seconds() / 60))} minutes",
                retry_after=int(wait.total_seconds()) + 1,
            )
        patient = (
            await session.execute(select(Patient).where(Patient.mrn == record))
        ).scalar_one_or_none()
        if patient is not None and patient.date_of_birth == born:
            # A successful login clears the failures counted against the record.
            await session.execute(
                update(PatientLoginCode)
                .where(
                    PatientLoginCode.method == BIRTH_DATE,
                    PatientLoginCode.lookup == record,
                    PatientLoginCode.used_at.is_(None),
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            return await _log_in(wctx, patient, method=BIRTH_DATE)
        session.add(
            PatientLoginCode(
                id=uuid.uuid4(),
                method=BIRTH_DATE,
                lookup=record,
                patient_id=patient.id if patient else None,
                created_at=now,
                expires_at=now,
                attempts=1,
            )
        )
        await session.flush()
        await log_action(
            wctx,
            action="patient.login_failed",
            target=("patient", patient.id) if patient else None,
            details={"method": BIRTH_DATE, "mrn": record},
        )
        failure = (
            "login failed: the record number and date of birth do not match (after "
            f"{threshold} failed attempts, logins for a record pause for "
            f"{settings.lockout_minutes} minutes)"
        )
    raise AuthenticationFailed(failure)


__all__ = [
    "code_hash",
    "login_with_birth_date",
    "login_with_code",
    "request_login_code",
    "self_register",
]
