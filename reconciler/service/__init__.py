"""Amazon Connect's own facts: limits, quotas, its API model, time formats.

The bottom of the stack: every other package may import it, it imports none
of them. What is here is what the service documents, each with its source.
"""
