"""Mail out: rendering templates, choosing recipients, the outbox (queue, claims, loop guard),
the sender and its SMTP pool, retry backoff, the sent journal.
"""
