"""Smoke test of a built IQMS executable: `make package smoke` (CI runs it after the tests).

    python3 packaging/smoke.py dist/iqms [--onefile dist/iqms-onefile]

The bundle is copied outside the repository and run from there, with a working directory,
home, data and config directories of its own and no PYTHONPATH, so anything it still read
from the source tree or a virtualenv would fail here. Each step runs what a clinic's IT
person would run and checks what they would see. At the end the build's size and start-up
times (median of 5 runs of `--version` and `--help`, after one warm-up run) are printed,
not asserted. Needs only Python's standard library, and tmux for the console screens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

STEP_TIMEOUT = 120.0
SCREEN_TIMEOUT = 30.0


class SmokeFailure(Exception):
    pass


class Bundle:
    """The copied executable, run in a clean environment of its own."""

    def __init__(self, exe: Path, base: Path) -> None:
        self.exe = exe
        self.base = base
        self.work = base / "work"
        for sub in ("work", "home", "data", "config"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.setdefault("LANG", "C.UTF-8")
        self.env.update(
            HOME=str(base / "home"),
            IQMS_DATA_DIR=str(base / "data"),
            IQMS_CONFIG_DIR=str(base / "config"),
            COLUMNS="200",
            TERM="xterm-256color",
        )

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        expect: int = 0,
        with_stderr: bool = False,
    ) -> str:
        cmd = [str(self.exe), *args]
        proc = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.work,
            env={**self.env, **(env or {})},
            timeout=STEP_TIMEOUT,
        )
        if proc.returncode != expect:
            raise SmokeFailure(
                f"`iqms {' '.join(args)}` exited {proc.returncode} (expected {expect})\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
            )
        return proc.stdout + proc.stderr if with_stderr else proc.stdout

    def timed(self, *args: str, runs: int = 5) -> float:
        """Median wall time of ``runs`` runs, after one untimed warm-up run."""
        self.run(*args)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.run(*args)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class Screen:
    """A console running in a tmux pane of its own (a real pseudo-terminal)."""

    def __init__(self, bundle: Bundle, args: Sequence[str], env: dict[str, str]) -> None:
        self.bundle = bundle
        self.socket = f"iqms-smoke-{uuid.uuid4().hex[:8]}"  # a tmux server of its own
        self.session = "smoke"
        full_env = {**bundle.env, **env}
        full_env.pop("COLUMNS", None)  # the console takes the terminal's own size
        command = " ".join([shlex.quote(str(bundle.exe)), *map(shlex.quote, args)])
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            "110",
            "-y",
            "34",
            "-c",
            str(bundle.work),
            # keep the pane after the program ends, so its last words can be read
            f"{command}; echo '[exited '$?']'; sleep 30",
            env=full_env,
        )

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=env or self.bundle.env,
            timeout=20,
        )
        if proc.returncode != 0:
            raise SmokeFailure(f"tmux {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def wait_for(self, *needles: str, timeout: float = SCREEN_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.text()
            if all(n in screen for n in needles):
                return screen
            if "[exited " in screen:
                break
            time.sleep(0.3)
        raise SmokeFailure(f"the screen never showed {needles!r}; it showed:\n{screen}")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


def demo_passwords(output: str) -> dict[str, str]:
    """The demo accounts' passwords, read from the table ``iqms demo`` prints."""
    found = dict(re.findall(r"│\s*([a-z0-9]+)\s*│\s*[a-z]+\s*│\s*(\1-[0-9a-f]+)\s*│", output))
    if not found:
        raise SmokeFailure(f"no demo passwords in the output of iqms demo:\n{output}")
    return found


# --- the steps -----------------------------------------------------------------------------


def step_version(b: Bundle, state: dict[str, str]) -> str:
    out = b.run("--version")
    if not re.fullmatch(r"iqms \S+\n", out):
        raise SmokeFailure(f"unexpected --version output: {out!r}")
    help_text = b.run("--help")
    if "queue" not in help_text or "serve" not in help_text:
        raise SmokeFailure(f"--help does not list the commands:\n{help_text}")
    return out.strip()


def step_db_upgrade(b: Bundle, state: dict[str, str]) -> str:
    url = f"sqlite:///{b.base / 'fresh' / 'iqms.db'}"
    env = {"IQMS_DATABASE_URL": url}
    b.run("db", "upgrade", env=env)
    current = b.run("db", "current", env=env, with_stderr=True)
    if "up to date" not in current:
        raise SmokeFailure(f"after db upgrade, db current says:\n{current}")
    return " ".join(current.split())


def step_demo(b: Bundle, state: dict[str, str]) -> str:
    path = b.base / "demo" / "iqms-demo.db"
    out = b.run("demo", "--no-simulate", "--path", str(path))
    passwords = demo_passwords(out)
    state["url"] = f"sqlite:///{path}"
    state.update({f"password:{user}": pw for user, pw in passwords.items()})
    if "reception" not in passwords or "drsmith" not in passwords:
        raise SmokeFailure(f"demo accounts missing: {sorted(passwords)}")
    return f"{len(passwords)} demo accounts, database {path.name}"


def step_issue_and_call(b: Bundle, state: dict[str, str]) -> str:
    env = {"IQMS_DATABASE_URL": state["url"]}
    b.run("login", "reception", "--password-stdin", stdin=state["password:reception"], env=env)
    # category 1 (immediate) is always called first, so the doctor's call-next gets it
    issued = json.loads(b.run("queue", "issue", "-d", "GEN", "-c", "1", "--json", env=env))
    number = issued["ticket_number"]
    state["number"], state["status_code"] = number, issued["status_code"]
    b.run("login", "drsmith", "--password-stdin", stdin=state["password:drsmith"], env=env)
    called = b.run("queue", "call-next", env=env)
    if number not in called:
        raise SmokeFailure(f"issued {number}, but call-next said: {called!r}")
    status = b.run("queue", "status", number, env=env)
    if "Room 1" not in status:
        raise SmokeFailure(f"queue status of {number} names no room:\n{status}")
    return f"issued {number}, called to Room 1"


def step_worker(b: Bundle, state: dict[str, str]) -> str:
    env = {"IQMS_DATABASE_URL": state["url"], "IQMS_SMS_PROVIDER": "console"}
    out = b.run("worker", "--once", env=env, with_stderr=True)
    sent = re.findall(r"^\[sms to \+\d+\] (.+)$", out, re.M)
    if not sent or not any("your ticket is" in text for text in sent):
        raise SmokeFailure(f"the worker sent no ticket message:\n{out}")
    return f"{len(sent)} SMS texts written by the console provider"


def step_serve(b: Bundle, state: dict[str, str]) -> str:
    port = free_port()
    proc = subprocess.Popen(
        [str(b.exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=b.work,
        env={**b.env, "IQMS_DATABASE_URL": state["url"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SmokeFailure(
                        f"iqms serve never answered (exit {proc.poll()}):\n"
                        + (proc.communicate(timeout=5)[0] if proc.poll() is not None else "")
                    ) from None
                time.sleep(0.3)
        if status != 200:
            raise SmokeFailure(f"/healthz answered {status}: {body[:200]!r}")
        status, body = http_get(f"http://127.0.0.1:{port}/api/openapi.json")
        paths = json.loads(body).get("paths", {})
        if status != 200 or not paths:
            raise SmokeFailure(f"/api/openapi.json answered {status} with no paths")
        status, body = http_get(f"http://127.0.0.1:{port}/static/iqms.css")
        if status != 200 or not body:
            raise SmokeFailure(f"/static/iqms.css answered {status}")
        # the patient's status page (behind the ticket's QR code): a rendered template
        status, body = http_get(f"http://127.0.0.1:{port}/t/{state['status_code']}")
        if status != 200 or state["number"].encode() not in body:
            raise SmokeFailure(f"the status page of {state['number']} answered {status}")
        return (
            f"/healthz 200, OpenAPI lists {len(paths)} paths, static file, "
            f"status page of {state['number']}"
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def step_reception(b: Bundle, state: dict[str, str]) -> str:
    env = {"IQMS_DATABASE_URL": state["url"]}
    waiting = json.loads(b.run("queue", "list", "--status", "waiting", "--json", env=env))
    first = state["first_waiting"] = waiting[0]["ticket_number"]
    screen = Screen(b, ["reception", "--login"], env)
    try:
        screen.wait_for("Reception", "Username", "Password")
        screen.keys("-l", "reception")
        screen.keys("Enter")
        screen.keys("-l", state["password:reception"])
        screen.keys("Enter")
        screen.wait_for(first)  # signed in: the live queue, in calling order
        screen.keys("C-q")
        screen.wait_for("[exited 0]")
    finally:
        screen.close()
    return f"login screen, signed in, queue shows {first}, quit with Ctrl+Q"


def step_doctor(b: Bundle, state: dict[str, str]) -> str:
    # a config directory without the saved login of the CLI steps: the console asks
    env = {"IQMS_DATABASE_URL": state["url"], "IQMS_CONFIG_DIR": str(b.base / "config-doctor")}
    screen = Screen(b, ["doctor"], env)
    try:
        screen.wait_for("Doctor console", "Username", "Password")
        screen.keys("-l", "drsmith")
        screen.keys("Enter")
        screen.keys("-l", state["password:drsmith"])
        screen.keys("Enter")
        # signed in: the patient called earlier is theirs, in their room
        screen.wait_for("Dr Sam Smith", "Room 1", state["number"])
    finally:
        screen.close()
    return f"login screen, signed in as Dr Sam Smith, {state['number']} called to Room 1"


def add_device(b: Bundle, state: dict[str, str], name: str, role: str) -> str:
    """A new device key, made by the demo's administrator."""
    env = {"IQMS_DATABASE_URL": state["url"]}
    b.run("login", "admin", "--password-stdin", stdin=state["password:admin"], env=env)
    key = b.run("admin", "devices", "add", name, "--role", role, env=env).strip()
    if not key or "\n" in key:
        raise SmokeFailure(f"admin devices add printed no single key: {key!r}")
    return key


def ticket_numbers(b: Bundle, state: dict[str, str]) -> set[str]:
    out = b.run("queue", "list", "--json", env={"IQMS_DATABASE_URL": state["url"]})
    return {t["ticket_number"] for t in json.loads(out)}


def step_kiosk(b: Bundle, state: dict[str, str]) -> str:
    key = add_device(b, state, "smoke-kiosk", "kiosk")
    paper = b.base / "printer.bin"
    env = {
        "IQMS_DATABASE_URL": state["url"],
        "IQMS_DEVICE_KEY": key,
        "IQMS_SMS_PROVIDER": "none",  # no offer of an SMS: straight to the ticket
    }
    check = b.run("kiosk", "--check", "--printer", f"file:{paper}", env=env, with_stderr=True)
    if "smoke-kiosk" not in check:
        raise SmokeFailure(f"kiosk --check did not name the device:\n{check}")
    before = ticket_numbers(b, state)
    screen = Screen(b, ["kiosk", "--printer", f"file:{paper}"], env)
    try:
        screen.wait_for("Choose your language")
        screen.keys("1")
        screen.wait_for("Choose a service", "General Practice")
        screen.keys("1")
        screen.wait_for("Your number", "Please take your ticket.")
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while time.monotonic() < deadline and not (paper.exists() and paper.stat().st_size):
            time.sleep(0.2)
    finally:
        screen.close()
    printed = paper.read_bytes() if paper.exists() else b""
    new = sorted(ticket_numbers(b, state) - before)
    if len(new) != 1:
        raise SmokeFailure(f"expected one new ticket from the kiosk, found {new}")
    number = new[0]
    if number.encode() not in printed:
        raise SmokeFailure(f"the printer file ({len(printed)} bytes) does not hold {number}")
    return (
        f"kiosk --check; ticket {number} taken with two keys, in the printer file "
        f"({len(printed)} bytes)"
    )


def step_display(b: Bundle, state: dict[str, str]) -> str:
    key = add_device(b, state, "smoke-board", "display")
    env = {"IQMS_DATABASE_URL": state["url"], "IQMS_DEVICE_KEY": key, "IQMS_ANNOUNCE": "off"}
    screen = Screen(b, ["display"], env)
    try:
        # the call in large letters, and each department's next numbers in calling order
        screen.wait_for("Now calling", "General Practice", f"Next {state['first_waiting']}")
    finally:
        screen.close()
    return f"the board: now calling, General Practice next {state['first_waiting']}"


def step_units(b: Bundle, state: dict[str, str]) -> str:
    """Every systemd unit of the archive runs a command (and options) this build has."""
    checked = []
    for unit in sorted((Path(__file__).resolve().parent / "linux" / "systemd").glob("*.service")):
        [line] = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
        words = line.removeprefix("ExecStart=").split()
        if words[0] != "/opt/iqms/iqms":
            raise SmokeFailure(f"{unit.name} runs {words[0]}, not /opt/iqms/iqms")
        command = [w for w in words[1:] if not w.startswith("-")][:1]
        help_text = b.run(*command, "--help")
        for option in (w for w in words[1:] if w.startswith("--")):
            if option not in help_text:
                raise SmokeFailure(f"{unit.name}: 'iqms {command[0]}' has no option {option}")
        checked.append(unit.stem)
    return ", ".join(checked)


Step = Callable[[Bundle, dict[str, str]], str]

STEPS: list[tuple[str, Step]] = [
    ("--version and --help", step_version),
    ("db upgrade on a new SQLite file", step_db_upgrade),
    ("demo --no-simulate", step_demo),
    ("issue and call a ticket", step_issue_and_call),
    ("iqms worker --once (console SMS)", step_worker),
    ("iqms serve: health, OpenAPI, static", step_serve),
    ("iqms reception in a terminal", step_reception),
    ("iqms doctor in a terminal", step_doctor),
    ("iqms kiosk prints a ticket to a file printer", step_kiosk),
    ("iqms display in a terminal", step_display),
    ("the systemd units' commands", step_units),
]


# --- figures -------------------------------------------------------------------------------


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def figures(name: str, b: Bundle, size: int) -> dict[str, object]:
    return {
        "build": name,
        "size_mb": round(size / 1e6, 1),
        "version_median_s": round(b.timed("--version"), 3),
        "help_median_s": round(b.timed("--help"), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onedir", type=Path, help="the one-dir build (dist/iqms)")
    parser.add_argument(
        "--onefile", type=Path, help="also time this one-file build (dist/iqms-onefile)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    exe_name = "iqms.exe" if os.name == "nt" else "iqms"
    if not (args.onedir / exe_name).is_file():
        print(
            f"smoke: error: no {args.onedir / exe_name}; run 'make package' first", file=sys.stderr
        )
        return 2
    base = Path(tempfile.mkdtemp(prefix="iqms-smoke-"))
    failed = False
    try:
        copy = base / "opt" / "iqms"
        shutil.copytree(args.onedir, copy, symlinks=True)
        bundle = Bundle(copy / exe_name, base / "run")
        state: dict[str, str] = {}
        for title, step in STEPS:
            start = time.perf_counter()
            try:
                detail = step(bundle, state)
            except (SmokeFailure, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as exc:
                print(f"smoke: FAIL {title}: {exc}", flush=True)
                failed = True
                break
            print(
                f"smoke: ok   {title} ({time.perf_counter() - start:.1f} s): {detail}", flush=True
            )

        results = [figures("one-dir", bundle, tree_size(args.onedir))]
        if args.onefile:
            onefile_copy = base / "opt" / "iqms-onefile"
            shutil.copy2(args.onefile, onefile_copy)
            single = Bundle(onefile_copy, base / "run-onefile")
            results.append(figures("one-file", single, tree_size(args.onefile)))
        for r in results:
            print(
                f"smoke: {r['build']}: {r['size_mb']} MB; start-up median of 5: "
                f"--version {r['version_median_s']} s, --help {r['help_median_s']} s"
            )
            print(json.dumps({"smoke": "package", **r}))
    finally:
        if args.keep:
            print(f"smoke: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if failed:
        print("smoke: FAILED", file=sys.stderr)
        return 1
    print("smoke: every step passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
