"""Volumes: the local volume driver, volume records, and containers' bind/volume/tmpfs mounts.
It must not import ``containers`` (which container uses a volume is asked through a
callback, ``users``) or ``api``."""
