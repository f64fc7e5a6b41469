"""The embedded IMAP4rev1 server of the demo and the tests: protocol, sessions, search, fetch,
MIME structure, the in-memory store.
"""
