"""`python -m backend`: serve, prepare-default, chat, health, keys and ingest.

Each subcommand validates its arguments and files before doing work and exits with a
one-line message (not a traceback) when something is wrong. Every subcommand takes the
logging flags (telemetry/logs.py); `serve` also traces when the `OTEL_*` variables ask.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import grpc

from backend.guardrails.classifier import ClassifierError
from backend.guardrails.policy import DEFAULT_POLICY, PolicyError
from backend.keys import KeysError, Limits, add_key, list_keys, revoke_key
from backend.registry import DEFAULT_CONFIG, RegistryError, load_registry
from backend.retrieval.documents import IngestError
from backend.serve_settings import ServeSettings
from backend.settings import (
    ClientSettings,
    SettingsError,
    add_client_flags,
    env_name,
    flag_name,
    load_settings,
)
from telemetry.logs import configure_from_args, logging_arguments

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _collection_arg(value: str) -> tuple[str, str]:
    name, sep, folder = value.partition("=")
    if not sep or not _COLLECTION_NAME.match(name) or not folder:
        raise SettingsError(
            f"{value!r}: expected NAME=INDEX_DIR, e.g. pydocs=~/.cache/chatforge/collections/pydocs"
        )
    return name, folder


def _serve(args: argparse.Namespace) -> int:
    from backend.guardrails import Policy, load_policy
    from backend.response_cache import CacheConfig
    from backend.retrieval.index import being_built, current_folder, no_index_message
    from backend.security import check_exposure

    settings = load_settings(ServeSettings, args)
    check_exposure(settings)  # before anything loads: a refusal costs no start-up time
    registry = load_registry(settings.config or DEFAULT_CONFIG)
    # Both files are checked before torch is imported. Without --policy the repository's
    # guardrails.yaml is used, and the built-in defaults (rules only) where there is none.
    if settings.policy is None and not DEFAULT_POLICY.exists():
        logging.getLogger("chatforge.guardrails").warning(
            "no %s: built-in guardrail defaults, rules only", DEFAULT_POLICY
        )
        policy = Policy()
    else:
        policy = load_policy(settings.policy or DEFAULT_POLICY)

    for name, folder in map(_collection_arg, settings.collection):
        registry.add_collection(name, folder)
    for name, spec in registry.collections.items():
        folder = Path(spec.index)
        # An index folder an ingest is still filling is served as "being built".
        if current_folder(folder) is None and not being_built(folder):
            raise IngestError(f"collection {name}: {no_index_message(folder)}")

    from backend.run_keys import RunKeys
    from backend.security import interceptors, server_credentials
    from backend.server import ServerConfig, serve_forever
    from telemetry.tracing import configure_tracing

    configure_tracing("chatforge-backend")

    from backend.http_api import HttpConfig

    run_keys = RunKeys()  # the keys of the eval runs this server starts (RunEval)
    http = None
    if settings.http_port is not None:  # same interface and certificate as gRPC
        http = HttpConfig(
            settings.http_port, settings.tls_cert, settings.tls_key, settings.tls_client_ca
        )
    config = ServerConfig(
        host=settings.host,
        port=settings.port,
        metrics_host=settings.metrics_host,
        metrics_port=settings.metrics_port,
        credentials=server_credentials(settings),
        interceptors=interceptors(settings, run_keys),
        run_keys=run_keys,
        eval_args=settings.eval_arg,
        http=http,
        grace_seconds=settings.grace,
        watch_models=settings.watch_models,
        policy=policy,
        cache=CacheConfig(
            settings.cache_entries, settings.cache_mb * 1024 * 1024, settings.cache_ttl
        ),
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
    rag = {"enabled": True, "collection": args.rag} if args.rag is not None else None
    settings = load_settings(ClientSettings, args)
    with ChatClient(args.target, timeout=args.timeout, settings=settings) as client:
        finished = None
        for event in client.chat(args.question, model=args.model, sampling=sampling, rag=rag):
            kind = event.WhichOneof("event")
            if kind == "citations":
                for c in event.citations.citations:
                    where = c.url or (f"{c.source_path}#{c.anchor}" if c.anchor else c.source_path)
                    print(f"[{c.index}] {c.title} <{where}>")
                print()
            elif kind == "delta":
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


def _ingest(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from backend.retrieval.chunking import ChunkSettings
    from backend.retrieval.index import DenseIndexSpec
    from backend.retrieval.ingest import (
        PYDOCS_URL,
        IngestSettings,
        default_index_dir,
        ingest,
        resolve_documents,
    )
    from chatforge.journal import append_entry

    if not _COLLECTION_NAME.match(args.collection):
        raise IngestError(
            f"--collection {args.collection!r}: use letters, digits, '.', '_' and '-'"
        )
    try:
        chunking = ChunkSettings(args.max_tokens, args.overlap)
    except ValueError as exc:
        raise IngestError(f"--max-tokens/--overlap: {exc}") from None
    if args.batch_size < 1:
        raise IngestError("--batch-size must be at least 1")
    if args.approx_threshold < 1:
        raise IngestError("--approx-threshold must be at least 1")
    index = replace(DenseIndexSpec(), type=args.index_type, approx_threshold=args.approx_threshold)
    settings = IngestSettings(chunking, index, args.batch_size)
    index_dir = (
        Path(args.index_dir).expanduser() if args.index_dir else default_index_dir(args.collection)
    )
    if args.base_url and not args.base_url.startswith(("http://", "https://")):
        raise IngestError(f"--base-url {args.base_url!r}: give an http(s) URL")
    base_url = args.base_url or (PYDOCS_URL if args.source == "pydocs" else "")
    if base_url and not base_url.endswith("/"):
        base_url += "/"
    documents = resolve_documents(args.source, index_dir)
    report = ingest(
        documents, args.collection, index_dir, settings, source=args.source, base_url=base_url
    )
    status = "published" if report.published else "up to date, nothing published"
    print(
        f"collection {report.collection}: version {report.version} ({status})\n"
        f"  documents {report.documents}: {len(report.added)} added, {len(report.changed)} "
        f"changed, {len(report.removed)} removed, {report.unchanged} unchanged\n"
        f"  chunks {report.chunks} ({report.embedded_chunks} embedded now), "
        f"index {report.index_type}, {report.seconds:.1f} s\n"
        f"  index folder {index_dir}\n"
        f"  serve it: python -m backend serve --collection {report.collection}={index_dir}"
    )
    append_entry(
        "ingest",
        f"collection {report.collection}",
        {
            "version": report.version,
            "published": report.published,
            "documents": report.documents,
            "added": len(report.added),
            "changed": len(report.changed),
            "removed": len(report.removed),
            "chunks": report.chunks,
            "embedded": report.embedded_chunks,
            "index": report.index_type,
            "seconds": report.seconds,
        },
        [index_dir],
    )
    return 0


def _health(args: argparse.Namespace) -> int:
    """Exit 0 when the server at --target reports SERVING (a container health check)."""
    from backend.client import ChatClient

    with ChatClient(args.target, settings=load_settings(ClientSettings, args)) as client:
        serving = client.is_serving(timeout=args.timeout)
    print(f"{args.target}: {'SERVING' if serving else 'not serving'}")
    return 0 if serving else 1


def _keys(args: argparse.Namespace) -> int:
    keys_file = args.keys_file or load_settings(ServeSettings).keys_file or "keys.yaml"
    if args.keys_command == "add":
        limits = Limits(args.requests_per_minute, args.concurrent_streams, args.tokens_per_minute)
        plain, entry = add_key(keys_file, args.name, args.role, limits, args.expires_days)
        expires = f", expires {entry.expires}" if entry.expires else ""
        print(
            f"added key {entry.id} ({entry.name}, role {entry.role}{expires}) to {keys_file}\n"
            f"{plain}\n"
            "This is the only time the key is shown: store it now (clients read it from "
            "$CHATFORGE_API_KEY)."
        )
    elif args.keys_command == "revoke":
        entry = revoke_key(keys_file, args.key)
        print(f"revoked key {entry.id} ({entry.name}) on {entry.revoked}")
    else:
        print("id        name                 role   limits (rpm/streams/tpm)  status")
        for key in list_keys(keys_file):
            limits = key.limits
            numbers = (
                f"{limits.requests_per_minute}/{limits.concurrent_streams}/"
                f"{limits.tokens_per_minute}"
            )
            status = (
                f"revoked {key.revoked}" if key.revoked
                else f"expires {key.expires}" if key.expires else "active"
            )  # fmt: skip
            print(f"{key.id}  {key.name:<20} {key.role:<6} {numbers:<25} {status}")
    return 0


def _add_keys_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser(
        "keys", help="manage the API keys file (add, list, revoke)", parents=parents
    )
    keys.add_argument(
        "--keys-file",
        default=None,
        help="API keys file (default: $CHATFORGE_KEYS_FILE, else keys.yaml)",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True)
    add = actions.add_parser("add", help="create a key and print it once")
    add.add_argument("name", help="who or what uses the key, e.g. ui or alice")
    add.add_argument("--role", default="user", help="user (chat, read) or admin (also writes)")
    defaults = Limits()
    add.add_argument(
        "--requests-per-minute", type=int, default=defaults.requests_per_minute,
        help="0: unlimited (default %(default)s)",
    )  # fmt: skip
    add.add_argument(
        "--concurrent-streams", type=int, default=defaults.concurrent_streams,
        help="open Chat streams at once; 0: unlimited (default %(default)s)",
    )  # fmt: skip
    add.add_argument(
        "--tokens-per-minute", type=int, default=defaults.tokens_per_minute,
        help="generated tokens per minute; 0: unlimited (default %(default)s)",
    )  # fmt: skip
    add.add_argument("--expires-days", type=float, default=None, help="default: never")
    actions.add_parser("list", help="every key: id, name, role, limits, status")
    revoke = actions.add_parser("revoke", help="refuse a key from now on (kept, marked)")
    revoke.add_argument("key", help="the key's id, or its name when unique")
    keys.set_defaults(run=_keys)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    logs = [logging_arguments()]

    serve = sub.add_parser("serve", help="run the gRPC server", parents=logs)
    # Every flag defaults to None: ServeSettings holds the defaults and reads the
    # environment and .env for flags not given.
    for field, info in ServeSettings.model_fields.items():
        if field == "insecure_open":
            serve.add_argument(
                flag_name(field), action="store_true", default=None, help=info.description
            )
        elif field == "eval_arg":
            serve.add_argument(
                flag_name(field), action="append", default=None, metavar="ARG",
                help=f"{info.description} (${env_name(ServeSettings, field)})",
            )  # fmt: skip
        elif field == "collection":
            serve.add_argument(
                flag_name(field), action="append", default=None, metavar="NAME=INDEX_DIR",
                help="add a retrieval collection (repeatable); replaces one of the same name",
            )  # fmt: skip
        else:
            default = "" if info.default is None else f"; default {info.default}"
            serve.add_argument(
                flag_name(field),
                default=None,
                help=f"{info.description} (${env_name(ServeSettings, field)}{default})",
            )
    serve.set_defaults(run=_serve)

    prepare = sub.add_parser(
        "prepare-default",
        help="convert the default model's GGUF into a checkpoint (once)",
        parents=logs,
    )
    prepare.set_defaults(run=_prepare_default)

    chat = sub.add_parser(
        "chat", help="ask a running server one question, streaming the answer", parents=logs
    )
    chat.add_argument("question")
    chat.add_argument("--model", default="", help="model name (default: the server's default)")
    chat.add_argument("--target", default="127.0.0.1:50051", help="server host:port")
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")
    chat.add_argument(
        "--rag",
        nargs="?",
        const="",
        metavar="COLLECTION",
        help="answer from documents (the server's default collection, or the one named); "
        "the sources are printed first",
    )
    add_client_flags(chat)
    chat.set_defaults(run=_chat)

    _add_keys_parser(sub, logs)

    health = sub.add_parser("health", help="exit 0 when the server reports SERVING", parents=logs)
    health.add_argument("--target", default="127.0.0.1:50051", help="server host:port")
    health.add_argument("--timeout", type=float, default=4.0, help="seconds to wait")
    add_client_flags(health)
    health.set_defaults(run=_health)

    ingest = sub.add_parser(
        "ingest", help="build or update a retrieval collection's index (incremental)", parents=logs
    )
    ingest.add_argument(
        "source",
        help="pydocs, a folder of .html/.md/.rst/.txt pages, or a documents.jsonl "
        "(or corpus folder) written by `python -m training data`",
    )
    ingest.add_argument("--collection", required=True, help="collection name, e.g. pydocs")
    ingest.add_argument(
        "--index-dir", help="index folder (default $CHATFORGE_HOME/collections/NAME)"
    )
    ingest.add_argument(
        "--base-url",
        default="",
        help="where the pages are on the web, for citation links (pydocs: docs.python.org)",
    )
    ingest.add_argument("--max-tokens", type=int, default=192, help="chunk budget in tokens")
    ingest.add_argument("--overlap", type=int, default=32, help="chunk overlap in tokens")
    ingest.add_argument(
        "--index-type", choices=["auto", "flat", "hnsw", "ivf"], default="auto",
        help="dense index; auto: exact below --approx-threshold chunks, HNSW from it",
    )  # fmt: skip
    ingest.add_argument("--approx-threshold", type=int, default=50_000)
    ingest.add_argument("--batch-size", type=int, default=64, help="embedding batch size")
    ingest.set_defaults(run=_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_from_args(args)
    try:
        return args.run(args)
    except (
        RegistryError,
        PolicyError,
        ClassifierError,
        IngestError,
        KeysError,
        SettingsError,
    ) as error:
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
