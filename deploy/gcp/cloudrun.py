"""Deploy the UI to Cloud Run; roll back to the revision it replaced if the smoke check fails.

    python deploy/gcp/cloudrun.py [--tag TAG] [--dry-run]

The backend address, the UI's API key and its users file come from Secret Manager
(`chatforge-backend-address`, `chatforge-ui-api-key`, `chatforge-ui-users`; README,
"Deploy"), never from the command line. Direct VPC egress reaches the VM's internal
address; session affinity keeps a browser on the instance that holds its Gradio queue;
the timeout lets long answers stream; min/max instances bound the cost.
"""

from __future__ import annotations

import argparse

from gcp import Gcloud, main
from rollback import route_ui_to, settle, ui_serving_revision, ui_smoke

SECRETS = ",".join(
    [
        "CHATFORGE_BACKEND=chatforge-backend-address:latest",
        "CHATFORGE_API_KEY=chatforge-ui-api-key:latest",
        "/secrets/users.yaml=chatforge-ui-users:latest",
    ]
)


def deploy(args: argparse.Namespace, gcloud: Gcloud) -> int:
    s = gcloud.settings
    region = ["--region", s.region]
    exists = gcloud.exists("run", "services", "describe", s.ui_service, *region)
    previous = ui_serving_revision(gcloud) if exists else ""
    gcloud.run("run", "deploy", s.ui_service, *region,
               "--image", s.image("chatforge-ui"), "--port", "8080",
               "--set-secrets", SECRETS,
               "--set-env-vars", "CHATFORGE_UI_AUTH_FILE=/secrets/users.yaml",
               "--network", s.network, "--subnet", s.subnet,
               "--vpc-egress", "private-ranges-only",
               "--session-affinity", "--timeout", str(s.ui_timeout),
               "--min-instances", str(s.ui_min_instances),
               "--max-instances", str(s.ui_max_instances),
               "--cpu", "1", "--memory", "1Gi",
               # The app has its own login (--auth-file); Cloud Run IAM would hide it.
               "--allow-unauthenticated")  # fmt: skip
    return settle(
        s.ui_service,
        s.image("chatforge-ui"),
        ui_smoke(gcloud),
        previous,
        lambda: route_ui_to(gcloud, previous),
    )


if __name__ == "__main__":
    main(__doc__.split("\n")[0], deploy)
