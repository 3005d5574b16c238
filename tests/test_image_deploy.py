"""What ships for containers, checked offline: compose.yaml against the Compose
specification's schema (check-jsonschema carries it), the Kubernetes manifests against
Kubernetes' own schemas (kubernetes-validate carries them; KEDA's ScaledObject has none
there and is checked against the Deployment and the metric the daemon exports), and every
dropscribe config they mount against the daemon's own schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dropscribe.errors import ConfigError
from dropscribe.loading import checked as configmod
from dropscribe.ops.metrics import Metrics

ROOT = Path(__file__).parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
NOT_KUBERNETES = {"keda.sh/v1alpha1", "kustomize.config.k8s.io/v1beta1"}  # no schema there


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install '.[test]')")
    return found


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_compose_file_follows_the_compose_specification():
    """compose.yaml validates against the Compose specification's JSON schema."""
    checked = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            ROOT / "compose.yaml",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_profiles_run_one_daemon_three_replicas_and_a_server_beside_it():
    """The default runs one daemon; "hosts" three replicas on one inbox volume and one
    PostgreSQL; "speaches" a self-hosted server the daemon's config points at; every
    mounted file exists."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert [n for n, s in services.items() if not s.get("profiles")] == ["dropscribe"]
    replicas = services["transcriber"]
    assert replicas["deploy"]["replicas"] == 3
    assert "shared-recordings:/srv/recordings" in replicas["volumes"]
    assert {n for n, s in services.items() if "hosts" in s.get("profiles", [])} == {
        "postgres",
        "transcriber",
    }
    speaches = yaml.safe_load((ROOT / "deploy/compose/speaches.yaml").read_text())
    assert speaches["endpoints"]["speaches"]["base_url"].startswith("http://speaches:")
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./deploy/"):
                assert (ROOT / source).is_file(), source


def test_kubernetes_manifests_follow_kubernetes_schemas():
    """Every manifest of a Kubernetes kind validates strictly (unknown keys refused)."""
    files = [
        p
        for p in sorted(KUBE.glob("*.yaml"))
        if documents(p)[0]["apiVersion"] not in NOT_KUBERNETES
    ]
    assert {p.name for p in files} >= {"deployment.yaml", "secret.yaml", "inbox.yaml"}
    checked = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", *files],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_deployment_shares_an_inbox_and_a_ledger_and_keda_scales_it_on_the_backlog():
    """Replicas share a ReadWriteMany inbox and the PostgreSQL ledger, read the key from
    the Secret, are probed on /healthz; the ScaledObject targets the Deployment with a
    Prometheus query of a metric the daemon exports."""
    deployment = documents(KUBE / "deployment.yaml")[0]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["inbox"]["persistentVolumeClaim"]["claimName"]
    (pvc,) = documents(KUBE / "inbox.yaml")
    assert pvc["metadata"]["name"] == claim
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert volumes["secrets"]["secret"]["secretName"] == "dropscribe"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (scaled,) = documents(KUBE / "keda.yaml")
    assert scaled["kind"] == "ScaledObject"
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert "max(dropscribe_backlog_files" in trigger["metadata"]["query"]
    metrics = Metrics()
    metrics.watch_ledger(dict)
    exported = {family.name for family in metrics.registry.collect()}
    assert "dropscribe_backlog_files" in exported


def configs() -> list[tuple[str, str, dict[str, str]]]:
    """(name, text, secrets) of every dropscribe config the image, compose and Kubernetes mount."""
    configmap = documents(KUBE / "configmap.yaml")[0]
    secret = documents(KUBE / "secret.yaml")[0]["stringData"]
    return [
        ("image", (ROOT / "deploy/container/config.yaml").read_text(), {}),
        (
            "compose-hosts",
            (ROOT / "deploy/compose/hosts.yaml").read_text(),
            {"ledger-password": "x"},
        ),
        ("compose-speaches", (ROOT / "deploy/compose/speaches.yaml").read_text(), {}),
        ("kubernetes", configmap["data"]["config.yaml"], secret),
    ]


@pytest.mark.parametrize(("name", "text", "secrets"), configs(), ids=[c[0] for c in configs()])
def test_every_shipped_config_is_valid(tmp_path, name, text, secrets):
    """Each config loads, with its keys from the secrets folder, the inbox aside (the
    inbox folder exists only in the container)."""
    creds = tmp_path / "secrets"
    creds.mkdir()
    for key, value in secrets.items():
        (creds / key).write_text(value)
    inbox = tmp_path / "recordings"
    inbox.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        text.replace("/srv/recordings", str(inbox)).replace(
            "/var/lib/dropscribe", str(tmp_path / "state")
        )
    )
    try:
        configmod.load(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    except ConfigError as exc:
        pytest.fail(f"{name}: {exc}")
