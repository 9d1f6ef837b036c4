"""Page routes. Pages live under /app/ (and /register, /accounts/): the API owns /monitors,
/channels, /config... at the site root."""

from django.urls import URLPattern, URLResolver, path

from growalert.pages import (
    account,
    channel_page,
    channels,
    devices,
    incidents,
    monitor_chart,
    sources,
    team,
    views,
)

app_name = "pages"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("register", account.register, name="register"),
    path("app/", views.dashboard, name="dashboard"),
    path("app/live/dashboard", views.dashboard_live, name="live-dashboard"),
    path("app/live/monitors/<int:monitor_id>", views.monitor_live, name="live-monitor"),
    path(
        "app/live/monitors/<int:monitor_id>/incidents/<int:incident_id>",
        incidents.incident_live,
        name="live-incident",
    ),
    path("app/monitors/new", views.monitor_edit, name="monitor-new"),
    path("app/monitors/<int:monitor_id>", views.monitor_detail, name="monitor"),
    path("app/monitors/<int:monitor_id>/chart", monitor_chart.monitor_chart, name="monitor-chart"),
    path("app/monitors/<int:monitor_id>/edit", views.monitor_edit, name="monitor-edit"),
    path("app/monitors/<int:monitor_id>/toggle", views.monitor_toggle, name="monitor-toggle"),
    path("app/monitors/<int:monitor_id>/test", views.monitor_test, name="monitor-test"),
    path("app/monitors/<int:monitor_id>/delete", views.monitor_delete, name="monitor-delete"),
    path("app/monitors/<int:monitor_id>/silence", views.monitor_silence, name="monitor-silence"),
    path(
        "app/monitors/<int:monitor_id>/series/silence",
        views.series_silence,
        name="series-silence",
    ),
    path(
        "app/monitors/<int:monitor_id>/series/acknowledge",
        views.series_acknowledge,
        name="series-acknowledge",
    ),
    path("app/silences/<int:silence_id>/end", views.silence_end, name="silence-end"),
    path("app/incidents/<int:incident_id>", incidents.incident_detail, name="incident"),
    path(
        "app/incidents/<int:incident_id>/acknowledge",
        incidents.incident_acknowledge,
        name="incident-acknowledge",
    ),
    path("ack/<str:token>", incidents.acknowledge_link, name="acknowledge"),
    path("app/escalation", incidents.policy_list, name="escalation"),
    path(
        "app/escalation/<int:policy_id>/delete", incidents.policy_delete, name="escalation-delete"
    ),
    path("app/sources", sources.source_list, name="sources"),
    path("app/sources/<int:source_id>/check", sources.source_check, name="source-check"),
    path("app/sources/<int:source_id>/delete", sources.source_delete, name="source-delete"),
    path("app/sources/<int:source_id>/push", sources.source_push, name="source-push"),
    path("app/devices", devices.device_list, name="devices"),
    path("app/devices/<int:device_id>", devices.device_detail, name="device"),
    path("app/devices/<int:device_id>/key", devices.device_rotate_key, name="device-key"),
    path("app/channels", channels.channel_list, name="channels"),
    path("app/channels/<int:channel_id>", channel_page.channel_detail, name="channel"),
    path(
        "app/channels/<int:channel_id>/default",
        channel_page.channel_default,
        name="channel-default",
    ),
    path("app/channels/<int:channel_id>/test", channels.channel_test, name="channel-test"),
    path(
        "app/channels/<int:channel_id>/device-health",
        channels.channel_device_health,
        name="channel-device-health",
    ),
    path(
        "app/channels/<int:channel_id>/send-verification",
        channels.channel_send_verification,
        name="channel-send-verification",
    ),
    path("app/channels/<int:channel_id>/verify", channels.channel_verify, name="channel-verify"),
    path("app/channels/<int:channel_id>/retry", channels.channel_retry, name="channel-retry"),
    path("app/channels/<int:channel_id>/delete", channels.channel_delete, name="channel-delete"),
    path("app/account", account.account, name="account"),
    path("app/account/profile", account.profile, name="profile"),
    path("app/account/cancel", account.subscription_cancel, name="subscription-cancel"),
    path("app/account/token", account.token_create, name="token-create"),
    path("app/account/token/<int:token_id>/revoke", account.token_revoke, name="token-revoke"),
    path("app/account/switch", team.account_switch, name="account-switch"),
    path("app/team", team.team_page, name="team"),
    path("app/team/invite", team.team_invite, name="team-invite"),
    path(
        "app/team/invitations/<int:invitation_id>/revoke",
        team.team_invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("app/team/members/<int:member_id>/role", team.team_member_role, name="team-member-role"),
    path(
        "app/team/members/<int:member_id>/remove",
        team.team_member_remove,
        name="team-member-remove",
    ),
    path("app/team/leave", team.team_leave, name="team-leave"),
    path("invite/<str:secret>", team.invitation, name="invitation"),
]
