"""Post-deploy smoke checks and rollback, for the UI on Cloud Run and the GPU VM.

    python deploy/gcp/rollback.py ui|vm [--dry-run]

Design decisions:
- Cloud Run keeps every revision: rolling back sends all traffic to the revision that
  served before the newest one (a deploy that failed its smoke check rolls back to the
  exact revision it replaced).
- The VM runs one container whose image is named in the instance's metadata
  (`chatforge-image`); each update keeps the image it replaced in
  `chatforge-previous-image`, and rolling back swaps the two and re-runs the startup
  script, which pulls and restarts the container.
- Smoke checks: the UI's URL must answer HTTP 200 (the login page does); the backend
  container must report `healthy` (its HEALTHCHECK asks grpc.health.v1 for SERVING),
  polled over IAP SSH until `smoke_seconds` pass.
"""

from __future__ import annotations

import argparse
import time
import urllib.error
import urllib.request

from gcp import Gcloud, GcloudError, main

RERUN_STARTUP = "sudo google_metadata_script_runner startup"
CONTAINER_HEALTH = "sudo docker inspect --format '{{.State.Health.Status}}' chatforge-backend"


def _poll(check, seconds: float, interval: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() + interval > deadline:
            return False
        time.sleep(interval)


def ui_serving_revision(gcloud: Gcloud) -> str:
    s = gcloud.settings
    return gcloud.run("run", "services", "describe", s.ui_service, "--region", s.region,
                      "--format", "value(status.traffic[0].revisionName)",
                      placeholder="<serving revision>")  # fmt: skip


def route_ui_to(gcloud: Gcloud, revision: str) -> None:
    s = gcloud.settings
    gcloud.run("run", "services", "update-traffic", s.ui_service, "--region", s.region,
               "--to-revisions", f"{revision}=100")  # fmt: skip


def ui_smoke(gcloud: Gcloud) -> bool:
    s = gcloud.settings
    url = gcloud.run("run", "services", "describe", s.ui_service, "--region", s.region,
                     "--format", "value(status.url)", placeholder="<service url>")  # fmt: skip
    print(f"smoke check: GET {url}", flush=True)
    if gcloud.dry_run:
        return True

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    return _poll(answers, s.smoke_seconds)


def vm_ssh(gcloud: Gcloud, command: str, placeholder: str = "") -> str:
    s = gcloud.settings
    return gcloud.run("compute", "ssh", s.vm, "--zone", s.zone, "--tunnel-through-iap",
                      "--command", command, placeholder=placeholder)  # fmt: skip


def vm_smoke(gcloud: Gcloud) -> bool:
    def healthy() -> bool:
        try:
            return vm_ssh(gcloud, CONTAINER_HEALTH, placeholder="healthy") == "healthy"
        except GcloudError:
            return False

    return _poll(healthy, gcloud.settings.smoke_seconds)


def vm_images(gcloud: Gcloud) -> tuple[str, str]:
    """(current image, previous image) from the VM's metadata."""
    s = gcloud.settings
    values = gcloud.run("compute", "instances", "describe", s.vm, "--zone", s.zone,
                        "--format", "value(metadata.items.chatforge-image,"
                        "metadata.items.chatforge-previous-image)",
                        placeholder="<current image>\t<previous image>")  # fmt: skip
    current, _, previous = values.partition("\t")
    return current.strip(), previous.strip()


def set_vm_image(gcloud: Gcloud, image: str, previous: str) -> None:
    """Point the VM at `image` (remembering `previous`) and restart its container."""
    s = gcloud.settings
    metadata = f"chatforge-image={image},chatforge-previous-image={previous}"
    gcloud.run("compute", "instances", "add-metadata", s.vm, "--zone", s.zone,
               "--metadata", metadata)  # fmt: skip
    vm_ssh(gcloud, RERUN_STARTUP)


def settle(name: str, deployed: str, passed: bool, previous: str, roll_back) -> int:
    """The exit code of a deploy after its smoke check: 0, or 1 after `roll_back()` to
    `previous` (when there is one)."""
    if passed:
        print(f"{name} serves {deployed}")
        return 0
    if not previous:
        print(f"error: {name} failed its smoke check on {deployed}; nothing earlier to go back to")
        return 1
    print(f"error: {name} failed its smoke check on {deployed}; rolling back to {previous}")
    roll_back()
    return 1


def rollback_ui(gcloud: Gcloud, to: str | None = None) -> int:
    """All UI traffic to `to`, or to the revision before the newest."""
    s = gcloud.settings
    if to is None:
        names = gcloud.run("run", "revisions", "list", "--service", s.ui_service,
                           "--region", s.region, "--sort-by", "~metadata.creationTimestamp",
                           "--limit", "2", "--format", "value(metadata.name)",
                           placeholder="<newest-revision>\n<previous-revision>")  # fmt: skip
        revisions = names.splitlines()
        if len(revisions) < 2:
            print(f"error: {s.ui_service} has no earlier revision to roll back to")
            return 1
        to = revisions[1]
    route_ui_to(gcloud, to)
    print(f"rolled back {s.ui_service} to {to}")
    return 0


def rollback_vm(gcloud: Gcloud) -> int:
    current, previous = vm_images(gcloud)
    if not previous:
        print(f"error: {gcloud.settings.vm} has no previous image to roll back to")
        return 1
    set_vm_image(gcloud, previous, current)
    if not vm_smoke(gcloud):
        print(f"error: {gcloud.settings.vm} is not healthy on {previous} either")
        return 1
    print(f"rolled back {gcloud.settings.vm} to {previous}")
    return 0


def _rollback(args: argparse.Namespace, gcloud: Gcloud) -> int:
    return rollback_ui(gcloud) if args.what == "ui" else rollback_vm(gcloud)


if __name__ == "__main__":
    main(
        __doc__.split("\n")[0],
        _rollback,
        lambda parser: parser.add_argument("what", choices=["ui", "vm"]),
    )
