"""smoke: in seconds, does the server answer, stream, score and refuse a bad request?

Design decision: each check is one item with pass/fail and a detail line, so a failing
server shows exactly which promise it broke; the checks use only the public API through
the client, as any other client would.
"""

from __future__ import annotations

import math

import grpc

from chat.v1 import chat_pb2
from evals.results import MetricSpec, Row
from evals.suites.base import Item, Suite, SuiteConfig
from evals.targets import LiveTarget, rpc_message

PROMPT = "Count from one to ten."


def _serving(target: LiveTarget) -> tuple[bool, str]:
    ok = target.client.is_serving()
    return ok, "health says SERVING" if ok else "health does not say SERVING"


def _listed(target: LiveTarget) -> tuple[bool, str]:
    names = [m.name for m in target.client.list_models().models]
    return target.model in names, f"ListModels: {', '.join(names)}"


def _card(target: LiveTarget) -> tuple[bool, str]:
    card = target.client.get_model(target.model)
    ok = bool(card.architecture) and card.parameters > 0 and card.context_length > 0
    return ok, f"{card.architecture}, {card.parameters:,} parameters, context {card.context_length}"


def _streams(target: LiveTarget) -> tuple[bool, str]:
    events = list(
        target.client.chat(
            PROMPT, model=target.model, sampling={"max_tokens": 16, "temperature": 0}
        )
    )
    kinds = [e.WhichOneof("event") for e in events]
    deltas = [e.delta for e in events if e.HasField("delta")]
    if not events or kinds[0] != "started" or kinds[-1] != "finished":
        return False, f"events out of order: {kinds}"
    usage = events[-1].finished.usage
    counted = sum(d.token_count for d in deltas)
    problems = []
    if counted != usage.completion_tokens:
        problems.append(f"delta tokens {counted} != usage {usage.completion_tokens}")
    if usage.completion_tokens >= 2 and len(deltas) < 2:
        problems.append(f"{usage.completion_tokens} tokens arrived in one delta (not streamed)")
    if events[-1].finished.finish_reason not in (chat_pb2.STOP, chat_pb2.LENGTH):
        problems.append(f"finish {chat_pb2.FinishReason.Name(events[-1].finished.finish_reason)}")
    detail = f"{len(deltas)} deltas, {usage.completion_tokens} tokens"
    return not problems, "; ".join(problems) or detail


def _refuses(target: LiveTarget) -> tuple[bool, str]:
    try:
        list(target.client.chat(PROMPT, model=target.model, sampling={"temperature": 5.0}))
    except grpc.RpcError as error:
        ok = error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return ok, rpc_message(error)
    return False, "temperature 5 was accepted"


def _scores(target: LiveTarget) -> tuple[bool, str]:
    (scored,) = target.score(["The quick brown fox."])
    ok = math.isfinite(scored.logprob) and scored.logprob < 0 and scored.tokens > 0
    return ok, f"log-likelihood {scored.logprob:.2f} over {scored.tokens} tokens"


CHECKS = {
    "serving": ("health check says SERVING", _serving),
    "listed": ("ListModels lists the model", _listed),
    "card": ("GetModel returns a card", _card),
    "streams": ("Chat streams started, deltas, finished with matching counts", _streams),
    "refuses-bad-request": ("an out-of-range temperature gets INVALID_ARGUMENT", _refuses),
    "scores": ("Score returns a finite log-likelihood", _scores),
}


class Smoke(Suite):
    name = "smoke"
    version = "1"
    description = "seconds: the server answers, streams, scores and refuses a bad request"
    default_size = len(CHECKS)
    live_only = True
    metrics = [MetricSpec("pass_rate", "mean", "passed", "share of checks that passed")]

    def all_items(self, config: SuiteConfig) -> list[Item]:
        return [
            Item(name, {"description": description}) for name, (description, _) in CHECKS.items()
        ]

    def items(self, config: SuiteConfig) -> list[Item]:
        return self.all_items(config)  # every check, whatever the size: it takes seconds

    def run_item(self, item: Item, target: LiveTarget, config: SuiteConfig) -> Row:
        passed, detail = CHECKS[item.id][1](target)
        return Row(
            id=item.id,
            input=item.data["description"],
            output=detail,
            scores={"passed": float(passed)},
            passed=passed,
        )
