"""Reliability and security: invariants, concurrency, faults, bad input and access control (issue 9)."""
