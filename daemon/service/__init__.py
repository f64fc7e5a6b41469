"""The daemon: its parts, the long-running loops, reload on SIGHUP, health and heartbeats,
logs, outages, memory tuning.
"""
