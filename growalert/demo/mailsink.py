"""The demo's mail sink (``scripts/run_all.sh``): an aiosmtpd handler that prints one readable
line per email among the workers' logs — when, to whom, the subject — and appends the whole
message to ``.local/log/demo-mail.log``, instead of dumping every raw message on the console.

    python -m aiosmtpd -n -l 127.0.0.1:1025 -c growalert.demo.mailsink.Summary [log path]
"""

from __future__ import annotations

import email
import sys
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

DEFAULT_LOG = Path(__file__).resolve().parents[2] / ".local" / "log" / "demo-mail.log"


class Summary:
    def __init__(self, log: str = "") -> None:
        self.log = Path(log) if log else DEFAULT_LOG
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.count += 1
        when = datetime.now().strftime("%H:%M:%S")
        recipients = ", ".join(envelope.rcpt_tos)
        sys.stdout.write(
            f"\n  mail {self.count} at {when} to {recipients}: {message['subject']}"
            f"\n    (whole message in {self.log})\n\n"
        )
        sys.stdout.flush()
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else "(no text part)"
        with self.log.open("a", encoding="utf-8") as out:
            out.write(
                f"===== mail {self.count} at {when}\nFrom: {message['from']}\nTo: {recipients}\n"
                f"Subject: {message['subject']}\n\n{text.strip()}\n\n"
            )
        return "250 Message accepted for delivery"
