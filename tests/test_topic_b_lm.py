"""Model-spec handling and the dequantised-model cache, with tiny models (no download)."""

import json

import pytest

from subliminal.cli import UserError
from subliminal.topic_b import lm
from subliminal.topic_b.lm import load_model


def test_unknown_spec_is_user_error():
    with pytest.raises(UserError, match="unknown model"):
        load_model("no-such-model")


def test_missing_gguf_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_model(str(tmp_path / "x.gguf"))


def test_dataset_asset_is_not_a_model():
    with pytest.raises(UserError, match="not a language model"):
        load_model("mnist")


def test_local_directory_roundtrip(tmp_path):
    from tiny_lm import build_model, build_tokenizer

    tok = build_tokenizer("split")
    build_model(tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model, tok2 = load_model(str(tmp_path))
    assert model.dtype.is_floating_point and tok2.chat_template


def test_corrupt_model_folder_is_one_line(tmp_path):
    from tiny_lm import build_model, build_tokenizer

    tok = build_tokenizer("split")
    build_model(tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    w = tmp_path / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])  # truncated weights
    with pytest.raises(UserError, match="cannot be loaded") as e:
        load_model(str(tmp_path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"hello, not a model\n", b"GGUF\x03\x00\x00\x00" + b"\x07" * 40])
def test_bad_or_truncated_gguf_is_one_line(tmp_path, scratch_cache, content):
    f = tmp_path / "m.gguf"
    f.write_bytes(content)
    with pytest.raises(UserError, match="cannot be read as a GGUF model") as e:
        load_model(str(f))
    assert "\n" not in str(e.value)
    assert not (scratch_cache / "dequant").exists() or not any((scratch_cache / "dequant").iterdir())


@pytest.fixture
def fake_dequantise(monkeypatch, tmp_path):
    """A .gguf path whose 'dequantisation' yields a tiny model (counting calls), so the cache logic
    runs for real without a real GGUF."""
    from tiny_lm import build_model, build_tokenizer

    calls = []

    def dequantise(gguf):
        calls.append(gguf)
        tok = build_tokenizer("split")
        return build_model(tok, seed=1), tok

    monkeypatch.setattr(lm, "_dequantise", dequantise)
    f = tmp_path / "tiny.gguf"
    f.write_bytes(b"stand-in for a GGUF file")
    return f, calls


def _eps(model):
    return model.config.rms_norm_eps


def test_dequant_cache_is_reused_when_intact(scratch_cache, fake_dequantise, capsys):
    f, calls = fake_dequantise
    m1, _ = load_model(str(f))
    m2, _ = load_model(str(f))
    assert len(calls) == 1  # second load came from the cache
    d = next((scratch_cache / "dequant").iterdir())
    rec = json.loads((d / "source.json").read_text())["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(rec)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert (a == b).all()
    assert "rebuilding" not in capsys.readouterr().err


@pytest.mark.parametrize("tamper", ["config", "tokenizer", "weights", "extra_file", "missing_file", "record"])
def test_tampered_dequant_cache_is_rebuilt_and_said(scratch_cache, fake_dequantise, capsys, tamper):
    f, calls = fake_dequantise
    m1, _ = load_model(str(f))
    d = next((scratch_cache / "dequant").iterdir())
    if tamper == "config":  # the case from the issue: P(owl) silently changed by 5 orders of magnitude
        cfg = json.loads((d / "config.json").read_text())
        cfg["rms_norm_eps"] = 0.5
        (d / "config.json").write_text(json.dumps(cfg))
    elif tamper == "tokenizer":
        t = json.loads((d / "tokenizer.json").read_text())
        t["model"]["vocab"]["<pad>"], t["model"]["vocab"]["<|im_end|>"] = (t["model"]["vocab"]["<|im_end|>"],
                                                                           t["model"]["vocab"]["<pad>"])
        (d / "tokenizer.json").write_text(json.dumps(t))
    elif tamper == "weights":
        w = bytearray((d / "model.safetensors").read_bytes())
        w[-5] ^= 0xFF
        (d / "model.safetensors").write_bytes(bytes(w))
    elif tamper == "extra_file":
        (d / "chat_template.jinja").write_text("{{ 'hijacked' }}")
    elif tamper == "missing_file":
        (d / "tokenizer_config.json").unlink()
    else:
        (d / "source.json").write_text("{broken")
    capsys.readouterr()
    m2, _ = load_model(str(f))
    err = capsys.readouterr().err
    assert len(calls) == 2, "tampered cache was used"
    said = [x for x in err.splitlines() if x.startswith("[lm]")]  # (transformers adds a progress bar)
    assert len(said) == 1 and "rebuilding" in said[0] and str(d) in said[0]
    assert _eps(m2) == _eps(m1)
    m3, _ = load_model(str(f))  # the rebuilt cache is valid again
    assert len(calls) == 2 and _eps(m3) == _eps(m1)


def test_cache_problem_names_the_changed_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    info = {"gguf_sha256": "abc", "files": lm._dir_hashes(tmp_path)}
    (tmp_path / "source.json").write_text(json.dumps(info))
    assert lm._cache_problem(tmp_path, "abc") is None
    assert "another GGUF" in lm._cache_problem(tmp_path, "other-gguf")
    (tmp_path / "config.json").write_text('{"rms_norm_eps": 1}')
    assert "config.json" in lm._cache_problem(tmp_path, "abc")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_load_tokenizer_gives_load_models_tokenizer(name):
    """``lm.load_tokenizer`` (no weights) tokenizes and templates as the tokenizer ``load_model`` returns."""
    from subliminal.assets import ASSETS, cache_dir
    from subliminal.topic_b.transfer.prompts import student_text

    if not (cache_dir() / ASSETS[name].filename).exists():
        pytest.skip(f"{name} asset not cached")
    a, (_, b) = lm.load_tokenizer(name), lm.load_model(name)
    assert (a.chat_template, a.pad_token, a.eos_token, a.bos_token, len(a)) == (b.chat_template, b.pad_token,
                                                                            b.eos_token, b.bos_token, len(b))
    for text in ("The quick brown fox, 495; 701\n688.", student_text(a, "Which animal?", "Owl.")[1]):
        assert a(text, add_special_tokens=False)["input_ids"] == b(text, add_special_tokens=False)["input_ids"]
