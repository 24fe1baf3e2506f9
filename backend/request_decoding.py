"""Decode a request's bytes without raising, and say what is wrong with bytes that fail.

Design decisions:
- grpc calls a method's request deserializer before any handler runs; one that raises
  makes grpc answer INTERNAL "Exception deserializing request!" and log a traceback, out
  of the service's reach. `decoder` returns a `MalformedRequest` marker instead, which the
  handler turns into INVALID_ARGUMENT through the service's one error path.
- The commonest malformed request is a string field holding bytes that are not UTF-8 (a
  client in another language that sends raw bytes). protobuf only says "String field had
  bad UTF-8", so the bytes are walked once more, by the message's descriptor, to name the
  field (`messages[1].content`) the client must fix. That walk runs only for bad requests.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class MalformedRequest:
    """What a request's bytes decoded to when they are not a valid message."""

    problem: str  # a sentence for the client: what is wrong and how to fix it


def decoder(message_class: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    """A request deserializer for grpc that never raises."""
    name = message_class.DESCRIPTOR.full_name

    def decode(data: bytes) -> Message | MalformedRequest:
        try:
            return message_class.FromString(data)
        except DecodeError as error:
            field = bad_utf8_field(data, message_class.DESCRIPTOR)
            if field is not None:
                return MalformedRequest(
                    f"the request is not a valid {name}: field `{field}` holds bytes that "
                    "are not UTF-8; protobuf string fields must be UTF-8 text (send binary "
                    "data encoded, e.g. as base64)"
                )
            return MalformedRequest(
                f"the request is not a valid {name} protobuf message ({error}); serialise "
                "it from chat/v1/chat.proto"
            )

    return decode


def bad_utf8_field(data: bytes, descriptor: Descriptor, prefix: str = "") -> str | None:
    """The path of the first string field whose bytes are not UTF-8, e.g.
    `messages[1].content`; None if there is none or the bytes are not protobuf at all."""
    occurrences: collections.Counter[int] = collections.Counter()
    pos = 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == _VARINT:
                _, pos = _varint(data, pos)
            elif wire_type in (_FIXED64, _FIXED32):
                pos += 8 if wire_type == _FIXED64 else 4
            elif wire_type != _LENGTH_DELIMITED:
                return None  # groups: no message of this API has any
            else:
                length, pos = _varint(data, pos)
                value, pos = data[pos : pos + length], pos + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                path = prefix + field.name
                if field.is_repeated:
                    path += f"[{occurrences[number]}]"
                    occurrences[number] += 1
                found = _bad_utf8_in(value, field, path)
                if found is not None:
                    return found
    except IndexError:  # truncated bytes: not protobuf, no field to name
        return None
    return None


def _bad_utf8_in(value: bytes, field: FieldDescriptor, path: str) -> str | None:
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return path
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        return bad_utf8_field(value, field.message_type, path + ".")
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); IndexError when the bytes end inside it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
