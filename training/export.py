"""`python -m training export`: our GPT as a standard transformers `LlamaForCausalLM` folder.

Design decisions:
- Our architecture was chosen to be exactly Llama's computation (RMSNorm, rotate-half
  RoPE, GQA, SwiGLU, no biases), so export is a renaming of tensors, not a conversion:
  the exported model's logits equal ours to float rounding, and the server, vLLM,
  llama.cpp converters and the Hub all load it with no code of ours.
- The folder follows the checkpoint contract (DESIGN §4): weights in safetensors, the
  tokenizer with its chat template, `generation_config.json` whose eos ids include the
  end-of-turn token, and the run's `run.json` and `metrics.jsonl` beside them so the
  server's model card shows how it was trained.
- It is built in a temporary folder and renamed into place: a half-written export never
  sits where a server could load it.
- `--register NAME` adds the model to `runs/models.yaml` (which the committed models.yaml
  includes) through `training.model_registry`, never to the committed file itself.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from training.bpe import ENDOFTEXT, IM_END, IM_START
from training.errors import TrainingError
from training.folders import replace_folder
from training.model import GPT, GPTConfig
from training.model_registry import RUNS_REGISTRY, register

RUN_FILES = ("run.json", "metrics.jsonl")

_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn.wq.weight": "self_attn.q_proj.weight",
    "attn.wk.weight": "self_attn.k_proj.weight",
    "attn.wv.weight": "self_attn.v_proj.weight",
    "attn.wo.weight": "self_attn.o_proj.weight",
    "mlp_norm.weight": "post_attention_layernorm.weight",
    "mlp.gate.weight": "mlp.gate_proj.weight",
    "mlp.up.weight": "mlp.up_proj.weight",
    "mlp.down.weight": "mlp.down_proj.weight",
}


def llama_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our parameter names mapped onto LlamaForCausalLM's."""
    mapped = {}
    for name, tensor in model.state_dict().items():
        if name == "tok_emb.weight":
            mapped["model.embed_tokens.weight"] = tensor
        elif name == "norm.weight":
            mapped["model.norm.weight"] = tensor
        elif name == "lm_head.weight":
            mapped["lm_head.weight"] = tensor
        else:
            _, layer, rest = name.split(".", 2)
            mapped[f"model.layers.{layer}.{_LAYER_NAMES[rest]}"] = tensor
    return mapped


def to_llama(model: GPT, tokenizer):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    c = model.config
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (ENDOFTEXT, IM_START, IM_END)}
    config = LlamaConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.n_embd,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.n_layer,
        num_attention_heads=c.n_head,
        num_key_value_heads=c.n_kv_head,
        head_dim=c.head_dim,
        hidden_act="silu",
        max_position_embeddings=c.max_seq_len,
        rms_norm_eps=c.norm_eps,
        rope_theta=c.rope_theta,
        tie_word_embeddings=c.tie_embeddings,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=ids[IM_START],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
    )
    hf = LlamaForCausalLM(config)
    missing, unexpected = hf.load_state_dict(llama_state_dict(model), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise RuntimeError(f"weight mapping mismatch: missing {missing}, unexpected {unexpected}")
    hf.generation_config = GenerationConfig(
        bos_token_id=ids[IM_START],
        eos_token_id=[ids[IM_END], ids[ENDOFTEXT]],
        pad_token_id=ids[ENDOFTEXT],
        do_sample=True,
        temperature=0.7,
        top_k=40,
    )
    return hf.eval()


def export_run(run_dir: Path, out: Path | None = None, weights: str = "best") -> Path:
    """Export the run folder `run_dir` (pretrain or sft) to `out` (default run_dir/hf)."""
    from training import checkpoint
    from training.pretrain import TOKENIZER_DIR, load_tokenizer, load_trained

    run_dir = Path(run_dir)
    if not (run_dir / checkpoint.CHECKPOINT).is_file():
        raise TrainingError(f"{run_dir} is not a training run folder (no {checkpoint.CHECKPOINT})")
    if weights == "last":
        saved = checkpoint.load(run_dir / checkpoint.CHECKPOINT)
        model = GPT(GPTConfig(**saved["model_config"]))
        model.load_state_dict(saved["model"])
    else:
        model = load_trained(run_dir)
    tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR)
    hf = to_llama(model, tokenizer)
    out = Path(out) if out else run_dir / "hf"

    def fill(work: Path) -> None:
        hf.save_pretrained(work)
        tokenizer.save_pretrained(work)
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                shutil.copy(run_dir / name, work / name)

    replace_folder(out, fill)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="a pretrain or sft run folder")
    parser.add_argument("--out", type=Path, help="export folder (default RUN/hf)")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--register", metavar="NAME", help="add to runs/models.yaml as NAME")
    parser.add_argument("--registry", type=Path, default=RUNS_REGISTRY, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    out = export_run(args.run, args.out, args.weights)
    print(f"exported {args.run} -> {out} (LlamaForCausalLM, safetensors, tokenizer, template)")
    if args.register:
        registry = register(args.register, {"checkpoint": str(out.resolve())}, args.registry)
        print(f"registered `{args.register}` in {registry}")
    append_entry(
        "export",
        f"{args.run.name} -> transformers Llama",
        {"registered as": args.register or "-"},
        [out],
    )
