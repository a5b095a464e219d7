"""Job workers: retraining, evaluation and rollback (issue 9)."""
