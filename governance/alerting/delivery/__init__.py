"""Alert delivery: destination config, request bodies (PagerDuty Events v2, Slack, signed webhooks)
and the outbox dispatcher."""
