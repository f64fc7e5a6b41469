"""Sender authentication that needs the outside world: our own DKIM check (dkimpy) with DMARC
alignment, and the DNS it asks (dnspython, cached per TTL). daemon/auth/sender_auth.py stays pure
and calls in here only through the verifier it is handed (AuthPolicy.dkim)."""
