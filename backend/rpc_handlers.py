"""The ChatService's gRPC method handlers, built from its descriptor for an asyncio server.

Design decisions:
- One generic construction for every method, read from the service descriptor (request
  and response classes, streaming or not), instead of the generated
  `add_ChatServiceServicer_to_server`: it is what lets every method share one request
  decoder that never raises (backend/request_decoding.py). A new RPC in the proto file
  gets the same treatment without a line here.
- A request that could not be decoded never reaches its handler: the wrapper hands it to
  the service's `reject`, which answers INVALID_ARGUMENT through the same status, log and
  metrics path as every other error.
- The wrappers are coroutines (async generators for server streaming), so grpc.aio runs
  them on the event loop rather than on a thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

from backend.request_decoding import MalformedRequest, decoder
from backend.validation import RequestError, invalid

Reject = Callable[[grpc.aio.ServicerContext, str, RequestError], Awaitable[None]]


def service_handler(
    service: ServiceDescriptor, servicer: object, reject: Reject
) -> grpc.GenericRpcHandler:
    """Handlers for every (unary-request) method of `service`, served by the same-named
    coroutine of `servicer`."""
    handlers = {}
    for method in service.methods:
        behavior = getattr(servicer, method.name)
        serialize = GetMessageClass(method.output_type).SerializeToString
        decode = decoder(GetMessageClass(method.input_type))
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _streaming(method.name, behavior, reject),
                request_deserializer=decode,
                response_serializer=serialize,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(method.name, behavior, reject),
                request_deserializer=decode,
                response_serializer=serialize,
            )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _unary(name: str, behavior, reject: Reject):
    async def handle(request, context):
        if isinstance(request, MalformedRequest):
            await reject(context, name, invalid(request.problem))
        return await behavior(request, context)

    return handle


def _streaming(name: str, behavior, reject: Reject):
    async def handle(request, context) -> AsyncIterator:
        if isinstance(request, MalformedRequest):
            await reject(context, name, invalid(request.problem))
        async for response in behavior(request, context):
            yield response

    return handle
