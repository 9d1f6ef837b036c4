"""Simulated GRO-01 sensor data for the demo and for tests."""
