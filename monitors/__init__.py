"""Monitors on InfluxDB: sources, monitors, channels, incidents and notifications."""
