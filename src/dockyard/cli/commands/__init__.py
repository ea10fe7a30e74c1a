"""One module per docker command group; see cli/main.py for the command table."""
