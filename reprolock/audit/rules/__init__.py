"""The audit's rules, one module per area; each has ``check(ctx)`` yielding findings.

Ids by area: RL0xx the audit itself, RL1xx dependencies, RL2xx base image, RL3xx
Dockerfiles, RL4xx training code, RL5xx secrets in the image, RL6xx environment.
The documentation of every rule is in :mod:`reprolock.audit.catalog`.
"""
