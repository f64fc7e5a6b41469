"""Time, pure: calendars and business hours, SLA reports, the what-if simulator, and the one
real clock (now.py) the loops default to.
"""
