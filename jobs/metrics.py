"""Prometheus metrics of a job worker, served on ``WARDEN_JOBS_METRICS_PORT`` (``GET /metrics``).

Labels are bounded: job kinds and states are closed sets; no job id is a label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Gauge("warden_jobs", "Jobs known from the job topics that are not finished, by state "
             "(queued, awaiting_approval, running)", ["state"])
FINISHED = Counter("warden_jobs_finished_total", "Job attempts this worker finished, by kind and outcome "
                   "(succeeded, failed, cancelled, requeued)", ["kind", "outcome"])
RETRIES = Counter("warden_jobs_retries_total", "Job attempts that failed and were retried", ["kind"])
DURATION = Histogram("warden_job_duration_seconds", "Time from a job's start on this worker to its outcome",
                     ["kind", "outcome"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600))
