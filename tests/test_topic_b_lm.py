"""Model-spec handling that needs no download."""

import pytest

from subliminal.common import UserError
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


def test_dequant_cache_check_detects_tampering(tmp_path):
    import json

    from subliminal.topic_b.lm import _cache_is_valid, _safetensor_hashes

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    info = {"gguf_sha256": "abc", "safetensors": _safetensor_hashes(tmp_path)}
    (tmp_path / "source.json").write_text(json.dumps(info))
    assert _cache_is_valid(tmp_path, "abc")
    assert not _cache_is_valid(tmp_path, "other-gguf")
    (tmp_path / "model.safetensors").write_bytes(b"changed")
    assert not _cache_is_valid(tmp_path, "abc")
