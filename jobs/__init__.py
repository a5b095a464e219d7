"""Job workers: retraining, evaluation, promotion and rollback on GPU workers (issue 9).

Modules, in the order data flows through them:

- ``spec``: the messages — :class:`JobSpec`/:class:`JobCommand` on ``warden.jobs``, :class:`JobStatus` on
  ``warden.job-status``; idempotent job ids (from the policy decision or the request's key).
- ``client``: ``submit``/``cancel`` for the governance API.
- ``worker`` (+ ``book``): the ``warden jobs`` Kafka consumer group; manual commits after the terminal status,
  leases, bounded retries, time-outs, cancellation, progress events. ``runner.run_worker(settings)`` starts one.
- ``executor``: what each job kind does (retrain, evaluate, promote, rollback), independent of Kafka.
- ``datasets``: dataset snapshots from the stream's history (redacted rows, feedback labels, lineage).
- ``artifacts``: the content-addressed local artifact store, verified on load.
- ``train`` / ``tiny`` / ``bases``: fine-tuning (causal-LM SFT, sequence classification; CUDA+bf16 or CPU),
  the tiny GPT-2 with an offline-trained tokenizer, the bundled MiniLM weights.
- ``evaluate``: held-out metrics and the champion/challenger gate.
- ``registry_port`` / ``deploy`` / ``rollback``: the registry operations the worker needs (a Protocol, with
  in-memory and shared-file implementations), alias switches with their deployment events, rollback.
- ``synthetic``: a deterministic labelled support-ticket history (benchmark, tests, demos).
"""
