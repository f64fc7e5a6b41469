"""Real IMAP servers for tests: a private Dovecot and the embedded server, same interface.

A pytest plugin (registered in tests/conftest.py), so every test folder can use:

- `imap_server`: parametrized over "dovecot" and "embedded"; one server per test session.
- `dovecot` / `embedded_imap`: one kind only.
- `imap_account`: a fresh user on `imap_server` (its own empty INBOX) for one test.

    def test_something(imap_server, imap_account):
        imap_server.append(imap_account, b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
        settings = imap_server.settings(imap_account, processed_folder="Done")

Dovecot runs from its own config in a temp folder (`dovecot -c ... -F`): passwd-file users,
Maildir, a plain port (with STARTTLS) and an implicit-TLS port with a self-signed certificate
trusted by `server.ssl_context`. When dovecot is not installed its tests skip, unless CI=true:
then they fail, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from imapclient import IMAPClient

from daemon.config.settings import ImapSettings
from daemon.demo.imap_server.server import Controller

HOST = "127.0.0.1"
DOVECOT = "/usr/sbin/dovecot"
_names = itertools.count(1)


@dataclass(frozen=True)
class Account:
    username: str
    password: str


class ImapTestServer(Protocol):
    """What the tests need from either server."""

    @property
    def kind(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...  # plain IMAP (Dovecot also offers STARTTLS here)
    @property
    def tls_port(self) -> int | None: ...  # implicit TLS, when the server has it
    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...  # trusts the server's certificate

    def new_account(self) -> Account: ...
    def restart(self) -> None: ...
    def change_uidvalidity(self, account: Account, folder: str = "INBOX") -> None: ...


def settings(server: ImapTestServer, account: Account, security: str = "none",
             **overrides: Any) -> ImapSettings:
    """ImapSettings for the account; security "tls" uses the server's TLS port."""
    port = server.tls_port if security == "tls" else server.port
    values: dict[str, Any] = {
        "host": server.host, "port": port, "security": security,
        "username": account.username, "password": account.password,
        "timeout": timedelta(seconds=10), "poll_interval": timedelta(seconds=0.2),
    }
    return ImapSettings.model_validate({**values, **overrides})


@contextlib.contextmanager
def client(server: ImapTestServer, account: Account) -> Iterator[IMAPClient]:
    """A separate, plain, logged-in imapclient connection (another mail client)."""
    with IMAPClient(server.host, server.port, ssl=False, timeout=30) as imap:
        imap.login(account.username, account.password)
        yield imap


def append(server: ImapTestServer, account: Account, raw: bytes, folder: str = "INBOX",
           flags: Iterable[bytes] = ()) -> None:
    """APPEND from another connection, as a mail arriving would look to the daemon."""
    with client(server, account) as imap:
        imap.append(folder, raw, flags=tuple(flags))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}. CI=true, so the IMAP tests may not be skipped", pytrace=False)
    pytest.skip(message)


# ---------------------------------------------------------------- the embedded server

class EmbeddedServer:
    kind = "embedded"
    tls_port: int | None = None
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.host = controller.host

    @property
    def port(self) -> int:
        return self.controller.port

    def new_account(self) -> Account:
        account = Account(f"user{next(_names)}", secrets.token_hex(8))
        self.controller.add_user(account.username, account.password)
        return account

    def restart(self) -> None:
        self.controller.restart()

    def change_uidvalidity(self, account: Account, folder: str = "INBOX") -> None:
        old = self.controller.uidvalidity(folder, user=account.username)
        self.controller.set_uidvalidity(old + 1000, folder, user=account.username)


# ---------------------------------------------------------------- Dovecot

def make_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 and localhost, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class Users:
    """Who Dovecot's processes run as: as root, its usual unprivileged users; else, us."""

    login: str
    internal: str
    mail_uid: int
    mail_gid: int
    rootless: bool

    @classmethod
    def detect(cls) -> Users:
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid())
            return cls(me.pw_name, me.pw_name, me.pw_uid, me.pw_gid, rootless=True)
        nobody = pwd.getpwnam("nobody")
        return cls(_first_user("dovenull", "nobody"), _first_user("dovecot", "nobody"),
                   nobody.pw_uid, nobody.pw_gid, rootless=False)


def _first_user(*names: str) -> str:
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise LookupError(f"none of the users {names} exists")


def dovecot_config(root: Path, port: int, tls_port: int | None, users: Users,
                   certificate: tuple[Path, Path] | None) -> str:
    """A complete private dovecot.conf: nothing from /etc/dovecot is read."""
    ssl_lines = "ssl = no"
    tls_listener = ""
    if certificate is not None and tls_port is not None:
        ssl_lines = f"ssl = yes\nssl_cert = <{certificate[0]}\nssl_key = <{certificate[1]}"
        tls_listener = f"  inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}"
    no_chroot = "".join(f"service {name} {{\n  chroot =\n}}\n"
                        for name in ("imap-login", "anvil")) if users.rootless else ""
    return f"""\
protocols = imap
listen = {HOST}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = tierdesk-test-{root.name}
default_login_user = {users.login}
default_internal_user = {users.internal}
first_valid_uid = 1
{ssl_lines}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords on purpose: answer at once.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
# One passwd-file per user: Dovecot rereads a changed file at most once a second, but a
# new user's file is read at its first login, so tests can add users at any pace.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
{tls_listener}
}}
service anvil {{
  # No penalty delay after failed logins either.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{no_chroot}"""


class DovecotServer:
    """A private Dovecot: its own config, users, Maildirs and ports, in a temp folder."""

    kind = "dovecot"
    host = HOST

    def __init__(self, binary: str = DOVECOT) -> None:
        self.binary = binary
        # Not pytest's tmp_path: Dovecot's unprivileged users must be able to walk the path.
        self.root = Path(tempfile.mkdtemp(prefix="tierdesk-dovecot-"))
        self.root.chmod(0o755)
        self.users = Users.detect()
        self.port = free_port()
        self.certificate = make_certificate(self.root)
        self.tls_port: int | None = free_port() if self.certificate else None
        self.ssl_context: ssl.SSLContext | None = None
        if self.certificate:
            self.ssl_context = ssl.create_default_context(cafile=str(self.certificate[0]))
        (self.root / "home").mkdir(mode=0o755)
        (self.root / "users").mkdir()
        self.config = self.root / "dovecot.conf"
        self.config.write_text(dovecot_config(self.root, self.port, self.tls_port, self.users,
                                              self.certificate))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config), "-F"], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except OSError:
            self.stop()
            raise RuntimeError(f"dovecot did not start:\n{self.log()}") from None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        # The master shuts its children down (clients get BYE), as a service restart would.
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # anything the master left behind
            os.killpg(process.pid, signal.SIGKILL)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def new_account(self) -> Account:
        account = Account(f"user{next(_names)}", secrets.token_hex(8))
        home = self.root / "home" / account.username
        home.mkdir(mode=0o700)
        os.chown(home, self.users.mail_uid, self.users.mail_gid)
        line = (f"{account.username}:{{PLAIN}}{account.password}:"
                f"{self.users.mail_uid}:{self.users.mail_gid}::{home}::\n")
        (self.root / "users" / account.username).write_text(line)
        return account

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(["doveadm", "-c", str(self.config), *args],
                                check=True, capture_output=True, text=True)
        return result.stdout

    def change_uidvalidity(self, account: Account, folder: str = "INBOX") -> None:
        status = self.doveadm("mailbox", "status", "-u", account.username, "uidvalidity", folder)
        old = int(status.split("uidvalidity=")[1].split()[0])
        self.doveadm("mailbox", "update", "--uid-validity", str(old + 1000),
                     "-u", account.username, folder)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    binary = shutil.which("dovecot") or (DOVECOT if os.path.exists(DOVECOT) else None)
    if binary is None:
        unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer(binary)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def embedded_imap() -> Iterator[EmbeddedServer]:
    with Controller() as controller:
        yield EmbeddedServer(controller)


@pytest.fixture(scope="session", params=["dovecot", "embedded"])
def imap_server(request: pytest.FixtureRequest) -> ImapTestServer:
    name = "dovecot" if request.param == "dovecot" else "embedded_imap"
    server: ImapTestServer = request.getfixturevalue(name)
    return server


@pytest.fixture
def imap_account(imap_server: ImapTestServer) -> Account:
    return imap_server.new_account()
