"""Build both images with Cloud Build and push them to Artifact Registry.

    python deploy/gcp/build.py [--tag TAG] [--dry-run]

Creates the Docker repository the first time. The images are
REGION-docker.pkg.dev/PROJECT/REPOSITORY/chatforge-{backend,ui}:TAG (cloudbuild.yaml).
"""

from __future__ import annotations

import argparse

from gcp import HERE, ROOT, Gcloud, main


def build(args: argparse.Namespace, gcloud: Gcloud) -> int:
    s = gcloud.settings
    location = ["--location", s.region]
    if not gcloud.exists("artifacts", "repositories", "describe", s.repository, *location):
        gcloud.run("artifacts", "repositories", "create", s.repository, *location,
                   "--repository-format", "docker",
                   "--description", "chatforge images")  # fmt: skip
    substitutions = f"_REGION={s.region},_REPOSITORY={s.repository},_TAG={s.tag}"
    gcloud.run("builds", "submit", str(ROOT), "--region", s.region,
               "--config", str(HERE / "cloudbuild.yaml"),
               "--substitutions", substitutions)  # fmt: skip
    print(f"built {s.image('chatforge-backend')} and {s.image('chatforge-ui')}")
    return 0


if __name__ == "__main__":
    main(__doc__.split("\n")[0], build)
