"""Models without restarts: re-read models.yaml (and the files it includes, such as the
runs/models.yaml training writes) while serving, load what is new or changed in the
background, retire what is gone once its streams have finished.

Design decisions:
- The unit of loading is an engine group (`model_loader.group_key`): a model with the
  adapters registered on it share one set of weights and one engine, so a change to any
  member reloads the group, and an engine is stopped only when no served name uses it.
- Nothing is taken away before its replacement is ready: new and changed groups load
  first, then the served set is swapped in one assignment (`ModelSet.models`), so every
  request sees the old set or the new one, never a mix, and health stays SERVING. A
  group that fails to load is reported and, if it was a change, the old version keeps
  serving; a registry that does not validate changes nothing.
- A retired engine keeps running its streams: it is stopped once it has had nothing
  running or waiting for two checks in a row (a request that picked the model just
  before the swap submits within that second), or after `retire_after` seconds at most.
- Two triggers, one path: `watch()` polls the registry files' sizes and modification
  times every few seconds (a polling thread rather than inotify: it works on every file
  system, in containers and on network mounts, and models.yaml changes rarely), and the
  admin `ReloadModels` RPC calls `reload()` directly. One reload runs at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from backend.model_loader import LoadedModel, group_key, load_models
from backend.registry import ModelSpec, RegistryError, load_registry

log = logging.getLogger("chatforge.server")
RETIRE_CHECK_SECONDS = 0.5
Loader = Callable[[dict[str, ModelSpec]], Iterable[LoadedModel]]


class ServedModels(Protocol):
    models: dict[str, LoadedModel]
    default: str


@dataclass
class ReloadResult:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "name: why", or the registry's error
    default: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.reloaded)


def registry_files(path: Path) -> list[Path]:
    """The registry file and the files its `include:` patterns match now."""
    try:
        includes = (yaml.safe_load(path.read_text()) or {}).get("include") or []
    except (OSError, ValueError, AttributeError):
        includes = []  # unreadable or half-written: its own mtime says when to look again
    found = [path]
    for pattern in includes if isinstance(includes, list) else []:
        found += sorted(path.parent.glob(str(pattern)))
    return found


def fingerprint(path: Path) -> tuple:
    """What changes when the registry or an included file is edited, added or removed."""
    stamps = []
    for file in registry_files(path):
        try:
            stat = file.stat()
        except OSError:
            continue
        stamps.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def _groups(specs: dict[str, ModelSpec]) -> dict[tuple, dict[str, ModelSpec]]:
    groups: dict[tuple, dict[str, ModelSpec]] = {}
    for name, spec in specs.items():
        groups.setdefault(group_key(spec), {})[name] = spec
    return groups


def _same(a: dict[str, ModelSpec], b: dict[str, ModelSpec]) -> bool:
    """The same models, loaded the same way (which one is the default needs no reload)."""
    same = {"exclude": {"default"}}
    return a.keys() == b.keys() and all(
        a[n].model_dump(**same) == b[n].model_dump(**same) for n in a
    )


class ModelReloader:
    def __init__(
        self,
        served: ServedModels,
        registry_path: Path | str,
        load: Loader = load_models,
        retire_after: float = 600.0,
        on_change: Callable[[ReloadResult], None] | None = None,
    ) -> None:
        self.served = served
        self.path = Path(registry_path)
        self.load = load
        self.retire_after = retire_after
        self.on_change = on_change  # e.g. the response cache forgets the old models' replies
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seen = fingerprint(self.path)

    def reload(self) -> ReloadResult:
        """Bring the served models in line with the registry files as they are now."""
        with self._lock:
            self._seen = fingerprint(self.path)
            result = ReloadResult()
            try:
                registry = load_registry(self.path)
            except RegistryError as exc:
                result.errors.append(str(exc))
                log.error("models.yaml not reloaded: %s", exc)
                return result
            current = dict(self.served.models)
            old = _groups({name: loaded.spec for name, loaded in current.items()})
            new = _groups(registry.models)
            loaded_now, failed = self._load_groups(
                {key: specs for key, specs in new.items() if not _same(specs, old.get(key, {}))},
                result,
            )
            served: dict[str, LoadedModel] = {}
            for key, specs in new.items():
                if key in loaded_now:
                    served.update(loaded_now[key])
                elif key in old and (key in failed or _same(specs, old[key])):
                    served.update({n: current[n] for n in old[key] if n in current})
            retiring = [current[n] for n in current if served.get(n) is not current[n]]
            result.added = sorted(set(served) - set(current))
            result.removed = sorted(set(current) - set(served))
            result.reloaded = sorted(
                n for n in served if n in current and served[n] is not current[n]
            )
            result.unchanged = sorted(n for n in served if served[n] is current.get(n))
            default = registry.default_model
            result.default = default if default in served else self.served.default
            self.served.models = served  # one assignment: requests see one set or the other
            self.served.default = result.default
        if result.changed and self.on_change is not None:
            self.on_change(result)
        if result.changed:
            log.info(
                "models reloaded from %s: added %s; reloaded %s; removed %s; default %s",
                self.path, result.added or "-", result.reloaded or "-", result.removed or "-",
                result.default,
            )  # fmt: skip
        self._retire(retiring, served.values())
        return result

    def _load_groups(
        self, groups: dict[tuple, dict[str, ModelSpec]], result: ReloadResult
    ) -> tuple[dict[tuple, dict[str, LoadedModel]], set[tuple]]:
        loaded: dict[tuple, dict[str, LoadedModel]] = {}
        failed: set[tuple] = set()
        for key, specs in groups.items():
            try:
                loaded[key] = {m.name: m for m in self.load(specs)}
            except Exception as exc:  # any loader failure is this group's, not the server's
                failed.add(key)
                result.errors += [f"{name}: {exc}" for name in specs]
                log.error("could not load %s: %s", ", ".join(specs), exc)
        return loaded, failed

    def _retire(self, retiring: list[LoadedModel], kept: Iterable[LoadedModel]) -> None:
        engines = {id(m.engine): m.engine for m in retiring}
        for still_used in {id(m.engine) for m in kept}:
            engines.pop(still_used, None)
        for engine in engines.values():
            names = ", ".join(m.name for m in retiring if m.engine is engine)
            threading.Thread(
                target=self._stop_when_idle, args=(engine, names), name="retire", daemon=True
            ).start()

    def _stop_when_idle(self, engine: Any, names: str) -> None:
        deadline = time.monotonic() + self.retire_after
        idle_checks = 0
        while idle_checks < 2 and time.monotonic() < deadline:
            busy = engine.running + engine.waiting
            idle_checks = 0 if busy else idle_checks + 1
            time.sleep(RETIRE_CHECK_SECONDS)
        engine.stop()
        log.info("unloaded %s (its streams finished)", names)

    def watch(self, interval: float) -> None:
        """Reload whenever the registry files change; returns at once (a daemon thread)."""
        threading.Thread(
            target=self._watch, args=(interval,), name="models-watch", daemon=True
        ).start()

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if fingerprint(self.path) != self._seen:
                self.reload()

    def close(self) -> None:
        self._stop.set()
