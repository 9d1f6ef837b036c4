"""Accessibility checks in a real browser on every signed-in page and the public ones.

Deque's axe-core (the engine behind most accessibility tooling, bundled by
axe-playwright-python) runs its WCAG 2.x A and AA rules on each page; our own checks add what
axe leaves to people: every form control has an accessible name, every button and link says
what it does, charts are images with a text alternative, text meets WCAG AA contrast, and the
keyboard reaches the controls with a visible focus indicator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from devices import services as device_services
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).resolve().parent
AUDIT = (HERE / "a11y_audit.js").read_text()  # labels, names, alt text, WCAG AA contrast
FOCUS = (HERE / "a11y_focus.js").read_text()  # the focused element shows a focus ring
AXE = Axe()
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def axe_violations(page: Any, path: str) -> list[str]:
    results = AXE.run(page, options={**WCAG_AA, "resultTypes": ["violations"]})
    return [
        f"{path}: axe {v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in results.response["violations"]
    ]


def audit(page: Any, path: str) -> list[str]:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    problems = [f"{path}: {p}" for p in page.evaluate(AUDIT)] + axe_violations(page, path)
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
    device, _ = device_services.device_add(owner=alice, name="GRO-01 bench 1", zone="north")
    sign_in(page, "alice")

    problems: list[str] = []
    for path in (
        "/app/",
        f"/app/monitors/{monitor.pk}",
        f"/app/monitors/{monitor.pk}/edit",
        "/app/monitors/new",
        "/app/channels",
        "/app/sources",
        "/app/devices",
        f"/app/devices/{device.pk}",
    ):
        problems += audit(page, path)
    screenshot(page, "channels")

    assert problems == []


def test_the_axe_audit_reports_what_it_should(page):
    """The audit itself: a page with an unlabelled input and faint text fails it."""
    page.set_content(
        '<html lang="en"><head><title>bad</title></head><body><main>'
        '<input type="text"><p style="color:#ccc;background:#fff">faint</p></main></body></html>'
    )

    found = " ".join(axe_violations(page, "bad"))

    assert "axe label " in found
    assert "axe color-contrast " in found
