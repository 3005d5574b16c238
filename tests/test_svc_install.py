"""service install and uninstall as steps on real files in a temporary root: what install
makes, that a second run changes nothing, that uninstall removes exactly that. systemctl
and systemd-run are stood in for here (they answer as systemd 252 does); the container
test (test_svc_container.py) runs the same command under the real systemd."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from dropscribe.commands import provision, service, unitfile

if TYPE_CHECKING:
    from collections.abc import Iterator

SHIPPED = Path(__file__).parent.parent / "systemd" / "dropscribe.service"
GROUP = "users"  # a group this machine has: groupadd is not run for real here


class FakeSystemd:
    """systemctl and systemd-run, answering from the unit files under ``units``."""

    def __init__(self, units: Path) -> None:
        self.units = units
        self.calls: list[list[str]] = []
        self.check_status = 0

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        out, code = "", 0
        if argv[:2] == ["systemctl", "cat"]:
            unit = self.units / unitfile.template_of(argv[-1])
            if not unit.exists():
                return subprocess.CompletedProcess(argv, 1, "", "No files found")
            out = f"# {unit}\n{unit.read_text()}"
            for dropin in sorted((self.units / f"{argv[-1]}.d").glob("*.conf")):
                out += f"\n# {dropin}\n{dropin.read_text()}"
        elif argv[:2] == ["systemctl", "show"]:
            out = "dropscribe\n"
        elif argv[:2] == ["systemctl", "is-active"]:
            out = "inactive\n"
        elif argv[0] == "systemd-run":
            out, code = "config.yaml: ok\n", self.check_status
        return subprocess.CompletedProcess(argv, code, out, "")

    def must(self, argv: list[str]) -> None:
        self.calls.append(argv)


@pytest.fixture
def root() -> Iterator[Path]:
    """A folder for the host's files, not under /tmp (the service's /tmp is its own:
    install refuses a folder there)."""
    made = Path(tempfile.mkdtemp(prefix="dropscribe-test-", dir="/var/lib"))
    yield made
    shutil.rmtree(made)


@pytest.fixture
def host(root, monkeypatch) -> FakeSystemd:
    """/etc/dropscribe, /etc/systemd/system and /usr/local/bin under root; the shipped
    unit installed there (its paths moved there too) with this machine's group ``users``
    as the inbox group."""
    etc, units = root / "etc" / "dropscribe", root / "etc" / "systemd" / "system"
    etc.mkdir(parents=True)
    units.mkdir(parents=True)
    text = (
        SHIPPED.read_text()
        .replace("SupplementaryGroups=dropscribe-inbox", f"SupplementaryGroups={GROUP}")
        .replace("/etc/dropscribe/", f"{etc}/")
    )
    (units / "dropscribe.service").write_text(text)
    fake = FakeSystemd(units)
    monkeypatch.setattr(unitfile, "ETC", etc)
    monkeypatch.setattr(unitfile, "UNITS", units)
    monkeypatch.setattr(service, "MANIFESTS", etc / "installed")
    monkeypatch.setattr(service, "LINK", root / "usr" / "local" / "bin" / "dropscribe")
    monkeypatch.setattr(provision, "run", fake.run)
    monkeypatch.setattr(provision, "must", fake.must)
    return fake


def configured(root: Path, **extra: Any) -> Path:
    """/etc/dropscribe/config.yaml (under root) with an inbox at srv/inbox, a root
    folder of mode 0755, and its key beside it."""
    inbox = root / "srv" / "inbox"
    inbox.mkdir(parents=True)
    inbox.chmod(0o755)
    etc = root / "etc" / "dropscribe"
    (etc / "openai-key").write_text("sk-test\n")
    data = {
        "endpoints": {"api": {"base_url": "http://127.0.0.1:9/v1", "api_key_file": "openai-key"}},
        "defaults": {"endpoint": "api", "model": "whisper-1"},
        "inboxes": [{"path": str(inbox), **extra}],
    }
    (etc / "config.yaml").write_text(yaml.safe_dump(data))
    return etc / "config.yaml"


def command(config: Path, action: str, *, dry_run: bool = False) -> int:
    return service.main(argparse.Namespace(config=str(config), action=action, dry_run=dry_run))


def test_install_writes_the_dropin_links_and_regroups_then_uninstall_undoes_exactly_that(
    host, root, capsys
):
    """Install: the drop-in (the inbox and a missing output folder writable, the key
    loaded), the output folder made and the inbox made the group's 2775, the link,
    daemon-reload, and check-config through systemd-run with the unit's sandbox and
    user. A second install changes nothing. Uninstall: all of it gone, the inbox's group
    and mode back, a folder made by install removed, what was there before kept."""
    out = root / "out" / "texts"
    config = configured(root, output_dir=str(out))
    inbox = root / "srv" / "inbox"
    before = inbox.stat()
    assert command(config, "install") == 0
    dropin = unitfile.UNITS / "dropscribe.service.d" / unitfile.DROPIN
    text = dropin.read_text()
    assert f"ReadWritePaths=-{inbox}\n" in text
    assert f"ReadWritePaths=-{out}\n" in text
    assert f"LoadCredential=openai-key:{config.parent}/openai-key\n" in text
    assert out.is_dir()
    assert out.stat().st_gid == inbox.stat().st_gid == 100
    assert inbox.stat().st_mode & 0o7777 == 0o2775
    assert service.LINK.readlink() == Path("/opt/dropscribe/bin/dropscribe")
    assert ["systemctl", "daemon-reload"] in host.calls
    check = next(c for c in host.calls if c[0] == "systemd-run")
    assert "--property=ProtectSystem=strict" in check
    assert "--property=User=dropscribe" in check
    assert f"--property=ReadWritePaths=-{inbox}" in check
    assert check[-4:] == ["/opt/dropscribe/bin/dropscribe", "check-config", "-c", str(config)]
    assert "systemctl enable --now dropscribe.service" in capsys.readouterr().out

    made = json.loads((service.MANIFESTS / "dropscribe.service.json").read_text())
    assert command(config, "install") == 0
    assert json.loads((service.MANIFESTS / "dropscribe.service.json").read_text()) == made
    assert dropin.read_text() == text

    (out / "kept.txt").write_text("a transcript")  # a folder with work in it stays
    assert command(config, "uninstall") == 0
    assert not dropin.exists()
    assert not dropin.parent.exists()
    assert not service.LINK.exists()
    assert not service.MANIFESTS.joinpath("dropscribe.service.json").exists()
    assert (inbox.stat().st_gid, inbox.stat().st_mode) == (before.st_gid, before.st_mode)
    assert out.is_dir()
    assert "kept" in capsys.readouterr().out
    assert command(config, "uninstall") == 0  # nothing left to undo
    assert "nothing to undo" in capsys.readouterr().out


def test_dry_run_says_every_step_and_changes_nothing(host, root, capsys):
    """--dry-run prints the drop-in, the group to make and the check's systemd-run line,
    and writes nothing."""
    config = configured(root)
    text = (unitfile.UNITS / "dropscribe.service").read_text()
    (unitfile.UNITS / "dropscribe.service").write_text(
        text.replace(f"SupplementaryGroups={GROUP}", "SupplementaryGroups=no-such-group-here")
    )
    assert command(config, "install", dry_run=True) == 0
    said = capsys.readouterr().out
    assert "would: groupadd --system no-such-group-here" in said
    assert "would: write " in said
    assert "ReadWritePaths=-" in said
    assert "would check the config as dropscribe.service runs it: systemd-run" in said
    assert not (unitfile.UNITS / "dropscribe.service.d").exists()
    assert not service.MANIFESTS.exists()
    assert not [c for c in host.calls if c[0] != "systemctl" or c[1] not in {"cat", "show"}]


def test_install_refuses_what_the_service_could_not_run(host, root, capsys):
    """An inbox the sandbox hides (/tmp), a missing key file an inbox needs, a config
    outside /etc/dropscribe and a unit not installed: each refused (exit 2) with the
    reason, before anything changes; a failing check says the unit would refuse it."""
    config = configured(root)
    hidden = yaml.safe_load(config.read_text())
    hidden["inboxes"].append({"path": tempfile.gettempdir()})
    config.write_text(yaml.safe_dump(hidden))
    assert command(config, "install") == 2
    assert "PrivateTmp=" in capsys.readouterr().err
    config.write_text(yaml.safe_dump({**hidden, "inboxes": hidden["inboxes"][:1]}))
    (config.parent / "openai-key").unlink()
    assert command(config, "install") == 2
    assert "key file" in capsys.readouterr().err
    (config.parent / "openai-key").write_text("sk-test\n")
    assert command(root / "elsewhere.yaml", "install") == 2
    assert "/etc/dropscribe/NAME.yaml" in capsys.readouterr().err
    host.check_status = 2
    assert command(config, "install") == 2
    assert "would refuse this config" in capsys.readouterr().err
    (unitfile.UNITS / "dropscribe.service").unlink()
    assert command(config, "install") == 2
    assert "dropscribe.service is not installed" in capsys.readouterr().err


def test_the_group_and_link_stay_while_another_unit_is_installed(host, root):
    """Two configs installed, the first uninstalled: the link stays (handed over to the
    other's manifest), and goes with the last."""
    config = configured(root)
    (unitfile.UNITS / "dropscribe@.service").write_text(
        (unitfile.UNITS / "dropscribe.service").read_text()
    )
    second = config.with_name("pods.yaml")
    second.write_text(config.read_text())
    assert command(config, "install") == 0
    assert command(second, "install") == 0
    assert command(config, "uninstall") == 0
    assert service.LINK.is_symlink()
    assert command(second, "uninstall") == 0
    assert not service.LINK.is_symlink()
    assert os.listdir(service.MANIFESTS) == []
