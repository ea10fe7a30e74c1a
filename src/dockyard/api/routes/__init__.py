"""Route tables, one module per resource (containers, images, networks, volumes, system,
swarm).  No state and no logic of their own: one service method per route; ARCHITECTURE.md
indexes endpoint -> handler."""
