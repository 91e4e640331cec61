"""Image data: the embedded digits split, the IDX reader / downloader on files written here,
and the IDX folder (under data/raw/) as a dependency of prepare_images."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from ddpm_lab.runtime.params import ConfigError, DataError, from_section
from ddpm_lab.images.data import (
    IDX_FILES,
    IDX_MD5,
    RAW_DIR,
    ImageDataConfig,
    ensure_idx_files,
    fetch,
    idx_bytes,
    load_idx_dataset,
    load_split,
    read_idx,
)

ROOT = Path(__file__).resolve().parents[2]


def _images(n=5, h=4, w=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def _write_idx_folder(folder, n_train=12, n_test=6, gz=True, seed=0):
    """Four fabricated MNIST-layout files (train 12 / test 6 images of 4x3 pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": _images(n_train, seed=2 + 10 * seed),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": _images(n_test, seed=3 + 10 * seed),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for key, arr in arrays.items():
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{IDX_FILES[key]}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / IDX_FILES[key]).write_bytes(raw)
    return arrays


# -- the reader ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arr",
    [
        _images(),
        np.arange(7, dtype=np.uint8),
        np.arange(-6, 6, dtype=np.int16).reshape(3, 4),
        np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5),
    ],
)
def test_idx_roundtrip_raw_and_gzip(tmp_path, arr):
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    for name in ("a", "a.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == arr.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)


def test_idx_header_is_the_standard_one():
    # MNIST's train-images header: 0x00000803 then the sizes 60000, 28, 28 big-endian.
    raw = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    assert raw[:16] == bytes.fromhex("00000803000000020000001c0000001c")


@pytest.mark.parametrize(
    "content,match",
    [
        (b"\x00\x01\x08\x01" + b"\x00" * 8, r"bad magic number 00010801: expected an IDX file"),
        (b"PK\x03\x04", r"bad magic number 504b0304"),
        (b"", r"bad magic number none"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", r"unknown IDX type code 0x07: expected one of 0x08"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", r"truncated header \(8 bytes\): expected 16 for 3 dimensions"),
        (idx_bytes(_images())[:-5], r"truncated: 55 bytes of data, expected 60 for shape \(5, 4, 3\)"),
        (idx_bytes(_images()) + b"xx", r"trailing bytes: 62 bytes of data, expected 60"),
        (gzip.compress(idx_bytes(_images()), mtime=0)[:-12], r"corrupt gzip data .*: expected a gzipped IDX file"),
    ],
)
def test_malformed_idx_is_one_line_naming_the_file(tmp_path, content, match):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        read_idx(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_missing_idx_file(tmp_path):
    with pytest.raises(DataError, match=r"nope-idx3-ubyte: no such file: expected an IDX file"):
        read_idx(tmp_path / "nope-idx3-ubyte")


def test_load_idx_dataset_gz_and_raw(tmp_path):
    for gz in (True, False):
        arrays = _write_idx_folder(tmp_path / str(gz), gz=gz)
        x, y = load_idx_dataset(tmp_path / str(gz), "train")
        np.testing.assert_array_equal(x, arrays["train_images"])
        np.testing.assert_array_equal(y, arrays["train_labels"])


def test_load_idx_dataset_inconsistent(tmp_path):
    _write_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: 4 labels for 6 images .*: expected equal"):
        load_idx_dataset(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\[\.gz\]: no such file"):
        load_idx_dataset(tmp_path, "test")


# -- download with checksum ------------------------------------------------------------------
def test_fetch_file_url_verifies_checksum(tmp_path):
    src = tmp_path / "served.gz"
    src.write_bytes(b"payload")
    good = hashlib.md5(b"payload").hexdigest()
    dest = fetch(src.as_uri(), tmp_path / "out" / "f.gz", ("md5", good))
    assert dest.read_bytes() == b"payload"
    sha = hashlib.sha256(b"payload").hexdigest()
    assert fetch(src.as_uri(), tmp_path / "out" / "g.gz", ("sha256", sha)).read_bytes() == b"payload"
    with pytest.raises(
        DataError, match=r"served.gz: md5 [0-9a-f]{32}: expected 0{32} \(corrupt or wrong file; not saved\)"
    ):
        fetch(src.as_uri(), tmp_path / "out" / "h.gz", ("md5", "0" * 32))
    assert not (tmp_path / "out" / "h.gz").exists()
    with pytest.raises(DataError, match=r"missing.gz: download failed"):
        fetch((tmp_path / "missing.gz").as_uri(), tmp_path / "out" / "i.gz", ("md5", good))


def test_ensure_idx_files_downloads_and_verifies(tmp_path, monkeypatch):
    """A fake opener serves fabricated files; the expected MD5s are patched to theirs."""
    served = {}
    for key, stem in IDX_FILES.items():
        served[f"{stem}.gz"] = gzip.compress(
            idx_bytes(np.zeros((3, 2, 2) if "images" in key else 3, np.uint8)), mtime=0
        )
    monkeypatch.setitem(IDX_MD5, "mnist", {k: hashlib.md5(v).hexdigest() for k, v in served.items()})
    urls = []

    def opener(url, timeout):
        urls.append(url)
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    ensure_idx_files("mnist", tmp_path, "https://mirror.invalid/mnist", opener=opener)
    assert sorted(urls) == sorted(f"https://mirror.invalid/mnist/{n}" for n in served)
    ensure_idx_files("mnist", tmp_path, None, opener=opener)  # all present and verified: nothing fetched
    assert len(urls) == 4
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: md5 [0-9a-f]+: expected [0-9a-f]+ \(corrupt"):
        ensure_idx_files("mnist", tmp_path, None, opener=opener)


# -- the split ---------------------------------------------------------------------------
def test_digits_split_is_seeded_scaled_and_disjoint():
    cfg = ImageDataConfig(source="digits", n_heldout=300, seed=0)
    a, b = load_split(cfg), load_split(cfg)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (1497, 1, 8, 8) and a.x_heldout.shape == (300, 1, 8, 8)
    assert a.x_train.dtype == np.float32
    assert a.x_train.min() == -1.0 and a.x_train.max() == 1.0  # digits pixels span 0..16
    assert set(np.unique(a.y_train)) == set(range(10))
    # disjoint: no held-out image equals a training image at the same index of the original
    other = load_split(ImageDataConfig(source="digits", n_heldout=300, seed=1))
    assert not np.array_equal(other.x_heldout, a.x_heldout)


def test_idx_split_uses_test_files_for_heldout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # images_data.path is relative to the repository root
    arrays = _write_idx_folder(tmp_path / "data/raw/mnist")
    split = load_split(ImageDataConfig(source="mnist", path="data/raw/mnist", n_heldout=4, max_train=10))
    assert split.x_train.shape == (10, 1, 4, 3) and split.x_heldout.shape == (4, 1, 4, 3)
    ho = np.round((split.x_heldout[:, 0] + 1) / 2 * 255).astype(np.uint8)
    assert all(any(np.array_equal(h, t) for t in arrays["test_images"]) for h in ho)
    with pytest.raises(DataError, match=r"n_heldout = 7: expected at most the 6 test images"):
        load_split(ImageDataConfig(source="mnist", path="data/raw/mnist", n_heldout=7))


@pytest.mark.parametrize(
    "raw,match",
    [
        ({"source": "cifar"}, r"images_data\.source = 'cifar': expected one of digits, mnist, fashion_mnist"),
        ({"source": "mnist", "path": None}, r"images_data\.path = None: expected a folder for the mnist IDX files"),
        ({"n_heldout": 1}, r"images_data\.n_heldout = 1: expected an integer >= 2"),
        ({"download": "yes"}, r"images_data\.download = 'yes': expected true or false"),
        (
            {"source": "mnist", "path": "/tmp/mnist"},
            r"^params\.yaml: images_data\.path = '/tmp/mnist': expected a relative path under data/raw/ \(a dependency "
            r"of prepare_images in dvc\.yaml\), e\.g\. data/raw/mnist$",
        ),
        (
            {"source": "fashion_mnist", "path": "data/fashion"},
            r"images_data\.path = 'data/fashion': expected a relative "
            r"path under data/raw/ .*e\.g\. data/raw/fashion_mnist$",
        ),
        ({"source": "mnist", "path": "data/raw/../mnist"}, r"images_data\.path = 'data/raw/\.\./mnist': expected"),
        ({"source": "mnist", "path": "data/rawmnist"}, r"images_data\.path = 'data/rawmnist': expected"),
    ],
)
def test_bad_data_config(raw, match):
    section = {
        "source": "digits",
        "path": None,
        "download": False,
        "mirror": None,
        "n_heldout": 360,
        "max_train": 0,
        "seed": 0,
        **raw,
    }
    with pytest.raises(ConfigError, match=match):
        from_section(ImageDataConfig, {"images_data": section}, "images_data")


@pytest.mark.parametrize("path", ["data/raw/mnist", "./data/raw/fashion/", "data/raw"])
def test_idx_folder_under_data_raw_is_accepted(path):
    assert ImageDataConfig(source="mnist", path=path).path == path


# -- the IDX folder as a dependency --------------------------------------------------------------
def test_raw_dir_is_a_dependency_of_prepare_images_and_always_exists():
    """data/raw/ is listed as a dep (DVC hashes every file in it) and exists in a clean clone
    (its README.md and .gitignore are the files git keeps there), so the digits default works."""
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["prepare_images"]["deps"]
    assert RAW_DIR in deps
    assert (ROOT / RAW_DIR / "README.md").is_file() and (ROOT / RAW_DIR / ".gitignore").is_file()


@pytest.mark.slow
def test_a_changed_idx_file_reruns_prepare_images(dvc_repo):
    """With source mnist, replacing one IDX file under data/raw/mnist makes prepare_images stale
    (dvc status) and dvc repro rebuilds the split from the new file."""
    _write_idx_folder(dvc_repo.path / "data/raw/mnist")
    dvc_repo.set_params({"images_data": {"source": "mnist", "path": "data/raw/mnist", "n_heldout": 4}})
    dvc_repo.dvc("repro", "prepare_images")
    before = np.load(dvc_repo.path / "data/images/split.npz")["x_train"]
    assert before.shape == (12, 1, 4, 3)
    assert "up to date" in dvc_repo.dvc("status", "prepare_images").stdout

    new = _write_idx_folder(dvc_repo.path / "tmp_idx", seed=1)["train_images"]
    (dvc_repo.path / "data/raw/mnist/train-images-idx3-ubyte.gz").write_bytes(
        (dvc_repo.path / "tmp_idx/train-images-idx3-ubyte.gz").read_bytes()
    )
    status = dvc_repo.dvc("status", "prepare_images").stdout
    assert "prepare_images:" in status and re.search(r"modified:\s+data/raw\n", status), status
    out = dvc_repo.dvc("repro", "prepare_images").stdout
    assert "Running stage 'prepare_images'" in out
    after = np.load(dvc_repo.path / "data/images/split.npz")["x_train"]
    got = np.round((after[:, 0] + 1) / 2 * 255).astype(np.uint8)
    assert sorted(map(bytes, got)) == sorted(map(bytes, new))  # the split is now made of the new file's images

    # A file added next to them (e.g. a README) counts too: DVC hashes the whole folder.
    (dvc_repo.path / "data/raw/mnist/NOTES.txt").write_text("where these came from\n")
    assert "modified:" in dvc_repo.dvc("status", "prepare_images").stdout

    # A path outside data/raw/ is a one-line error (exit 2) naming the key, before anything is read.
    dvc_repo.set_params({"images_data": {"path": "tmp_idx"}})
    proc = dvc_repo.stage("stages.prepare_images", check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("error: params.yaml: images_data.path = 'tmp_idx': expected a relative path under data/raw/")
    )
