"""Tierdesk as a user installs it: from the wheel, in a fresh venv, away from the checkout.

Slow (a wheel build and a venv install, about a minute) and needs PyPI for the
dependencies, as `pip install` does; CI runs it like every other test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.package.fresh_install import Installed, build_and_install, run


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return build_and_install(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_shipped_site(installed: Installed) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    root = Path(__file__).resolve().parents[2]
    for folder in ("config", "workflows", "mail_templates", "deploy"):
        for path in (root / folder).iterdir():
            assert f"daemon/site/shipped/{folder}/{path.name}" in names
    assert "daemon/store/alembic.ini" in names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_demo_runs_from_an_empty_folder(installed: Installed, tmp_path: Path) -> None:
    where = run([str(installed.python), "-c", "import daemon; print(daemon.__file__)"],
                cwd=tmp_path)
    assert where.stdout.startswith(str(installed.venv)), where.stdout  # not the checkout
    done = run([str(installed.tierdesk), "demo"], cwd=tmp_path, timeout=120)
    assert "2 tickets, " in done.stdout.splitlines()[-1], done.stdout[-2000:]
    assert list(tmp_path.iterdir()) == []  # the demo leaves nothing behind


def test_init_writes_a_site_that_check_accepts(installed: Installed, tmp_path: Path) -> None:
    done = run([str(installed.tierdesk), "init", "site"], cwd=tmp_path)
    assert "wrote a new site in site" in done.stdout
    assert (tmp_path / "site" / "workflows" / "it-support.yaml").is_file()
    checked = run([str(installed.tierdesk), "--config", "site", "check"], cwd=tmp_path)
    assert "ok: 1 workflow" in checked.stdout.splitlines()[-1], checked.stdout
