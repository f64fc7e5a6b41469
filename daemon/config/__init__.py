"""Settings as data and what every room stands on: the YAML source with line numbers,
validation into file:line problems, durations, the frozen config models.
"""
