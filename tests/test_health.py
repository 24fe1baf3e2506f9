"""Health as a load balancer reads it, through the real `grpc.health.v1` service of a
server on the tiny models (in this process, to reach `ChatServer.mark_unhealthy`): the
server as a whole ("") and `chat.v1.ChatService` say the same at every look (loading,
serving, failed), and an engine failure reported from another thread turns both
NOT_SERVING for good, its reason in the log."""

from __future__ import annotations

import asyncio
import logging
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backend.registry import load_registry
from backend.server import SERVICE_NAME, ChatServer, ServerConfig

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def statuses(stub: health_pb2_grpc.HealthStub) -> tuple[int, int]:
    """(the server's, the ChatService's) status."""
    answers = [
        await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        for name in ("", SERVICE_NAME)
    ]
    return answers[0].status, answers[1].status


async def watch_until(stub, wanted: int, seen: list[tuple[int, int]], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not seen or seen[-1] != (wanted, wanted):
        assert loop.time() < deadline, f"health never became {wanted}: {seen[-3:]}"
        seen.append(await statuses(stub))
        await asyncio.sleep(0.01)


def test_an_engine_failure_turns_both_health_services_not_serving(tiny_registry, caplog):
    config = ServerConfig(port=0, metrics_port=0, watch_models=0)
    server = ChatServer(load_registry(tiny_registry), config)
    seen: list[tuple[int, int]] = []

    async def scenario() -> None:
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            seen.append(await statuses(stub))
            await watch_until(stub, SERVING, seen, timeout=120)
            # As an engine's own thread would report it.
            failing = threading.Thread(target=server.mark_unhealthy, args=("engine tiny died",))
            failing.start()
            failing.join()
            await watch_until(stub, NOT_SERVING, seen, timeout=10)
            await asyncio.sleep(0.5)
            assert await statuses(stub) == (NOT_SERVING, NOT_SERVING)  # for good
        stop_now = asyncio.Event()
        stop_now.set()
        await server.drain(stop_now)

    with caplog.at_level(logging.ERROR, logger="chatforge.server"):
        asyncio.run(scenario())
    assert all(overall == chat for overall, chat in seen), seen
    assert "engine tiny died" in caplog.text
