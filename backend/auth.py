"""The gRPC aio server interceptor that checks API keys, roles and rate limits.

Design decisions:
- Only `chat.v1.ChatService` is guarded: health checks and server reflection stay open, so
  load balancers and grpcurl can probe a locked server.
- The checks run inside a wrapper around the method's own behaviour, not before it in
  `intercept_service`, so the refusal can carry trailing metadata (`retry-after-ms`)
  through `context.abort`, and a stream's concurrency slot is taken and given back in the
  one generator that serves it (a `finally` cannot be skipped by a stream that never
  started).
- A stream's generated tokens are counted from its responses as they pass through
  (`tokens_of`, the `delta.token_count` of a ChatEvent): the interceptor needs no hook
  in the chat service.
- Roles: `admin` may call everything, `user` everything but the methods that write on
  the server (`ADMIN_METHODS`), which answer PERMISSION_DENIED.
- A keys file that turns invalid while the server runs (a bad hand edit) is logged and
  the keys read last stay in force, rather than locking everyone out or letting all in.
- The HTTP API (backend/http_api.py) calls `check` on the same interceptor object, so
  keys, roles and rate limits are one state across both APIs.
- Besides the keys file, the keys the server issued to the eval runs it started
  (backend/run_keys.py) are accepted, as admins, for as long as their run lasts.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import grpc

from backend.keys import ApiKey, KeysError, KeyStore
from backend.rate_limit import RateLimiter
from backend.run_keys import RunKeys
from chat.v1 import chat_pb2

log = logging.getLogger("chatforge.auth")

GUARDED_PREFIX = "/chat.v1.ChatService/"
ADMIN_METHODS = frozenset(
    f"/chat.v1.ChatService/{name}" for name in ("RecordEval", "ReloadModels", "RunEval")
)
_HOW = "send `authorization: Bearer <key>` metadata (Python clients: set $CHATFORGE_API_KEY)"


def chat_tokens(response: Any) -> int:
    """Generated tokens in one response of a stream (only a ChatEvent's deltas carry any;
    RunEval's progress messages none)."""
    if isinstance(response, chat_pb2.ChatEvent) and response.HasField("delta"):
        return response.delta.token_count
    return 0


class Refused(Exception):
    """A call the keys or limits refuse: its status, message and trailers."""

    def __init__(self, code: grpc.StatusCode, message: str, trailers: tuple = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.trailers = code, message, trailers


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        keys: KeyStore,
        limiter: RateLimiter | None = None,
        tokens_of: Callable[[Any], int] = chat_tokens,
        run_keys: RunKeys | None = None,
    ) -> None:
        self.keys = keys
        self.run_keys = run_keys or RunKeys()
        self.limiter = limiter or RateLimiter()
        self.tokens_of = tokens_of

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(GUARDED_PREFIX):
            return handler
        metadata = handler_call_details.invocation_metadata or ()
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(handler.unary_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            self._guard_unary(handler.unary_unary, method, metadata),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def check(self, method: str, metadata, stream: bool) -> ApiKey:
        """The caller's key, admitted (a stream slot taken when `stream`), or Refused."""
        try:
            self.keys.refresh()
        except KeysError as error:
            log.error("keys file unreadable, keeping the keys read before: %s", error)
        header = next((v for k, v in metadata if k == "authorization"), None)
        if header is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, f"missing API key: {_HOW}")
        scheme, _, token = str(header).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"authorization metadata is not `Bearer <key>`: {_HOW}",
            )
        try:
            key = self.run_keys.verify(token.strip()) or self.keys.verify(token.strip())
        except KeysError as error:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, str(error)) from None
        if method in ADMIN_METHODS and key.role != "admin":
            name = method.rsplit("/", 1)[1]
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{name} writes on the server and needs an admin key; key {key.id} "
                f"({key.name}) has role {key.role}",
            )
        refusal = self.limiter.admit(key.id, key.limits, stream)
        if refusal is not None:
            log.warning("key %s refused on %s: %s", key.id, method, refusal.limit)
            raise Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{refusal.message} (key {key.id})",
                (
                    ("retry-after-ms", str(round(refusal.retry_after * 1000))),
                    ("ratelimit-limit", refusal.limit),
                ),
            )
        return key

    def _guard_unary(self, behavior, method: str, metadata):
        async def guarded(request, context):
            try:
                self.check(method, metadata, stream=False)
            except Refused as refused:
                await context.abort(refused.code, refused.message, refused.trailers)
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

        return guarded

    def _guard_stream(self, behavior, method: str, metadata):
        async def guarded(request, context):
            try:
                key = self.check(method, metadata, stream=True)
            except Refused as refused:
                await context.abort(refused.code, refused.message, refused.trailers)
            try:
                async for response in behavior(request, context):
                    self.limiter.add_tokens(key.id, self.tokens_of(response))
                    yield response
            finally:
                self.limiter.end_stream(key.id)

        return guarded
