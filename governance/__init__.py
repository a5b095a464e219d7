"""The governance service layer above the store: what Warden does with findings and decisions.

- :mod:`governance.ingest` — persist a batch from the stream and raise the alerts it carries;
- :mod:`governance.alerting` — alert lifecycle, silences, routes, the outbox, the sweeper and delivery;
- :mod:`governance.audit` — the hash-chained audit trail (append, verify, export);
- :mod:`governance.keys` — API keys and roles;
- :mod:`governance.registry` — model registry, versions and aliases;
- :mod:`governance.lineage` — run → dataset → version lineage and promotion blocks;
- :mod:`governance.jobs` — job requests, approvals and statuses;
- :mod:`governance.history` — redacted samples and feedback labels (training history);
- :mod:`governance.reports` — compliance reports;
- :mod:`governance.retention` — retention, purge and erasure.

It imports :mod:`store` (tables, sessions, bulk writes) and the wire types (:mod:`contracts`), never the API.
"""
