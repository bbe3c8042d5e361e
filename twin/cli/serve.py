"""``twin serve DIR``: the web API and tiles of a twin, served by waitress."""

from __future__ import annotations

import click


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="Worker threads.")
@click.option(
    "--tile-cache",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep rendered tiles on disk here too (default: TWIN_CACHE_DIR/tiles if set, else <DIR>/cache/tiles).",
)
@click.option("--no-tile-cache", is_flag=True, help="Keep rendered tiles in memory only.")
def serve(twin_dir: str, host: str, port: int, threads: int, tile_cache: str | None, no_tile_cache: bool) -> None:
    """Serve a twin: OGC API - Features and slices under /api/, XYZ tiles under /tiles/ (waitress, not Flask's server)."""
    from pathlib import Path

    try:
        from twin_web import create_app
        from twin_web.server import Server
    except ImportError as err:  # the web extra is not installed
        raise click.ClickException(f"{err}; install the web extra: pip install 'basin-twin[web]'") from None
    from twin.settings import Settings

    cache: str | None = None
    if not no_tile_cache:
        default = Path(Settings.from_env().cache_dir) / "tiles" if Settings.from_env().cache_dir else None
        cache = tile_cache or str(default or Path(twin_dir) / "cache" / "tiles")
    app = create_app(twin_dir, tile_cache_dir=cache)
    server = Server(app, host=host, port=port, threads=threads)
    click.echo(f"serving {twin_dir} at {server.url} (API {server.url}api/, tiles {server.url}tiles/); Ctrl-C stops")
    users = app.extensions["twin"].access.users()
    click.echo(
        f"log in at {server.url}login; API clients send `Authorization: Bearer TOKEN` (`twin users token {twin_dir} NAME`)"
        + ("" if users else f"; no user yet: `twin users add {twin_dir} admin --role admin` prints a password"),
        err=True,
    )
    try:
        server.run()
    finally:
        server.close()
