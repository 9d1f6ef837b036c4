"""Liveness, readiness and dependency diagnostics."""
