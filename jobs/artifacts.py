"""A content-addressed local artifact store: datasets and model checkpoints, verified on load.

An artifact is a folder of files. Its id (``digest``) is the SHA-256 of a canonical manifest listing every
file's relative path, size and SHA-256, so the same content always has the same id and any change to any
file changes it. The store keeps ``<root>/<kind>/<digest[:2]>/<digest>/`` with the files and a
``manifest.json`` (file list plus free-form metadata such as lineage and metrics). Writes are atomic
(staged under ``<root>/.staging`` and renamed), so a worker that dies mid-write leaves no half artifact.
:meth:`ArtifactStore.open` re-hashes every file and refuses a folder whose content does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class ArtifactError(Exception):
    """An artifact is missing or malformed."""


class ChecksumError(ArtifactError):
    """An artifact's files do not match its manifest (corruption or tampering)."""


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A pointer to a stored artifact: its kind, content digest, total size and file count."""

    kind: str
    digest: str
    size: int
    files: int

    @property
    def uri(self) -> str:
        """``artifact://<kind>/<digest>``: how registry rows and job results name the artifact."""
        return f"artifact://{self.kind}/{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(kind=data["kind"], digest=data["digest"], size=int(data["size"]), files=int(data["files"]))

    @classmethod
    def parse_uri(cls, uri: str) -> tuple[str, str]:
        """``(kind, digest)`` from an ``artifact://`` URI."""
        if not uri.startswith("artifact://"):
            raise ArtifactError(f"not an artifact URI: {uri!r}")
        kind, _, digest = uri[len("artifact://"):].partition("/")
        if not kind or len(digest) != 64:
            raise ArtifactError(f"malformed artifact URI: {uri!r}")
        return kind, digest


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _listing(folder: Path) -> list[dict[str, Any]]:
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST:
            continue
        entries.append({"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)})
    return entries


def content_digest(entries: list[dict[str, Any]]) -> str:
    """The artifact id: SHA-256 of the canonical JSON of the sorted file entries."""
    canon = json.dumps(sorted(entries, key=lambda e: e["path"]), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


class ArtifactStore:
    """Content-addressed artifacts under ``root`` (the configurable local artifact directory)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, kind: str, digest: str) -> Path:
        if not kind.isidentifier() or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ArtifactError(f"bad artifact name {kind}/{digest}")
        return self.root / kind / digest[:2] / digest

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A scratch folder on the store's file system (renames into the store are atomic); removed after."""
        base = self.root / ".staging"
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="stage-", dir=base))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def put_dir(self, src: str | os.PathLike[str], kind: str, meta: dict[str, Any] | None = None,
                *, move: bool = False) -> ArtifactRef:
        """Store the files under ``src`` as one artifact; returns the existing one if the content is known."""
        src = Path(src)
        entries = _listing(src)
        if not entries:
            raise ArtifactError(f"no files under {src}")
        digest = content_digest(entries)
        ref = ArtifactRef(kind, digest, sum(e["size"] for e in entries), len(entries))
        target = self._dir(kind, digest)
        if (target / MANIFEST).exists():
            return ref
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{digest}.{uuid.uuid4().hex[:8]}"
        if move:
            shutil.move(src, tmp)  # a rename when both are on the store's file system
        else:
            shutil.copytree(src, tmp)
        manifest = {"kind": kind, "digest": digest, "files": entries, "meta": meta or {}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        try:
            os.rename(tmp, target)
        except OSError:  # another writer stored the same content first
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / MANIFEST).exists():
                raise
        return ref

    def put_files(self, files: dict[str, bytes], kind: str, meta: dict[str, Any] | None = None) -> ArtifactRef:
        """Store in-memory files (relative path → bytes) as one artifact."""
        with self.staging() as stage:
            for rel, data in files.items():
                path = stage / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            return self.put_dir(stage, kind, meta, move=True)

    def exists(self, kind: str, digest: str) -> bool:
        return (self._dir(kind, digest) / MANIFEST).exists()

    def manifest(self, kind: str, digest: str) -> dict[str, Any]:
        """The stored manifest (file list and metadata), not verified."""
        path = self._dir(kind, digest) / MANIFEST
        if not path.exists():
            raise ArtifactError(f"no artifact {kind}/{digest} under {self.root}")
        return json.loads(path.read_text())

    def verify(self, kind: str, digest: str) -> dict[str, Any]:
        """Re-hash every file; raise :class:`ChecksumError` on any mismatch, missing or extra file."""
        folder = self._dir(kind, digest)
        manifest = self.manifest(kind, digest)
        listed = {e["path"]: e for e in manifest["files"]}
        actual = _listing(folder)
        found = {e["path"]: e for e in actual}
        if set(found) != set(listed):
            missing, extra = sorted(set(listed) - set(found)), sorted(set(found) - set(listed))
            raise ChecksumError(f"artifact {kind}/{digest}: missing {missing}, unexpected {extra}")
        for rel, entry in listed.items():
            if found[rel]["sha256"] != entry["sha256"] or found[rel]["size"] != entry["size"]:
                raise ChecksumError(f"artifact {kind}/{digest}: {rel} does not match its checksum")
        if content_digest(actual) != digest:
            raise ChecksumError(f"artifact {kind}/{digest}: content digest mismatch")
        return manifest

    def open(self, kind: str, digest: str, *, verify: bool = True) -> Path:
        """The artifact's folder, after checking its checksums (the default)."""
        if verify:
            self.verify(kind, digest)
        elif not self.exists(kind, digest):
            raise ArtifactError(f"no artifact {kind}/{digest} under {self.root}")
        return self._dir(kind, digest)

    def open_uri(self, uri: str, *, verify: bool = True) -> Path:
        kind, digest = ArtifactRef.parse_uri(uri)
        return self.open(kind, digest, verify=verify)

    def find(self, kind: str, **meta: Any) -> list[tuple[ArtifactRef, dict[str, Any]]]:
        """Artifacts of ``kind`` whose metadata has every given key/value (manifests only; not verified)."""
        out = []
        for path in sorted((self.root / kind).glob("*/*/" + MANIFEST)):
            m = json.loads(path.read_text())
            if all(m.get("meta", {}).get(k) == v for k, v in meta.items()):
                out.append((ArtifactRef(kind, m["digest"], sum(e["size"] for e in m["files"]), len(m["files"])),
                            m["meta"]))
        return out

    def ref(self, kind: str, digest: str) -> ArtifactRef:
        m = self.manifest(kind, digest)
        return ArtifactRef(kind, digest, sum(e["size"] for e in m["files"]), len(m["files"]))
