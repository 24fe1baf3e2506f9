"""What the guardrails decided, as a notice in the Chat tab's answer.

Design decisions:
- The notice is part of the assistant's message, next to what it explains: decisions
  about the question and the retrieved sources (stages `input` and `retrieval`) are shown
  above the answer, since they happened before it; decisions about the answer itself
  (stage `output`) below it, where a redaction marker such as [EMAIL] or a cut-off
  answer appears. It is drawn as a quoted block so it never reads as the model's words.
- Each line says what was done, to what, and why, in words rather than codes: "Blocked
  your message (injection): rules: override-instructions", "Redacted personal data in
  the answer: 1 phone", "Dropped source `json.md#decoding` from retrieval (...)". The
  server's reasons name the rule and the kinds found, never the personal data itself,
  so the notice cannot repeat what was redacted.
- A request blocked at the input never reached the model: the notice says so, so the
  server's safe message under it is not mistaken for an answer.
- Reasons, categories and paths come from the server and are escaped for Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat.v1 import chat_pb2
from ui.retrieval_controls import escape_markdown

_TARGET = {"input": "your message", "output": "the answer"}


def _line(event: chat_pb2.GuardrailEvent) -> str:
    why = f"({escape_markdown(event.category)}): {escape_markdown(event.reason)}"
    if event.stage == "retrieval":
        source = f"`{event.source}`" if event.source else "a retrieved source"
        verb = "Dropped source" if event.action == chat_pb2.BLOCK else "Flagged source"
        return f"**{verb}** {source} from retrieval {why}"
    target = _TARGET.get(event.stage, escape_markdown(event.stage))
    if event.action == chat_pb2.REDACT:
        place = "before the model saw it" if event.stage == "input" else "before it was sent"
        return f"**Redacted** personal data in {target} {place}: {escape_markdown(event.reason)}"
    if event.action == chat_pb2.BLOCK:
        verb = "Blocked" if event.stage == "input" else "Stopped"
        return f"**{verb}** {target} {why}"
    return f"**Flagged** {target} {why}"


def _quote(lines: list[str]) -> str:
    return "\n".join(f"> {line}  " for line in lines)


def blocked_at_input(events: Sequence[chat_pb2.GuardrailEvent]) -> bool:
    """The guardrails refused the question itself: the model never saw it."""
    return any(e.stage == "input" and e.action == chat_pb2.BLOCK for e in events)


def notices(
    events: Sequence[chat_pb2.GuardrailEvent], finished: chat_pb2.Finished | None
) -> tuple[str, str]:
    """(the block shown above the answer, the block shown below it); empty strings when
    the guardrails had nothing to say."""
    before = [_line(e) for e in events if e.stage != "output"]
    after = [_line(e) for e in events if e.stage == "output"]
    blocked = finished is not None and finished.finish_reason == chat_pb2.BLOCKED
    if blocked and blocked_at_input(events):
        before.append("The model was not asked: what follows is the server's safe reply.")
    if before:
        before.insert(0, "**Guardrails**")
    if after:
        after.insert(0, "**Guardrails**")
    return _quote(before), _quote(after)
