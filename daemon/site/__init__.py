"""The site as loaded: settings, directory, workflows and templates in one frozen Config, with
every problem of every file reported at once.
"""
