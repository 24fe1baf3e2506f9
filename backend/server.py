"""Server wiring: gRPC, health, reflection, Prometheus metrics, model loading and draining.

Design decisions:
- The gRPC server starts before the models load, with `grpc.health.v1` saying NOT_SERVING
  until they are ready, so an orchestrator (or `make demo`) can wait on health rather than
  on log lines. Calls that arrive early get UNAVAILABLE with a message to retry.
- A synchronous gRPC server with a thread pool: each stream holds a thread that waits on
  its engine request, while the model work happens on the engine's own thread. On the
  CPUs this runs on, the forward pass dominates and threads cost nothing that matters.
- Retrieval collections load after the models, on the same thread; health turns SERVING
  only once both are ready.
- Draining (SIGTERM or Ctrl-C): health turns NOT_SERVING, new calls get UNAVAILABLE,
  streams in flight may finish within the grace period, whatever is left is cancelled,
  and the process exits 0.
- Port 0 asks the OS for a free port; the ports actually bound are logged in one line
  (`listening on HOST:PORT metrics on HOST:PORT`) that tests and scripts can read.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from backend.chat_service import ChatService, ModelSet
from backend.guardrails import Guard, Policy, PolicyError
from backend.guardrails.classifier import ClassifierError
from backend.metrics import ServerMetrics
from backend.model_loader import load_models
from backend.registry import Registry
from backend.response_cache import CacheConfig, ResponseCache
from backend.retrieval.collections import CollectionSet
from chat.v1 import chat_pb2, chat_pb2_grpc

log = logging.getLogger("chatforge.server")
SERVICE_NAME = chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9100
    grace_seconds: float = 30.0
    max_workers: int = 64
    policy: Policy = field(default_factory=Policy)
    cache: CacheConfig = field(default_factory=CacheConfig)


class ChatServer:
    def __init__(self, registry: Registry, config: ServerConfig) -> None:
        self.registry = registry
        self.config = config
        self.metrics = ServerMetrics()
        self.models = ModelSet()
        # The policy was checked before the server was built; its classifier loads with the
        # models, off the path to listening.
        self.guard = Guard(config.policy, metrics=self.metrics)
        cache = ResponseCache(config.cache)
        self.collections = CollectionSet()
        self.service = ChatService(
            self.models, self.metrics, self.guard, cache, collections=self.collections
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.failed = threading.Event()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=config.max_workers))
        chat_pb2_grpc.add_ChatServiceServicer_to_server(self.service, self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME],
            self._grpc,
        )  # fmt: skip
        self.port = 0
        self.metrics_port = 0
        self._metrics_server = None

    def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def start(self) -> None:
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{self.config.host}:{self.config.port}"
        self.port = self._grpc.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}: the port is taken or not allowed")
        self._grpc.start()
        self._metrics_server, _ = self.metrics.serve(self.config.metrics_port, self.config.host)
        self.metrics_port = self._metrics_server.server_port
        log.info(
            "listening on %s:%d metrics on %s:%d",
            self.config.host, self.port, self.config.host, self.metrics_port,
        )  # fmt: skip
        threading.Thread(target=self._load_models, name="loader", daemon=True).start()

    def _load_models(self) -> None:
        log.info("loading models: %s", ", ".join(self.registry.models))
        try:
            self.guard.load_classifier()
        except (PolicyError, ClassifierError) as exc:
            log.error("could not load the guard classifier: %s", exc)
            self.failed.set()
            return
        try:
            for loaded in load_models(self.registry.models, self.metrics.observe_step):
                log.info("loaded model %s", loaded.name)
                self.models.models[loaded.name] = loaded
        except Exception as exc:
            log.error("could not load the models: %s", exc)
            self.failed.set()
            return
        self.models.default = self.registry.default_model
        self.models.ready.set()
        try:
            self.collections.load(self.registry.collections, self.registry.default_collection)
        except Exception as exc:
            log.error("could not load the retrieval collections: %s", exc)
            self.failed.set()
            return
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("ready: %s (default %s)", ", ".join(self.models.models), self.models.default)
        if self.collections.collections:
            log.info(
                "collections: %s (default %s)",
                ", ".join(self.collections.collections), self.collections.default,
            )  # fmt: skip

    def drain(self) -> None:
        """Stop taking calls, let streams in flight finish within the grace period, stop."""
        log.info("draining: %d active streams", self.service.active_streams)
        self.service.draining.set()
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if not self.service.wait_idle(self.config.grace_seconds):
            log.warning("grace period over; cancelling %d streams", self.service.active_streams)
        for loaded in self.models.models.values():
            loaded.engine.stop()
        self.service.wait_idle(5.0)
        self._grpc.stop(grace=1.0).wait()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        log.info("stopped")


def serve_forever(registry: Registry, config: ServerConfig) -> int:
    """Run until SIGTERM/SIGINT, then drain; return the process exit code."""
    server = ChatServer(registry, config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    log.info("models from %s", registry.path)
    while not stop.wait(0.2):
        if server.failed.is_set():
            server.drain()
            return 1
    server.drain()
    return 0
