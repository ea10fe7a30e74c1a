"""dockyard: a Docker-compatible container engine.

Layout (see DESIGN.md): cli -> client => HTTP => api -> services (images, ...) ->
content, layers, storage -> runtime.linux.  ``daemon`` wires the services; nothing imports it.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
