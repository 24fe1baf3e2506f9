"""Generate the Python gRPC code for chat.proto, or check that the committed code is current.

`make proto` runs this; a test runs it with `--check`, which generates into a temporary
folder and compares, so stale generated code fails the suite instead of confusing a client.
The generated files live beside the .proto and are installed as the `chat` package
(see pyproject.toml), which is what their own `from chat.v1 import ...` lines expect.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PROTOS = ["chat/v1/chat.proto"]
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    include = Path(protoc.__file__).parent / "_proto"
    for proto in PROTOS:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            proto,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {PROTO_ROOT / proto}")


def stale_files() -> list[str]:
    """Generated files that differ from what chat.proto generates now."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = []
        for fresh in sorted(Path(tmp).rglob("*")):
            if not fresh.name.endswith(GENERATED_SUFFIXES):
                continue
            rel = fresh.relative_to(tmp)
            committed = PROTO_ROOT / rel
            if not committed.exists() or not filecmp.cmp(fresh, committed, shallow=False):
                stale.append(str(rel))
        return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args()
    if args.check:
        stale = stale_files()
        if stale:
            sys.exit(f"stale generated code: {', '.join(stale)}; run `make proto`")
        print("generated code is current")
    else:
        generate(PROTO_ROOT)
        print(f"generated Python code for {', '.join(PROTOS)}")


if __name__ == "__main__":
    main()
