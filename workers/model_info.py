"""What a node reads from a Hugging Face model before anyone trains it: its architecture, exact parameter
count, vocabulary and context length — or why it cannot train it. Standard library only, and local files
only: a hub id is resolved from the node's Hugging Face cache, never downloaded (docs/models.md).

    python -m workers.model_info SOURCE [--tokenizer SOURCE]    # prints the answer as JSON
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# A header is a few hundred bytes per tensor; anything near this is a corrupt length, not a header.
MAX_HEADER_BYTES = 100 * 1024 * 1024
# One of these makes a directory a tokenizer: a fast tokenizer, a SentencePiece model, or BPE files.
TOKENIZER_FILES = (("tokenizer.json",), ("tokenizer.model",), ("vocab.json", "merges.txt"))
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


class ModelRefused(ValueError):
    """The node cannot train from this source; the message says why, for the person who registered it."""


@dataclass(frozen=True)
class ModelInfo:
    architecture: str
    model_type: str
    params: int
    vocab_size: int | None
    context_length: int | None
    hidden_size: int | None  # with num_layers: what a LoRA adapter's size and activations follow
    num_layers: int | None
    config_dtype: str  # the dtype its config.json names ("" when none)
    path: str  # the directory the weights were read from, on this node
    tokenizer_path: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where huggingface_hub keeps downloaded repositories: HF_HUB_CACHE, else HF_HOME/hub, else
    ~/.cache/huggingface/hub (its own order; XDG_CACHE_HOME moves the last one, as it does there)."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    cache = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache / "huggingface" / "hub"


def resolve_source(source: str, env: Mapping[str, str] | None = None) -> Path:
    """A directory as given, else a hub id ("org/name") as its cached snapshot of `main`."""
    source = source.strip()
    if not source:
        raise ModelRefused("no source given: a directory on the node or a Hugging Face hub id")
    as_path = Path(source).expanduser()
    if as_path.is_dir():
        return as_path.resolve()
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:
        raise ModelRefused(f"{source} is not a directory on this node")
    cache = hub_cache_dir(env)
    repo = cache / ("models--" + source.replace("/", "--"))
    snapshot = _cached_snapshot(repo)
    if snapshot is None:
        raise ModelRefused(
            f"{source} is neither a directory on this node nor in its Hugging Face cache (looked in "
            f"{repo}; the cache is HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). "
            "Nothing is downloaded at run time: download it on the node first "
            f"(huggingface-cli download {source}) or give a directory"
        )
    return snapshot


def _cached_snapshot(repo: Path) -> Path | None:
    """The snapshot refs/main points to; a cache holding one snapshot and no ref (copied by hand) too."""
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        return snapshot if snapshot.is_dir() else None
    snapshots = [p for p in (repo / "snapshots").glob("*") if p.is_dir()]
    return snapshots[0] if len(snapshots) == 1 else None


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelRefused(f"no config.json in {model_dir}: not a Hugging Face model directory")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelRefused(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelRefused(f"{path} holds no JSON object")
    return config


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files holding the weights: those the index names, else every *.safetensors."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelRefused(f"{index} is not a safetensors index: {exc}") from exc
        missing = [n for n in names if not (model_dir / n).is_file()]
        if missing:
            raise ModelRefused(f"{index} names shards that are not there: {', '.join(missing)}")
        return [model_dir / n for n in names]
    files = sorted(model_dir.glob("*.safetensors"))
    if files:
        return files
    if any(model_dir.glob("*.bin")) or any(model_dir.glob("*.pt")) or any(model_dir.glob("*.pth")):
        # Pickled checkpoints run code when loaded, and their size needs torch to read.
        raise ModelRefused(
            f"{model_dir} holds only pickled weights (.bin/.pt): safetensors only — convert them "
            "(e.g. save_pretrained(..., safe_serialization=True))"
        )
    raise ModelRefused(f"no weights in {model_dir} (looked for *.safetensors and an index)")


def safetensors_params(path: Path) -> int:
    """The number of values in a safetensors file, from its header alone: an 8-byte little-endian
    length, then that many bytes of JSON mapping each tensor's name to its dtype, shape and offsets."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelRefused(f"unreadable safetensors header in {path}: the file is too short")
            (length,) = struct.unpack("<Q", head)
            size = path.stat().st_size
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise ModelRefused(
                    f"unreadable safetensors header in {path}: it claims {length} bytes in a file of {size}"
                )
            header = json.loads(f.read(length))
    except OSError as exc:
        raise ModelRefused(f"unreadable safetensors file {path}: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelRefused(f"unreadable safetensors header in {path}: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelRefused(f"unreadable safetensors header in {path}: not a JSON object")
    total = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ModelRefused(f"unreadable safetensors header in {path}: tensor {name} has no shape")
        total += math.prod(shape)
    return total


def tokenizer_dir(source: str | None, model_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    path = resolve_source(source, env) if source else model_dir
    for names in TOKENIZER_FILES:
        if all((path / n).is_file() for n in names):
            return path
    wanted = ", ".join(" + ".join(names) for names in TOKENIZER_FILES)
    raise ModelRefused(f"no tokenizer in {path} (looked for {wanted}): name one with --tokenizer")


def _first_int(config: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def inspect_model(
    source: str, *, tokenizer: str | None = None, env: Mapping[str, str] | None = None
) -> ModelInfo:
    """Read a model directory or a cached hub id; raise ModelRefused saying why a node cannot train it."""
    model_dir = resolve_source(source, env)
    config = read_config(model_dir)
    # Multimodal configs keep the language model's numbers under text_config.
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else {}
    architectures = config.get("architectures")
    model_type = str(config.get("model_type") or "")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        architecture = architectures[0]
    elif model_type:
        architecture = model_type
    else:
        raise ModelRefused(f"{model_dir / 'config.json'} names no architecture and no model_type")
    params = sum(safetensors_params(f) for f in weight_files(model_dir))
    if params == 0:
        raise ModelRefused(f"the safetensors files in {model_dir} hold no tensors")
    dtype = config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype") or ""
    return ModelInfo(
        architecture=architecture,
        model_type=model_type,
        params=params,
        vocab_size=_first_int(config, ("vocab_size",)) or _first_int(text, ("vocab_size",)),
        context_length=_first_int(config, CONTEXT_KEYS) or _first_int(text, CONTEXT_KEYS),
        hidden_size=_first_int(config, HIDDEN_KEYS) or _first_int(text, HIDDEN_KEYS),
        num_layers=_first_int(config, LAYER_KEYS) or _first_int(text, LAYER_KEYS),
        config_dtype=str(dtype),
        path=str(model_dir),
        tokenizer_path=str(tokenizer_dir(tokenizer, model_dir, env)),
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m workers.model_info", description=__doc__)
    parser.add_argument("source")
    parser.add_argument("--tokenizer")
    args = parser.parse_args(argv)
    try:
        info = inspect_model(args.source, tokenizer=args.tokenizer)
    except ModelRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
