"""Background sessions: a transfer process that outlives its hosts, its journal and its client.

``_protocol`` (messages, plain data), ``_journal`` (SQLite), ``_daemon`` (the transfer process),
``_client`` (a host's side of the connection).
"""
