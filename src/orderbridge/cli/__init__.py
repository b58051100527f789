"""The command line (Typer + Rich). Commands parse input, call one service, render the result."""
