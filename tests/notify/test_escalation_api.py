"""Escalation policies through the API and the page: created with ordered steps, refused with
sentences when out of bounds, attached to monitors (only one's own), and invisible to
another customer (404)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from billing.gating import comp
from monitors.models import EscalationPolicy
from tests.factories import ChannelFactory, MonitorFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def charlie():
    return UserFactory(username="charlie")


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def policy_body(*channels, **more):
    return {
        "name": "night shift",
        "repeat_minutes": 15,
        "is_default": True,
        "steps": [
            {"after_minutes": 30, "channels": [channels[-1].pk], "hours": "after"},
            {"after_minutes": 10, "channels": [channels[0].pk]},
        ],
        **more,
    }


def test_a_policy_is_created_with_its_steps_in_order(alice):
    sms, call = ChannelFactory(owner=alice), ChannelFactory(owner=alice)
    response = api_for(alice).post("/escalation-policies", policy_body(sms, call), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [(s["after_minutes"], s["channels"], s["hours"]) for s in body["steps"]] == [
        (10, [sms.pk], "always"),
        (30, [call.pk], "after"),
    ]
    assert body["is_default"] is True
    assert body["working_days"] == [0, 1, 2, 3, 4]


def test_a_policy_out_of_bounds_is_refused_with_sentences(alice):
    sms = ChannelFactory(owner=alice)
    body = policy_body(sms, repeat_minutes=0, working_days=[7])
    body["steps"][0]["after_minutes"] = 0
    response = api_for(alice).post("/escalation-policies", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors["repeat_minutes"] == ["must be between 1 and 1440 minutes (1 day)"]
    assert "Monday 0 to Sunday 6" in errors["working_days"][0]
    assert errors["steps"]["0"]["after_minutes"] == ["must be between 1 and 10080 minutes (7 days)"]
    no_steps = api_for(alice).post(
        "/escalation-policies", {**policy_body(sms), "steps": []}, format="json"
    )
    assert no_steps.status_code == 400
    assert no_steps.json()["steps"] == ["add at least one step."]
    eleven = [{"after_minutes": n + 1, "channels": [sms.pk]} for n in range(11)]
    too_many = api_for(alice).post(
        "/escalation-policies", {**policy_body(sms), "steps": eleven}, format="json"
    )
    assert too_many.status_code == 400
    assert too_many.json()["steps"] == ["a policy has at most 10 steps."]


def test_a_step_cannot_name_another_customers_channel(alice, charlie):
    theirs = ChannelFactory(owner=charlie)
    response = api_for(alice).post("/escalation-policies", policy_body(theirs), format="json")
    assert response.status_code == 400
    assert "does not exist" in str(response.json()["steps"])


def test_another_customer_gets_a_404_on_policies_and_cannot_attach_them(alice, charlie):
    sms = ChannelFactory(owner=alice)
    created = api_for(alice).post("/escalation-policies", policy_body(sms), format="json").json()
    url = f"/escalation-policies/{created['id']}"
    api = api_for(charlie)
    assert api.get(url).status_code == 404
    assert api.patch(url, {"name": "mine now"}, format="json").status_code == 404
    assert api.delete(url).status_code == 404
    assert api.get("/escalation-policies").json()["results"] == []
    comp(charlie)
    monitor = MonitorFactory(owner=charlie)
    attach = api.patch(
        f"/monitors/{monitor.pk}", {"escalation_policy": created["id"]}, format="json"
    )
    assert attach.status_code == 400
    assert "does not exist" in str(attach.json()["escalation_policy"])


def test_a_monitor_names_its_policy_and_a_patch_keeps_the_steps(alice):
    sms = ChannelFactory(owner=alice)
    api = api_for(alice)
    created = api.post("/escalation-policies", policy_body(sms), format="json").json()
    comp(alice)
    monitor = MonitorFactory(owner=alice)
    attached = api.patch(
        f"/monitors/{monitor.pk}", {"escalation_policy": created["id"]}, format="json"
    )
    assert attached.status_code == 200, attached.json()
    assert attached.json()["escalation_policy"] == created["id"]
    renamed = api.patch(
        f"/escalation-policies/{created['id']}", {"name": "day shift"}, format="json"
    )
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["name"] == "day shift"
    assert len(renamed.json()["steps"]) == 2


def test_the_page_adds_a_policy_and_says_what_is_wrong_in_sentences(alice, charlie, client):
    sms = ChannelFactory(owner=alice, name="Alice SMS")
    client.force_login(alice)
    page = reverse("pages:escalation")
    bad = client.post(
        page,
        {
            "name": "night",
            "working_start": "08:00",
            "working_end": "18:00",
            "step0_after": "0",
            "step0_hours": "always",
        },
    )
    assert bad.status_code == 400
    assert b"Escalate after 1 minute at least." in bad.content
    empty = client.post(
        page,
        {
            "name": "night",
            "working_start": "08:00",
            "working_end": "18:00",
            "step0_after": "10",
            "step0_hours": "always",
        },
    )
    assert b"Step 1: choose at least one channel or member to notify." in empty.content
    good = client.post(
        page,
        {
            "name": "night",
            "repeat_minutes": "20",
            "working_days": ["0", "1"],
            "working_start": "08:00",
            "working_end": "18:00",
            "step0_after": "10",
            "step0_hours": "always",
            "step0_channels": [str(sms.pk)],
        },
        follow=True,
    )
    assert "Escalation policy “night” saved.".encode() in good.content
    policy = EscalationPolicy.objects.get(owner=alice)
    assert policy.working_days == [0, 1]
    assert [s.after_minutes for s in policy.steps.all()] == [10]
    client.force_login(charlie)
    assert b"night" not in client.get(page).content
    delete = reverse("pages:escalation-delete", args=[policy.pk])
    assert client.post(delete).status_code == 404
    assert EscalationPolicy.objects.filter(pk=policy.pk).exists()
