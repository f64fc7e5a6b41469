"""Tierdesk: an email-integrated IT support escalation daemon."""
