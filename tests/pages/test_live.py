"""Live pages: the dashboard and a monitor's page redraw a state change committed in the
database without a reload (Debian's chromium against the real server, Postgres, Redis and
InfluxDB); the live view answers 304 while nothing changed, in front of Django too."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from growalert.pages import live as live_pages
from growalert.pages import live_wsgi
from growalert.pages.live_wsgi import with_live
from monitors import live, services
from monitors.evaluate import dispatch, pipeline
from monitors.models import Incident, Monitor, Schedule, Status
from monitors.notify import acknowledge
from monitors.vocabulary import AckRoute
from tests.factories import MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in, watch_csp

DEVICE = {"device": "greenhouse-1"}


def evaluate_due() -> None:
    for batch in dispatch.claim_batches(now=timezone.now(), size=500):
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])


def a_hot_monitor(owner: Any, influx_db: Any) -> Monitor:
    source = SourceFactory(owner=owner, database=influx_db.database)
    influx_db.write("gro01", "temperature", [(300, 22.0), (120, 24.0)], DEVICE)
    return MonitorFactory(
        owner=owner,
        source=source,
        name="greenhouse-1 too warm",
        aggregation="max",
        window=timedelta(minutes=10),
        critical=35,
        flap_detection=False,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )


def heat_up(monitor: Monitor, influx_db: Any) -> None:
    """41 °C arrives and the real pipeline evaluates it: the monitor fires (committed)."""
    influx_db.write("gro01", "temperature", [(2, 41.0)], DEVICE)
    Schedule.objects.filter(monitor=monitor).update(
        next_due_at=timezone.now() - timedelta(seconds=1)
    )
    evaluate_due()
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING


def mark_page(page: Page) -> None:
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


# --- the view --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_live_view_answers_304_until_the_owner_changes_something(
    alice, client_for, django_capture_on_commit_callbacks
):
    monitor = MonitorFactory(owner=alice, name="bench 3 soil")
    client: Client = client_for(alice)
    first = client.get("/app/live/dashboard")
    assert first.status_code == 200
    assert "bench 3 soil" in first.json()["html"]
    assert 'data-live-region="card-' in first.json()["html"]
    etag = first["ETag"]
    assert client.get("/app/live/dashboard", HTTP_IF_NONE_MATCH=etag).status_code == 304

    with django_capture_on_commit_callbacks(execute=True):
        services.monitor_set_enabled(monitor=monitor, enabled=False)
    changed = client.get("/app/live/dashboard", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert "Paused" in changed.json()["html"]


@pytest.mark.django_db
def test_a_monitor_page_answers_only_its_owner(alice, bob, client_for):
    monitor = MonitorFactory(owner=alice)
    assert client_for(alice).get(f"/app/live/monitors/{monitor.pk}").status_code == 200
    assert client_for(bob).get(f"/app/live/monitors/{monitor.pk}").status_code == 404
    anonymous = Client().get("/app/live/dashboard")
    assert anonymous.status_code in (302, 403)


@pytest.mark.django_db
def test_the_pipeline_moves_the_owner_version_when_a_status_changes(
    alice, bob, influx_db, django_capture_on_commit_callbacks
):
    monitor = a_hot_monitor(alice, influx_db)
    evaluate_due()  # first evaluation: ok → ok, nothing to tell the pages
    before, bobs = live.version(alice.pk), live.version(bob.pk)
    with django_capture_on_commit_callbacks(execute=True):
        heat_up(monitor, influx_db)
    assert live.version(alice.pk) == (before or 0) + 1
    assert live.version(bob.pk) == bobs


# --- the WSGI fast path ----------------------------------------------------------------------


def _environ(
    token: str, seen: str | None, *, session: str | None = None, path: str = "/app/live/dashboard"
) -> dict[str, Any]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": f"t={token}"}
    if seen is not None:
        environ["HTTP_IF_NONE_MATCH"] = seen
    if session is not None:
        environ["HTTP_COOKIE"] = f"{settings.SESSION_COOKIE_NAME}={session}"
    return environ


class Answered:
    """start_response that keeps the status and headers."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}

    def __call__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, dict(headers)


class Inner:
    """Stands for Django: records that the request reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        start_response("200 OK", [])
        return [b"django"]


@pytest.mark.django_db
def test_an_unchanged_poll_is_answered_without_django(alice, bob):
    live.changed([alice.pk])
    current = live_pages.etag(live.version(alice.pk) or 0)
    inner = Inner()
    app = with_live(inner)
    statuses: list[str] = []

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        statuses.append(status)

    token = live_pages.token(alice.pk)
    assert app(_environ(token, current), start) == [b""]
    assert statuses == ["304 Not Modified"]
    assert inner.calls == 0

    live.changed([alice.pk])  # moved on: Django answers in full
    app(_environ(token, current), start)
    assert inner.calls == 1
    app(_environ(token + "x", current), start)  # a forged token names nobody
    app(_environ(live_pages.token(bob.pk)[:-2] + "AA", current), start)
    app(_environ(token, None), start)  # no version: a full answer
    assert inner.calls == 4


def test_a_token_whose_signature_was_checked_still_ages_and_a_forged_one_never_passes(
    monkeypatch,
):
    """The signature of a tab's token is checked once per process (it comes every 1.5 s); its
    age is checked every time, and a forged token is refused every time."""
    token = live_pages.token(7, "session-key")
    assert live_pages.owner_of(token) == 7
    assert live_pages.session_owner_of(token, "session-key") == 7
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert live_pages.owner_of(forged) is None
    assert live_pages.owner_of(forged) is None
    assert live_pages.owner_of(token.replace("7:", "8:", 1)) is None  # another owner's name

    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + live_pages.FRESH_SECONDS + 5)
    assert live_pages.owner_of(token) == 7  # still good for a 304
    assert live_pages.session_owner_of(token, "session-key") is None  # too old for an answer
    monkeypatch.setattr(time, "time", lambda: now + live_pages.TOKEN_MAX_AGE + 5)
    assert live_pages.owner_of(token) is None


@pytest.mark.django_db
def test_a_poll_decides_304_from_the_version_read_a_moment_ago_and_reads_redis_otherwise(
    alice, monkeypatch
):
    """Each worker reads an owner's counter once per VERSION_KEEP_SECONDS for all its polls; a
    change made in another process shows after that moment (kept here for the test), and a
    tab that has a newer version than the kept one makes the worker read Redis again."""
    monkeypatch.setattr(live_wsgi, "VERSION_KEEP_SECONDS", 3600)
    live.changed([alice.pk])
    version = live.version(alice.pk) or 0
    token = live_pages.token(alice.pk)
    inner, answered = Inner(), Answered()
    app = with_live(inner)
    assert app(_environ(token, live_pages.etag(version)), answered) == [b""]  # read and kept

    live._redis().incr(live.key(alice.pk))  # another process's change (none made here)
    app(_environ(token, live_pages.etag(version)), answered)
    assert (answered.status, inner.calls) == ("304 Not Modified", 0)  # still the kept one
    app(_environ(token, live_pages.etag(version + 1)), answered)  # a tab that has the new one
    assert (answered.status, inner.calls) == ("304 Not Modified", 0)  # Redis read again
    app(_environ(token, live_pages.etag(version)), answered)
    assert inner.calls == 1  # the new version is kept now: the old one gets a full answer

    monkeypatch.setattr(live_wsgi, "VERSION_KEEP_SECONDS", 0)  # the moment is over
    live._redis().incr(live.key(alice.pk))
    app(_environ(token, live_pages.etag(version + 1)), answered)
    assert inner.calls == 2


@pytest.mark.django_db
def test_a_monitor_page_moves_with_its_own_monitor_and_with_changes_every_page_shows(
    alice, django_capture_on_commit_callbacks
):
    one, other = MonitorFactory(owner=alice, name="one"), MonitorFactory(owner=alice, name="two")
    page_one, page_other = live_pages.monitor_page(one.pk), live_pages.monitor_page(other.pk)

    def versions() -> tuple[Any, Any, Any]:
        return (
            live_pages.version_of(alice.pk, "dashboard"),
            live_pages.version_of(alice.pk, page_one),
            live_pages.version_of(alice.pk, page_other),
        )

    dashboard, first, second = versions()
    live.changed([alice.pk], [one.pk])  # "one" changed: its page and the dashboard move
    assert versions() == ((dashboard or 0) + 1, _moved_own(first), second)

    dashboard, first, second = versions()
    with django_capture_on_commit_callbacks(execute=True):
        services.silence_create(  # a silence of every monitor: every monitor page shows it
            owner=alice, starts_at=timezone.now(), ends_at=timezone.now() + timedelta(hours=1)
        )
    after = versions()
    assert after[0] == (dashboard or 0) + 1
    assert after[1] != first
    assert after[2] != second

    # in front of Django: the other monitor's tab keeps its 304 while "one" changes
    token = live_pages.token(alice.pk)
    seen = live_pages.etag(live_pages.version_of(alice.pk, page_other) or 0)
    path = f"/app/live/monitors/{other.pk}"
    inner, answered = Inner(), Answered()
    live.changed([alice.pk], [one.pk])
    assert with_live(inner)(_environ(token, seen, path=path), answered) == [b""]
    assert answered.status == "304 Not Modified"
    assert inner.calls == 0
    live.changed([alice.pk], [other.pk])
    with_live(inner)(_environ(token, seen, path=path), answered)
    assert inner.calls == 1  # its own monitor moved: Django answers


def _moved_own(version: Any) -> str:
    everything, own = str(version).split(".")
    return f"{everything}.{int(own) + 1}"


# --- in the browser --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1100, 390])
def test_the_dashboard_shows_a_monitor_firing_without_a_reload(
    browser, live_server, alice, influx_db, screenshot, csp_violations, width
):
    MonitorFactory(
        owner=alice,
        source=SourceFactory(owner=alice, name="other"),
        name="a quiet one",
        no_data_policy="status",  # no data here: a status, never an incident (not the default)
        error_policy="status",
    )
    monitor = a_hot_monitor(alice, influx_db)
    evaluate_due()
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    page = watch_csp(context, csp_violations)
    sign_in(page, "alice")
    card = page.locator(f'[data-monitor="{monitor.pk}"]')
    expect(card).to_have_attribute("data-status", Status.OK)
    expect(page.get_by_role("heading", name="Open incidents (1)")).to_have_count(0)
    mark_page(page)

    heat_up(monitor, influx_db)
    expect(card).to_have_attribute("data-status", Status.FIRING, timeout=5000)
    expect(card.locator(".status")).to_have_text("Firing")
    expect(page.get_by_role("heading", name="Open incidents (1)")).to_be_visible()
    expect(page.locator(".monitor-card").first).to_have_attribute("data-monitor", str(monitor.pk))
    expect(page.locator("[data-live-announce]")).to_contain_text("greenhouse-1 too warm: Firing")
    assert_not_reloaded(page)
    screenshot(page, f"fired-{width}")
    context.close()
    assert csp_violations == []


@pytest.mark.django_db(transaction=True)
def test_a_monitor_page_shows_its_incident_resolved_by_a_pause_without_a_reload(
    page, alice, influx_db, screenshot
):
    monitor = a_hot_monitor(alice, influx_db)
    evaluate_due()
    heat_up(monitor, influx_db)
    sign_in(page, "alice")
    page.goto(f"/app/monitors/{monitor.pk}")
    expect(page.get_by_test_id("status")).to_have_text("Firing")
    expect(page.get_by_text("still open")).to_be_visible()
    mark_page(page)

    services.monitor_set_enabled(monitor=Monitor.objects.get(pk=monitor.pk), enabled=False)
    expect(page.get_by_test_id("status")).to_have_text("Paused", timeout=5000)
    expect(page.get_by_text("still open")).to_have_count(0)
    assert_not_reloaded(page)
    screenshot(page, "paused")


def open_incident_page(page: Page, owner: Any, influx_db: Any) -> Incident:
    """A monitor fires (the real pipeline) and its owner's page of the incident is open, marked
    so that a reload would show."""
    monitor = a_hot_monitor(owner, influx_db)
    evaluate_due()
    heat_up(monitor, influx_db)
    incident = Incident.objects.select_related("monitor").get(monitor=monitor)
    sign_in(page, owner.username)
    page.goto(f"/app/incidents/{incident.pk}")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    mark_page(page)
    return incident


@pytest.mark.django_db(transaction=True)
def test_an_incident_page_shows_its_acknowledgement_without_a_reload(
    page, alice, influx_db, screenshot
):
    incident = open_incident_page(page, alice, influx_db)

    acknowledge.acknowledge(incident.pk, via=AckRoute.API, by=alice)  # from elsewhere
    expect(page.locator("[data-acknowledged]")).to_contain_text("Acknowledged by", timeout=5000)
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert_not_reloaded(page)
    screenshot(page, "incident-acknowledged-live")


@pytest.mark.django_db(transaction=True)
def test_forms_swapped_in_from_another_sessions_answer_keep_this_sessions_csrf_token(
    page, alice, influx_db, client_for
):
    incident = open_incident_page(page, alice, influx_db)
    monitor = incident.monitor
    url = f"/app/live/monitors/{monitor.pk}/incidents/{incident.pk}"
    page.evaluate(
        "window.__answers = 0;"
        "document.addEventListener('growalert:live', function () { window.__answers += 1; })"
    )

    other = client_for(alice)  # alice on her phone: its answer is cached for the account
    seen = live_pages.etag(other.get(url).json()["version"])
    live.changed([alice.pk], [monitor.pk])  # an escalation step, say: the timeline moved
    assert other.get(url, HTTP_IF_NONE_MATCH=seen).status_code == 200  # rendered, cached
    deadline = time.monotonic() + 5
    while not page.evaluate("window.__answers"):  # until this tab got that answer
        assert time.monotonic() < deadline, "the tab got no live answer"
        page.wait_for_timeout(100)
    assert_not_reloaded(page)
    page.get_by_role("button", name="Acknowledge").click()  # the form of the live region
    expect(page.locator("[data-acknowledged]")).to_contain_text("Acknowledged by alice")


def _session(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.django_db
def test_a_changed_answer_django_rendered_is_given_to_the_other_tabs_without_django(
    alice, client_for, django_capture_on_commit_callbacks
):
    monitor = MonitorFactory(owner=alice, name="bench 3 soil")
    tab, other_tab = client_for(alice), client_for(alice)
    first = other_tab.get("/app/live/dashboard").json()
    seen = live_pages.etag(first["version"])
    with django_capture_on_commit_callbacks(execute=True):
        services.monitor_set_enabled(monitor=monitor, enabled=False)
    rendered = tab.get("/app/live/dashboard", HTTP_IF_NONE_MATCH=seen)  # Django renders, caches
    assert rendered.json()["token"] != first["token"]  # each session gets its own token

    inner, answered = Inner(), Answered()
    body = with_live(inner)(_environ(first["token"], seen, session=_session(other_tab)), answered)
    assert inner.calls == 0
    assert answered.status == "200 OK"
    assert answered.headers["ETag"] == rendered["ETag"]
    answer = json.loads(b"".join(body))
    assert answer["html"] == rendered.json()["html"]
    assert "Paused" in answer["html"]
    assert "token" not in answer  # only Django gives tokens
    # A refresh (no version matches it) is the cached answer too.
    with_live(inner)(_environ(first["token"], '"refresh"', session=_session(other_tab)), answered)
    assert (inner.calls, answered.status) == (0, "200 OK")


@pytest.mark.django_db
def test_a_cached_answer_needs_the_session_the_token_was_given_to(
    alice, bob, client_for, django_capture_on_commit_callbacks, monkeypatch
):
    monitor = MonitorFactory(owner=alice)
    tab, bobs = client_for(alice), client_for(bob)
    token = tab.get("/app/live/dashboard").json()["token"]
    seen = live_pages.etag(live.version(alice.pk) or 0)
    with django_capture_on_commit_callbacks(execute=True):
        services.monitor_set_enabled(monitor=monitor, enabled=False)
    tab.get("/app/live/dashboard", HTTP_IF_NONE_MATCH=seen)  # rendered and cached
    inner = Inner()
    app = with_live(inner)

    def reaches_django(environ: dict[str, Any]) -> bool:
        before = inner.calls
        app(environ, Answered())
        return inner.calls == before + 1

    assert not reaches_django(_environ(token, seen, session=_session(tab)))
    assert reaches_django(_environ(token, seen))  # no cookie
    assert reaches_django(_environ(token, seen, session=_session(bobs)))  # another session
    assert reaches_django(_environ(live_pages.token(alice.pk), seen, session=_session(tab)))
    assert reaches_django(
        _environ(token, seen, session=_session(tab), path=f"/app/live/monitors/{monitor.pk}")
    )  # nothing cached for that page yet
    monkeypatch.setattr(live_pages, "FRESH_SECONDS", -1)  # the token is now too old
    assert reaches_django(_environ(token, seen, session=_session(tab)))
    monkeypatch.undo()

    session = _session(tab)
    tab.post("/accounts/logout/")  # signed out: its tokens read nothing more
    assert reaches_django(_environ(token, seen, session=session))
