"""Background sessions: a transfer process that outlives its hosts, its journal and its client.

The wire: ``_fields`` (checked plain data), ``_snapshot`` (the one task snapshot), ``_wire``
(one class per request, reply and event), ``_protocol`` (files, framing, the bounded handshake).
The transfer process: ``_daemon`` (entry point), ``_server`` (socket, peers, op routing),
``_runner`` (queue, retries, recovery, journal-then-push), ``_attempt`` (one attempt, kept
bodies), ``_launch`` (launch commands), ``_journal`` (SQLite), ``_settings`` (configurations).
A host: ``_client`` (the connection, shared), ``_link`` (a session's requests), ``_host`` (its
remote tasks, replay, acknowledgements).
"""
