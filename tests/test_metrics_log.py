"""metrics.jsonl, the one writer for every training command: a fresh run starts it empty,
a resumed run keeps the rows up to its checkpoint's step and logs the rest once."""

from __future__ import annotations

import json

from training.metrics_log import METRICS_FILE, MetricsLog


def steps(folder) -> list[int]:
    return [json.loads(line)["step"] for line in (folder / METRICS_FILE).read_text().splitlines()]


def test_resume_trims_to_the_checkpoint_step_and_logs_each_step_once(tmp_path):
    first = MetricsLog(tmp_path)
    for step in (10, 20, 30, 40):  # checkpointed at 20, then interrupted after 40
        first.write({"step": step, "train_loss": 1.0 / step, "val_loss": None})
    with (tmp_path / METRICS_FILE).open("a") as f:
        f.write('{"step": 5')  # a row cut short by the crash
    resumed = MetricsLog(tmp_path, resume_step=20)
    assert steps(tmp_path) == [10, 20]
    for step in (30, 40, 50):
        resumed.write({"step": step, "train_loss": 0.01})
    assert steps(tmp_path) == [10, 20, 30, 40, 50]
    assert "val_loss" not in (tmp_path / METRICS_FILE).read_text()  # no nulls written


def test_a_fresh_run_starts_empty_and_other_ranks_write_nothing(tmp_path):
    MetricsLog(tmp_path).write({"step": 1})
    MetricsLog(tmp_path).write({"step": 2})
    assert steps(tmp_path) == [2]
    MetricsLog(tmp_path, enabled=False).write({"step": 3})
    assert steps(tmp_path) == [2]
