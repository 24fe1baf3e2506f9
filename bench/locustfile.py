"""Locust users that chat with the server over gRPC (used by bench/load.py).

Design decisions:
- gRPC needs `grpc.experimental.gevent.init_gevent()` before any channel exists, because
  locust runs users as gevent greenlets; it is the first thing this module does.
- Each user streams one answer per task through the project's own `ChatClient` (retries
  off, so an overloaded server shows up as failures instead of being hidden). Two request
  names are reported: `Chat TTFT` (time to the first text delta) and `Chat` (the whole
  stream, with the completion tokens as the response length), so locust's statistics
  give both latencies and the token throughput.
- Settings come from environment variables, which bench/load.py sets, because locust owns
  the command line.
"""

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import grpc  # noqa: E402
from locust import User, between, events, task  # noqa: E402

from backend.client import ChatClient, RetryPolicy  # noqa: E402

PROMPTS = [
    "What is a Python list?",
    "Explain what a dictionary is in two sentences.",
    "Write a haiku about the sea.",
    "How do I open a file in Python?",
    "What is the capital of France?",
]
MAX_TOKENS = int(os.environ.get("CHATFORGE_LOAD_MAX_TOKENS", "64"))
MODEL = os.environ.get("CHATFORGE_LOAD_MODEL", "")


def _report(name: str, started: float, seconds: float, length: int = 0, error=None) -> None:
    events.request.fire(
        request_type="grpc",
        name=name,
        start_time=started,
        response_time=seconds * 1000,
        response_length=length,
        exception=error,
        context={},
    )


class ChatUser(User):
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.chat_client = ChatClient(self.host, retry=RetryPolicy(attempts=1))

    def on_stop(self) -> None:
        self.chat_client.close()

    @task
    def chat(self) -> None:
        started_wall, started = time.time(), time.perf_counter()
        first = None
        tokens = 0
        sampling = {"max_tokens": MAX_TOKENS, "temperature": 0.7}
        try:
            for event in self.chat_client.chat(
                random.choice(PROMPTS), model=MODEL, sampling=sampling
            ):
                if event.HasField("delta"):
                    if first is None:
                        first = time.perf_counter()
                        _report("Chat TTFT", started_wall, first - started)
                    tokens += event.delta.token_count
        except grpc.RpcError as error:
            _report("Chat", started_wall, time.perf_counter() - started, error=error)
            return
        _report("Chat", started_wall, time.perf_counter() - started, length=tokens)
