"""The server end to end: a real process on 127.0.0.1 serving tiny random models."""

from __future__ import annotations

import json
import re
import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from backend.client import ChatClient, RetryPolicy
from backend.launcher import BackendError, BackendProcess
from chat.v1 import chat_pb2
from chatforge.ports import PortReservation
from tests.helpers import finished_of, metric_value, text_of, wait_for

GREEDY = {"temperature": 0.0, "max_tokens": 40}


def events_of(stream) -> list[chat_pb2.ChatEvent]:
    return list(stream)


def test_chat_streams_started_deltas_finished(tiny_server):
    with ChatClient(tiny_server.target) as client:
        events = events_of(client.chat("Hello there", sampling={"max_tokens": 60}))
    assert events[0].HasField("started")
    assert events[0].started.model == "tiny"
    assert events[0].started.request_id
    deltas = [e.delta for e in events if e.HasField("delta")]
    finished = finished_of(events)
    assert len(deltas) > 5  # streamed piece by piece, not one buffered block
    assert sum(d.token_count for d in deltas) == finished.usage.completion_tokens
    assert finished.usage.prompt_tokens == events[0].started.prompt_tokens > 0
    assert finished.usage.time_to_first_token_ms > 0
    assert finished.finish_reason in (chat_pb2.STOP, chat_pb2.LENGTH)


def test_request_id_is_echoed_and_model_selectable(tiny_server):
    with ChatClient(tiny_server.target) as client:
        events = events_of(client.chat("Hi", model="tiny-b", request_id="abc-123"))
    assert events[0].started.request_id == "abc-123"
    assert events[0].started.model == "tiny-b"


def test_seed_reproducible_over_grpc(tiny_server):
    sampling = {"temperature": 1.0, "max_tokens": 30, "seed": 42}
    with ChatClient(tiny_server.target) as client:
        first = text_of(events_of(client.chat("Tell me", sampling=sampling)))
        second = text_of(events_of(client.chat("Tell me", sampling=sampling)))
        other = text_of(events_of(client.chat("Tell me", sampling={**sampling, "seed": 43})))
    assert first == second
    assert first != other


def test_stop_string_cuts_the_answer(tiny_server):
    with ChatClient(tiny_server.target) as client:
        full = text_of(events_of(client.chat("Count", sampling=GREEDY)))
        # A stop string from the middle of the greedy answer, first occurring there.
        stop = next(
            full[i : i + 3]
            for i in range(5, len(full) - 3)
            if full[i : i + 3].strip() == full[i : i + 3] and full.index(full[i : i + 3]) == i
        )
        events = events_of(client.chat("Count", sampling={**GREEDY, "stop": [stop]}))
    assert text_of(events) == full[: full.index(stop)]
    assert finished_of(events).finish_reason == chat_pb2.STOP_SEQUENCE


def test_concurrent_streams_each_get_their_own_answer(tiny_server):
    with ChatClient(tiny_server.target) as client:
        prompts = [f"question number {i}" for i in range(4)]
        expected = [text_of(events_of(client.chat(p, sampling=GREEDY))) for p in prompts]
        results: dict[int, str] = {}

        def run(i: int) -> None:
            results[i] = text_of(events_of(client.chat(prompts[i], sampling=GREEDY)))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [results[i] for i in range(4)] == expected


def test_cancel_mid_stream_frees_the_stream(tiny_server):
    before = metric_value(tiny_server, "chatforge_requests_total", code="CANCELLED")
    with ChatClient(tiny_server.target) as client:
        stream = client.chat("Go on", sampling={"max_tokens": 3000})
        deltas = 0
        for event in stream:
            if event.HasField("delta"):
                deltas += 1
                if deltas == 5:
                    stream.cancel()
        assert deltas < 100
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 0)
    assert wait_for(
        lambda: (
            metric_value(tiny_server, "chatforge_requests_total", code="CANCELLED") == before + 1
        )
    )


def test_deadline_stops_generation(tiny_server):
    with (
        ChatClient(tiny_server.target, retry=RetryPolicy(attempts=1)) as client,
        pytest.raises(grpc.RpcError) as info,
    ):
        for _ in client.chat("Go on", sampling={"max_tokens": 3000}, timeout=0.3):
            pass
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 0)
    assert wait_for(
        lambda: metric_value(tiny_server, "chatforge_requests_total", code="DEADLINE_EXCEEDED") >= 1
    )


def test_full_queue_is_resource_exhausted(tiny_server):
    # tiny-b decodes one request at a time with a queue of one: a third concurrent call
    # has nowhere to wait.
    with ChatClient(tiny_server.target, retry=RetryPolicy(attempts=1)) as client:
        streams = [
            client.chat("Go on", model="tiny-b", sampling={"max_tokens": 3000}) for _ in range(4)
        ]
        iterators = [iter(s) for s in streams]
        errors = []
        for it in iterators:
            try:
                next(it)  # `started` arrives once the request is queued
            except grpc.RpcError as error:
                errors.append(error)
        for s in streams:
            s.cancel()
    full = [e for e in errors if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert full
    assert re.search(r"the request queue is full \(\d+ requests? waiting\)", full[0].details())
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 0)


def test_list_and_get_models(tiny_server, tiny_model_dir, tiny_evals_dir):
    (tiny_model_dir / "run.json").write_text(json.dumps({"command": "test", "steps": 2}))
    (tiny_model_dir / "metrics.jsonl").write_text(
        '{"step": 1, "epoch": 0.5, "train_loss": 5.5, "lr": 0.001}\n'
        '{"step": 2, "epoch": 1.0, "train_loss": 5.1, "val_loss": 5.3}\n'
        '{"step": 3, "train_loss": \n'  # a half-written last line is skipped
    )
    tiny_evals_dir.mkdir(exist_ok=True)
    (tiny_evals_dir / "smoke.json").write_text('{"suite": "smoke", "items": []}')
    with ChatClient(tiny_server.target) as client:
        listing = client.list_models()
        card = client.get_model("tiny")
        with pytest.raises(grpc.RpcError) as info:
            client.get_model("missing")
    assert listing.default_model == "tiny"
    assert [m.name for m in listing.models] == ["tiny", "tiny-b"]
    assert listing.models[0].is_default and not listing.models[1].is_default
    assert listing.models[0].architecture == "LlamaForCausalLM"
    assert listing.models[0].parameters > 0
    assert not listing.models[0].metrics  # summaries only
    assert [m.step for m in card.metrics] == [1, 2]
    assert card.metrics[1].val_loss == pytest.approx(5.3)
    assert not card.metrics[0].HasField("val_loss")
    assert json.loads(card.run_json)["steps"] == 2
    assert [(e.name, e.suite) for e in card.eval_summaries] == [("smoke.json", "smoke")]
    assert card.context_length == 4096
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_and_metrics_text_format(tiny_server):
    channel = grpc.insecure_channel(tiny_server.target)
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="chat.v1.ChatService"), timeout=5
    )
    channel.close()
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    with ChatClient(tiny_server.target) as client:
        events_of(client.chat("Hi", sampling={"max_tokens": 10}))
    import urllib.request

    text = urllib.request.urlopen(tiny_server.metrics_url, timeout=10).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in [
        ("chatforge_requests", "counter"),
        ("chatforge_time_to_first_token_seconds", "histogram"),
        ("chatforge_inter_token_latency_seconds", "histogram"),
        ("chatforge_generation_tokens", "counter"),
        ("chatforge_active_streams", "gauge"),
    ]:
        assert families[name].type == kind
    assert metric_value(tiny_server, "chatforge_requests_total", method="Chat", code="OK") >= 1
    assert metric_value(tiny_server, "chatforge_time_to_first_token_seconds_count") >= 1


def test_client_retries_unavailable_before_first_token(tiny_registry, tmp_path):
    # Held until the server has bound it: no other process can take the port meanwhile.
    reserved = PortReservation()
    port = reserved.port
    server = BackendProcess(tiny_registry, port=port, log_path=tmp_path / "late.log")

    def start_late() -> None:
        server.start(wait_serving=False)
        reserved.release()

    starter = threading.Timer(1.0, start_late)
    starter.start()
    try:
        policy = RetryPolicy(attempts=100, initial_backoff=0.1, max_backoff=1.0)
        with ChatClient(f"127.0.0.1:{port}", retry=policy) as client:
            events = events_of(client.chat("Hi", sampling={"max_tokens": 5}))
        assert finished_of(events).usage.completion_tokens >= 1
    finally:
        starter.join()
        reserved.release()
        server.stop()


def test_client_does_not_retry_other_errors(tiny_server):
    before = metric_value(tiny_server, "chatforge_requests_total", code="INVALID_ARGUMENT")
    with (
        ChatClient(tiny_server.target, retry=RetryPolicy(attempts=5)) as client,
        pytest.raises(grpc.RpcError),
    ):
        events_of(client.chat("Hi", sampling={"temperature": 9.0}))
    after = metric_value(tiny_server, "chatforge_requests_total", code="INVALID_ARGUMENT")
    assert after == before + 1


def _stream_in_thread(target: str, sampling: dict, out: dict, got_delta: threading.Event):
    def run() -> None:
        try:
            with ChatClient(target, retry=RetryPolicy(attempts=1)) as client:
                for event in client.chat("Go on", sampling=sampling):
                    if event.HasField("delta"):
                        got_delta.set()
                    if event.HasField("finished"):
                        out["finished"] = event.finished
        except grpc.RpcError as error:
            out["error"] = error.code()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sigterm_drains_in_flight_streams_and_exits_0(tiny_registry, tmp_path):
    # A grace period far longer than the stream needs, even on a crowded machine.
    server = BackendProcess(
        tiny_registry, extra_args=["--grace", "300"], log_path=tmp_path / "drain.log"
    ).start()
    try:
        out: dict = {}
        got_delta = threading.Event()
        thread = _stream_in_thread(server.target, {"max_tokens": 400}, out, got_delta)
        assert got_delta.wait(30)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with (
            ChatClient(server.target, retry=RetryPolicy(attempts=1)) as client,
            pytest.raises(grpc.RpcError) as info,
        ):
            events_of(client.chat("Hi"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        thread.join(300)
        assert server.process.wait(300) == 0
        # The stream in flight was allowed to finish, not cut off.
        assert out["finished"].finish_reason in (chat_pb2.LENGTH, chat_pb2.STOP)
    finally:
        server.stop()


def test_drain_cancels_streams_after_the_grace_period(tiny_registry, tmp_path):
    server = BackendProcess(
        tiny_registry, extra_args=["--grace", "0.5"], log_path=tmp_path / "grace.log"
    ).start()
    try:
        out: dict = {}
        got_delta = threading.Event()
        thread = _stream_in_thread(server.target, {"max_tokens": 4000}, out, got_delta)
        assert got_delta.wait(30)
        server.process.send_signal(signal.SIGTERM)
        thread.join(60)
        assert server.process.wait(60) == 0
        assert out.get("finished") is None or out["finished"].finish_reason == chat_pb2.CANCELLED
        log = server.log_path.read_text()
        assert "draining: waiting up to 0.5 s for 1 stream to finish; signal again" in log
        assert "grace period over; cancelling 1 streams" in log
    finally:
        server.stop()


def test_model_that_fails_to_load_stops_the_server(tmp_path):
    registry = tmp_path / "models.yaml"
    registry.write_text(f"models:\n  gone:\n    checkpoint: {tmp_path / 'nowhere'}\n")
    server = BackendProcess(registry, log_path=tmp_path / "fail.log")
    with pytest.raises(BackendError) as info:
        server.start(timeout=120)
    assert "exited with code 1" in str(info.value)
    assert f"checkpoint folder {tmp_path / 'nowhere'} does not exist" in str(info.value)


def test_cache_turned_off_decodes_every_request(tiny_server):
    # tiny_server runs with --cache-entries 0: identical greedy calls are decoded each time.
    with ChatClient(tiny_server.target) as client:
        runs = [events_of(client.chat("Same question", sampling=GREEDY)) for _ in range(2)]
    assert text_of(runs[0]) == text_of(runs[1])
    assert not any(finished_of(r).usage.cached for r in runs)
    assert metric_value(tiny_server, "chatforge_response_cache_hits_total") == 0
