"""settings.yaml `auth:`: strict by default, trusted authserv-ids, the secret only from
TIERDESK_AUTH_SECRET-style overrides and long enough; `check` requires it in strict mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config.problems import ConfigError
from daemon.config.settings import MIN_SECRET, auth_warnings, load_settings

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config"
SECRET = "s" * MIN_SECRET


def test_shipped_auth_section() -> None:
    auth = load_settings(CONFIG, {}).auth
    # No Authentication-Results is believed until the admin says whose, and has tested it.
    assert (auth.mode, auth.trusted_authserv_ids, auth.trusted_headers) == ("strict", (), 1)
    assert not auth.signing and auth.previous_secrets == ()
    assert (auth.reply_address_lifetime.days, auth.reply_address_after_resolve.days) == (90, 14)


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


def test_previous_secrets_from_the_environment_never_echoed() -> None:
    old = "o" * MIN_SECRET
    auth = load_settings(CONFIG, {"TIERDESK_AUTH_PREVIOUS_SECRETS": f"{old}, {SECRET}"}).auth
    assert [s.get_secret_value() for s in auth.previous_secrets] == [old, SECRET]
    assert old not in repr(auth)
    with pytest.raises(ConfigError) as caught:
        load_settings(CONFIG, {"TIERDESK_AUTH_PREVIOUS_SECRETS": "hunter2hunter2"})
    assert "TIERDESK_AUTH_PREVIOUS_SECRETS: the secret has 14 characters" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_check_warns_when_any_authserv_id_is_trusted(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    text = (CONFIG / "settings.yaml").read_text()
    (config / "settings.yaml").write_text(text.replace("trusted_authserv_ids: []",
                                                       "trusted_authserv_ids: [mx.example.com]"))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "trusted_authserv_ids:" in row
                and not row.lstrip().startswith("#"))
    env = {"TIERDESK_AUTH_SECRET": SECRET}
    [warning] = auth_warnings(load_settings(config, env), config, env)
    assert (warning.file, warning.line) == (str(config / "settings.yaml"), line)
    assert "auth.trusted_authserv_ids trusts Authentication-Results headers bearing " \
        "mx.example.com" in warning.message and "RFC 8601 section 5" in warning.message
    assert "Authentication-Results: mx.example.com; dmarc=pass header.from=example.com" \
        in warning.fix and "must be gone" in warning.fix
    # Set by the environment: the warning names the variable.
    env = {**env, "TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "mx9.example.com"}
    [warning] = auth_warnings(load_settings(CONFIG, env), CONFIG, env)
    assert warning.message.startswith("TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS (environment) trusts")
    assert auth_warnings(load_settings(CONFIG, {"TIERDESK_AUTH_SECRET": SECRET}), CONFIG) == []


def test_check_warns_without_the_secret_in_strict_mode() -> None:
    [problem] = auth_warnings(load_settings(CONFIG, {}), CONFIG)
    assert problem.file.endswith("settings.yaml") and "TIERDESK_AUTH_SECRET is not set" in \
        str(problem) and "secrets.token_urlsafe" in problem.fix
    assert auth_warnings(load_settings(CONFIG, {"TIERDESK_AUTH_SECRET": SECRET}), CONFIG) == []


def test_run_py_check_passes_but_warns_without_the_secret(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh checkout passes check; the missing secret is said, not fatal: commands are
    still accepted with a passing Authentication-Results."""
    from daemon.cli.main import main

    monkeypatch.delenv("TIERDESK_AUTH_SECRET", raising=False)
    assert main(["check", "--config", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "warning: " in out and "TIERDESK_AUTH_SECRET is not set" in out
    assert out.splitlines()[-1].endswith("(1 warning)")
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", SECRET)
    assert main(["check", "--config", str(ROOT)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
