"""Slack: a formatted message (Block Kit) to an incoming-webhook URL."""

from __future__ import annotations

import json
from typing import Any

from monitors.models import Channel
from monitors.notify import chart_links, http, messages, templating
from monitors.notify.base import Sent

EMOJI = {
    "fired": ":red_circle:",
    "repeated": ":red_circle:",
    "resolved": ":large_green_circle:",
    "warning_raised": ":large_yellow_circle:",
    "warning_cleared": ":white_check_mark:",
    "flapping_started": ":warning:",
    "flapping_stopped": ":white_check_mark:",
    "paused": ":double_vertical_bar:",
    "redefined": ":pencil2:",
    "channel_failing": ":rotating_light:",
    "series_changed": ":bar_chart:",
    "escalated": ":rotating_light:",
    "test": ":wave:",
}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only &, < and > (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def own_words(channel: Channel, payload: dict[str, Any]) -> templating.Rendered:
    """The channel's templates filled for Slack: the header is plain text (values as they
    are), the text is mrkdwn (values escaped, the template's own formatting kept)."""
    plain = templating.render_for(channel, payload)
    marked = templating.render_for(channel, payload, escape)
    return templating.Rendered(plain.subject, marked.body)


def message(
    payload: dict[str, Any],
    *,
    own: templating.Rendered | None = None,
    image_url: str | None = None,
) -> dict[str, Any]:
    """The Block Kit message; ``own`` is the channel's templated subject and body (they take
    the header's and the text's place, the facts are left out), ``image_url`` the chart."""
    subject = (own.subject if own else None) or messages.subject(payload)
    text = (own.body if own else None) or messages.headline(payload)
    title = f"{EMOJI.get(payload.get('event', ''), '')} {subject}".strip()
    facts = [] if own and own.body else messages.facts(payload)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{value}"}
        for label, value in facts
        if label not in ("What", "Query")
    ][:10]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": text[:3000] or " "},
        },
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if image_url:
        alt = f"Chart of {payload.get('monitor', {}).get('name') or 'the series'}, recent hours"
        blocks.append({"type": "image", "image_url": image_url, "alt_text": alt[:2000]})
    url = payload.get("monitor", {}).get("url")
    buttons: list[dict[str, Any]] = []
    if payload.get("acknowledge_url"):
        ack = {"type": "plain_text", "text": "Acknowledge"}
        buttons.append(
            {"type": "button", "text": ack, "url": payload["acknowledge_url"], "style": "primary"}
        )
    if url:
        buttons.append(
            {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": f"{title}: {text}"[:3000], "blocks": blocks}


class SlackNotifier:
    def validate(self, config: dict[str, Any]) -> dict[str, Any]:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith("https://hooks.slack.com/"):
            from django.conf import settings

            if not (isinstance(url, str) and settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES):
                raise ValueError("url: a Slack incoming-webhook URL (https://hooks.slack.com/…)")
        try:
            http.check_url(url)
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from exc
        return {"url": url}

    def send(self, channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> Sent:
        body = json.dumps(
            message(
                payload,
                own=own_words(channel, payload),
                image_url=chart_links.url_for(idempotency_key, payload),
            )
        ).encode()
        return http.post(channel.config["url"], content=body, headers=http.json_headers())
