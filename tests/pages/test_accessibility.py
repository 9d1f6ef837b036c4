"""Basic accessibility checks in a real browser on every signed-in page and the public ones:
every form control has an accessible name, every button and link says what it does, charts are
images with a text alternative, text meets WCAG AA contrast, and the keyboard reaches the
controls with a visible focus indicator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).resolve().parent
AUDIT = (HERE / "a11y_audit.js").read_text()  # labels, names, alt text, WCAG AA contrast
FOCUS = (HERE / "a11y_focus.js").read_text()  # the focused element shows a focus ring


def audit(page: Any, path: str) -> list[str]:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    problems = [f"{path}: {p}" for p in page.evaluate(AUDIT)]
    for _ in range(3):  # the keyboard reaches controls, and shows where it is
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        if focus:
            problems.append(f"{path}: {focus}")
            break
    return problems


def test_public_pages_pass_the_basic_checks(page, screenshot):
    problems = audit(page, "/accounts/login/") + audit(page, "/register")
    screenshot(page, "register")
    assert problems == []


def test_signed_in_pages_pass_the_basic_checks(page, alice, screenshot):
    source = SourceFactory(owner=alice, name="greenhouse influx")
    channel = ChannelFactory(owner=alice, name="farm hook")
    monitor = MonitorFactory(owner=alice, source=source, name="greenhouse-1 too warm")
    monitor.channels.set([channel])
    MonitorFactory(owner=alice, source=source, name="soil too dry", status="firing")
    sign_in(page, "alice")

    problems: list[str] = []
    for path in (
        "/app/",
        f"/app/monitors/{monitor.pk}",
        f"/app/monitors/{monitor.pk}/edit",
        "/app/monitors/new",
        "/app/channels",
        "/app/sources",
    ):
        problems += audit(page, path)
    screenshot(page, "channels")

    assert problems == []
