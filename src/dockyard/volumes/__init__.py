"""Volumes: the local volume driver, volume records, and containers' bind/volume/tmpfs mounts."""
