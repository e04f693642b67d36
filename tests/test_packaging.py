"""The installable archive and its systemd units (the PyInstaller build itself is checked by
``make package smoke`` in CI, not here: it takes minutes)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import stat
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer

from iqms.cli import app

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "packaging" / "linux" / "systemd").glob("*.service"))


def _archive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iqms_archive", ROOT / "packaging" / "archive.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_onedir(path: Path) -> Path:
    """The shape of a one-dir build: the executable, its libraries, a symlinked library."""
    (path / "_internal" / "iqms" / "migrations").mkdir(parents=True)
    exe = path / "iqms"
    exe.write_bytes(b"\x7fELF fake executable")
    exe.chmod(0o755)
    (path / "_internal" / "libpython3.11.so.1.0").write_bytes(b"lib")
    (path / "_internal" / "iqms" / "migrations" / "env.py").write_text("# env\n")
    (path / "_internal" / "libpython3.so").symlink_to("libpython3.11.so.1.0")
    return path


def test_the_archive_unpacks_to_one_versioned_folder_with_the_guide_and_units(
    tmp_path: Path,
) -> None:
    archive = _archive_module()
    out = archive.build(_fake_onedir(tmp_path / "iqms"), "1.2.3", tmp_path / "out" / "a.tar.gz")
    assert not list(out.parent.glob("*.partial"))

    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {name.split("/")[0] for name in members} == {"iqms-1.2.3"}
        exe = members["iqms-1.2.3/iqms"]
        assert exe.isfile() and exe.mode & stat.S_IXUSR and exe.mode & stat.S_IXOTH
        assert members["iqms-1.2.3/_internal/libpython3.so"].issym()
        assert "iqms-1.2.3/_internal/iqms/migrations/env.py" in members
        assert all(m.uname == "root" and m.uid == 0 for m in members.values())
        units = sorted(n for n in members if n.startswith("iqms-1.2.3/systemd/"))
        assert members["iqms-1.2.3/systemd"].isdir()
        assert units == [
            "iqms-1.2.3/systemd/iqms-display.service",
            "iqms-1.2.3/systemd/iqms-kiosk.service",
            "iqms-1.2.3/systemd/iqms-serve.service",
            "iqms-1.2.3/systemd/iqms-worker.service",
        ]
        for name in ("README.md", "iqms.env.example"):
            assert f"iqms-1.2.3/{name}" in members
        guide_file = tar.extractfile("iqms-1.2.3/INSTALL.txt")
        assert guide_file is not None
        guide = guide_file.read().decode()
    # the guide names this version's archive and folder, and no placeholder is left
    assert "tar -xzf iqms-1.2.3-linux-x86_64.tar.gz -C /opt" in guide
    assert "/opt/iqms-1.2.3 /opt/iqms" in guide
    assert not re.search(r"@[A-Z]+@", guide)


def test_the_archive_refuses_a_missing_build_with_one_line(tmp_path: Path) -> None:
    archive = _archive_module()
    with pytest.raises(SystemExit) as exc:
        archive.build(tmp_path / "nothing", "1.2.3", tmp_path / "a.tar.gz")
    assert (
        str(exc.value)
        == f"archive: error: no {tmp_path / 'nothing' / 'iqms'}; run 'make package' first"
    )
    assert not (tmp_path / "a.tar.gz").exists()


def _unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("unit", UNITS, ids=[u.stem for u in UNITS])
def test_each_unit_runs_a_command_and_options_iqms_has(unit: Path) -> None:
    """A renamed command or option would leave a machine without its kiosk after a reboot."""
    settings = _unit(unit)
    [exec_start] = settings["ExecStart"]
    words = shlex.split(exec_start)
    assert words[0] == "/opt/iqms/iqms"
    root: Any = typer.main.get_command(app)
    ctx = typer._click.Context(root)
    command = root.get_command(ctx, words[1])
    assert command is not None, f"{unit.name}: iqms has no command {words[1]!r}"
    options = {opt for p in command.params if p.param_type_name == "option" for opt in p.opts}
    given = {w.split("=")[0] for w in words[2:] if w.startswith("-")}
    assert given <= options, f"{unit.name}: unknown options {given - options}"
    # every unit reads the clinic's settings and runs as the unprivileged iqms user
    assert "/etc/iqms/iqms.env" in settings["EnvironmentFile"]
    assert settings["User"] == ["iqms"]
    assert settings["Restart"] in (["always"], ["on-failure"])


def test_the_kiosk_and_display_units_own_a_terminal_and_read_the_device_key() -> None:
    for name in ("iqms-kiosk.service", "iqms-display.service"):
        settings = _unit(ROOT / "packaging" / "linux" / "systemd" / name)
        assert settings["StandardInput"] == ["tty"] and settings["TTYPath"] == ["/dev/tty1"]
        assert settings["Conflicts"] == ["getty@tty1.service"]
        assert "-/etc/iqms/device.env" in settings["EnvironmentFile"]
