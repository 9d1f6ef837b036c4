"""The web server's access log (``make run`` writes one) leaves out a live page's unchanged polls,
the 304s given in front of Django, and keeps every other request (growalert/serve.py's
``SkipUnchangedLivePolls``). The real server serving growalert.wsgi, as scripts/run_all.sh
starts it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from growalert.pages import live as live_pages
from monitors import live
from tests.conftest import start_web_server
from tests.observability.receivers import free_port


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The web server with its access log on, on this test's Redis and key; its output (the
    access log among it) in a file."""
    port = free_port(27500)
    access_log = tmp_path / "access.log"
    with open(access_log, "wb") as out:
        server = start_web_server(
            port,
            {
                **os.environ,
                "REDIS_URL": settings.REDIS_URL,
                "DJANGO_SECRET_KEY": settings.SECRET_KEY,
                "DJANGO_DEBUG": "true",
            },
            out=out,
            threads=2,
            access_log=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.1)
        yield url, access_log
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_access_log_leaves_out_unchanged_live_polls_only(
    logged_server: tuple[str, Path],
) -> None:
    url, access_log = logged_server
    owner_id = 424242  # a token is all a 304 needs: no user, no database
    live.changed([owner_id])
    seen = live_pages.etag(live.version(owner_id) or 0)
    poll = f"{url}/app/live/dashboard?t={live_pages.token(owner_id)}"
    with httpx.Client(timeout=10) as client:
        unchanged = client.get(poll, headers={"If-None-Match": seen})
        assert unchanged.status_code == 304
        full = client.get(poll)  # no version: Django answers (here: sign in first)
        assert full.status_code in (302, 403)
        assert client.get(f"{url}/after-the-polls").status_code == 404

    deadline = time.monotonic() + 10
    while "GET /after-the-polls" not in access_log.read_text():  # the log is written as it goes
        assert time.monotonic() < deadline, "the web server logged no access line"
        time.sleep(0.1)
    lines = access_log.read_text().splitlines()
    live_lines = [line for line in lines if "/app/live/dashboard" in line]
    assert len(live_lines) == 1  # the full answer, not the 304
    assert f'" {full.status_code} ' in live_lines[0]
    assert not any('" 304 ' in line for line in lines)
