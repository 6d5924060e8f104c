"""App bundles: a zip or tar of an app directory (plugins, schemas,
``modrun.json``, files). Reading one checks every entry: no absolute or
``..`` paths, no links or devices, a bounded number of entries and a bounded
expanded size (zip and tar bombs)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

MAX_BUNDLE_ENTRIES = 10_000
MAX_COMPRESSION_RATIO = 200


class BadBundle(ValueError):
    pass


def safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or name.startswith(("/", "\\")) or "\\" in name or ".." in path.parts or ":" in path.parts[0]:
        raise BadBundle(f"bundle entry {name!r}: absolute or '..' paths are not allowed")
    return path


def read_bundle(path: Path, limit: int) -> dict[str, bytes]:
    """Every regular file of the bundle, checked for traversal, links and bombs."""
    files: dict[str, bytes] = {}
    total = 0
    compressed = path.stat().st_size
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_BUNDLE_ENTRIES:
                raise BadBundle("bundle has too many entries")
            declared = sum(i.file_size for i in infos)
            if declared > limit or declared > max(compressed, 1) * MAX_COMPRESSION_RATIO:
                raise BadBundle("bundle expands too much (a zip bomb?)")
            for info in infos:
                name = str(safe_name(info.filename))
                if info.is_dir():
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise BadBundle(f"bundle entry {name!r}: links are not allowed")
                with archive.open(info) as stream:
                    data = stream.read(info.file_size + 1)
                if len(data) > info.file_size:
                    raise BadBundle(f"bundle entry {name!r} is larger than it declares")
                total += len(data)
                files[name] = data
    else:
        try:
            with tarfile.open(path) as archive:
                members = archive.getmembers()
                if len(members) > MAX_BUNDLE_ENTRIES:
                    raise BadBundle("bundle has too many entries")
                for member in members:
                    name = str(safe_name(member.name))
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise BadBundle(f"bundle entry {name!r}: only regular files are allowed")
                    total += member.size
                    if total > limit or total > max(compressed, 1) * MAX_COMPRESSION_RATIO:
                        raise BadBundle("bundle expands too much (a tar bomb?)")
                    extracted = archive.extractfile(member)
                    files[name] = extracted.read() if extracted else b""
        except tarfile.TarError:
            raise BadBundle("a bundle must be a zip or tar archive") from None
    if total > limit:
        raise BadBundle("bundle expands too much")
    return files


def extract_bundle(path: Path, target: Path, limit: int = 1 << 30) -> None:
    """Write the bundle's files under ``target`` (checked as by read_bundle)."""
    for name, data in read_bundle(path, limit).items():
        out = target.joinpath(*PurePosixPath(name).parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
