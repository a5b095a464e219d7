"""Policies turn findings into decisions (alert, request a job, tag, suppress).

Pure: imports :mod:`detectors` only.
"""

from contracts.decision import Decision, DecisionAction, JobRequest
from policies.dryrun import DryRunReport, dry_run
from policies.engine import PolicyEngine
from policies.errors import PolicyError, PolicyIssue
from policies.loader import load_pack, load_policies, load_policy_file, parse_policies
from policies.schema import Policy, alert_routes

__all__ = [
    "Decision",
    "DecisionAction",
    "JobRequest",
    "DryRunReport",
    "Policy",
    "alert_routes",
    "PolicyEngine",
    "PolicyError",
    "PolicyIssue",
    "dry_run",
    "load_pack",
    "load_policies",
    "load_policy_file",
    "parse_policies",
]
