"""Swarms shared by several tracker processes and machines through Redis (--swarm-store)."""
