"""One module per docker command group (see cli/main.py for the command table); each turns
flags into Engine API calls through ``dockyard.client`` and must not import daemon code."""
