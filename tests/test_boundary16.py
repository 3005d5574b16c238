"""A hook never takes its file down with it (review16): whatever escapes the hook's own
handling is logged as hook.failed, with its stack, and not raised into the job."""

from __future__ import annotations

from structlog.testing import capture_logs

from dropscribe.outputs import hooks
from dropscribe.vocab.settings import HookModel


def test_an_error_escaping_a_webhook_is_hook_failed_not_raised(monkeypatch):
    """hooks.run with a webhook whose sending raises an unforeseen error: run returns,
    and hook.failed names the error's class at error level, with the exception."""

    def broken(hook, body):
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(hooks, "_webhook", broken)
    hook = HookModel(webhook="http://127.0.0.1:9/hook")
    with capture_logs() as logs:
        hooks.run(hook, {"file": "/in/a.wav", "outcome": "done", "sidecars": []})
    (failed,) = [e for e in logs if e["event"] == "hook.failed"]
    assert (failed["kind"], failed["error"], failed["log_level"]) == (
        "hook",
        "RuntimeError",
        "error",
    )
    assert failed["exc_info"] is True
