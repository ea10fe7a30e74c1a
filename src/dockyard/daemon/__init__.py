"""The daemon (``dockyardd``): daemon.json, start-up (supervisor, stores, services, restore),
listeners, the wiring handed to ``api``, system info/df, shutdown.  It is the top layer:
nothing imports it, and it holds no business logic of its own (that is the services').
"""
