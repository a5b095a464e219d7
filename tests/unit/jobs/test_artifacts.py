import json

import pytest

from jobs.artifacts import ArtifactError, ArtifactRef, ArtifactStore, ChecksumError


def test_same_content_same_digest_and_verified_open(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    ref = store.put_files({"w.bin": b"\x00\x01" * 1000, "sub/config.json": b"{}"}, "model", {"job_id": "j"})
    again = store.put_files({"sub/config.json": b"{}", "w.bin": b"\x00\x01" * 1000}, "model", {"job_id": "other"})
    assert ref == again and ref.files == 2 and ref.size == 2002
    other = store.put_files({"w.bin": b"\x00\x02" * 1000, "sub/config.json": b"{}"}, "model")
    assert other.digest != ref.digest
    folder = store.open("model", ref.digest)
    assert (folder / "w.bin").read_bytes() == b"\x00\x01" * 1000
    assert store.manifest("model", ref.digest)["meta"] == {"job_id": "j"}  # first writer's metadata kept
    assert store.open_uri(ref.uri) == folder
    assert ArtifactRef.parse_uri(ref.uri) == ("model", ref.digest)
    assert not list((tmp_path / "a" / ".staging").iterdir())


@pytest.mark.parametrize("tamper", ["modify", "delete", "add"])
def test_tampered_artifact_is_refused(tmp_path, tamper):
    store = ArtifactStore(tmp_path)
    ref = store.put_files({"a.txt": b"hello", "b.txt": b"world"}, "dataset")
    folder = store.open("dataset", ref.digest)
    if tamper == "modify":
        (folder / "a.txt").write_bytes(b"hellO")
    elif tamper == "delete":
        (folder / "b.txt").unlink()
    else:
        (folder / "c.txt").write_bytes(b"!")
    with pytest.raises(ChecksumError):
        store.open("dataset", ref.digest)
    store.open("dataset", ref.digest, verify=False)  # explicit opt-out still finds the folder


def test_tampered_manifest_is_refused(tmp_path):
    store = ArtifactStore(tmp_path)
    ref = store.put_files({"a.txt": b"hello"}, "dataset")
    path = store.open("dataset", ref.digest) / "manifest.json"
    m = json.loads(path.read_text())
    m["files"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(m))
    with pytest.raises(ChecksumError):
        store.open("dataset", ref.digest)


def test_unknown_or_malformed_names(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactError):
        store.open("model", "ab" * 32)
    with pytest.raises(ArtifactError):
        store.open("../etc", "ab" * 32)
    with pytest.raises(ArtifactError):
        ArtifactRef.parse_uri("s3://bucket/x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError):
        store.put_dir(tmp_path / "empty", "model")
