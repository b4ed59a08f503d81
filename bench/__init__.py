"""coffeechat-bench: the load benchmark of a CoffeeChat node (CIM v1 over TCP or WebSocket).

The parent process (:mod:`.cli`) starts or targets a server (:mod:`.server`; for ``--servers N``
of ``connections``, ``p2p`` or ``group``, a cluster of N nodes on a shared PostgreSQL and Redis:
:mod:`.cluster`), creates
users through the admin HTTP API, and drives generator processes (:mod:`.worker`) that hold the
connections with a lean asyncio client (:mod:`.wire`, with a WebSocket client of its own);
:mod:`.scenarios` holds the scenarios and :mod:`.report` the table and JSON output.  The
generators use no Twisted so that the generator side stays cheap and independent of the server's
event loop.
"""
