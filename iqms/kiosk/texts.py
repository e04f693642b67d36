"""What the kiosk says and prints, in every language the patient messages have.

Keys are shared by all languages (a test checks that each language has every
key, and that every language of the message templates is here). Texts are
short: a patient reads them standing, often without glasses.
"""

from __future__ import annotations

import math

from iqms.core.notify.templates import DEFAULT_LANGUAGE, pick_language

LANGUAGE_NAMES = {"en": "English", "es": "Español"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        # the printed ticket
        "ticket.your_number": "Your number",
        "ticket.ahead.none": "You are next",
        "ticket.ahead.one": "1 person ahead of you",
        "ticket.ahead.many": "{n} people ahead of you",
        "ticket.wait": "Estimated wait: {low}-{high} min",
        "ticket.wait.short": "Estimated wait: under 5 min",
        "ticket.wait.unavailable": "Estimated wait: unavailable",
        "ticket.offline": "ISSUED OFFLINE",
        "ticket.scan": "Scan to follow your place in the queue",
        "ticket.instruction": "Please wait until your number is shown on the screen.",
        # the screens
        "start.welcome": "Welcome",
        "start.language": "Choose your language",
        "start.printer_out": "The ticket printer is out of order: your number is shown on screen.",
        "start.closed": "No service is open at the moment. Please ask at reception.",
        "start.starting": "Starting. Waiting for the clinic's system...",
        "common.back": "Back",
        "common.busy": "One moment, please...",
        "common.error": "Something went wrong. Please try again, or ask at reception.",
        "service.title": "Choose a service",
        "service.appointment": "I have an appointment",
        "service.none": "No service is open at the moment. Please ask at reception.",
        "waiting.none": "Nobody waiting",
        "waiting.one": "1 person waiting",
        "waiting.many": "{n} people waiting",
        "wait.minutes": "about {low}-{high} min",
        "wait.short": "less than 5 min",
        "wait.unknown": "wait not known right now",
        "sms.title": "Would you like an SMS when it is almost your turn?",
        "sms.no": "No, just my ticket",
        "sms.yes": "Yes, send me an SMS",
        "sms.form": "Your details for the SMS",
        "sms.phone": "Mobile phone number",
        "sms.birth": "Date of birth (day / month / year)",
        "sms.name": "Your name",
        "sms.consent": "I agree that the clinic sends me SMS about my place in the queue.",
        "sms.agree": "I agree: get my ticket",
        "sms.bad_phone": "Please check the phone number.",
        "sms.bad_birth": "Please check the date of birth (day / month / year).",
        "sms.no_name": "Please type your name.",
        "sms.sent_to": "We will send an SMS to your number ending in {last}.",
        "checkin.title": "Check in for your appointment",
        "checkin.by_code": "I have a booking code",
        "checkin.by_phone": "Use my phone and date of birth",
        "checkin.code": "Booking code (8 digits)",
        "checkin.submit": "Check in",
        "checkin.bad_code": "A booking code has 8 digits. Please check it.",
        "checkin.not_found": "No appointment today matches these details. Please ask at reception.",
        "checkin.too_early": "It is too early to check in for this appointment. Please come back later.",
        "checkin.too_late": "It is too late to check in for this appointment. Please ask at reception.",
        "checkin.checked_in": "This appointment is already checked in.",
        "checkin.cancelled": "This appointment was cancelled. Please ask at reception.",
        "checkin.closed": "This service is closed now. Please ask at reception.",
        "checkin.offline": "Check-in needs the clinic's system, which cannot be reached now. "
        "You can take a normal ticket, or ask at reception.",
        "checkin.ticket": "Take a normal ticket",
        "checkin.too_many": "Too many tries. Please ask at reception.",
        "checkin.at": "Your appointment: {time}",
        "result.printing": "Printing your ticket...",
        "result.take": "Please take your ticket.",
        "result.note": "Please note your number: the printer is out of order.",
        "result.screen_only": "Please note your number.",
        "result.offline": "Issued offline: the wait is not known right now.",
        "result.reprint": "Print again",
        "result.done": "Done",
        "result.already": "You already have number {number} for {department}.",
        "result.no_numbers": "No ticket can be issued right now. Please ask at reception.",
        "result.room": "Room: {room}",
    },
    "es": {
        "ticket.your_number": "Su número",
        "ticket.ahead.none": "Usted es el siguiente",
        "ticket.ahead.one": "1 persona delante de usted",
        "ticket.ahead.many": "{n} personas delante de usted",
        "ticket.wait": "Espera estimada: {low}-{high} min",
        "ticket.wait.short": "Espera estimada: menos de 5 min",
        "ticket.wait.unavailable": "Espera estimada: no disponible",
        "ticket.offline": "EMITIDO SIN CONEXIÓN",
        "ticket.scan": "Escanee para seguir su turno",
        "ticket.instruction": "Espere, por favor, hasta que su número aparezca en la pantalla.",
        "start.welcome": "Bienvenido",
        "start.language": "Elija su idioma",
        "start.printer_out": "La impresora no funciona: su número se muestra en la pantalla.",
        "start.closed": "Ahora no hay ningún servicio abierto. Pregunte en recepción, por favor.",
        "start.starting": "Iniciando. Esperando al sistema de la clínica...",
        "common.back": "Volver",
        "common.busy": "Un momento, por favor...",
        "common.error": "Algo ha fallado. Inténtelo de nuevo o pregunte en recepción.",
        "service.title": "Elija un servicio",
        "service.appointment": "Tengo una cita",
        "service.none": "Ahora no hay ningún servicio abierto. Pregunte en recepción, por favor.",
        "waiting.none": "Nadie esperando",
        "waiting.one": "1 persona esperando",
        "waiting.many": "{n} personas esperando",
        "wait.minutes": "unos {low}-{high} min",
        "wait.short": "menos de 5 min",
        "wait.unknown": "espera no disponible ahora",
        "sms.title": "¿Quiere un SMS cuando falte poco para su turno?",
        "sms.no": "No, solo mi número",
        "sms.yes": "Sí, envíenme un SMS",
        "sms.form": "Sus datos para el SMS",
        "sms.phone": "Número de móvil",
        "sms.birth": "Fecha de nacimiento (día / mes / año)",
        "sms.name": "Su nombre",
        "sms.consent": "Acepto que la clínica me envíe SMS sobre mi turno en la cola.",
        "sms.agree": "Acepto: quiero mi número",
        "sms.bad_phone": "Revise el número de teléfono, por favor.",
        "sms.bad_birth": "Revise la fecha de nacimiento (día / mes / año), por favor.",
        "sms.no_name": "Escriba su nombre, por favor.",
        "sms.sent_to": "Le enviaremos un SMS a su número acabado en {last}.",
        "checkin.title": "Registre su llegada a la cita",
        "checkin.by_code": "Tengo un código de reserva",
        "checkin.by_phone": "Con mi teléfono y mi fecha de nacimiento",
        "checkin.code": "Código de reserva (8 cifras)",
        "checkin.submit": "Registrar llegada",
        "checkin.bad_code": "El código de reserva tiene 8 cifras. Revíselo, por favor.",
        "checkin.not_found": "No hay ninguna cita hoy con estos datos. Pregunte en recepción, por favor.",
        "checkin.too_early": "Aún es pronto para registrar esta cita. Vuelva más tarde, por favor.",
        "checkin.too_late": "Ya es tarde para registrar esta cita. Pregunte en recepción, por favor.",
        "checkin.checked_in": "Esta cita ya está registrada.",
        "checkin.cancelled": "Esta cita fue anulada. Pregunte en recepción, por favor.",
        "checkin.closed": "Este servicio está cerrado ahora. Pregunte en recepción, por favor.",
        "checkin.offline": "Para registrar la cita hace falta el sistema de la clínica, que ahora "
        "no responde. Puede sacar un número normal o preguntar en recepción.",
        "checkin.ticket": "Sacar un número normal",
        "checkin.too_many": "Demasiados intentos. Pregunte en recepción, por favor.",
        "checkin.at": "Su cita: {time}",
        "result.printing": "Imprimiendo su ticket...",
        "result.take": "Recoja su ticket, por favor.",
        "result.note": "Anote su número, por favor: la impresora no funciona.",
        "result.screen_only": "Anote su número, por favor.",
        "result.offline": "Emitido sin conexión: la espera no se conoce ahora.",
        "result.reprint": "Imprimir de nuevo",
        "result.done": "Terminar",
        "result.already": "Ya tiene el número {number} para {department}.",
        "result.no_numbers": "Ahora no se pueden dar números. Pregunte en recepción, por favor.",
        "result.room": "Consulta: {room}",
    },
}

LANGUAGES = tuple(TEXTS)


def t(language: str | None, key: str, **values: object) -> str:
    """The text ``key`` in ``language`` (``es-MX`` -> ``es``; unknown -> English)."""
    lang = pick_language(language)
    table = TEXTS.get(lang, TEXTS[DEFAULT_LANGUAGE])
    template = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return template.format(**values) if values else template


def waiting_text(language: str | None, waiting: int) -> str:
    if waiting <= 0:
        return t(language, "waiting.none")
    if waiting == 1:
        return t(language, "waiting.one")
    return t(language, "waiting.many", n=waiting)


def wait_range_text(language: str | None, p50: float, p90: float) -> str:
    """``about 10-25 min`` (or ``less than 5 min``): an estimate as a patient reads it."""
    high = max(0, math.ceil(p90))
    if high < 5:
        return t(language, "wait.short")
    low = min(max(0, round(p50)), high)
    return t(language, "wait.minutes", low=low, high=high)


def ahead_text(language: str | None, ahead: int) -> str:
    if ahead <= 0:
        return t(language, "ticket.ahead.none")
    if ahead == 1:
        return t(language, "ticket.ahead.one")
    return t(language, "ticket.ahead.many", n=ahead)


__all__ = [
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "TEXTS",
    "ahead_text",
    "t",
    "wait_range_text",
    "waiting_text",
]
