"""Email: a plain-text and an HTML part, through Django's configured SMTP connection."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.template import Context, Engine

from monitors.models import Channel
from monitors.notify import chart_png, messages, templating
from monitors.notify.base import PermanentError, Sent, TransientError

MAX_ADDRESSES = 10
# The templates live beside the code (monitors/notify/templates/notify/), which is not an app
# of its own, so they get their own engine.
TEMPLATES = Engine(dirs=[str(Path(__file__).resolve().parent / "templates")])


class EmailNotifier:
    def validate(self, config: dict[str, Any]) -> dict[str, Any]:
        addresses = config.get("addresses")
        if isinstance(addresses, str):
            addresses = [a.strip() for a in addresses.split(",") if a.strip()]
        if not isinstance(addresses, list) or not addresses:
            raise ValueError("addresses: give one or more email addresses")
        if len(addresses) > MAX_ADDRESSES:
            raise ValueError(f"addresses: at most {MAX_ADDRESSES}")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError as exc:
                raise ValueError(
                    f"addresses: the address “{address}” is not a valid email address"
                ) from exc
        return {"addresses": addresses}

    def send(self, channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> Sent:
        message = build(
            payload,
            channel.config["addresses"],
            idempotency_key=idempotency_key,
            channel_name=channel.name,
            own=templating.render_for(channel, payload),
        )
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"recipients refused: {list(exc.recipients)}") from exc
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(error, status_code=exc.smtp_code) from exc
            raise TransientError(error, status_code=exc.smtp_code) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"SMTP: {exc}") from exc
        return Sent(250, f"to {', '.join(channel.config['addresses'])}")


def build(
    payload: dict[str, Any],
    to: list[str],
    *,
    idempotency_key: str,
    channel_name: str = "",
    own: templating.Rendered | None = None,
) -> EmailMultiAlternatives:
    """The email; ``own`` is the channel's templated subject and body (each None: the
    default). The templated body takes the place of the headline and the facts; the chart,
    the link and the details stay. The HTML part escapes it (autoescape)."""
    subject = (own.subject if own else None) or messages.subject(payload)
    body = own.body if own else None
    context = Context(
        {
            "payload": payload,
            "subject": subject,
            "own_body": body,
            "headline": messages.headline(payload),
            "facts": [] if body else messages.facts(payload),
            "details": messages.details(payload),
            "points": messages.points_text(payload),
            "channel_name": channel_name,
        }
    )
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split())[:300],  # a header: one line
        body=TEMPLATES.get_template("notify/email.txt").render(context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers={
            # Lets a receiving system de-duplicate; mail clients thread by it.
            "X-Growalert-Idempotency-Key": idempotency_key,
            "Message-ID": f"<{idempotency_key.replace(':', '.')}@growalert>",
        },
    )
    html = TEMPLATES.get_template("notify/email.html").render(context)
    message.attach_alternative(html, "text/html")
    chart = chart_png.from_payload(payload)
    if chart is not None:
        message.attach("chart.png", chart, "image/png")
    return message
