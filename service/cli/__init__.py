"""The command line: `pressroom run` (launcher.py) and the operator's `flask --app service ...`
commands (commands.py, demo.py)."""
