"""Create or update the project's billing budget, alerting at 50, 90 and 100 percent.

    python deploy/gcp/budget.py [--dry-run]

Alerts go to the billing account's administrators (Cloud Billing's default recipients).
"""

from __future__ import annotations

import argparse

from gcp import Gcloud, main

NAME = "chatforge"
THRESHOLDS = ("0.5", "0.9", "1.0")


def budget(args: argparse.Namespace, gcloud: Gcloud) -> int:
    s = gcloud.settings
    account = ["--billing-account", s.billing_account]
    amount = ["--budget-amount", f"{s.budget_amount}USD"]
    rules = [arg for t in THRESHOLDS for arg in ("--threshold-rule", f"percent={t}")]
    listed = gcloud.run("billing", "budgets", "list", *account,
                        "--format", "value(name,displayName)")  # fmt: skip
    existing = [
        name for name, _, display in (line.partition("\t") for line in listed.splitlines())
        if display.strip() == NAME
    ]  # fmt: skip
    if existing:
        gcloud.run("billing", "budgets", "update", existing[0], *account, *amount,
                   "--clear-threshold-rules", *rules)  # fmt: skip
    else:
        gcloud.run("billing", "budgets", "create", *account, "--display-name", NAME, *amount,
                   "--filter-projects", f"projects/{s.project}", *rules)  # fmt: skip
    print(f"budget {NAME}: {s.budget_amount} USD a month, alerts at 50/90/100%")
    return 0


if __name__ == "__main__":
    main(__doc__.split("\n")[0], budget)
