"""The grammar and the authentication rules are functional core: no I/O libraries."""

from __future__ import annotations

import pytest

from tests.test_architecture import DAEMON, FORBIDDEN, imports


@pytest.mark.parametrize("name", ["commands.py", "sender_auth.py"])
def test_pure(name: str) -> None:
    bad = sorted(n for n in imports(DAEMON / name) if n.startswith(FORBIDDEN))
    assert not bad, f"{name} imports {bad}"
