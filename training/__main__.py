"""`python -m training <command>`: every training workflow behind one command line.

Design decisions:
- Each command lives in its own module exposing `add_arguments(parser)` and `run(args)`;
  this file only maps names to modules, so a new command is one line in COMMANDS.
- Modules are imported only for the command that runs (torch takes seconds to import),
  so `--help` and `data` stay quick.
- A `TrainingError` (a mistake the user can fix) prints as one line and exits 2; Ctrl-C
  exits 130 after the command has saved what it can.
- Every command takes the logging flags (telemetry/logs.py): what the libraries log
  (transformers, datasets) comes out as JSON lines or text like the server's logs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from telemetry.logs import configure_from_args, logging_arguments

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("training.corpus", "build a corpus folder: documents, split, questions"),
    "tokenizer": ("training.bpe", "train a byte-level BPE tokenizer with a chat template"),
    "pretrain": ("training.pretrain", "pretrain our GPT on a corpus (resumable, DDP-ready)"),
    "sft": ("training.sft", "fine-tune a pretrained GPT on chat conversations"),
    "export": ("training.export", "export a GPT checkpoint to a transformers Llama folder"),
    "sweep": ("training.sweep", "train several depths at fixed compute budgets and plot"),
    "recipe": ("training.recipe", "the whole CPU recipe: data to a registered chat model"),
    "finetune": ("training.finetune", "LoRA / QLoRA / full fine-tuning of a pretrained chat model"),
    "dpo": ("training.dpo", "preference tuning (DPO, LoRA) on grounded-answer and refusal pairs"),
    "classifier": ("training.classifier", "train the guardrail attack classifier"),
    "guard-lofo": ("training.guard_lofo", "guard classifiers each trained without one family"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(
            name, help=help_text, description=help_text, parents=[logging_arguments()]
        )
        if name == chosen:
            importlib.import_module(module).add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    from chatforge.corpus_files import CorpusError
    from training.errors import TrainingError

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    configure_from_args(args)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        module.run(args)
    except (TrainingError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
