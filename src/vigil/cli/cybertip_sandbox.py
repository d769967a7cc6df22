"""`vigil cybertip-sandbox`: a local stand-in for the CyberTipline reporting API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def cybertip_sandbox(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    store: Annotated[
        Path, typer.Option(help="Directory for the sandbox's reports and uploaded files.")
    ] = Path("vigil-data/cybertip-sandbox"),
    username: Annotated[str, typer.Option(help="Basic auth username it accepts.")] = "sandbox",
    password: Annotated[str, typer.Option(help="Basic auth password it accepts.")] = "sandbox",
    fail: Annotated[
        list[str] | None,
        typer.Option(
            "--fail",
            help=(
                "Inject a failure, <endpoint>:<failure>, consumed in order (repeatable):"
                " code:<n>, timeout:<seconds>, drop, corrupt_md5 (upload), after:<failure>"
                " (after doing the operation). E.g. --fail submit:after:drop."
            ),
        ),
    ] = None,
) -> None:
    """Serve a local CyberTipline reporting API (status, submit, upload, fileinfo, finish,
    retract) that keeps its reports in a directory and fails on demand. Nothing leaves the
    machine; use synthetic files only."""
    import uvicorn

    from vigil.reporting.sandbox import FailurePlan, create_sandbox_app

    try:
        plan = FailurePlan(fail or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fail") from None
    app = create_sandbox_app(store, username=username, password=password, failures=plan)
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{port}"
    typer.echo(f"CyberTipline sandbox: {base}/ispws/")
    typer.echo(f"  username: {username}  password: {password}")
    typer.echo(f"  store:    {store.resolve()}")
    typer.echo(f"  control:  {base}/_sandbox/failures, {base}/_sandbox/reports (same credentials)")
    for endpoint, failures in plan.pending().items():
        typer.echo(f"  failing:  {endpoint}: {', '.join(failures)}")
    uvicorn.run(app, host=host, port=port, server_header=False)
