"""Wire types: everything that travels on Warden's topics, in one place.

- :mod:`contracts.events` — the event envelope producers publish (inference, training, feedback, deployment);
- :mod:`contracts.dead_letter` — refused input and the dead letter that carries it;
- :mod:`contracts.decision` — what a policy decides about a finding;
- :mod:`contracts.aggregates` — aggregate-policy inputs routed to the owner of a group's window;
- :mod:`contracts.samples` — redacted samples and feedback labels (training history);
- :mod:`contracts.jobs` — job specs, commands and status;
- :mod:`contracts.topics` — the topic catalogue.

Findings (:mod:`detectors.finding`) stay with the detectors that make them; this package builds on them.
It imports nothing else of Warden.
"""
