"""Fakes of services this machine cannot reach, served on loopback and shaped like the real APIs."""
