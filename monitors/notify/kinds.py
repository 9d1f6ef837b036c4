"""Which notifier serves which channel kind."""

from __future__ import annotations

from monitors.models import Channel
from monitors.notify.base import Notifier
from monitors.notify.email import EmailNotifier
from monitors.notify.slack import SlackNotifier
from monitors.notify.sms import SmsNotifier
from monitors.notify.voice import VoiceNotifier
from monitors.notify.webhook import WebhookNotifier

NOTIFIERS: dict[str, Notifier] = {
    Channel.Kind.EMAIL: EmailNotifier(),
    Channel.Kind.WEBHOOK: WebhookNotifier(),
    Channel.Kind.SLACK: SlackNotifier(),
    Channel.Kind.SMS: SmsNotifier(),
    Channel.Kind.VOICE: VoiceNotifier(),
}


def notifier_for(channel: Channel) -> Notifier:
    return NOTIFIERS[channel.kind]
