"""`python -m backend`: serve, prepare-default and chat.

Each subcommand validates its arguments and files before doing work and exits with a
one-line message (not a traceback) when something is wrong.
"""

from __future__ import annotations

import argparse
import logging
import sys

import grpc

from backend.guardrails.classifier import ClassifierError
from backend.guardrails.policy import DEFAULT_POLICY, PolicyError
from backend.registry import DEFAULT_CONFIG, RegistryError, load_registry


def _serve(args: argparse.Namespace) -> int:
    from backend.guardrails import Policy, load_policy
    from backend.response_cache import CacheConfig

    registry = load_registry(args.config)
    # Both files are checked before torch is imported. Without --policy the repository's
    # guardrails.yaml is used, and the built-in defaults (rules only) where there is none.
    if args.policy is None and not DEFAULT_POLICY.exists():
        logging.getLogger("chatforge.guardrails").warning(
            "no %s: built-in guardrail defaults, rules only", DEFAULT_POLICY
        )
        policy = Policy()
    else:
        policy = load_policy(args.policy or DEFAULT_POLICY)

    from backend.server import ServerConfig, serve_forever

    config = ServerConfig(
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        grace_seconds=args.grace,
        policy=policy,
        cache=CacheConfig(args.cache_entries, args.cache_mb * 1024 * 1024, args.cache_ttl),
    )
    return serve_forever(registry, config)


def _prepare_default(args: argparse.Namespace) -> int:
    from backend.gguf_convert import prepare_gguf

    print(prepare_gguf("builtin"))
    return 0


def _chat(args: argparse.Namespace) -> int:
    from backend.client import ChatClient
    from chat.v1 import chat_pb2

    sampling = {"max_tokens": args.max_tokens, "temperature": args.temperature}
    if args.seed is not None:
        sampling["seed"] = args.seed
    with ChatClient(args.target, timeout=args.timeout) as client:
        finished = None
        for event in client.chat(args.question, model=args.model, sampling=sampling):
            kind = event.WhichOneof("event")
            if kind == "delta":
                print(event.delta.text, end="", flush=True)
            elif kind == "finished":
                finished = event.finished
        print()
    if finished is not None:
        usage = finished.usage
        print(
            f"[{usage.completion_tokens} tokens, prompt {usage.prompt_tokens}, "
            f"time to first token {usage.time_to_first_token_ms:.0f} ms, "
            f"{usage.tokens_per_second:.1f} tokens/s, "
            f"finish {chat_pb2.FinishReason.Name(finished.finish_reason)}]",
            file=sys.stderr,
        )
    return 0


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--config", default=str(DEFAULT_CONFIG), help="model registry YAML")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051, help="gRPC port (0: any free port)")
    serve.add_argument("--metrics-port", type=int, default=9100, help="Prometheus /metrics port")
    serve.add_argument(
        "--grace", type=float, default=30.0, help="seconds streams may finish on shutdown"
    )
    serve.add_argument(
        "--policy", default=None, help="guardrail policy YAML (default: guardrails.yaml)"
    )
    serve.add_argument(
        "--cache-entries", type=_non_negative, default=1024, help="response cache size (0: off)"
    )
    serve.add_argument("--cache-mb", type=_non_negative, default=64, help="response cache MiB")
    serve.add_argument(
        "--cache-ttl", type=float, default=3600.0, help="seconds a cached reply stays valid"
    )
    serve.set_defaults(run=_serve)

    prepare = sub.add_parser(
        "prepare-default", help="convert the default model's GGUF into a checkpoint (once)"
    )
    prepare.set_defaults(run=_prepare_default)

    chat = sub.add_parser("chat", help="ask a running server one question, streaming the answer")
    chat.add_argument("question")
    chat.add_argument("--model", default="", help="model name (default: the server's default)")
    chat.add_argument("--target", default="127.0.0.1:50051", help="server host:port")
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")
    chat.set_defaults(run=_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (RegistryError, PolicyError, ClassifierError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except (FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
