"""Tickets in motion: the runtime that applies workflow decisions to stored tickets (with their
mail rows), the timers that fire, a stored ticket's SLA.
"""
