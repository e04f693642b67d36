"""Make the installable Linux archive from the one-dir build: `make dist`.

    python3 packaging/archive.py dist/iqms --version 0.1.0 --out dist/iqms-0.1.0-linux-x86_64.tar.gz

The archive unpacks to one directory, iqms-VERSION/, holding the `iqms` program and its
`_internal/` libraries, INSTALL.txt (where data and settings live, PostgreSQL, systemd),
iqms.env.example, systemd/*.service (worker, serve, kiosk, display) and README.md.
Files are owned by root, in a fixed order, so the same build gives the same archive.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LINUX = HERE / "linux"


def glibc_version() -> str:
    """The C library version of the build machine: the oldest the program runs on."""
    name, version = platform.libc_ver()
    return version if name == "glibc" and version else "of the build machine"


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str, mtime: float) -> None:
    info = tar.gettarinfo(str(path), arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = int(mtime)
    if info.isfile():
        with path.open("rb") as fh:
            tar.addfile(info, fh)
    else:
        tar.addfile(info)


def _add_text(tar: tarfile.TarFile, text: str, arcname: str, mtime: float) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mode = 0o644
    info.uname = info.gname = "root"
    info.mtime = int(mtime)
    tar.addfile(info, io.BytesIO(data))


def build(onedir: Path, version: str, out: Path) -> Path:
    """Write the archive ``out`` from the one-dir build ``onedir``; returns ``out``."""
    exe = onedir / "iqms"
    if not exe.is_file():
        raise SystemExit(f"archive: error: no {exe}; run 'make package' first")
    top = f"iqms-{version}"
    mtime = exe.stat().st_mtime
    install = (
        (LINUX / "INSTALL.txt")
        .read_text("utf-8")
        .replace("@VERSION@", version)
        .replace("@GLIBC@", glibc_version())
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        _add_file(tar, onedir, top, mtime)
        for path in sorted(onedir.rglob("*")):
            _add_file(tar, path, f"{top}/{path.relative_to(onedir).as_posix()}", mtime)
        _add_text(tar, install, f"{top}/INSTALL.txt", mtime)
        _add_file(tar, LINUX / "iqms.env.example", f"{top}/iqms.env.example", mtime)
        _add_file(tar, ROOT / "README.md", f"{top}/README.md", mtime)
        _add_file(tar, LINUX / "systemd", f"{top}/systemd", mtime)
        for unit in sorted((LINUX / "systemd").glob("*.service")):
            _add_file(tar, unit, f"{top}/systemd/{unit.name}", mtime)
    partial.replace(out)  # never a half-written archive under the real name
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onedir", type=Path, help="the one-dir build (dist/iqms)")
    parser.add_argument("--version", required=True, help="IQMS version, in the names")
    parser.add_argument("--out", type=Path, required=True, help="the .tar.gz to write")
    args = parser.parse_args(argv)
    out = build(args.onedir, args.version, args.out)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
