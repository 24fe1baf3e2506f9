"""The deploy scripts in deploy/gcp/, run as an operator runs them, against a fake `gcloud`
on PATH that records its arguments and answers from a script of replies: dry runs print
and run nothing; real runs create what is missing, roll back after a failed smoke check."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GCP = ROOT / "deploy" / "gcp"

FAKE_GCLOUD = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
for rule in json.loads(os.environ.get("FAKE_GCLOUD_REPLIES", "[]")):
    if all(word in args for word in rule["when"]):
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("rc", 0))
"""


@pytest.fixture
def gcloud(tmp_path):
    """Run a deploy script with the fake gcloud first on PATH; returns (result, calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "gcloud"
    fake.write_text(FAKE_GCLOUD.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(script: str, *args: str, replies: list[dict] | None = None):
        log.write_text("")
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_GCLOUD_LOG": str(log),
            "FAKE_GCLOUD_REPLIES": json.dumps(replies or []),
            "CHATFORGE_GCP_PROJECT": "demo-project",
            "CHATFORGE_GCP_SMOKE_SECONDS": "1",
        }
        result = subprocess.run(
            [sys.executable, str(GCP / f"{script}.py"), *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return result, calls

    return run


def missing(*words: str) -> dict:
    """A reply: the describe command with these words finds nothing."""
    return {"when": ["describe", *words], "rc": 1, "stderr": "NOT_FOUND"}


@pytest.fixture
def site():
    """A local HTTP server standing in for the UI's URL; set `status` to its answer."""

    class Handler(http.server.BaseHTTPRequestHandler):
        status = 200

        def do_GET(self):
            self.send_response(Handler.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Handler, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("build", [], ["builds submit", "_TAG=v7", "artifacts repositories create chatforge"]),
        ("vm", [], ["--source-ranges 10.128.0.0/20", "--no-address", "chatforge-backend:v7",
                    "--accelerator type=nvidia-l4,count=1", "disks create chatforge-home"]),
        ("cloudrun", [], ["--session-affinity", "--vpc-egress private-ranges-only",
                    "CHATFORGE_API_KEY=chatforge-ui-api-key:latest", "--max-instances 3",
                    "--timeout 3600", "chatforge-ui:v7"]),
        ("budget", [], ["percent=0.5", "percent=0.9", "percent=1.0", "--budget-amount 300USD"]),
        ("rollback", ["ui"], ["update-traffic chatforge-ui", "--to-revisions"]),
        ("rollback", ["vm"], ["chatforge-image=<previous image>"]),
    ],
)  # fmt: skip
def test_dry_runs_print_the_commands_and_run_none(gcloud, script, args, expected):
    result, calls = gcloud(script, *args, "--dry-run", "--tag", "v7")
    assert result.returncode == 0, result.stderr
    assert calls == []
    printed = [line for line in result.stdout.splitlines() if line.startswith("+ gcloud ")]
    assert printed and all("--project demo-project" in line for line in printed)
    for text in expected:
        assert text in result.stdout, text


def test_build_creates_the_repository_once_then_submits(gcloud):
    result, calls = gcloud("build", "--tag", "v8", replies=[missing("repositories")])
    assert result.returncode == 0, result.stderr
    assert [c[:3] for c in calls] == [
        ["artifacts", "repositories", "describe"],
        ["artifacts", "repositories", "create"],
        ["builds", "submit", str(ROOT)],
    ]
    assert "_REGION=us-central1,_REPOSITORY=chatforge,_TAG=v8" in calls[-1]
    cloudbuild = yaml.safe_load((GCP / "cloudbuild.yaml").read_text())
    assert [s["args"][2] for s in cloudbuild["steps"]] == ["Dockerfile.gpu", "Dockerfile.ui"]
    result, calls = gcloud("build")
    assert [c[:2] for c in calls] == [["artifacts", "repositories"], ["builds", "submit"]]


def ui_replies(url: str) -> list[dict]:
    """A UI service that exists, serves revision ui-00004 and lives at `url`."""
    return [
        {"when": ["value(status.url)"], "stdout": url},
        {"when": ["value(status.traffic[0].revisionName)"], "stdout": "ui-00004\n"},
    ]


def test_ui_deploy_passes_its_smoke_check(gcloud, site):
    handler, url = site
    replies = ui_replies(url)
    result, calls = gcloud("cloudrun", "--tag", "v9", replies=replies)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(c[:2] == ["run", "deploy"] for c in calls)
    assert not any("update-traffic" in c for c in calls)


def test_ui_deploy_rolls_back_when_the_smoke_check_fails(gcloud, site):
    handler, url = site
    handler.status = 502
    replies = ui_replies(url)
    result, calls = gcloud("cloudrun", "--tag", "v9", replies=replies)
    assert result.returncode == 1
    assert "failed its smoke check on" in result.stdout
    assert "chatforge-ui:v9; rolling back to ui-00004" in result.stdout
    assert calls[-1][:5] == ["run", "services", "update-traffic", "chatforge-ui", "--region"]
    assert "ui-00004=100" in calls[-1]


def test_vm_update_rolls_back_to_the_previous_image_when_unhealthy(gcloud):
    old = "us-central1-docker.pkg.dev/demo-project/chatforge/chatforge-backend:v1"
    replies = [
        {"when": ["value(name)", "instances"], "stdout": "chatforge-backend\n"},
        {"when": ["instances", "describe"], "stdout": f"{old}\t\n"},
        {"when": ["ssh", "sudo docker inspect --format '{{.State.Health.Status}}' "
                  "chatforge-backend"], "stdout": "unhealthy\n"},
    ]  # fmt: skip
    result, calls = gcloud("vm", "--tag", "v2", replies=replies)
    assert result.returncode == 1
    metadata = [c[c.index("--metadata") + 1] for c in calls if "add-metadata" in c]
    new = old.replace(":v1", ":v2")
    assert metadata == [
        f"chatforge-image={new},chatforge-previous-image={old}",
        f"chatforge-image={old},chatforge-previous-image={new}",
    ]
    assert f"rolling back to {old}" in result.stdout
    assert not any(c[:3] == ["compute", "instances", "create"] for c in calls)


def test_vm_first_deploy_creates_disk_firewall_and_vm(gcloud):
    replies = [missing("instances"), missing("disks"), missing("firewall-rules"),
               {"when": ["ssh"], "stdout": "healthy\n"}]  # fmt: skip
    result, calls = gcloud("vm", replies=replies)
    assert result.returncode == 0, result.stdout + result.stderr
    created = [c[:3] for c in calls if "create" in c]
    assert created == [["compute", "disks", "create"], ["compute", "firewall-rules", "create"],
                       ["compute", "instances", "create"]]  # fmt: skip
    firewall = next(c for c in calls if c[:3] == ["compute", "firewall-rules", "create"])
    assert firewall[firewall.index("--allow") + 1] == "tcp:50051"


def test_rollback_ui_goes_to_the_revision_before_the_newest(gcloud):
    replies = [{"when": ["revisions", "list"], "stdout": "ui-00005\nui-00004\n"}]
    result, calls = gcloud("rollback", "ui", replies=replies)
    assert result.returncode == 0, result.stderr
    assert "ui-00004=100" in calls[-1]


def test_budget_updates_an_existing_one_and_reports_gcloud_failures(gcloud):
    listed = "billingAccounts/0/budgets/abc\tchatforge\n"
    replies = [{"when": ["budgets", "list"], "stdout": listed}]
    result, calls = gcloud("budget", replies=replies)
    assert result.returncode == 0, result.stderr
    assert calls[-1][:4] == ["billing", "budgets", "update", "billingAccounts/0/budgets/abc"]
    replies = [{"when": ["budgets", "list"], "rc": 1, "stderr": "PERMISSION_DENIED: billing"}]
    result, _ = gcloud("budget", replies=replies)
    assert result.returncode == 1
    assert "failed (1): PERMISSION_DENIED: billing" in result.stderr
