"""Output folders the user names (``--out``): sisbench writes its files there and never destroys others.

Every folder sisbench writes into holds a manifest, ``.sisbench-manifest.json``::

    {"tool": "sisbench", "version": "0.1.0", "kind": "generated images", "complete": true,
     "files": {"val_00000.png": {"size": 5123, "sha256": "..."}, ...}, "dirs": []}

It holds no timestamp (the file's mtime is one), so the same inputs still give a byte-identical folder.

The rules (:func:`prepare_output_dir`):

* A missing or empty folder is created (with the umask's mode, not ``mkdtemp``'s 0700) and used.
* A folder with a sisbench manifest of the same kind is a previous output: the files it lists may be
  replaced; a listed file the new run does not produce (a stale image of a bigger previous run) is
  deleted only if its bytes still have the sha256 the manifest recorded. Files it does not list are
  never touched, and a new file whose name is taken by one of them is refused.
* A non-empty folder without a manifest (``.``, a photo folder) is refused in one line, before any long
  work, unless ``overwrite=True``. Even then sisbench only writes its own names (replacing same-named
  files) and deletes nothing it did not write.

Interrupted runs: the manifest is written first, marked ``"complete": false``, and lists each name
before its file is written (:meth:`OutputDir.claim`); sha256 values are flushed every few seconds and
at the end, when the manifest is rewritten with ``"complete": true``. A re-run therefore recognises a
partial output as its own and replaces it. A name claimed over a foreign file (with ``overwrite``) stays
foreign until sisbench has written it. Each file is written to a hidden temp name beside it and
``os.replace``'d, so no reader sees half a file; a hard kill can leave one ``.NAME.sisbench-tmp-*``.

Hand-written on ``os`` primitives: ``bench.cache.atomic_write`` uses ``mkstemp`` (mode 0600), and the
libraries for atomic writes (``atomicwrites`` is archived) neither keep the umask nor track ownership.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from bench.errors import ConfigError

MANIFEST_NAME = ".sisbench-manifest.json"
TOOL = "sisbench"
FLUSH_SECONDS = 10.0  # how often sha256 values of written files reach the manifest during a run


class OutputDirError(ConfigError):
    """An output folder (``--out``) cannot be used without destroying files sisbench did not write."""


def _version() -> str:
    from bench import __version__

    return str(__version__)


def write_file_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *,
                      fsync: bool = True) -> Path:
    """:func:`bench.cache.atomic_write`: a hidden temp file beside ``path``, then ``os.replace``; the file gets
    0666 minus the umask.

    Raises:
        OSError: the folder is not writable.
    """
    from bench.cache import atomic_write

    return atomic_write(path, write, fsync=fsync)


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new uniquely named folder in ``parent`` with the umask's mode (``tempfile.mkdtemp`` makes 0700).

    Raises:
        OSError: ``parent`` is not writable.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)  # the kernel applies the umask
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary folder name", str(parent / prefix))


def _check_name(name: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) or name == MANIFEST_NAME:
        raise ValueError(f"output file name must be a relative path inside the folder, got {name!r}")
    return p.as_posix()


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sisbench manifest of ``folder``, or None if there is none or it is not a sisbench manifest."""
    try:
        data = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL or not isinstance(data.get("files"), dict):
        return None
    return data


def _describe_foreign(folder: Path) -> tuple[int, str]:
    names = sorted(p.name for p in folder.iterdir())
    return len(names), names[0] if names else ""


@dataclass
class OutputDir:
    """A folder that :func:`prepare_output_dir` cleared for writing; write through its methods.

    ``path`` is created on the first write. Call :meth:`finish` at the end; until then the manifest
    says ``"complete": false``.
    """

    path: Path
    kind: str
    overwrite: bool
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # the files an earlier run recorded
    previous_dirs: list[str] = field(default_factory=list)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the manifest lists now
    written: set[str] = field(default_factory=set)  # names written by this run
    dirs: set[str] = field(default_factory=set)  # sub-folders sisbench created (removed when emptied)
    started: bool = False
    _last_flush: float = 0.0

    def __fspath__(self) -> str:
        return str(self.path)

    # --- ownership ---------------------------------------------------------------------------------
    def _ours(self, name: str) -> bool:
        """Whether the file at ``name`` was written (or claimed over a free name) by sisbench."""
        e = self.previous.get(name) if name not in self.entries else self.entries[name]
        return e is not None and not (e.get("existed") and e.get("sha256") is None)

    def _begin(self) -> None:
        if self.started:
            return
        fresh = prepare_output_dir(self.path, overwrite=self.overwrite, kind=self.kind)  # re-check: time has passed
        self.previous, self.previous_dirs = fresh.previous, fresh.previous_dirs
        self.entries = {k: dict(v) for k, v in self.previous.items()}
        self.dirs = set(self.previous_dirs)
        self.path.mkdir(parents=True, exist_ok=True)  # mode 0777 minus the umask
        self.started = True
        self._write_manifest(complete=False)

    def claim(self, names: Iterable[str]) -> None:
        """Record ``names`` in the manifest before their files are written, so an interrupted run's
        partial output is recognised as sisbench's by the next one.

        Raises:
            OutputDirError: a name is taken by a file sisbench did not write (and not ``overwrite``).
        """
        self._begin()
        new = False
        for name in names:
            name = _check_name(name)
            if name in self.entries and self._ours(name):
                continue
            target = self.path / name
            exists = target.exists() or target.is_symlink()
            if exists and not self.overwrite:
                raise OutputDirError(
                    f"{target} exists and was not written by sisbench; move it away, choose a new folder or "
                    "pass --overwrite"
                )
            if exists and target.is_dir():
                raise OutputDirError(f"{target} is a folder where sisbench writes a file; choose a new folder")
            self.entries[name] = {"size": None, "sha256": None, **({"existed": True} if exists else {})}
            new = True
        if new:
            self._write_manifest(complete=False)

    def makedirs(self, sub: str) -> Path:
        """Create the sub-folder ``sub`` (and its parents) for files written by other code; sisbench
        removes the ones it created once they are empty."""
        self._begin()
        self._ensure_parent(_check_name(sub) + "/x")
        return self.path / sub

    def _ensure_parent(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            d = self.path / sub
            if d.is_dir():
                continue
            d.mkdir()
            self.dirs.add(sub)

    # --- writing -----------------------------------------------------------------------------------
    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``data`` to ``self.path / name`` atomically (``name`` may contain ``/``); returns its path.

        Raises:
            OutputDirError: the name is taken by a file sisbench did not write (see :meth:`claim`).
        """
        name = _check_name(name)
        if name not in self.entries or not self._ours(name):
            self.claim([name])
        self._ensure_parent(name)
        path = write_file_atomic(self.path / name, lambda f: f.write(data))
        self.entries[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        self.written.add(name)
        if time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self._write_manifest(complete=False)
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` (UTF-8) to ``self.path / name`` atomically."""
        return self.write_bytes(name, text.encode("utf-8"))

    def copy_file(self, name: str, src: str | os.PathLike[str]) -> Path:
        """Copy the file ``src`` to ``self.path / name`` atomically."""
        return self.write_bytes(name, Path(src).read_bytes())

    def record(self, names: Iterable[str]) -> None:
        """Hash files that were written into claimed ``names`` by other code (worker processes)."""
        from bench.cache import sha256_file

        for name in names:
            name = _check_name(name)
            if name not in self.entries:
                raise ValueError(f"{name!r} was not claimed before it was written")
            p = self.path / name
            self.entries[name] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
            self.written.add(name)

    # --- the end ---------------------------------------------------------------------------------------
    def finish(self) -> Path:
        """Remove stale files of a previous sisbench run, write the final manifest; returns ``path``.

        A listed file this run did not write is deleted only if its bytes have the recorded sha256
        (a file the user edited stays, still listed); a name claimed over a foreign file and never
        written is dropped from the manifest and left alone. Sub-folders sisbench created are removed
        once empty.
        """
        self._begin()
        from bench.cache import sha256_file

        for name in sorted(set(self.entries) - self.written):
            e = self.entries[name]
            p = self.path / name
            if not p.is_file() or p.is_symlink():
                del self.entries[name]
            elif e.get("existed") and e.get("sha256") is None:
                del self.entries[name]  # a foreign file we had leave to replace but did not: not ours
            elif e.get("sha256") is not None and e.get("size") == p.stat().st_size and sha256_file(p) == e["sha256"]:
                p.unlink()
                del self.entries[name]
            # else: sisbench's name, but the bytes are not what it recorded: kept, and still listed
        for sub in sorted(self.dirs, key=lambda s: -s.count("/")):
            if any(k.startswith(sub + "/") for k in self.entries):
                continue
            try:
                (self.path / sub).rmdir()  # only an empty folder is removed
                self.dirs.discard(sub)
            except OSError:
                pass
        self._write_manifest(complete=True)
        return self.path

    def _write_manifest(self, *, complete: bool) -> None:
        data = {
            "tool": TOOL,
            "version": _version(),
            "kind": self.kind,
            "complete": complete,
            "files": dict(sorted(self.entries.items())),
            "dirs": sorted(self.dirs),
        }
        text = json.dumps(data, indent=1) + "\n"
        write_file_atomic(self.path / MANIFEST_NAME, lambda f: f.write(text.encode("utf-8")))
        self._last_flush = time.monotonic()


def prepare_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False,
                       kind: str = "generated images") -> OutputDir:
    """Check that sisbench may write into ``path`` and return the handle to write through.

    Creates nothing (the folder is made on the first write), so call it before any long work.

    Args:
        path: The folder (``--out``); may be missing, empty, a previous sisbench output, or, with
            ``overwrite``, any folder.
        overwrite: Allow a folder sisbench did not write (or one of another kind); files are still
            only ever replaced by same-named sisbench files, never deleted.
        kind: What the folder holds (``"generated images"``, ``"report"``, ``"synthetic dataset"``).

    Returns:
        An :class:`OutputDir`; ``previous`` holds the files an earlier sisbench run recorded.

    Raises:
        OutputDirError: ``path`` is a file; or it is a non-empty folder without a sisbench manifest, or
            with one of another kind, and ``overwrite`` is false.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputDirError(f"{folder} exists and is not a folder; choose a new folder for the {kind}")
    if folder.exists() and any(folder.iterdir()):
        manifest = read_manifest(folder)
        if manifest is None:
            if not overwrite:
                n, example = _describe_foreign(folder)
                raise OutputDirError(
                    f"{folder} is not empty and was not written by sisbench ({n} files, e.g. {example}); "
                    "choose a new folder or pass --overwrite"
                )
            return OutputDir(folder, kind, overwrite)
        if manifest.get("kind") != kind and not overwrite:
            raise OutputDirError(
                f"{folder} holds sisbench {manifest.get('kind')}, not {kind}; choose a new folder or pass --overwrite"
            )
        files = {str(k): dict(v) for k, v in manifest["files"].items() if isinstance(v, dict)}
        dirs = [str(d) for d in manifest.get("dirs", []) if isinstance(d, str)]
        return OutputDir(folder, kind, overwrite, previous=files, previous_dirs=dirs)
    return OutputDir(folder, kind, overwrite)


def as_output_dir(path: str | os.PathLike[str] | OutputDir, *, overwrite: bool = False,
                  kind: str = "generated images") -> OutputDir:
    """``path`` itself if it is already an :class:`OutputDir` (checked earlier), else :func:`prepare_output_dir`."""
    if isinstance(path, OutputDir):
        return path
    return prepare_output_dir(path, overwrite=overwrite, kind=kind)


def check_output_file(path: str | os.PathLike[str], *, overwrite: bool = False, kind: str = "checkpoint") -> Path:
    """Check that sisbench may write the single file ``path`` (e.g. ``segmenter train --out``).

    The file is sisbench's when ``<path>.sha256`` (``"<sha256>  <name>"``, as sisbench writes beside its
    checkpoints) matches its bytes; any other existing file, or a foreign ``.sha256`` sidecar, is refused
    unless ``overwrite``.

    Raises:
        OutputDirError: the file (or its sidecar) exists and was not written by sisbench.
    """
    from bench.cache import sha256_file

    p = Path(path)
    side = p.with_name(p.name + ".sha256")
    if p.exists() and p.is_dir():
        raise OutputDirError(f"{p} is a folder; give a file path for the {kind}")
    if overwrite:
        return p
    try:
        recorded = side.read_text(encoding="utf-8").split() if side.exists() else None
    except (OSError, UnicodeDecodeError):
        recorded = ["?"]
    side_ours = recorded is not None and len(recorded) == 2 and recorded[1] == p.name
    if recorded is not None and not side_ours:
        raise OutputDirError(f"{side} exists and was not written by sisbench; choose another path or pass --overwrite")
    if p.exists() and not (side_ours and recorded is not None and sha256_file(p) == recorded[0]):
        raise OutputDirError(
            f"{p} exists and was not written by sisbench (no matching {side.name}); choose another path or "
            "pass --overwrite"
        )
    return p
