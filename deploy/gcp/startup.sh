#!/bin/bash
# The GPU VM's startup script (deploy/gcp/vm.py sets it; rollback.py re-runs it): mount the
# persistent disk at /mnt/disks/chatforge ($CHATFORGE_HOME in the container), pull the image
# named in the instance metadata and (re)start the backend container with the GPUs.
set -euo pipefail
meta() {
  curl -fsS -H "Metadata-Flavor: Google" \
    "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"
}
IMAGE="$(meta chatforge-image)"
DEVICE=/dev/disk/by-id/google-chatforge-home
MOUNT=/mnt/disks/chatforge

if ! blkid "$DEVICE" >/dev/null; then
  mkfs.ext4 -m 0 -E lazy_itable_init=0,lazy_journal_init=0,discard "$DEVICE"
fi
mkdir -p "$MOUNT"
mountpoint -q "$MOUNT" || mount -o discard,defaults "$DEVICE" "$MOUNT"
chown 10001:10001 "$MOUNT"  # the image's non-root user

gcloud auth configure-docker "${IMAGE%%/*}" --quiet
docker pull "$IMAGE"
docker rm -f chatforge-backend 2>/dev/null || true
# /metrics stays on 127.0.0.1 inside the container; only gRPC is published.
docker run -d --name chatforge-backend --restart unless-stopped --gpus all \
  -p 50051:50051 -v "$MOUNT:/var/lib/chatforge" "$IMAGE"
