"""dropscribe service install and uninstall under a real systemd: the booted Debian
container of test_service.py (its fixtures, one container for this module), installed
as the README says, then the service set up for a config by the command."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest
import yaml

import test_service
from conftest import API_KEY, make_wav
from test_service import edited_example

if TYPE_CHECKING:
    from pathlib import Path

    from fakeapi import FakeAPI
    from test_service import Container

# test_service's fixtures, used here: the fake API and the booted container (its own).
api = test_service.api
container = test_service.container
pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(900)]

DROPSCRIBE = "/opt/dropscribe/bin/dropscribe"
DROPIN = "/etc/systemd/system/dropscribe.service.d/dropscribe-install.conf"
GROUP = "getent group dropscribe-inbox || groupadd --system dropscribe-inbox"
LOGIN_PATH = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def shown(box: Container, unit: str) -> dict[str, str]:
    """``systemctl show`` of the unit's state, as a dict."""
    out = box.sh(f"systemctl show {unit} -p ActiveState -p SubState -p NRestarts").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def failed_for_good(box: Container, unit: str) -> dict[str, str]:
    """Start ``unit``, which must fail; its state once systemd has settled it."""
    started = box.sh(f"systemctl start {unit}", check=False, timeout=120)
    assert started.returncode != 0, f"{unit} started"
    return shown(box, unit)


def test_service_install_opens_the_sandbox_to_an_inbox_elsewhere_and_uninstall_undoes_it(
    container, api: FakeAPI, tmp_path: Path
):
    """An inbox outside /srv/recordings: the shipped unit refuses it once (no restart
    loop) naming ReadWritePaths=; `service install` (twice: idempotent; --dry-run first,
    which changes nothing) writes the drop-in, puts dropscribe on PATH, and the service
    then starts and writes a dropped file's sidecars; `service uninstall` removes the
    drop-in, the link, the group it made and the manifest again."""
    box = container
    config = yaml.safe_load(edited_example(api))
    config["inboxes"] = [{"path": "/srv/elsewhere", "endpoint": "openai", "model": "whisper-1"}]
    box.path("/etc/dropscribe/config.yaml").write_text(yaml.safe_dump(config))
    box.path("/etc/dropscribe/openai-key").write_text(API_KEY + "\n")
    # As reported: the inbox group's, group-writable, and outside the unit's sandbox.
    box.sh(f"{GROUP} && install -d -g dropscribe-inbox -m 2775 /srv/elsewhere")
    state = failed_for_good(box, "dropscribe")
    assert state["SubState"] == "failed", state  # not auto-restart: it stays down
    assert state["NRestarts"] == "0", state
    journal = box.sh("journalctl -u dropscribe -o cat --no-pager").stdout
    assert "/srv/elsewhere is on a read-only file system" in journal, journal
    assert "ReadWritePaths=" in journal
    assert "group-writable" not in journal

    dry = box.sh(f"{DROPSCRIBE} service install -c /etc/dropscribe/config.yaml --dry-run")
    assert f"would: write {DROPIN}" in dry.stdout, dry.stdout
    assert not box.path(DROPIN).exists()
    box.sh("groupdel dropscribe-inbox")  # for install to make again (and uninstall to remove)
    for _ in range(2):
        box.sh(f"{DROPSCRIBE} service install -c /etc/dropscribe/config.yaml", timeout=120)
    dropin = box.path(DROPIN).read_text()
    assert "ReadWritePaths=-/srv/elsewhere\n" in dropin, dropin
    assert "LoadCredential=openai-key:/etc/dropscribe/openai-key\n" in dropin, dropin
    which = box.sh("command -v dropscribe", env=LOGIN_PATH).stdout.strip()
    assert which == "/usr/local/bin/dropscribe"
    folder = box.sh("stat -c '%G %a' /srv/elsewhere").stdout.split()
    assert folder == ["dropscribe-inbox", "2775"], folder

    box.sh("systemctl reset-failed dropscribe && systemctl enable --now dropscribe", timeout=120)
    box.wait_event("dropscribe.service", "daemon.started")
    source = make_wav(tmp_path / "call.wav")
    shutil.copy(source, box.path("/srv/elsewhere/.call.wav.part"))
    box.path("/srv/elsewhere/.call.wav.part").rename(box.path("/srv/elsewhere/call.wav"))
    box.wait_event("dropscribe.service", "file.done", "/srv/elsewhere/call.wav")
    assert box.path("/srv/elsewhere/call.txt").read_text() == "transcript of call.wav\n"
    assert api.uploads[-1].headers["authorization"] == f"Bearer {API_KEY}"

    box.sh("systemctl disable --now dropscribe", timeout=90)
    box.sh("dropscribe service uninstall -c /etc/dropscribe/config.yaml", env=LOGIN_PATH)
    assert not box.path(DROPIN).exists()
    assert not box.path("/etc/dropscribe/installed/dropscribe.service.json").exists()
    assert box.sh("command -v dropscribe", env=LOGIN_PATH, check=False).returncode != 0
    assert box.sh("getent group dropscribe-inbox", check=False).returncode == 2, "group kept"


def test_a_template_instance_without_its_key_fails_once_and_says_why(container):
    """dropscribe@nokey with no /etc/dropscribe/nokey.key: 243/CREDENTIALS once, a
    journal line naming the key file, and no restart loop."""
    box = container
    box.sh(GROUP)  # the unit's group (a missing one is 216/GROUP, also not restarted)
    box.path("/etc/dropscribe/nokey.yaml").write_text("inboxes: []\n")
    state = failed_for_good(box, "dropscribe@nokey")
    assert state["SubState"] == "failed", state
    assert state["NRestarts"] == "0", state
    journal = box.sh("journalctl -u dropscribe@nokey -o cat --no-pager").stdout
    assert "status=243/CREDENTIALS" in journal, journal
    assert "is /etc/dropscribe/nokey.key there?" in journal, journal
