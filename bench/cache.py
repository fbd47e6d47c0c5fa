"""The on-disk cache ($BENCH_CACHE, default ~/.cache/sisbench), atomic writes, and the identities cache
keys are made of (file content digests, code fingerprints)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO


def cache_dir(*parts: str) -> Path:
    """``$BENCH_CACHE/<parts...>`` (created); never inside the package."""
    root = Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "sisbench").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *, fsync: bool = True) -> Path:
    """Write a file through ``write(fileobj)`` into a hidden temp file beside it, fsync, then ``os.replace``.

    A reader never sees a half-written file, and a crash leaves at most a stray ``.<name>.sisbench-tmp-<hex>`` file.
    The file gets the mode ``open()`` would give it (0666 minus the umask), not ``mkstemp``'s 0600.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.sisbench-tmp-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# --- identities: what a cache key is made of ----------------------------------------------------------
def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's content, memoised under ``$BENCH_CACHE/digests`` by its stat.

    The memo is keyed by the resolved path and ``(size, mtime_ns, inode, ctime_ns)``: any write to the
    file (even one that keeps its size and restores its mtime, which changes ctime) re-hashes it, so the
    digest always describes the current bytes. Re-hashing a large dataset is then a stat per file.

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path).resolve()
    st = path.stat()
    memo_file = cache_dir("digests") / (hashlib.sha256(str(path.parent).encode()).hexdigest()[:20] + ".json")
    memo = _read_memo(memo_file)
    entry = memo.get(path.name)
    stat = _stat_key(st)
    if isinstance(entry, list) and len(entry) == 2 and entry[0] == stat:
        return str(entry[1])
    digest = sha256_file(path)
    memo = _read_memo(memo_file)  # merge with what a concurrent process may have added meanwhile
    memo[path.name] = [stat, digest]
    _pending_memos[memo_file] = memo
    if len(_pending_memos) > 64:
        flush_digests()
    return digest


_pending_memos: dict[Path, dict[str, object]] = {}
#: memo files already parsed, by their stat: a folder of N files is parsed once, not once per file
_loaded_memos: dict[Path, tuple[tuple[int, int, int], dict[str, object]]] = {}


def _read_memo(memo_file: Path) -> dict[str, object]:
    if memo_file in _pending_memos:
        return _pending_memos[memo_file]
    try:
        st = memo_file.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ino)  # another process's write changes it: read again
        loaded = _loaded_memos.get(memo_file)
        if loaded is not None and loaded[0] == key:
            return loaded[1]
        data = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        return {}
    data = data if isinstance(data, dict) else {}
    _loaded_memos[memo_file] = (key, data)
    return data


def flush_digests() -> None:
    """Write the digests memoised since the last flush (atomically; a lost race only costs a re-hash)."""
    while _pending_memos:
        memo_file, memo = _pending_memos.popitem()
        atomic_write_text(memo_file, json.dumps(memo, sort_keys=True))


def files_fingerprint(files: Iterable[tuple[str, str | os.PathLike[str]]]) -> str:
    """sha256 over ``(name, content sha256)`` pairs, in the given order.

    ``name`` is how the file is known to the result (a sample id, a path relative to the data root),
    never an absolute path, so the same data in another folder or on another machine has the same
    fingerprint.
    """
    h = hashlib.sha256()
    for name, path in files:
        h.update(f"{name}\0{file_digest(path)}\n".encode())
    flush_digests()
    return h.hexdigest()


def code_fingerprint(*modules: str) -> str:
    """sha256 (first 16 hex) of the source of the named modules: the version of the code that writes a
    cache entry. Any edit to that code yields a new key, so an entry is never read by code that would
    have written it differently."""
    import importlib.util

    h = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or not Path(origin).is_file():
            raise ValueError(f"code_fingerprint: module {name!r} has no source file")
        h.update(name.encode() + b"\0" + Path(origin).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def key_digest(obj: object, n: int = 16) -> str:
    """sha256 (first ``n`` hex) of the canonical JSON of ``obj``: a cache key from a dict of inputs."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]
