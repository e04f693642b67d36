"""Message templates: per-language text, no clinical detail, SMS within two segments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iqms.core.enums import NotifyChannel
from iqms.core.notify.templates import (
    KINDS,
    LANGUAGES,
    TEMPLATES,
    is_gsm,
    pick_language,
    render,
    sms_segments,
    to_gsm,
    wait_text,
)

FIELDS = {
    "ticket": "A-042",
    "department": "General Practice",
    "wait": "15-25",
    "ahead": 3,
    "room": "Room 2",
    "new_ticket": "O-007",
    "code": "482913",
    "minutes": 10,
}


def sms(kind: str, language: str = "en", clinic: str = "Riverside Clinic", **fields: object):
    return render(
        kind,
        language=language,
        clinic=clinic,
        channel=NotifyChannel.SMS,
        fields={**FIELDS, **fields},
    )


def test_english_messages_say_ticket_room_and_wait() -> None:
    assert sms("issued").body == (
        "Riverside Clinic: your ticket is A-042 for General Practice. Estimated wait about "
        "15-25 min. We will let you know when your turn is near."
    )
    assert sms("called").body == "Riverside Clinic: ticket A-042, please go to Room 2 now."
    assert sms("approaching").body.startswith(
        "Riverside Clinic: ticket A-042, your turn is near (3 ahead of you)."
    )
    assert "O-007" in sms("transferred").body


def test_spanish_patients_get_spanish_text_in_gsm_characters() -> None:
    issued = sms("issued", "es")
    assert issued.language == "es"
    assert issued.body.startswith("Riverside Clinic: su turno es A-042 para General Practice.")
    assert "Espera estimada: 15-25 min." in issued.body
    no_show = sms("no_show", "es")
    # "recepción" would force the whole SMS into UCS-2 (70 characters a part).
    assert "Acuda a recepcion" in no_show.body
    assert is_gsm(no_show.body)
    assert sms_segments(no_show.body) == 1


def test_issued_without_estimate_and_when_already_near() -> None:
    without = render(
        "issued",
        language="en",
        clinic="C",
        channel=NotifyChannel.SMS,
        fields={"ticket": "A-001", "department": "GP"},
    )
    assert (
        without.body
        == "C: your ticket is A-001 for GP. We will let you know when your turn is near."
    )
    near = sms("issued", near=True)
    assert "please stay in the waiting area" in near.body
    assert "We will let you know" not in near.body


@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("ES_es", "es"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_fallback(preference: str | None, expected: str) -> None:
    assert pick_language(preference) == expected


def test_every_kind_exists_in_every_language() -> None:
    for language in LANGUAGES:
        for kind in KINDS:
            assert kind in TEMPLATES[language], (language, kind)
            body = sms(kind, language).body
            assert "{" not in body and "}" not in body


def test_segment_counting() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3
    assert sms_segments("€" * 80) == 1  # extension characters take two septets
    assert sms_segments("€" * 81) == 2
    assert sms_segments("診" * 70) == 1
    assert sms_segments("診" * 71) == 2
    assert sms_segments("😀" * 35) == 1  # two UTF-16 units each


def test_to_gsm_keeps_gsm_letters_and_replaces_the_rest() -> None:
    assert to_gsm("Ñandú Pérez ¿sí? “Clínica” – 3…") == 'Ñandu Pérez ¿si? "Clinica" - 3...'
    assert to_gsm("診療所") == "診療所"


def test_wait_text() -> None:
    assert wait_text(14.6, 24.2) == "15-24"
    assert wait_text(0.2, 0.4) == "1"
    assert wait_text(10, None) == "10"


def test_no_clinical_detail_even_if_given() -> None:
    body = sms("called", triage="Very urgent", diagnosis="asthma").body
    assert "urgent" not in body.lower() and "asthma" not in body


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80
).filter(lambda s: s.strip())


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    language=st.sampled_from(LANGUAGES),
    clinic=names,
    department=names,
    room=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
    ),
    ahead=st.integers(min_value=0, max_value=50),
    near=st.booleans(),
)
def test_every_sms_fits_in_two_segments(
    kind: str, language: str, clinic: str, department: str, room: str, ahead: int, near: bool
) -> None:
    body = sms(
        kind,
        language,
        clinic=clinic,
        department=department,
        room=room,
        ahead=ahead,
        near=near,
        wait="120-240",
        ticket="ABC-1234",
        new_ticket="XYZ-1234",
        code="482913",
        minutes=60,
    ).body
    assert sms_segments(body) <= 2, body


def test_typical_messages_fit_in_one_segment() -> None:
    for language in LANGUAGES:
        for kind in ("called", "recalled", "approaching", "no_show", "transferred", "login_code"):
            assert sms_segments(sms(kind, language).body) == 1, (language, kind)


def test_push_keeps_the_full_text_and_the_clinic_as_title() -> None:
    message = render(
        "called",
        language="es",
        clinic="Clínica Río",
        channel=NotifyChannel.PUSH,
        fields={"ticket": "A-001", "room": "Sala 3"},
    )
    assert message.title == "Clínica Río"
    assert message.body == "Clínica Río: turno A-001, pase ahora a Sala 3, por favor."
