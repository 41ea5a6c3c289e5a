"""Routing: the expression language, which agents meet it, coverage, reports.

Pure: it reads state values, never Connect (the service's own counts are
asked for by `connect`, which builds its queries from these expressions).
"""
