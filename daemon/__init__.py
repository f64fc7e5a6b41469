"""Tierdesk: an email-integrated IT support escalation daemon."""

# Kept equal to pyproject.toml's version (tests/cli/test_options.py); `tierdesk --version`
# reads the installed package's metadata first and falls back to this in a bare checkout.
__version__ = "0.1.0"
