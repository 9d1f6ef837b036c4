"""Evaluation on arrival (design decision 9, docs/arrival.md): the readings accepted by
``POST /ingest`` are decided by ``manage.py evaluate_on_arrival`` as they reach the ingest
stream, from window state kept in the evaluator's memory, through the same alerts_core step and
the same conditional update as the poller."""
