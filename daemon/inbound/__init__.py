"""Mail in: the IMAP client and fetching, ingest (one mail to rows), technicians' commands by
mail, the new-ticket limit, and the drain the loops run.
"""
