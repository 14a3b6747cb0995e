"""Loading causal LMs from local directories or Hugging Face hub ids, and building the tiny model of
the CPU demo.

`resolve_model_path` turns a recipe's model path into a local directory: an existing directory as
it is, otherwise a hub id (`Qwen/Qwen2.5-0.5B-Instruct`) through huggingface_hub's cache, as
verl's `copy_to_local` and TRL's `from_pretrained` do (downloaded unless HF_HUB_OFFLINE=1).

`build_tiny_model` writes a randomly initialised Qwen2-architecture model and a character-level
tokenizer (one token per character, from the `tokenizers` library's WordLevel model) with a ChatML
chat template. Nothing is downloaded; the directory loads with `AutoModelForCausalLM` and
`AutoTokenizer` like any Hub checkpoint (and in vLLM, whose Qwen2 support it uses).
"""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

PAD, BOS_CHAT, EOS_CHAT, UNK = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"

# ChatML, as Qwen2 uses; the assistant turn is opened by add_generation_prompt.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# The same turns without role names: each message's text closed by <|im_end|>, the reply opened by
# <|im_start|>. A prompt of the demo's task is 22 tokens instead of ChatML's 39, so a training token
# budget goes 1.7x further; for single-turn tasks, where the roles are always user then assistant
# (a system prompt would read as a first user turn).
COMPACT_TEMPLATE = (
    "{%- for message in messages %}{{- message['content'] + '<|im_end|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>' }}{%- endif %}"
)
CHAT_TEMPLATES = {"chatml": CHAT_TEMPLATE, "compact": COMPACT_TEMPLATE}

# The tiny model's shape: ~0.8M non-embedding parameters, fast enough to train on 2 CPU cores.
TINY_SHAPE = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2)
# Named shapes for build_tiny_model(size=...): "100m" is a wider random model (~101M parameters, nearly
# all non-embedding with the character vocabulary) for benchmarks at a more realistic width.
MODEL_SHAPES = {
    "tiny": TINY_SHAPE,
    "100m": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=2),
    # ~0.5B (496M) for the GPU throughput check of bench/README.md: long enough for 1k-token completions
    "500m": dict(hidden_size=1280, intermediate_size=4352, num_hidden_layers=24, num_attention_heads=20,
                 num_key_value_heads=4, max_position_embeddings=4096),
}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_char_tokenizer(chars: str | None = None, chat: str = "chatml"):
    """A tokenizer with one token per character of `chars` (default: printable ASCII) plus the
    ChatML special tokens; characters outside the set map to <unk>. `chat` names its chat template
    in CHAT_TEMPLATES."""
    if chat not in CHAT_TEMPLATES:
        raise ValueError(f"unknown chat template {chat!r}; choose one of {sorted(CHAT_TEMPLATES)}")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = chars if chars is not None else string.printable
    specials = [PAD, BOS_CHAT, EOS_CHAT, UNK]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in dict.fromkeys(chars):  # keep order, drop duplicates
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS_CHAT,
        unk_token=UNK,
        additional_special_tokens=[BOS_CHAT],
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
    tokenizer.chat_template = CHAT_TEMPLATES[chat]
    return tokenizer


def build_tiny_model(path: str | Path, seed: int = 0, size: str = "tiny", chat: str = "chatml", **shape: int) -> Path:
    """Write a random Qwen2 model and its character tokenizer to `path`; returns the path.

    `size` names a shape in MODEL_SHAPES ("tiny", "100m", "500m"); `shape` overrides its
    fields (hidden_size, num_hidden_layers, ...). `chat` names the chat template ("chatml", or
    "compact": no role names, for short single-turn prompts)."""
    if size not in MODEL_SHAPES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(MODEL_SHAPES)}")
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    tokenizer = build_char_tokenizer(chat=chat)
    config = Qwen2Config(**{
        "vocab_size": len(tokenizer), "max_position_embeddings": 1024, "tie_word_embeddings": True,
        "rope_theta": 10000.0, "bos_token_id": tokenizer.convert_tokens_to_ids(BOS_CHAT),
        "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
        **MODEL_SHAPES[size], **shape,
    })
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# what a model directory needs from a hub repo: config, weights, tokenizer, chat template
HUB_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
# org/name or name: letters, digits, '-', '_', '.' (huggingface_hub's validate_repo_id rules)
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
_OFFLINE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it, looked up now (huggingface_hub reads it at import)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _OFFLINE or bool(constants.HF_HUB_OFFLINE)


def looks_like_hub_id(path: str | Path) -> bool:
    text = str(path)
    return bool(_HUB_ID.match(text)) and ".." not in text and not text.endswith((".", "-"))


def resolve_model_path(path: str | Path) -> Path:
    """A local Hugging Face model directory for `path`: the directory itself if it exists, else
    the hub id's snapshot in huggingface_hub's cache (HF_HUB_CACHE), downloaded if missing unless
    HF_HUB_OFFLINE=1. Only config, tokenizer and safetensors weights are fetched (PyTorch .bin
    weights only when the repo has no safetensors). Errors name the path or id and the cache."""
    local = Path(path)
    if local.exists():
        _check_model_dir(local)
        return local
    if not looks_like_hub_id(path):
        raise FileNotFoundError(
            f"model path {str(path)!r} is not a directory, nor a Hugging Face hub id (org/name); give a local "
            f"Hugging Face model directory (config.json, weights, tokenizer), a hub id, build a tiny model with "
            f"`asymptote tiny-model DIR`, or fetch a real one with `asymptote fetch-model smollm2-135m`"
        )
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline = hub_offline()
    where = f"the Hugging Face cache at {constants.HF_HUB_CACHE}"
    try:
        snapshot = Path(snapshot_download(str(path), allow_patterns=HUB_PATTERNS, local_files_only=offline))
        if not any(snapshot.glob("*.safetensors")):  # an older repo: PyTorch weights
            snapshot = Path(snapshot_download(str(path), allow_patterns=[*HUB_PATTERNS, "*.bin"],
                                              local_files_only=offline))
    except LocalEntryNotFoundError:
        how = ("HF_HUB_OFFLINE=1, so nothing is downloaded: download it where the hub is reachable "
               f"(`hf download {path}`) into that cache, or unset HF_HUB_OFFLINE") if offline else (
               "and the hub could not be reached to download it")
        raise FileNotFoundError(
            f"model {str(path)!r} is not a local directory and not in {where}; {how}"
        ) from None
    except (RepositoryNotFoundError, HFValidationError) as e:
        raise FileNotFoundError(
            f"model path {str(path)!r} is not a local directory, and the hub has no model {str(path)!r} "
            f"({type(e).__name__})"
        ) from None
    _check_model_dir(snapshot)
    return snapshot


def _check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise FileNotFoundError(
            f"model path {str(path)!r} is not a directory; give a local Hugging Face model directory "
            f"(config.json, weights, tokenizer), or build a tiny one with `asymptote tiny-model {path}`"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model path {str(path)!r} has no config.json: not a Hugging Face model directory")


# tokenizer_config.json classes that mean "the tokenizer.json as written, no model-specific class"
_GENERIC_TOKENIZERS = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    path = resolve_model_path(path)
    declared = None
    if (path / "tokenizer_config.json").is_file():
        declared = json.loads((path / "tokenizer_config.json").read_text()).get("tokenizer_class")
    if declared in _GENERIC_TOKENIZERS:
        # AutoTokenizer would replace a generic tokenizer with the model type's own class (for
        # qwen2: Qwen2Tokenizer, whose byte-level pre-tokenizer drops our character tokenizer's
        # whitespace). Honour what the checkpoint declares.
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # many causal LMs ship without one; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(f"tokenizer at {str(path)!r} has no chat template; prompts are rendered through it")
    return tokenizer


def load_model(path: str | Path, dtype: str = "float32", fp32_lm_head: bool = False) -> PreTrainedModel:
    path = resolve_model_path(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype])
    return use_fp32_lm_head(model) if fp32_lm_head else model


def use_fp32_lm_head(model: PreTrainedModel) -> PreTrainedModel:
    """Compute the LM head (and so the logits and log-probs) in FP32 while the rest of the model
    runs in its own dtype (MiniMax-M1 §3.1: the bf16 head's precision made the trainer's and the
    engine's probabilities disagree; ScaleRL §3.2 finds FP32 logits raise the asymptote).

    The head's weight is kept in FP32 and a forward pre-hook casts its input up; with tied
    embeddings (one weight for both) a forward hook casts the embedding's output back down, so the
    transformer blocks still see their own dtype. Hooks, not a patched forward: the computation
    stays inside the module's own call, where DDP, FSDP and ZeRO-3 expect it. Returns the model."""
    head = model.get_output_embeddings()
    dtype = next(p.dtype for n, p in model.named_parameters() if "norm" not in n)
    if head.weight.dtype == torch.float32:
        return model
    head.float()
    head.register_forward_pre_hook(lambda module, args: (args[0].float(), *args[1:]))
    embed = model.get_input_embeddings()
    if embed.weight is head.weight:
        embed.register_forward_hook(lambda module, args, output: output.to(dtype))
    return model


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages) -> list[int]:
    """Token ids of a chat prompt through the tokenizer's chat template, ending with the opened
    assistant turn."""
    return list(
        tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True, return_dict=False)
    )


def non_embedding_params(model: torch.nn.Module) -> int:
    """N in the 2N / 6N FLOP estimates (Kaplan et al. 2020): parameters outside the token
    embedding and an untied LM head."""
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    excluded = {id(embed)} | ({id(head.weight)} if head is not None else set())
    # a ZeRO-3-partitioned parameter (transformers loads under deepspeed.zero.Init then) holds an
    # empty placeholder; ds_numel is its full size
    return sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters() if id(p) not in excluded)


def model_fingerprint(path: str | Path) -> str:
    """A cheap identity of a model directory (its config and weight files' names, sizes, mtimes)."""
    path = Path(path)
    entries = []
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin"}):
            st = f.stat()
            entries.append([f.name, st.st_size, int(st.st_mtime)])
    return json.dumps(entries)
