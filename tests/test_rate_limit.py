"""The per-key limits on a controlled clock: exact retry delays, stream slots, tokens."""

from __future__ import annotations

import pytest

from backend.keys import Limits
from backend.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_requests_per_minute_slide_with_an_exact_retry_delay(clock):
    limiter = RateLimiter(clock)
    limits = Limits(requests_per_minute=3, concurrent_streams=0, tokens_per_minute=0)
    for step in range(3):
        clock.now = 1000.0 + step * 10
        assert limiter.admit("k", limits, stream=False) is None
    clock.now = 1025.0
    refusal = limiter.admit("k", limits, stream=False)
    assert refusal.limit == "requests_per_minute"
    assert refusal.retry_after == pytest.approx(35.0)  # the first request leaves at 1060
    assert "3 requests per minute; retry in 35.0 s" in refusal.message
    assert limiter.admit("other", limits, stream=False) is None  # limits are per key
    clock.now = 1060.0
    assert limiter.admit("k", limits, stream=False) is None


def test_concurrent_streams_free_their_slot_when_they_end(clock):
    limiter = RateLimiter(clock)
    limits = Limits(requests_per_minute=0, concurrent_streams=2, tokens_per_minute=0)
    assert limiter.admit("k", limits, stream=True) is None
    assert limiter.admit("k", limits, stream=True) is None
    assert limiter.admit("k", limits, stream=True).limit == "concurrent_streams"
    assert limiter.admit("k", limits, stream=False) is None  # unary calls hold no slot
    limiter.end_stream("k")
    assert limiter.admit("k", limits, stream=True) is None


def test_generated_tokens_per_minute(clock):
    limiter = RateLimiter(clock)
    limits = Limits(requests_per_minute=0, concurrent_streams=0, tokens_per_minute=100)
    assert limiter.admit("k", limits, stream=True) is None
    limiter.add_tokens("k", 60)
    clock.now += 20
    limiter.add_tokens("k", 50)  # a stream may overshoot; the next one waits
    limiter.end_stream("k")
    refusal = limiter.admit("k", limits, stream=True)
    assert refusal.limit == "tokens_per_minute"
    assert refusal.retry_after == pytest.approx(40.0)  # the first 60 leave the window then
    assert "100 generated tokens per minute" in refusal.message
    clock.now += 40
    assert limiter.admit("k", limits, stream=True) is None
