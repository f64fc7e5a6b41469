"""settings.yaml `auth:`: strict by default, trusted authserv-ids, the secret only from
TIERDESK_AUTH_SECRET-style overrides and long enough; `check` requires it in strict mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.problems import ConfigError
from daemon.settings import MIN_SECRET, auth_warnings, load_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
SECRET = "s" * MIN_SECRET


def test_shipped_auth_section() -> None:
    auth = load_settings(CONFIG, {}).auth
    assert (auth.mode, auth.trusted_authserv_ids, auth.trusted_headers) == (
        "strict", ("mx.example.com",), 1)
    assert not auth.signing


def test_secret_and_ids_from_the_environment() -> None:
    auth = load_settings(CONFIG, {"TIERDESK_AUTH_SECRET": SECRET,
                                  "TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "MX1.example.com, "
                                                                        "mx2.example.com"}).auth
    assert auth.signing and auth.secret.get_secret_value() == SECRET
    assert auth.trusted_authserv_ids == ("mx1.example.com", "mx2.example.com")
    assert SECRET not in repr(auth)


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(CONFIG, {"TIERDESK_AUTH_SECRET": "hunter2hunter2"})
    text = str(caught.value)
    assert "TIERDESK_AUTH_SECRET: the secret has 14 characters, fewer than 32" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("TIERDESK_AUTH_MODE", "lenient", "strict"),
    ("TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS", "mx.example.com, bad host", "not a valid host name"),
    ("TIERDESK_AUTH_TRUSTED_HEADERS", "0", "greater than or equal to 1"),
])
def test_bad_values_name_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(CONFIG, {variable: value})
    assert f"{variable}: " in str(caught.value) and words in str(caught.value)


def test_check_warns_without_the_secret_in_strict_mode() -> None:
    [problem] = auth_warnings(load_settings(CONFIG, {}), CONFIG)
    assert problem.file.endswith("settings.yaml") and "TIERDESK_AUTH_SECRET is not set" in \
        str(problem) and "secrets.token_urlsafe" in problem.fix
    assert auth_warnings(load_settings(CONFIG, {"TIERDESK_AUTH_SECRET": SECRET}), CONFIG) == []


def test_run_py_check_passes_but_warns_without_the_secret(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh checkout passes check; the missing secret is said, not fatal: commands are
    still accepted with a passing Authentication-Results."""
    from daemon.cli import main

    monkeypatch.delenv("TIERDESK_AUTH_SECRET", raising=False)
    assert main(["check", "--config", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "warning: " in out and "TIERDESK_AUTH_SECRET is not set" in out
    assert out.splitlines()[-1].endswith("(1 warning)")
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", SECRET)
    assert main(["check", "--config", str(ROOT)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
