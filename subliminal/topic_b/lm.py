"""Language-model loading: offline GGUF assets, local directories, Hugging Face ids.

``load_model(spec)`` accepts
- an offline model of the model table (``subliminal.topic_b.models``: ``smollm2-135m-instruct`` default,
  ``qwen2.5-coder-0.5b-instruct``, ``gemma-3-270m``): the verified GGUF of its asset from
  ``subliminal.assets.fetch``, dequantised to fp32 by transformers (``gguf_file=``) once and cached with
  ``save_pretrained`` under ``cache_dir()/dequant/<sha256>``, so later loads take ~2 s instead of 20-60 s.
  The cache carries ``source.json`` with the GGUF's sha256 and the sha256 of every other file in the folder
  (config, tokenizer files, chat template, weights), written when it is built. Every load re-hashes them; a
  folder whose record is unreadable or whose files differ from it (an edited ``config.json``, a missing or
  extra file) is rebuilt, with one line saying why, never used. The folder is written as
  ``.<sha256>.<pid>.tmp`` beside it and renamed when complete: removed on any failure or Ctrl-C, removed at
  the next load when its process was killed, and a disk without room for the fp32 weights is refused first,
  in one line;
- a path to a ``.gguf`` file (same caching, keyed by the file's sha256);
- a local directory with a saved model;
- a Hugging Face id (e.g. ``meta-llama/Llama-3.2-1B-Instruct``), loaded with ``from_pretrained``
  when it is cached locally or the hub is reachable (``check_spec`` says which, before anything loads).
trust_remote_code stays off; weights are fp32 on CPU (bf16 matmul is ~100x slower on this CPU).

``load_tokenizer(spec)`` gives the tokenizer ``load_model(spec)`` would, without reading or hashing the weights: from
the dequantised folder when its tokenizer files match their record, else from a tokenizer-only cache
(``cache_dir()/tokenizers/<sha256>``, written the first time the GGUF's vocabulary is read).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from subliminal.assets import ASSETS, cache_dir, fetch, sha256_file
from subliminal.cli import UserError
from subliminal.devices import pid_alive
from subliminal.topic_b.models import (
    DEFAULT_MODEL,
    MODELS,
    SUPERSEDED_TEMPLATES,
    get_model,
    offline_models,
    spec_for,
)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect instead of transformers' minute of retries when there is no network."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextmanager
def _hub_offline(on: bool = True):
    """huggingface_hub's offline mode for the duration: `local_files_only` alone still sends HEAD requests (an
    adapter_config.json probe) and retries them for half a minute when there is no network."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = old or on
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _is_hub_id(spec: str) -> bool:
    return spec.count("/") == 1 and not Path(spec).expanduser().exists() and not spec.endswith(".gguf")


def _hub_cached(spec: str) -> bool:
    """Whether the local Hugging Face cache holds `spec`'s config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except (ImportError, ValueError, OSError):
        return False


def _kind(spec: str, flag: str = "--model") -> str:
    """What `spec` names, the one dispatch both ``check_spec`` and ``load_model`` read: "offline" (a row of the model
    table with an offline asset), "gguf" (an existing .gguf file), "dir" (a saved-model folder) or "hub" (a Hugging
    Face id); anything else is the one-line UserError a user sees, before anything loads."""
    if not spec.strip():
        raise UserError(f"{flag} is empty; give an asset name ({', '.join(offline_specs())}), a .gguf file, "
                        "a model folder or a Hugging Face id")
    if spec in MODELS and MODELS[spec].offline:
        return "offline"
    if spec in ASSETS:
        raise UserError(f"{flag} {spec!r} is a dataset, not a language model; offline models: "
                        f"{', '.join(offline_specs())}")
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"{flag}: GGUF file {spec} does not exist")
        return "gguf"
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"{flag}: directory {spec} has no config.json; not a saved model")
        return "dir"
    if _is_hub_id(spec):
        return "hub"
    raise UserError(f"{flag}: unknown model {spec!r}: give an asset name ({', '.join(offline_specs())}), "
                    "a .gguf file, a model directory or a Hugging Face id")


def check_spec(spec: str, flag: str = "--model") -> None:
    """The one-line UserError `load_model(spec)` would end in, raised before anything is loaded: an asset
    name, an existing .gguf file, a saved-model folder, or a Hugging Face id that is cached locally or whose
    hub answers within seconds."""
    if _kind(spec, flag) == "hub" and not _hub_cached(spec) and not _hub_reachable():
        raise UserError(f"{flag} {spec}: not in the local Hugging Face cache and the hub is unreachable; "
                        f"offline models: {', '.join(offline_specs())}")


def offline_specs() -> list[str]:
    """The model table's offline rows (``models.offline_models``)."""
    return offline_models()


def _dir_hashes(d: Path) -> dict[str, str]:
    """sha256 of every file under d except the record itself, by relative path."""
    return {p.relative_to(d).as_posix(): sha256_file(p) for p in sorted(d.rglob("*"))
            if p.is_file() and p.relative_to(d).as_posix() != "source.json"}


def _cache_problem(d: Path, gguf_sha: str) -> str | None:
    """Why the dequantised folder `d` must not be used (None: it matches its record)."""
    meta = d / "source.json"
    if not meta.exists():
        return "no source.json record" if d.exists() else "not built yet"
    try:
        info = json.loads(meta.read_text())
        files = info["files"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return "its source.json record is unreadable or from an older version"
    if info.get("gguf_sha256") != gguf_sha:
        return "it was built from another GGUF file"
    if not isinstance(files, dict) or not files:
        return "its source.json record lists no files"
    try:
        got = _dir_hashes(d)
    except OSError as e:
        return f"a file in it cannot be read ({e.strerror or e})"
    changed = sorted(k for k in files.keys() | got.keys() if files.get(k) != got.get(k))
    if changed:
        return f"{', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''} differ from the hashes recorded when it was built"
    return None


def _finish(model, tokenizer, name: str, device: str):
    model = model.to(dtype=torch.float32, device=device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    row = spec_for(name, getattr(model.config, "model_type", "") or "")  # its own row, else its family's
    _install_template(tokenizer, row)
    model.name_or_spec = name  # what the results tables call this model
    return model, tokenizer


def _install_template(tokenizer, row) -> None:
    """The row's fallback chat template (e.g. Gemma: no system role, folded into the user turn) when the tokenizer
    ships none, or carries one the table installed before (``models.SUPERSEDED_TEMPLATES``: a dequantised folder
    saved under an older version keeps it in its chat_template.jinja). A tokenizer's own template is never replaced."""
    if row is not None and row.chat_template and (not tokenizer.chat_template
                                                  or tokenizer.chat_template in SUPERSEDED_TEMPLATES):
        tokenizer.chat_template = row.chat_template


def _load_dir(path: Path, name: str, device: str):
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=False)
    except (ValueError, KeyError, RuntimeError, EOFError, SafetensorError) as e:
        why = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"model folder {path} cannot be loaded ({type(e).__name__}: {why}); "
                        "its files are incomplete or corrupt: save the model again or give another one") from None
    return _finish(model, tok, name, device)


def _dequantise(gguf: Path):
    """(fp32 model, tokenizer) read from a GGUF file; a file that is not one is a one-line UserError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, KeyError, IndexError, TypeError, RuntimeError, EOFError, struct.error) as e:
        why = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{gguf} cannot be read as a GGUF model ({type(e).__name__}: {why}); it is truncated, "
                        "corrupt or not a supported GGUF file: download it again or give another model") from None
    # the dequantised weights are plain fp32: drop the quantizer so save/load treats them as such
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tok


def _why(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text[:160]


_TMP = (re.compile(r"\.[0-9a-f]{64}\.(\d+)\.tmp"), re.compile(r"[0-9a-f]{64}\.tmp(\d+)"))  # now, and before


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporary folders of dequantised rebuilds whose process is gone (a kill -9, a power cut);
    returns them. A rebuild still running (its PID alive) is left alone."""
    gone = []
    for p in Path(folder).glob("*tmp*") if Path(folder).is_dir() else []:
        m = next((r.fullmatch(p.name) for r in _TMP if r.fullmatch(p.name)), None)
        if m is not None and p.is_dir() and not pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone


def _check_space(folder: Path, model) -> None:
    """One line before writing when `folder`'s disk cannot take the fp32 weights (plus tokenizer files)."""
    need = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + 64 * 2**20
    free = shutil.disk_usage(folder).free
    if free < need:
        raise UserError(f"not enough disk space to cache the dequantised model in {folder}: it needs about "
                        f"{need / 2**20:.0f} MiB and {free / 2**20:.0f} MiB is free; free some space or set "
                        "SUBLIMINAL_CACHE to another disk")


def _load_gguf(gguf: Path, name: str, device: str, sha: str | None = None):
    from safetensors import SafetensorError

    sha = sha or sha256_file(gguf)
    out = cache_dir() / "dequant" / sha
    for p in clean_stale(out.parent):
        print(f"[lm] removed {p}, left by a dequantisation that was stopped", file=sys.stderr)
    problem = _cache_problem(out, sha)
    if problem is None:
        return _load_dir(out, name, device)
    if problem != "not built yet":
        print(f"[lm] dequantised cache {out} is not used ({problem}); rebuilding it from {gguf.name}", file=sys.stderr)
    t0 = time.time()
    model, tok = _finish(*_dequantise(gguf), name, device)  # the saved folder gets the chat template too
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_space(out.parent, model)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # hidden, and covered by .gitignore's .*.tmp
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        info = {"gguf_sha256": sha, "gguf": str(gguf), "files": _dir_hashes(tmp),
                "dequantise_seconds": round(time.time() - t0, 1)}
        (tmp / "source.json").write_text(json.dumps(info, indent=1))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    except BaseException as e:  # Ctrl-C, a full disk, anything: no half-written folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (OSError, SafetensorError)):
            raise UserError(f"cannot write the dequantised model into {out.parent} ({_why(e)}); free some space "
                            "there or set SUBLIMINAL_CACHE to another disk") from None
        raise
    # Reload from the saved folder rather than returning the freshly dequantised model: its tensors sit at
    # other memory alignments, which changes float rounding in the 6th-7th significant digit, so a first run
    # (empty cache) and every later run would disagree. One load path, the same numbers on every run.
    del model
    return _load_dir(out, name, device)


def load_model(spec: str = DEFAULT_MODEL, device: str = "cpu"):
    """(model, tokenizer) for an asset name, a .gguf path, a local directory or a HF id."""
    device = str(device)
    kind = _kind(spec, "model")
    if kind == "offline":
        asset = get_model(spec).weights  # the model table says which offline asset holds the weights
        return _load_gguf(fetch(asset), spec, device, sha=ASSETS[asset].sha256)
    path = Path(spec).expanduser()
    if kind == "gguf":
        return _load_gguf(path.resolve(), path.stem, device)
    if kind == "dir":
        return _load_dir(path, spec, device)
    if kind == "hub":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        def hf(local_only: bool):
            kw = {"trust_remote_code": False, "local_files_only": local_only}
            with _hub_offline(local_only):
                return (AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32, **kw),
                        AutoTokenizer.from_pretrained(spec, **kw))

        try:  # the local Hugging Face cache first: no network, no retries
            model, tok = hf(True)
        except (OSError, ValueError):
            why = "not in the local Hugging Face cache and the hub is unreachable"
            try:
                if not _hub_reachable():
                    raise OSError(why)
                model, tok = hf(False)
            except (OSError, ValueError) as e:
                raise UserError(f"model {spec} cannot be loaded offline ({why}: {type(e).__name__}); "
                                f"offline models: {', '.join(offline_specs())}") from None
        return _finish(model, tok, spec, device)


def _folder_tokenizer(d: Path, gguf_sha: str, *, weights: bool):
    """The tokenizer saved in folder `d` (a dequantised model's, `weights`, or a tokenizer-only one) when its files
    match the hashes recorded when it was built from the GGUF `gguf_sha` (a model's weights are neither read nor
    hashed); None otherwise."""
    from transformers import AutoTokenizer

    try:
        info = json.loads((d / "source.json").read_text())
        files = {k: v for k, v in info["files"].items() if not (weights and k.endswith(".safetensors"))}
        if info.get("gguf_sha256") != gguf_sha or not files or any(sha256_file(d / k) != v for k, v in files.items()):
            return None
        if not weights and set(files) != set(_dir_hashes(d)):
            return None
        return AutoTokenizer.from_pretrained(d, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _save_tokenizer(tok, out: Path, gguf_sha: str) -> None:
    """Keep a tokenizer read from a GGUF in `out` (a tokenizer-only cache: reading a GGUF's vocabulary takes
    5-20 s); written beside it and renamed when complete; a failed write only means the next load reads the GGUF."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps({"gguf_sha256": gguf_sha, "files": _dir_hashes(tmp)}, indent=1))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"[lm] tokenizer not cached in {out} ({_why(e)})", file=sys.stderr)


def load_tokenizer(spec: str = DEFAULT_MODEL):
    """The tokenizer ``load_model(spec)`` gives (pad token and chat template included), without its weights. For an
    offline row: from the row's dequantised folder when that folder's tokenizer files match their record, else from
    the tokenizer-only cache ``cache_dir()/tokenizers/<sha256>`` (same check), else read from the verified GGUF (its
    vocabulary only, no de-quantisation) and kept in that cache. Anything else: ``load_model``'s tokenizer."""
    if not (spec in MODELS and MODELS[spec].offline):
        return load_model(spec)[1]
    row = get_model(spec)
    sha = ASSETS[row.weights].sha256
    only = cache_dir() / "tokenizers" / sha
    tok = (_folder_tokenizer(cache_dir() / "dequant" / sha, sha, weights=True)
           or _folder_tokenizer(only, sha, weights=False))
    if tok is None:
        from transformers import AutoTokenizer

        gguf = fetch(row.weights)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        _install_template(tok, row)
        only.parent.mkdir(parents=True, exist_ok=True)
        _save_tokenizer(tok, only, sha)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    _install_template(tok, row)
    return tok
