"""Create or update the GPU VM that runs the backend container; roll back if unhealthy.

    python deploy/gcp/vm.py [--tag TAG] [--dry-run]

First time: a persistent disk for $CHATFORGE_HOME (models, keys, collections), a firewall
rule that opens gRPC (50051) only to the UI's egress range, and a VM on a Deep Learning VM
image (NVIDIA driver, Docker with the container toolkit) without a public address, whose
startup script (startup.sh) mounts the disk and runs the backend image. Later: the new
image goes into the instance metadata and the startup script runs again. Either way the
container's health check must report healthy within `smoke_seconds`; an update that does
not is rolled back to the image it replaced.
"""

from __future__ import annotations

import argparse

from gcp import HERE, Gcloud, main
from rollback import set_vm_image, settle, vm_images, vm_smoke

NETWORK_TAG = "chatforge-backend"
FIREWALL_RULE = "chatforge-grpc-from-ui"


def create(gcloud: Gcloud, image: str) -> None:
    s = gcloud.settings
    zone = ["--zone", s.zone]
    if not gcloud.exists("compute", "disks", "describe", s.disk, *zone):
        gcloud.run("compute", "disks", "create", s.disk, *zone,
                   "--size", f"{s.disk_size_gb}GB", "--type", "pd-balanced")  # fmt: skip
    firewall = ["--network", s.network, "--direction", "INGRESS", "--allow", "tcp:50051",
                "--source-ranges", s.ui_egress_range, "--target-tags", NETWORK_TAG]  # fmt: skip
    if gcloud.exists("compute", "firewall-rules", "describe", FIREWALL_RULE):
        gcloud.run("compute", "firewall-rules", "update", FIREWALL_RULE,
                   "--source-ranges", s.ui_egress_range)  # fmt: skip
    else:
        gcloud.run("compute", "firewall-rules", "create", FIREWALL_RULE, *firewall)
    gcloud.run("compute", "instances", "create", s.vm, *zone,
               "--machine-type", s.machine_type, "--accelerator", s.accelerator,
               "--maintenance-policy", "TERMINATE",
               "--image-family", "common-cu128-ubuntu-2204-nvidia-570",
               "--image-project", "deeplearning-platform-release",
               "--boot-disk-size", "100GB",
               "--disk", f"name={s.disk},device-name=chatforge-home,mode=rw,boot=no",
               "--network", s.network, "--subnet", s.subnet, "--no-address",
               "--tags", NETWORK_TAG, "--scopes", "cloud-platform",
               "--metadata", f"chatforge-image={image},chatforge-previous-image=",
               "--metadata-from-file", f"startup-script={HERE / 'startup.sh'}")  # fmt: skip


def deploy(args: argparse.Namespace, gcloud: Gcloud) -> int:
    s = gcloud.settings
    image = s.image("chatforge-backend")
    if gcloud.exists("compute", "instances", "describe", s.vm, "--zone", s.zone):
        current, _ = vm_images(gcloud)
        set_vm_image(gcloud, image, current)
    else:
        current = ""
        create(gcloud, image)
    return settle(
        s.vm, image, vm_smoke(gcloud), current, lambda: set_vm_image(gcloud, current, image)
    )


if __name__ == "__main__":
    main(__doc__.split("\n")[0], deploy)
