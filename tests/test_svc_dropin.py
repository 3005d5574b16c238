"""service install's pieces that need no systemd: the unit a config belongs to, the
drop-in written for it, the unit's settings read back as systemd-run properties; and
check-config's reason for an inbox on a read-only mount, through the real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tmpfs
from dropscribe.commands import unitfile
from dropscribe.loading import checked

UNIT = Path(__file__).parent.parent / "systemd" / "dropscribe@.service"


def loaded(tmp_path: Path, data: dict) -> object:
    """The config ``data`` written beside its folders and loaded as install loads it."""
    path = tmp_path / "etc" / "podcasts.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    base = {
        "endpoints": {
            "api": {"base_url": "http://127.0.0.1:9/v1", "api_key_file": "podcasts.key"},
            "spare": {"base_url": "http://127.0.0.1:9/v1", "api_key_file": "spare.key"},
            "env": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "NOT_SET"},
        },
        "defaults": {"endpoint": "api", "model": "whisper-1"},
    }
    path.write_text(yaml.safe_dump({**base, **data}))
    return checked.load(path, keys=False)


def test_unit_for_names_the_unit_that_reads_the_config():
    """/etc/dropscribe/config.yaml is dropscribe.service, NAME.yaml dropscribe@NAME; a
    config elsewhere is refused with where to put it."""
    assert unitfile.unit_for(Path("/etc/dropscribe/config.yaml")) == "dropscribe.service"
    assert unitfile.unit_for(Path("/etc/dropscribe/pods.yaml")) == "dropscribe@pods.service"
    assert unitfile.template_of("dropscribe@pods.service") == "dropscribe@.service"
    with pytest.raises(unitfile.UnitError, match=r"/etc/dropscribe/NAME\.yaml"):
        unitfile.unit_for(Path("/root/config.yaml"))


def test_dropin_makes_every_written_folder_writable_and_loads_exactly_the_keys(tmp_path):
    """Inboxes and an output_dir outside them each get a ReadWritePaths= line (a folder
    inside another none); the unit's own LoadCredential= is reset, then each bare key
    file beside the config is loaded under its own name, quoted where it must be."""
    outer = tmp_path / "srv" / "in box%1"
    inner = outer / "sub"
    elsewhere = tmp_path / "out"
    for folder in (inner, elsewhere):
        folder.mkdir(parents=True)
    cfg = loaded(
        tmp_path,
        {
            "inboxes": [
                {"path": str(outer)},
                {"path": str(inner), "output_dir": str(elsewhere)},
            ]
        },
    )
    (tmp_path / "etc" / "podcasts.key").write_text("k")
    creds = unitfile.credentials(cfg, {})
    assert [(c.name, c.endpoint, c.used) for c in creds] == [
        ("podcasts.key", "api", True),
        ("spare.key", "spare", False),
    ]
    assert unitfile.folders(cfg) == [elsewhere, outer]
    text = unitfile.dropin(cfg, creds[:1])
    settings = unitfile.service_section(text)
    assert settings == [
        ("ReadWritePaths", f"-{elsewhere}"),
        ("ReadWritePaths", f'"-{str(outer).replace("%", "%%")}"'),
        ("LoadCredential", ""),
        ("LoadCredential", f"podcasts.key:{tmp_path}/etc/podcasts.key"),
    ]


def test_hidden_names_the_setting_that_hides_a_folder():
    """A folder under /tmp is the service's own private /tmp; /srv is not hidden."""
    assert unitfile.hidden(Path("/tmp/inbox")) == "PrivateTmp="
    assert unitfile.hidden(Path("/srv/inbox")) is None


def test_sandbox_reads_the_shipped_template_with_its_drop_in():
    """The template's sandbox settings become systemd-run properties with %i, %C
    expanded; what says how it runs (Type, ExecStart, Restart…) stays out; ExecStart's
    dropscribe is found; an earlier install's drop-in in systemctl cat is replaced."""
    shown = (
        f"# /etc/systemd/system/dropscribe@.service\n{UNIT.read_text()}\n"
        "# /etc/systemd/system/dropscribe@pods.service.d/dropscribe-install.conf\n"
        "[Service]\nReadWritePaths=-/srv/old\n"
        "# /etc/systemd/system/dropscribe@pods.service.d/override.conf\n"
        "[Service]\nReadWritePaths=-/srv/mine\n"
    )
    from dropscribe.commands import service

    settings = unitfile.service_section(service._without_ours(shown))
    props = unitfile.sandbox(settings, "dropscribe@pods.service")
    assert "--property=StateDirectory=dropscribe-pods" in props
    assert "--property=Environment=HF_HOME=/var/cache/dropscribe-pods/huggingface" in props
    assert "--property=LoadCredential=openai-key:/etc/dropscribe/pods.key" in props
    assert "--property=ProtectSystem=strict" in props
    assert "--property=ReadWritePaths=-/srv/mine" in props
    assert "--property=ReadWritePaths=-/srv/old" not in props
    assert not [p for p in props if p.startswith(("--property=Exec", "--property=Restart"))]
    assert unitfile.executable(settings, "dropscribe@pods.service") == (
        "/opt/dropscribe/bin/dropscribe"
    )
    sources = unitfile.credential_sources(settings, "dropscribe@pods.service")
    assert sources == {"openai-key": Path("/etc/dropscribe/pods.key")}


def test_check_config_names_read_write_paths_for_an_inbox_on_a_read_only_mount(setup, tmp_path):
    """An inbox on a read-only mount (what ProtectSystem=strict makes of a folder outside
    ReadWritePaths=) is refused for that reason, naming ReadWritePaths= and service
    install, not with "make it group-writable"."""
    with tmpfs(tmp_path / "sealed", "ro,size=1m") as sealed:
        setup.data["inboxes"] = [{"path": str(sealed)}]
        done = subprocess.run(
            [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.write())],
            capture_output=True,
            text=True,
            env={"DROPSCRIBE_TEST_KEY": "k", "PATH": "/usr/bin:/bin"},
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert "read-only file system" in done.stderr, done.stderr
    assert "ReadWritePaths=" in done.stderr
    assert "service install" in done.stderr
    assert "group-writable" not in done.stderr
