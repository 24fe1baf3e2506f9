"""Server wiring: gRPC on asyncio, health, reflection, Prometheus metrics, model loading
and draining.

Design decisions:
- A `grpc.aio` server on one event loop: every call is a task, and an open stream waits
  for its tokens without holding a thread (the engine wakes the loop), so a health check
  or ListModels answers between two tokens however many streams are open. The
  CPU-bound steps of a call run in the service's small pool (see backend/chat_service.py).
- The ChatService is registered through handlers built from its descriptor
  (backend/rpc_handlers.py), so a request whose bytes are not a valid message gets
  INVALID_ARGUMENT naming the problem, never grpc's INTERNAL "Exception deserializing".
- The gRPC server starts before the models load, with `grpc.health.v1` saying NOT_SERVING
  until they are ready, so an orchestrator (or `make demo`) can wait on health rather than
  on log lines. Calls that arrive early get UNAVAILABLE with a message to retry. Models
  and retrieval collections load on a daemon thread (a shutdown never waits for a load).
- Once serving, models.yaml is watched (`--watch-models SECONDS`) and `ReloadModels`
  answers: new and changed models load in the background while the rest serve, removed
  ones stop after their streams (backend/model_reload.py); health stays SERVING, and the
  response cache is emptied whenever the served models change.
- Health speaks for the server as a whole ("") and for `chat.v1.ChatService` alike, set
  together: NOT_SERVING until every model, the policy's classifier and the collections are
  loaded, SERVING then. `mark_unhealthy(reason)` (an engine that failed, from any thread)
  turns both NOT_SERVING for good and logs the reason, so a load balancer stops sending
  calls a broken engine cannot answer; nothing turns them SERVING again.
- Draining (the first SIGTERM or Ctrl-C): health turns NOT_SERVING, new calls get
  UNAVAILABLE, and the log says how many streams it waits for and for how long, then how
  many are left every few seconds; streams in flight may finish within the grace period.
  A second signal, or the end of the grace period, cancels whatever is left (the engines
  stop, so every stream ends within one decode step), and the process exits 0.
- Security is configured, not decided, here: TLS credentials and the API key interceptor
  come in the config (backend/security.py builds them from the settings); /metrics binds
  to its own address, 127.0.0.1 unless told otherwise.
- Port 0 asks the OS for a free port; the ports actually bound are logged in one line
  (`listening on HOST:PORT metrics on HOST:PORT [http on HOST:PORT]`) that tests and
  scripts can read. The HTTP API (`--http-port`) runs on this loop, over the same service.
- With tracing on (the `OTEL_*` variables, telemetry/tracing.py) the OpenTelemetry gRPC
  instrumentation's aio interceptor opens a server span per RPC; off, there is none.
- Besides its TCP port the server listens on a Unix socket in a private temporary folder,
  removed at stop: the eval runs it starts (RunEval, backend/eval_runs.py) call it back
  there, without TLS and out of the network's reach, under the same interceptors.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from backend.chat_service import ChatService, ModelSet
from backend.eval_runs import EvalRuns
from backend.guardrails import Guard, Policy, PolicyError
from backend.guardrails.classifier import ClassifierError
from backend.http_api import HttpApi, HttpConfig, HttpServer, find_auth
from backend.metrics import ServerMetrics
from backend.model_loader import load_models
from backend.model_reload import ModelReloader
from backend.registry import Registry
from backend.response_cache import CacheConfig, ResponseCache
from backend.retrieval.collections import CollectionSet
from backend.rpc_handlers import service_handler
from backend.run_keys import RunKeys
from chat.v1 import chat_pb2
from telemetry.tracing import server_interceptors

log = logging.getLogger("chatforge.server")
SERVICE = chat_pb2.DESCRIPTOR.services_by_name["ChatService"]
SERVICE_NAME = SERVICE.full_name
DRAIN_PROGRESS_EVERY = 5.0  # seconds between two "still waiting" lines of a drain


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100
    grace_seconds: float = 30.0
    # TLS (None: plaintext) and the API key interceptor, from backend/security.py.
    credentials: grpc.ServerCredentials | None = None
    interceptors: list[grpc.aio.ServerInterceptor] = field(default_factory=list)
    cpu_workers: int = 4  # threads for the CPU-bound steps of calls (guardrails, retrieval)
    watch_models: float = 2.0  # seconds between looks at models.yaml; 0: only ReloadModels
    policy: Policy = field(default_factory=Policy)
    cache: CacheConfig = field(default_factory=CacheConfig)
    # The keys of the eval runs the server starts (the API key interceptor accepts them),
    # and arguments every run gets (`--eval-arg`).
    run_keys: RunKeys = field(default_factory=RunKeys)
    eval_args: list[str] = field(default_factory=list)
    # The OpenAI-compatible HTTP API on the same interface (None: off), backend/http_api.py.
    http: HttpConfig | None = None


class Signals:
    """SIGTERM/SIGINT on the loop: the first asks for a drain, any later one to stop now."""

    def __init__(self) -> None:
        self.first = asyncio.Event()
        self.again = asyncio.Event()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._received)

    def _received(self) -> None:
        (self.again if self.first.is_set() else self.first).set()


class ChatServer:
    def __init__(self, registry: Registry, config: ServerConfig) -> None:
        self.registry = registry
        self.config = config
        self.metrics = ServerMetrics()
        self.models = ModelSet()
        # The policy was checked before the server was built; its classifier loads with the
        # models, off the path to listening.
        self.guard = Guard(config.policy, metrics=self.metrics)
        self.collections = CollectionSet()
        cache = ResponseCache(config.cache)
        self.service = ChatService(
            self.models,
            self.metrics,
            self.guard,
            cache,
            collections=self.collections,
            workers=config.cpu_workers,
        )
        self.reloader = ModelReloader(
            self.models,
            registry.path,
            load=functools.partial(load_models, on_step=self.metrics.observe_step),
            on_change=lambda _: cache.clear(),
        )
        self.eval_socket = Path(tempfile.mkdtemp(prefix="chatforge-")) / "evals.sock"
        self.service.eval_runs = EvalRuns(
            f"unix:{self.eval_socket}", config.run_keys, config.eval_args
        )
        self.health = health.aio.HealthServicer()
        self.failed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.metrics_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._metrics_server = None
        self._http: HttpServer | None = None

    async def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    def mark_unhealthy(self, reason: str) -> None:
        """Health NOT_SERVING for the server and its ChatService from now on, `reason`
        logged (an engine failed). Safe from any thread once the server has started."""
        if self._loop is None:
            raise RuntimeError("mark_unhealthy before start(): nothing serves yet")
        log.error("unhealthy, health NOT_SERVING from now on: %s", reason)
        # Permanent: a model load that finishes later cannot set SERVING again.
        asyncio.run_coroutine_threadsafe(self.health.enter_graceful_shutdown(), self._loop)

    def _engine_failed(self, model: str, error: BaseException) -> None:
        self.mark_unhealthy(f"the engine of model {model} failed: {error!r}")

    async def start(self) -> None:
        """Listen at once (health NOT_SERVING) and load the models in the background."""
        # The tracing interceptor first: a call the key check refuses still has its span.
        interceptors = [*server_interceptors(aio=True), *self.config.interceptors]
        self._grpc = grpc.aio.server(interceptors=interceptors)
        self._grpc.add_generic_rpc_handlers(
            (service_handler(SERVICE, self.service, self.service.reject),)
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME],
            self._grpc,
        )  # fmt: skip
        self._loop = asyncio.get_running_loop()
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{self.config.host}:{self.config.port}"
        try:
            if self.config.credentials is None:
                self.port = self._grpc.add_insecure_port(address)
            else:
                self.port = self._grpc.add_secure_port(address, self.config.credentials)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {address}: the port is taken or not allowed")
        self._grpc.add_insecure_port(f"unix:{self.eval_socket}")
        await self._grpc.start()
        self._metrics_server, _ = self.metrics.serve(
            self.config.metrics_port, self.config.metrics_host
        )
        self.metrics_port = self._metrics_server.server_port
        http = ""
        if self.config.http is not None:
            api = HttpApi(self.service, find_auth(self.config.interceptors))
            self._http = HttpServer(api, self.config.host, self.config.http)
            self._http.start()
            http = f" http on {self.config.host}:{self._http.port}"
        log.info(
            "listening on %s:%d metrics on %s:%d%s (%s, %s)",
            self.config.host, self.port, self.config.metrics_host, self.metrics_port, http,
            "TLS" if self.config.credentials else "plaintext",
            "API keys" if self.config.interceptors else "open",
        )  # fmt: skip
        threading.Thread(target=self._load, args=(self._loop,), name="loader", daemon=True).start()

    def _load(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loader thread: models, then collections; health or failure on the loop."""
        if self._load_all():
            serving = self._set_health(health_pb2.HealthCheckResponse.SERVING)
            asyncio.run_coroutine_threadsafe(serving, loop)
        else:
            loop.call_soon_threadsafe(self.failed.set)

    def _load_all(self) -> bool:
        log.info("loading models: %s", ", ".join(self.registry.models))
        try:
            self.guard.load_classifier()
        except (PolicyError, ClassifierError) as exc:
            log.error("could not load the guard classifier: %s", exc)
            return False
        try:
            started = time.perf_counter()
            for loaded in load_models(self.registry.models, self.metrics.observe_step):
                seconds, started = time.perf_counter() - started, time.perf_counter()
                log.info("loaded model %s in %.1f s", loaded.name, seconds)
                self.metrics.model_load_time.labels(loaded.name).set(seconds)
                self.models.models[loaded.name] = loaded
                # A dead step loop would leave every later call hanging: say so to health.
                loaded.engine.on_failure = functools.partial(self._engine_failed, loaded.name)
        except Exception as exc:
            log.error("could not load the models: %s", exc)
            return False
        self.models.default = self.registry.default_model
        self.models.ready.set()
        try:
            self.collections.load(self.registry.collections, self.registry.default_collection)
        except Exception as exc:
            log.error("could not load the retrieval collections: %s", exc)
            return False
        self.service.reloader = self.reloader  # ReloadModels answers from now on
        if self.config.watch_models > 0:
            self.reloader.watch(self.config.watch_models)
        log.info("ready: %s (default %s)", ", ".join(self.models.models), self.models.default)
        if self.collections.collections:
            log.info(
                "collections: %s (default %s)",
                ", ".join(self.collections.collections), self.collections.default,
            )  # fmt: skip
        return True

    async def drain(self, stop_now: asyncio.Event) -> None:
        """Stop taking calls, let streams in flight finish within the grace period (or
        until `stop_now` is set), cancel the rest, stop."""
        self.service.draining = True
        self.reloader.close()
        await self.health.enter_graceful_shutdown()
        if not await self._wait_for_streams(stop_now):
            reason = "stopping now" if stop_now.is_set() else "grace period over"
            log.warning("%s; cancelling %d streams", reason, self.service.active_streams)
        # Stopping an engine ends every generation it holds within one decode step.
        await asyncio.gather(
            *(asyncio.to_thread(m.engine.stop) for m in self.models.models.values())
        )
        await self.service.wait_idle(5.0)
        if self._http is not None:
            await self._http.stop()
        await self._grpc.stop(grace=1.0)
        self.service.close()
        shutil.rmtree(self.eval_socket.parent, ignore_errors=True)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        log.info("stopped")

    async def _wait_for_streams(self, stop_now: asyncio.Event) -> bool:
        """True once no stream is active; False at the end of the grace period or when
        `stop_now` is set. Says what it waits for, and every few seconds how it goes."""
        grace = self.config.grace_seconds
        active = self.service.active_streams
        if active == 0:
            log.info("draining: no active streams")
            return True
        log.info(
            "draining: waiting up to %g s for %d stream%s to finish; signal again "
            "(Ctrl-C) to stop now",
            grace, active, "" if active == 1 else "s",
        )  # fmt: skip
        deadline = time.monotonic() + grace
        idle = asyncio.ensure_future(self.service.wait_idle(grace))
        interrupted = asyncio.ensure_future(stop_now.wait())
        try:
            while not idle.done() and not interrupted.done():
                left = deadline - time.monotonic()
                await asyncio.wait(
                    (idle, interrupted),
                    timeout=min(DRAIN_PROGRESS_EVERY, max(left, 0.0)),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not idle.done() and not interrupted.done():
                    log.info(
                        "draining: %d still running, %.0f s left",
                        self.service.active_streams, max(deadline - time.monotonic(), 0.0),
                    )  # fmt: skip
            return idle.done() and idle.result()
        finally:
            interrupted.cancel()


async def _serve(registry: Registry, config: ServerConfig) -> int:
    signals = Signals()
    signals.install(asyncio.get_running_loop())
    server = ChatServer(registry, config)
    await server.start()
    log.info("models from %s", registry.path)
    failed = asyncio.ensure_future(server.failed.wait())
    stopping = asyncio.ensure_future(signals.first.wait())
    await asyncio.wait((failed, stopping), return_when=asyncio.FIRST_COMPLETED)
    await server.drain(signals.again)
    failed.cancel()
    stopping.cancel()
    return 0 if signals.first.is_set() and not server.failed.is_set() else 1


def serve_forever(registry: Registry, config: ServerConfig) -> int:
    """Run until SIGTERM/SIGINT, then drain; return the process exit code."""
    return asyncio.run(_serve(registry, config))
