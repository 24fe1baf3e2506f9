"""API keys, roles and rate limits against a real server process on 127.0.0.1 (tiny models)
started with a keys file (`locked_server`, tests/conftest.py), and the start-up rule for
addresses other machines can reach."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from backend.client import ChatClient, RetryPolicy
from backend.launcher import BackendProcess
from backend.settings import ClientSettings
from tests.helpers import run_backend, wait_for


def client_with(server, key: str | None) -> ChatClient:
    settings = ClientSettings(api_key=key)  # None: no key, whatever the environment says
    return ChatClient(server.target, settings=settings, retry=RetryPolicy(attempts=1))


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def chat_all(client: ChatClient, max_tokens: int = 12) -> list:
    return list(client.chat("Hello", sampling={"max_tokens": max_tokens, "temperature": 0}))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "missing API key: send `authorization: Bearer <key>`"),
        ("cf_0badc0de_" + "x" * 43, "unknown API key"),
        ("hunter2", "malformed API key"),
        ("expired", "(expired) expired on 2020-01-01"),
    ],
)
def test_missing_wrong_and_expired_keys_are_unauthenticated(locked_server, keys, key, message):
    with client_with(locked_server, keys.get(key, key)) as client:
        error = refused(client.list_models)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert message in error.details()
        error = refused(lambda: chat_all(client))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection_stay_open(locked_server):
    with client_with(locked_server, None) as client:
        assert client.is_serving()
        stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in response.list_services_response.service}
    assert "chat.v1.ChatService" in names


def test_user_key_chats_but_may_not_write(locked_server, keys, tiny_evals_dir):
    results = '{"suite": "smoke", "rows": []}'
    with client_with(locked_server, keys["user"]) as client:
        assert chat_all(client)[-1].HasField("finished")
        assert client.list_models().models
        error = refused(lambda: client.record_eval("auth-test.json", results))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "RecordEval writes on the server and needs an admin key" in error.details()
    assert "has role user" in error.details()
    with client_with(locked_server, keys["admin"]) as client:
        path = client.record_eval("auth-test.json", results)
    assert path.endswith("auth-test.json")


def test_a_key_revoked_while_the_server_runs_is_refused(locked_server, keys):
    with client_with(locked_server, keys["to-revoke"]) as client:
        assert client.list_models().models
        done = run_backend("keys", "--keys-file", keys["file"], "revoke", "to-revoke")
        assert done.returncode == 0, done.stderr
        error = refused(client.list_models)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "(to-revoke) was revoked on" in error.details()


def retry_after_ms(error: grpc.RpcError) -> int:
    return int(dict(error.trailing_metadata())["retry-after-ms"])


def test_requests_per_minute_burst(locked_server, keys):
    with client_with(locked_server, keys["rpm"]) as client:
        for _ in range(3):
            client.list_models()
        error = refused(client.list_models)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "this API key may use 3 requests per minute; retry in" in error.details()
    assert 0 < retry_after_ms(error) <= 60_000
    assert dict(error.trailing_metadata())["ratelimit-limit"] == "requests_per_minute"


def test_concurrent_streams(locked_server, keys):
    with client_with(locked_server, keys["streams"]) as client:
        first = client.chat("Tell me a long story", sampling={"max_tokens": 4000})
        events = iter(first)
        assert next(events).HasField("started")  # the slot is taken
        error = refused(lambda: chat_all(client))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "1 concurrent streams; retry in 1.0 s" in error.details()
        assert retry_after_ms(error) == 1000
        first.cancel()
        # The slot is given back when the cancelled stream ends on the server.
        assert wait_for(lambda: _chat_ok(client), timeout=20, interval=0.2)


def _chat_ok(client: ChatClient) -> bool:
    try:
        return chat_all(client, max_tokens=2)[-1].HasField("finished")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return False


def test_generated_tokens_per_minute(locked_server, keys):
    generated = 0
    with client_with(locked_server, keys["tpm"]) as client:
        for _ in range(10):
            try:
                events = chat_all(client, max_tokens=15)
            except grpc.RpcError as caught:
                error = caught
                break
            generated += events[-1].finished.usage.completion_tokens
        else:
            pytest.fail(f"never refused after {generated} tokens")
    assert generated >= 20  # admitted while under the limit, refused once over it
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "20 generated tokens per minute; retry in" in error.details()
    assert 0 < retry_after_ms(error) <= 60_000


def test_limits_are_per_key_and_streams_run_side_by_side(locked_server, keys):
    """Bursts on one key leave another alone; an unlimited key streams in parallel."""
    errors = []

    def chat() -> None:
        try:
            with client_with(locked_server, keys["user"]) as client:
                chat_all(client, max_tokens=4)
        except grpc.RpcError as error:
            errors.append(error)

    threads = [threading.Thread(target=chat) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_a_reachable_address_without_keys_refuses_to_start(tiny_registry):
    done = run_backend("serve", "--config", str(tiny_registry), "--host", "0.0.0.0",
                       "--port", "0", timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--host 0.0.0.0 is reachable from other machines and no API keys" in done.stderr
    assert "--insecure-open" in done.stderr and "Traceback" not in done.stderr


def test_insecure_open_starts_and_metrics_stay_on_loopback(tiny_registry, tmp_path):
    server = BackendProcess(
        tiny_registry, host="0.0.0.0", extra_args=["--insecure-open"], log_path=tmp_path / "l"
    )
    server.start(wait_serving=False)
    try:
        assert server.metrics_host == "127.0.0.1"
        assert "(plaintext, open)" in server.log_path.read_text()
    finally:
        server.stop()


def test_locked_server_logs_its_security(locked_server):
    assert "(plaintext, API keys)" in locked_server.log_path.read_text()
    assert locked_server.metrics_host == "127.0.0.1"
