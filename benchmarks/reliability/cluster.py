"""A private PostgreSQL cluster in a temporary folder, to stop, restart and disturb at will.

``initdb`` and ``pg_ctl`` of the installed PostgreSQL create and run it on a free port of
127.0.0.1 (and a unix socket in the folder), with fsync off: it is thrown away afterwards,
and the machine's own server is never touched. PostgreSQL refuses to run as root, so
under root every command runs as the ``postgres`` OS user, who owns the folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

PG_BIN_ENV = "ROUTER_PG_BIN"
"""The environment variable naming the folder of initdb/pg_ctl, when not found otherwise."""
RUN_AS = "postgres"
"""The OS user the cluster runs as when we are root."""
START_TIMEOUT_S = 60


class ClusterUnavailableError(RuntimeError):
    """No PostgreSQL server binaries here (or no user to run them as root)."""


def pg_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: $ROUTER_PG_BIN, PATH, or the newest Debian one.

    Raises ClusterUnavailableError when there is none.
    """
    candidates = [os.environ.get(PG_BIN_ENV, "")]
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )[::-1]
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise ClusterUnavailableError("no initdb/pg_ctl (set ROUTER_PG_BIN to their folder)")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL server of our own: :meth:`start`, :meth:`stop`, :meth:`restart`.

    Made by :func:`private_cluster`. ``url`` names its ``postgres`` database on loopback.
    """

    def __init__(self, folder: Path, bin_dir: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.bin = bin_dir
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        """Run a server binary (as the postgres user under root); its output on failure."""
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}\n{tail}")

    def init(self) -> None:
        """initdb: trust authentication on loopback and the socket, superuser postgres."""
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (fsync off, 200 clients).

        fsync off survives a crash of the server (what :meth:`restart` does), not of the
        machine. synchronous_commit stays on: off, a crash loses commits already
        acknowledged, and the checker duly reported acknowledged reservations lost.
        """
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: ``fast`` (clients cut off, clean shutdown) or ``immediate`` (a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_s: float, mode: str = "immediate") -> None:
        """Stop in ``mode``, stay down ``down_s`` seconds, start again (crash recovery)."""
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def terminate_backends(self, application_name: str | None = None) -> int:
        """pg_terminate_backend on every client backend but ours; how many were cut off.

        ``application_name`` limits it to connections that set that name.
        """
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "AND (%s::text IS NULL OR application_name = %s)",
                (application_name, application_name),
            ).fetchone()
        return 0 if row is None else int(row[0])


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A fresh cluster, running, for the block; stopped (immediately) and deleted after.

    Raises ClusterUnavailableError when the server binaries (or, under root, the postgres
    user) are missing.
    """
    bin_dir = pg_bin()
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(RUN_AS)
        except KeyError as e:
            raise ClusterUnavailableError(f"running as root and there is no {RUN_AS!r} user") from e
    folder = Path(tempfile.mkdtemp(prefix="router-pg-"))
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o755)
        cluster = Cluster(folder, bin_dir, free_port())
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            # RuntimeError: already stopped (stopped on purpose, then a failure before start)
            with suppress(RuntimeError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
