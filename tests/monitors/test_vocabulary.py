"""One vocabulary: alerts_core's enums are the values, monitors.vocabulary the words, and every
place that lists them (model choices, the API schema's enum names, queries, backtest, pages,
notification titles) agrees with them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import pytest
from django.utils.module_loading import import_string

import alerts_core as ac
from growalert.settings import SPECTACULAR_SETTINGS
from monitors import vocabulary
from monitors.definition import Thresholds
from monitors.evaluate.aggregate import aggregate
from monitors.evaluate.thresholds import judge
from monitors.influxdb import queries
from monitors.models import Monitor, Notification
from monitors.notify import messages, slack

LABELS: list[tuple[type[enum.StrEnum], Mapping[Any, str]]] = [
    (ac.Status, vocabulary.STATUS_LABELS),
    (ac.DataPolicy, vocabulary.DATA_POLICY_LABELS),
    (ac.Aggregation, vocabulary.AGGREGATION_LABELS),
    (ac.Comparator, vocabulary.COMPARATOR_LABELS),
    (vocabulary.NotificationEvent, vocabulary.EVENT_LABELS),
]


@pytest.mark.parametrize(("values", "labels"), LABELS, ids=lambda x: getattr(x, "__name__", ""))
def test_every_value_has_one_label_in_the_enums_order(values, labels) -> None:
    assert list(labels) == list(values)
    assert all(label.strip() for label in labels.values())


@pytest.mark.parametrize(
    ("model", "field", "values"),
    [
        (Monitor, "status", ac.Status),
        (Monitor, "no_data_policy", ac.DataPolicy),
        (Monitor, "error_policy", ac.DataPolicy),
        (Monitor, "aggregation", ac.Aggregation),
        (Monitor, "comparator", ac.Comparator),
        (Notification, "event", vocabulary.NotificationEvent),
    ],
)
def test_model_choices_are_alerts_cores_values_with_the_vocabularys_labels(
    model, field, values
) -> None:
    choices = model._meta.get_field(field).choices
    assert [value for value, _ in choices] == [member.value for member in values]
    labels = dict(LABELS)[values]
    assert [label for _, label in choices] == [labels[member] for member in values]


def test_notification_events_are_the_machines_two_about_no_monitor_a_storm_and_escalation() -> None:
    events = {e.value for e in vocabulary.NotificationEvent}
    assert events == {k.value for k in ac.EventKind} | {
        "test",
        "channel_failing",
        "series_changed",
        "escalated",
    }
    for event in vocabulary.NotificationEvent:
        assert event in messages.TITLES
        assert event in slack.EMOJI


def test_the_api_schemas_enum_names_point_at_the_vocabulary() -> None:
    overrides = SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
    assert isinstance(overrides, dict)
    assert (
        import_string(overrides["MonitorStatusEnum"]) == Monitor._meta.get_field("status").choices
    )
    assert (
        import_string(overrides["DataPolicyEnum"])
        == Monitor._meta.get_field("no_data_policy").choices
    )


@pytest.mark.parametrize("aggregation", list(ac.Aggregation))
def test_every_aggregation_is_queried_and_replayed(aggregation) -> None:
    assert aggregation in queries.AGGREGATIONS
    assert aggregate(aggregation, [1.0, 2.0, 4.0], pct=50.0) is not None
    definition = Monitor(
        measurement="m", field="f", aggregation=aggregation, percentile=50.0
    ).definition()
    assert queries.latest(definition).text
    assert queries.flux_latest(definition, bucket="b").text  # Flux asks every one too


@pytest.mark.parametrize("comparator", list(ac.Comparator))
def test_every_comparator_is_judged_and_validated(comparator) -> None:
    high = 20.0 if comparator.is_range else None
    verdicts = {judge(v, Thresholds(comparator, 10.0, high)).verdict for v in (5.0, 15.0, 25.0)}
    assert len(verdicts) == 2  # each comparator fails some values and passes others
    monitor = Monitor(
        measurement="m", field="f", comparator=comparator, critical=10.0, critical_high=high
    )
    monitor.clean()  # a complete definition for each comparator is valid


def test_a_status_label_reads_like_the_pages_show_it() -> None:
    assert vocabulary.status_label("no_data") == "No data"
    assert vocabulary.status_label("gone") == "gone"
