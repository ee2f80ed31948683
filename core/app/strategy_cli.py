"""``tradectl strategy hash FILE``: the SHA-256 pin an external strategy module needs in the config.

The loader (:func:`strategies.external.load_external`) imports a module only when the configured
``sha256`` equals the hash of the file's exact bytes; this prints that value as the TOML table to
paste, so nobody computes it by hand. It does not import or run the file (it has not been reviewed
yet at that point); ``tradectl backtest`` does, once it is pinned.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated

import typer

EXIT_USAGE = 2
_NAME = re.compile(r"^NAME\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)

strategy_app = typer.Typer(help="External strategy modules: pin a file by its SHA-256.", no_args_is_help=True)


def pin_text(path: Path, content: bytes) -> str:
    """The ``[[strategies.external]]`` table for ``path``; the name is the module's ``NAME`` if it is
    written as a plain string assignment, else the file's stem."""
    match = _NAME.search(content.decode("utf-8", errors="replace"))
    name = match.group(1) if match else path.stem
    return "\n".join(["[[strategies.external]]", f'name = "{name}"', f'path = "{path.as_posix()}"',
                      f'sha256 = "{hashlib.sha256(content).hexdigest()}"'])


@strategy_app.command("hash")
def hash_(file: Annotated[Path, typer.Argument(help="The strategy module (.py) to pin.")]) -> None:
    """Print the SHA-256 of FILE as the config lines that pin it (re-run after every edit of the file)."""
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        typer.echo(f"{file}: no such file", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except IsADirectoryError:
        typer.echo(f"{file}: is a directory, not a strategy file", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo("# paste into your config file (the file loads only while its content matches this hash):")
    typer.echo(pin_text(file, content))
