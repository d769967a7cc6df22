"""`python -m vigil`: the command line, for when the `vigil` script is not on PATH."""

from vigil.cli import app

app(prog_name="vigil")
