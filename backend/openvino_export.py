"""Export a checkpoint folder to OpenVINO IR for the OpenVINO engine, once per weight format.

Design decisions:
- The exporter (optimum-intel's `optimum-cli export openvino`) pins a transformers older
  than the server's, so it lives in a venv of its own (`.venv-export`, built by `make
  setup` from constraints-export.txt; `$CHATFORGE_EXPORT_PYTHON` names another) and runs
  as a subprocess. The server's venv holds only the runtime (`openvino-genai`).
- The result is cached under `$CHATFORGE_HOME/openvino/<name>-<key>`, where the key hashes
  what decides the IR: every checkpoint file's name, size and mtime, the weight format,
  and the versions of the exporter's packages (read from the venv's dist-info folders, so
  checking the cache starts no process). A new checkpoint, format or exporter exports
  again; an unchanged one loads at once.
- The export writes into a temporary folder beside the target and is renamed into place
  only after it succeeded and its record (`chatforge-export.json`) is written, so a
  killed export leaves no folder the loader would take for a finished one. An exclusive
  lock per key makes a second process wait for the first instead of exporting twice; the
  holder of the lock clears the temporary folders that killed exports left behind.
- The child's output (optimum's log lines and tqdm bars) is passed through to our stderr
  as it comes, so a long export shows progress; a failure raises `ExportError` with the
  exit status and the child's last lines, which say why.
- `int4` takes optimum's defaults (asymmetric, group 128, a backup precision where a
  layer's width does not divide); `int4-gN` sets the group size.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chatforge.paths import REPO_ROOT, chatforge_home

RECORD = "chatforge-export.json"  # written last: its presence marks a finished export
EXPORTER_PACKAGES = (
    "optimum_intel", "optimum", "openvino", "openvino_tokenizers", "nncf", "transformers", "torch"
)  # fmt: skip
TAIL_LINES = 15


class ExportError(RuntimeError):
    """The checkpoint could not be exported; the message says why."""


def exporter_python() -> Path:
    return Path(os.environ.get("CHATFORGE_EXPORT_PYTHON", REPO_ROOT / ".venv-export/bin/python"))


def exporter_versions(python: Path) -> dict[str, str]:
    """The exporter venv's package versions, from its dist-info folder names."""
    root = python.parent.parent
    versions: dict[str, str] = {}
    for info in root.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        if name.lower() in EXPORTER_PACKAGES:
            versions[name.lower()] = version
    return dict(sorted(versions.items()))


def exporter_args(weight_format: str) -> list[str]:
    """optimum-cli's flags for a registry `weight_format` (fp32, fp16, int8, int4, int4-gN)."""
    fmt, _, group = weight_format.partition("-g")
    args = ["--weight-format", fmt]
    if group:
        args += ["--group-size", group]
    return args


def export_key(checkpoint: Path, weight_format: str, versions: dict[str, str]) -> str:
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file())
    identity = [
        (str(p.relative_to(checkpoint)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    ]
    text = json.dumps([identity, weight_format, versions])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_dir(checkpoint: Path, weight_format: str) -> Path:
    """Where the export of `checkpoint` in `weight_format` lives (finished or not)."""
    versions = exporter_versions(exporter_python())
    key = export_key(checkpoint, weight_format, versions)
    return chatforge_home() / "openvino" / f"{checkpoint.name}-{weight_format}-{key}"


def is_exported(folder: Path) -> bool:
    return (folder / RECORD).is_file()


def export_openvino(checkpoint: Path | str, weight_format: str) -> Path:
    """The OpenVINO IR folder of a checkpoint folder, exported now if not cached."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "config.json").is_file():
        raise ExportError(f"{checkpoint} is not a checkpoint folder (no config.json)")
    python = exporter_python()
    if not python.is_file():
        raise ExportError(
            f"the OpenVINO exporter's Python {python} does not exist: run `make setup` "
            "(it builds .venv-export), or set $CHATFORGE_EXPORT_PYTHON"
        )
    target = export_dir(checkpoint, weight_format)
    if is_exported(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits for the first's export
        if is_exported(target):
            return target
        for stale in target.parent.glob(f".{target.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed export
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        try:
            seconds = _run_exporter(python, checkpoint, weight_format, tmp)
            record = {
                "checkpoint": str(checkpoint.resolve()),
                "weight_format": weight_format,
                "exporter": exporter_versions(python),
                "seconds": round(seconds, 1),
            }
            (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n")
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _run_exporter(python: Path, checkpoint: Path, weight_format: str, out: Path) -> float:
    command = [
        str(python), "-m", "optimum.commands.optimum_cli", "export", "openvino",
        "--model", str(checkpoint), "--task", "text-generation-with-past",
        *exporter_args(weight_format), str(out),
    ]  # fmt: skip
    print(f"exporting {checkpoint} to OpenVINO ({weight_format}) in {out}", file=sys.stderr)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("PYTHONPATH", None)  # the child imports its own venv's packages, not ours
    started = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    except OSError as exc:
        raise ExportError(f"cannot start the OpenVINO exporter {python}: {exc}") from None
    assert child.stdout is not None
    try:
        for line in child.stdout:  # tqdm's carriage returns end lines too
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.rstrip())
        code = child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    if code != 0:
        last = "\n".join(f"  {line}" for line in tail)
        raise ExportError(
            f"exporting {checkpoint} to OpenVINO ({weight_format}) failed with exit status "
            f"{code}; the exporter's last lines:\n{last}"
        )
    if not (out / "openvino_model.xml").is_file():
        raise ExportError(f"the exporter finished without writing {out}/openvino_model.xml")
    return time.monotonic() - started
