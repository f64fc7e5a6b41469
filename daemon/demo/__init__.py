"""`tierdesk demo`: the story, its timeline, and the embedded IMAP server and SMTP sink it runs
against (also used by the tests).
"""
