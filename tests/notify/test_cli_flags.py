"""The global notifier and event webhook flags: environment variables set the defaults, flags win,
and credentials stay out of ``repr(Settings)``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from canaryd.cli import build_parser, settings_from_args

ENV = {"SLACK_URL": "http://slack/SECRET-PATH", "SLACK_TOKEN": "SECRET-TOKEN", "SLACK_PROXY_URL": "http://p:3128",
       "MSTEAMS_URL": "http://teams/SECRET-TEAMS", "MSTEAMS_PROXY_URL": "http://q:3128",
       "EVENT_WEBHOOK_URL": "http://events/"}


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    yield ENV
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_environment_sets_defaults_and_flags_win(env: dict[str, str]) -> None:
    s = settings_from_args(build_parser().parse_args(["run"]))
    got = (s.slack_url, s.slack_token, s.slack_proxy_url, s.msteams_url, s.msteams_proxy_url, s.event_webhook)
    assert got == (env["SLACK_URL"], env["SLACK_TOKEN"], env["SLACK_PROXY_URL"], env["MSTEAMS_URL"],
                   env["MSTEAMS_PROXY_URL"], env["EVENT_WEBHOOK_URL"])
    assert (s.slack_user, s.slack_channel) == ("flagger", "general")
    s = settings_from_args(build_parser().parse_args(
        ["run", "--slack-url", "http://other/", "--slack-channel", "ops", "--slack-user", "bot",
         "--event-webhook", "", "--cluster-name", "prod"]))
    assert (s.slack_url, s.slack_channel, s.slack_user, s.event_webhook, s.cluster_name) == (
        "http://other/", "ops", "bot", "", "prod")
    assert "SECRET" not in repr(settings_from_args(build_parser().parse_args(["run"])))
