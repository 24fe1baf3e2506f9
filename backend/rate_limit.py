"""Per-key rate limits: requests per minute, concurrent streams, generated tokens per minute.

Design decisions:
- Requests and tokens are counted in a sliding 60-second window (a log of timestamps and
  amounts per key), not a token bucket: "N per minute" then means exactly what a user
  reads, and the retry delay is exact, the moment the oldest entry leaves the window
  and enough room is free.
- Tokens are only known after a stream generated them, so the token limit admits a
  stream while the last minute's tokens are under the limit and counts what it produced
  as it goes; one long answer may overshoot, and the next request waits until the window
  is back under the limit. Cutting an answer mid-sentence would be worse for everyone.
- Concurrent streams have no known end, so their retry delay is a fixed short hint.
- All state is in memory, per server process: replicas behind a load balancer each limit
  on their own (the README says so). The clock is injectable for tests.
- Only the asyncio event loop thread touches the state (the gRPC aio interceptor), so no
  locks are needed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.keys import Limits

WINDOW_SECONDS = 60.0
STREAM_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Refusal:
    """A request over a limit: which one, and when to try again."""

    limit: str
    retry_after: float
    message: str


@dataclass
class _Usage:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_total: int = 0
    streams: int = 0

    def expire(self, now: float) -> None:
        while self.requests and self.requests[0] <= now - WINDOW_SECONDS:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW_SECONDS:
            self.token_total -= self.tokens.popleft()[1]


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._usage: dict[str, _Usage] = {}

    def admit(self, key_id: str, limits: Limits, stream: bool) -> Refusal | None:
        """Count one request of `key_id`, or say which limit refuses it (counting nothing)."""
        now = self.clock()
        usage = self._usage.setdefault(key_id, _Usage())
        usage.expire(now)
        rpm = limits.requests_per_minute
        if rpm and len(usage.requests) >= rpm:
            wait = usage.requests[len(usage.requests) - rpm] + WINDOW_SECONDS - now
            return _refuse("requests_per_minute", wait, f"{rpm} requests per minute")
        if stream:
            if limits.concurrent_streams and usage.streams >= limits.concurrent_streams:
                return _refuse(
                    "concurrent_streams",
                    STREAM_RETRY_SECONDS,
                    f"{limits.concurrent_streams} concurrent streams",
                )
            tpm = limits.tokens_per_minute
            if tpm and usage.token_total >= tpm:
                return _refuse(
                    "tokens_per_minute",
                    self._tokens_free_at(usage, tpm) - now,
                    f"{tpm} generated tokens per minute",
                )
            usage.streams += 1
        usage.requests.append(now)
        return None

    @staticmethod
    def _tokens_free_at(usage: _Usage, limit: int) -> float:
        """When enough old tokens have left the window for the total to be under `limit`."""
        total = usage.token_total
        for stamp, tokens in usage.tokens:
            total -= tokens
            if total < limit:
                return stamp + WINDOW_SECONDS
        return usage.tokens[-1][0] + WINDOW_SECONDS

    def add_tokens(self, key_id: str, tokens: int) -> None:
        if tokens > 0:
            usage = self._usage.setdefault(key_id, _Usage())
            usage.tokens.append((self.clock(), tokens))
            usage.token_total += tokens

    def end_stream(self, key_id: str) -> None:
        self._usage[key_id].streams -= 1


def _refuse(limit: str, wait: float, what: str) -> Refusal:
    wait = max(wait, 0.001)
    return Refusal(
        limit,
        wait,
        f"rate limit: this API key may use {what}; retry in {wait:.1f} s",
    )
