"""What every deploy script shares: the settings of the deployment and a `gcloud` runner.

Design decisions:
- The scripts drive the `gcloud` CLI rather than the client libraries: each command is
  what an operator would type, so `--dry-run` prints exactly what would run, copyable
  into a terminal, and the tests run the real scripts against a fake `gcloud` on PATH.
- Settings (project, region, names, sizes) come from flags, `CHATFORGE_GCP_*` variables
  or `.env`, the same mechanism as the server and the UI (backend/settings.py); every
  script prints the commands it runs, prefixed with `+`.
- In a dry run nothing runs, not even a read-only query; a query's answer is then shown
  as a placeholder (`<previous revision>`), and "does it exist?" is answered "no", so a
  dry run shows the full first-time set-up.
- A failed command stops the script with the command and gcloud's own message.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.settings import ENV_FILE, SettingsError, env_name, flag_name, load_settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class GcpSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATFORGE_GCP_", env_file=ENV_FILE, extra="ignore"
    )

    project: str = Field("chatforge-demo", description="Google Cloud project id")
    region: str = Field("us-central1", description="region of Artifact Registry and Cloud Run")
    zone: str = Field("us-central1-a", description="zone of the GPU VM")
    repository: str = Field("chatforge", description="Artifact Registry Docker repository")
    tag: str = Field("latest", description="image tag to build and deploy (e.g. a git sha)")
    vm: str = Field("chatforge-backend", description="GPU VM name")
    machine_type: str = Field("g2-standard-4", description="GPU VM machine type")
    accelerator: str = Field("type=nvidia-l4,count=1", description="GPU VM accelerator")
    disk: str = Field("chatforge-home", description="persistent disk for $CHATFORGE_HOME")
    disk_size_gb: int = Field(100, description="persistent disk size")
    network: str = Field("default", description="VPC network of the VM and the UI's egress")
    subnet: str = Field("default", description="subnet of the VM and the UI's egress")
    ui_egress_range: str = Field(
        "10.128.0.0/20", description="the UI's Direct VPC egress range (the subnet's range)"
    )
    ui_service: str = Field("chatforge-ui", description="Cloud Run service of the UI")
    ui_min_instances: int = Field(0, description="Cloud Run minimum instances")
    ui_max_instances: int = Field(3, description="Cloud Run maximum instances")
    ui_timeout: int = Field(3600, description="Cloud Run request timeout (s): long streams")
    billing_account: str = Field("000000-000000-000000", description="billing account id")
    budget_amount: int = Field(300, description="monthly budget in the account's currency")
    smoke_seconds: float = Field(300.0, description="how long a post-deploy check may wait")

    def image(self, name: str) -> str:
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}/{name}:{self.tag}"


class GcloudError(RuntimeError):
    pass


class Gcloud:
    """Runs (or, in a dry run, only prints) gcloud commands."""

    def __init__(self, settings: GcpSettings, dry_run: bool) -> None:
        self.settings = settings
        self.dry_run = dry_run

    def run(self, *args: str, placeholder: str = "") -> str:
        """Run `gcloud ARGS --project P`; its stdout stripped (in a dry run: `placeholder`)."""
        command = ["gcloud", *args, "--project", self.settings.project]
        print("+ " + shlex.join(command), flush=True)
        if self.dry_run:
            return placeholder
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise GcloudError(
                f"`{shlex.join(command)}` failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout.strip()

    def exists(self, *describe: str) -> bool:
        """Whether a `describe` command finds its resource (a dry run assumes not)."""
        try:
            self.run(*describe, "--format", "value(name)")
        except GcloudError:
            return False
        return not self.dry_run


def main(
    description: str,
    run: Callable[[argparse.Namespace, Gcloud], int],
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> None:
    """Parse the common flags (and the script's own, from `configure`), then exit with
    `run(args, gcloud)`'s code; a gcloud failure exits 1 with one line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the gcloud commands, run nothing"
    )
    for field, info in GcpSettings.model_fields.items():
        parser.add_argument(
            flag_name(field),
            default=None,
            help=f"{info.description} (${env_name(GcpSettings, field)}; default {info.default})",
        )
    if configure is not None:
        configure(parser)
    args = parser.parse_args(argv)
    try:
        gcloud = Gcloud(load_settings(GcpSettings, args), args.dry_run)
    except SettingsError as error:
        parser.error(str(error))
    try:
        code = run(args, gcloud)
    except GcloudError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    sys.exit(code)
