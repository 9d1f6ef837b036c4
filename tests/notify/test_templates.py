"""Per-channel message templates: the variables a template may use and nothing else, plain
errors for a bad one (service, API), each kind's use of them (the email on the real SMTP sink
with its templated subject, Slack escaping, the webhook's ``message``, SMS), and a stored
template that cannot be filled never stops delivery: the default message goes out, logged."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from monitors.models import Channel
from monitors.notify import channels, delivery, slack, sms, templating
from tests.factories import ChannelFactory, UserFactory
from tests.notify.test_delivery import PAYLOAD, outbox_row

pytestmark = pytest.mark.django_db


def test_a_template_is_filled_with_the_alerts_variables():
    values = templating.variables(PAYLOAD)
    text = templating.fill(
        "{event}: {monitor} is {value}, {threshold} for {for} on {tags.device} {{ok}}", values
    )
    assert text == (
        "FIRING: greenhouse too hot is 41.2 °C, above 35.0 °C for 2 min on greenhouse-1 {ok}"
    )
    assert values["state"] == "Firing"
    assert values["since"] == "2026-11-24 08:58 UTC"
    assert values["link"] == "http://testserver/app/monitors/7"
    assert templating.fill("[{tags.zone}]", values) == "[]"  # a tag the series lacks: empty


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{valeu} now", "{valeu} is not a variable. The variables are: {monitor}, {event}"),
        ("{monitor.owner.password}", "is not a variable"),
        ("{value!r:>{width}}", "A lone “{” at character 1"),  # no format specs either
        ("50% {", "A lone “{” at character 5"),
        ("} oops", "A lone “}” at character 1"),
        ("x" * 2001, "At most 2000 characters (this one has 2001)."),
    ],
)
def test_a_bad_template_is_refused_in_plain_words(template, words):
    with pytest.raises(templating.TemplateError) as caught:
        templating.check(template)
    assert words in str(caught.value)


def test_the_channel_service_and_the_api_refuse_a_bad_template_by_field():
    owner = UserFactory()
    with pytest.raises(ValidationError) as caught:
        channels.channel_create(
            owner=owner,
            name="x",
            kind="email",
            config={"addresses": ["a@example.com"]},
            subject_template="{nope}",
        )
    assert "{nope} is not a variable" in caught.value.message_dict["subject_template"][0]

    client = APIClient()
    client.force_authenticate(owner)
    channel = ChannelFactory(owner=owner)
    bad = client.patch(f"/channels/{channel.pk}", {"body_template": "{value"}, format="json")
    assert bad.status_code == 400
    assert "A lone “{”" in bad.json()["body_template"][0]
    too_long = client.patch(
        f"/channels/{channel.pk}", {"subject_template": "s" * 201}, format="json"
    )
    assert too_long.status_code == 400
    good = client.patch(
        f"/channels/{channel.pk}", {"body_template": "{monitor}: {value}"}, format="json"
    )
    assert good.status_code == 200
    assert good.json()["body_template"] == "{monitor}: {value}"


def test_the_email_received_by_the_smtp_sink_has_the_templated_subject_and_body(smtp_inbox):
    channel = ChannelFactory(
        kind=Channel.Kind.EMAIL,
        config={"addresses": ["night@example.com"]},
        subject_template="{event} {monitor}: {value}",
        body_template="Check the fans of {tags.device} <now>: {value} since {since}.",
    )
    notification = outbox_row(channel)

    assert delivery.deliver(notification.pk) == "sent"

    [message] = smtp_inbox.messages
    assert message["Subject"] == "FIRING greenhouse too hot: 41.2 °C"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert text.startswith("Check the fans of greenhouse-1 <now>: 41.2 °C since 2026-11-24 08:58")
    assert "Check the fans of greenhouse-1 &lt;now&gt;" in html  # escaped in the HTML part
    assert "Open the monitor: http://testserver/app/monitors/7" in text  # the link stays
    assert any(p.get_content_type() == "image/png" for p in message.walk())  # and the chart


def test_a_stored_template_that_cannot_be_filled_sends_the_default_message(smtp_inbox, caplog):
    channel = ChannelFactory(
        kind=Channel.Kind.EMAIL,
        config={"addresses": ["night@example.com"]},
        body_template="{value",  # stored before the rules (written past the service)
        subject_template="{monitor} is {value}",
    )
    notification = outbox_row(channel)

    with caplog.at_level(logging.WARNING, logger="monitors.notify.templating"):
        assert delivery.deliver(notification.pk) == "sent"

    [message] = smtp_inbox.messages
    assert message["Subject"] == "greenhouse too hot is 41.2 °C"  # the good one is used
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith("greenhouse too hot is 41.2 °C, above 35.0 °C for 2 min")
    assert f"Channel {channel.pk}: its body template cannot be used" in caplog.text


def test_the_webhook_keeps_its_json_and_adds_the_message(receiver):
    channel = ChannelFactory(config={"url": receiver.url}, body_template="{monitor} is {value}")
    notification = outbox_row(channel)

    assert delivery.deliver(notification.pk) == "sent"

    sent = receiver.accepted[0].json()
    assert sent["message"] == {"subject": None, "body": "greenhouse too hot is 41.2 °C"}
    assert sent["value"] == 41.2
    assert sent["monitor"]["id"] == 7


def test_a_webhook_without_templates_has_no_message_field(receiver):
    channel = ChannelFactory(config={"url": receiver.url})
    assert delivery.deliver(outbox_row(channel).pk) == "sent"
    assert "message" not in receiver.accepted[0].json()


def test_slack_escapes_the_values_but_keeps_the_templates_own_formatting():
    channel = Channel(
        kind=Channel.Kind.SLACK,
        subject_template="{monitor} <!channel>",
        body_template="*{monitor}* is {value} — {reason}",
    )
    payload = {
        **PAYLOAD,
        "reason": "a <b>&</b> reason",
        "monitor": {"id": 7, "name": "bench <3> & co", "url": "http://testserver/app/monitors/7"},
    }
    message = slack.message(payload, own=slack.own_words(channel, payload))

    # the header is plain text: the value as it is
    assert message["blocks"][0]["text"]["text"] == ":red_circle: bench <3> & co <!channel>"
    assert message["blocks"][1]["text"]["text"] == (
        "*bench &lt;3&gt; &amp; co* is 41.2 °C — a &lt;b&gt;&amp;&lt;/b&gt; reason"
    )
    assert all(
        block.get("type") != "section" or "fields" not in block for block in message["blocks"]
    )


def test_an_sms_uses_the_templates_and_keeps_the_link_and_stop_words():
    channel = Channel(kind=Channel.Kind.SMS, subject_template="{event}", body_template="{value}")
    text = sms.body(PAYLOAD, templating.render_for(channel, PAYLOAD))
    assert text == "FIRING — 41.2 °C http://testserver/app/monitors/7 Reply STOP to opt out"
