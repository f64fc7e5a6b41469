"""`tierdesk init DIR` writes the shipped site, never over a file; a folder without a site is
told to run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli.main import build_parser, main
from daemon.site.shipped import FOLDERS, shipped_files, shipped_root

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_site_is_the_checkouts_top_level_folders() -> None:
    assert shipped_root() == ROOT  # one source of truth: not a copy inside the package
    files = {str(path) for path in shipped_files()}
    assert {"config/settings.yaml", "config/teams.yaml", "workflows/it-support.yaml",
            "mail_templates/acknowledgement.txt.j2", "deploy/tierdesk.service",
            "deploy/tierdesk.env.example"} <= files


def test_init_writes_every_shipped_file_and_says_what_next(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    for name in shipped_files():
        assert (tmp_path / "site" / name).read_bytes() == (ROOT / name).read_bytes()
    assert f"wrote a new site in {tmp_path / 'site'}: {len(shipped_files())} files" in out
    assert "TIERDESK_AUTH_SECRET" in out and f"--config {tmp_path / 'site'} check" in out
    assert main(["check", "--config", str(tmp_path / "site")]) == 0


def test_init_overwrites_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "teams.yaml").write_text("mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "already holds config/teams.yaml; nothing was written" in err
    assert (tmp_path / "config" / "teams.yaml").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["config", "teams.yaml"]


def test_init_into_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("", encoding="utf-8")
    assert main(["init", str(tmp_path / "f")]) == 1
    assert "is a file" in capsys.readouterr().err


# status exits 2: with no site its answer is "unknown", as for any config it cannot load.
@pytest.mark.parametrize(("command", "code"), [(["check"], 1), (["tickets"], 1), (["graph"], 1),
                                               (["status"], 2)])
def test_a_folder_without_a_site_points_to_init(
        command: list[str], code: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--config", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert f"no Tierdesk site in {tmp_path}" in err and f"tierdesk init {tmp_path}" in err
    assert err.count("\n") == 1  # one line, not a problem per missing file


def test_demo_defaults_to_the_shipped_site_and_the_rest_to_the_current_folder() -> None:
    from daemon.cli.main import shipped_site

    demo = build_parser().parse_args(["demo"])
    assert demo.config is None and demo.default_site is shipped_site
    check = build_parser().parse_args(["check"])
    assert check.config is None and check.default_site() == Path(".")
    assert build_parser().parse_args(["demo", "--config", "x"]).config == Path("x")
    assert build_parser().parse_args(["--config", "x", "demo"]).config == Path("x")
    assert set(FOLDERS) == {"config", "workflows", "mail_templates"}
