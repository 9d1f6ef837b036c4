"""FakeTwilio: a hand-written fake of Twilio's Messages and Calls APIs on loopback (the real API
cannot be reached from here). Shaped like the 2010-04-01 REST API: form-encoded POST to
/2010-04-01/Accounts/{AccountSid}/Messages.json or .../Calls.json (To, From, and Twiml or Url)
with HTTP Basic auth, 201 JSON on success, Twilio error JSON ({"code", "message", "more_info",
"status"}) otherwise. A call's TwiML is kept: :func:`gather_action` reads the URL Twilio would
post the pressed digits to."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/(?P<resource>Messages|Calls)\.json$")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"
    requests: list[Request] = field(default_factory=list)
    #: numbers that replied STOP: Twilio answers 400 with code 21610
    unsubscribed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                fake.requests.append(Request(self.path, dict(self.headers), form))
                match = PATH.match(self.path)
                if match is None or match["sid"] != fake.account_sid:
                    return self._json(404, _error(20404, "The requested resource was not found"))
                expected = base64.b64encode(
                    f"{fake.account_sid}:{fake.auth_token}".encode()
                ).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    return self._json(401, _error(20003, "Authenticate"))
                to = form.get("To", "")
                if not re.match(r"^\+[1-9]\d{6,14}$", to):
                    return self._json(400, _error(21211, f"The 'To' number {to} is not valid."))
                if match["resource"] == "Calls":
                    if not (form.get("Twiml") or form.get("Url")):
                        return self._json(400, _error(21205, "Url or Twiml parameter is required."))
                    return self._json(201, fake._call(form))
                if to in fake.unsubscribed:
                    return self._json(
                        400, _error(21610, "Attempt to send to unsubscribed recipient")
                    )
                return self._json(201, fake._message(form))

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def calls(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/Calls.json")]

    @property
    def messages(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    def _call(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "CA" + uuid.uuid4().hex
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "direction": "outbound-api",
            "from": form.get("From", ""),
            "to": form.get("To", ""),
            "sid": sid,
            "status": "queued",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
        }

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "direction": "outbound-api",
            "from": form.get("From", ""),
            "to": form.get("To", ""),
            "num_segments": "1",
            "sid": sid,
            "status": "queued",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


def _error(code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400 if code not in (20003, 20404) else (401 if code == 20003 else 404),
    }


def gather_action(call: Request) -> str | None:
    """The ``action`` URL of the call's ``<Gather>`` (where the pressed digits go), if any."""
    root = ElementTree.fromstring(call.form["Twiml"])  # noqa: S314  # our own TwiML
    gather = root.find("Gather")
    return None if gather is None else gather.get("action")
