"""`tierdesk init DIR`: a new site from the shipped one, ready to edit.

All or nothing: when any file it would write is already there, it writes none and lists
them, so an admin's edited site is never half overwritten by a second `init`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from daemon.cli.common import PROG, UserError
from daemon.site.shipped import shipped_files, shipped_root

# What a site must change before `run`: the settings that name its servers and addresses,
# and the secrets, which belong in the environment (deploy/tierdesk.env.example).
NEXT_STEPS = """\
Next:
  1. {dir}/config/settings.yaml: site.domain, mail.address, the imap: and smtp: hosts,
     database.url (SQLite by default; postgresql+psycopg://... for larger sites).
  2. {dir}/config/teams.yaml: your teams, their members' addresses, the vendors.
  3. The secrets go in the daemon's environment, not in the files:
     TIERDESK_IMAP_PASSWORD, TIERDESK_SMTP_PASSWORD and TIERDESK_AUTH_SECRET (32+
     characters, e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`).
  4. {prog} --config {dir} check     then     {prog} --config {dir} run
As a service: {dir}/deploy/tierdesk.service and tierdesk.env.example (README, Deployment)."""


def init_command(target: Path, out: Callable[[str], None] = print) -> int:
    source = shipped_root()
    files = shipped_files()
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} is a file; `init` needs a folder (new or existing)")
    existing = [name for name in files if (target / name).exists()]
    if existing:
        listed = ", ".join(str(name) for name in existing[:5])
        more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        raise UserError(f"{target} already holds {listed}{more}; nothing was written "
                        "(move them away, or init another folder)")
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target / name)
    folders = sorted({name.parts[0] for name in files})
    out(f"wrote a new site in {target}: {len(files)} files in " + ", ".join(
        f"{folder}/ ({sum(1 for name in files if name.parts[0] == folder)})"
        for folder in folders))
    out(NEXT_STEPS.format(dir=target, prog=PROG))
    return 0
