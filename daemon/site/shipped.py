"""The site Tierdesk ships: the sample config/, workflows/ and mail_templates/.

One source of truth: the top-level folders of the checkout. A wheel carries them as
daemon/site/shipped/ (pyproject.toml, force-include); a checkout or an editable install
reads them where they are. `tierdesk init` copies them, `tierdesk demo` runs on them.
"""

from __future__ import annotations

from pathlib import Path

FOLDERS = ("config", "workflows", "mail_templates")
# Shipped beside the site and written by `init` too: the systemd unit and the environment
# file's example, so a server that has only the wheel has them.
EXTRAS = ("deploy",)
_PACKAGED = Path(__file__).resolve().parent / "shipped"
_CHECKOUT = Path(__file__).resolve().parents[2]


class NoShippedSite(Exception):
    """The install lost its sample site (a broken wheel, or a checkout missing folders)."""


def shipped_root() -> Path:
    """The folder holding the shipped config/, workflows/ and mail_templates/."""
    for root in (_PACKAGED, _CHECKOUT):
        if is_site(root):
            return root
    raise NoShippedSite(f"the shipped site is missing: neither {_PACKAGED} nor {_CHECKOUT} "
                        "holds config/, workflows/ and mail_templates/ (reinstall tierdesk)")


def is_site(root: Path) -> bool:
    """Whether `root` looks like a site: the three folders are there."""
    return all((root / folder).is_dir() for folder in FOLDERS)


def shipped_files() -> list[Path]:
    """Every file of the shipped site, relative to its root, in a stable order."""
    root = shipped_root()
    return sorted(path.relative_to(root)
                  for folder in FOLDERS + EXTRAS for path in (root / folder).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts)
