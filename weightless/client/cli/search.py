"""``weightless search [QUERY]``."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from weightless.client import api
from weightless.client.cli import common
from weightless.wire.text import printable
from weightless.wire.units import human_size


@click.command("search")
@click.argument("query", required=False)
@click.option("--category", help="Only this category (exact).")
@click.option("--publisher", help="Only this publisher (exact).")
@click.option("--tags", help="Tags containing this text.")
@click.option(
    "--sort",
    type=click.Choice(["created_at", "completions", "seeders"]),
    help="Newest first (created_at, the default) or most completions / seeders first.",
)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many.")
@common.tracker_options
def command(
    query: str | None,
    category: str | None,
    publisher: str | None,
    tags: str | None,
    sort: str | None,
    limit: int,
    offset: int,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
) -> None:
    """Search the registry: QUERY matches names by substring, in any case."""
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    page = common.run(
        lambda: api.search(
            query,
            tracker=where,
            category=category,
            publisher=publisher,
            tags=tags,
            sort=sort,
            limit=limit,
            offset=offset,
        )
    )
    common.emit(
        as_json, {"total": page.total, "entries": page.entries}, lambda: table(page, offset)
    )


def table(page: api.SearchPage, offset: int, out: Console | None = None) -> None:
    """The page as a table on stdout (or ``out``), every cell escaped with ``printable``."""
    if out is None:
        out = Console(highlight=False, soft_wrap=False)
        if not out.is_terminal:  # piped: whole hashes and names, for grep and cut
            out = Console(highlight=False, soft_wrap=False, width=250)
    if not page.entries:
        out.print(
            "no entries match" if page.total == 0 else f"no entries past {offset} of {page.total}"
        )
        return
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (
        ("name", "left"),
        ("publisher", "left"),
        ("size", "right"),
        ("seeders", "right"),
        ("leechers", "right"),
        ("verified", "left"),
        ("info hash", "left"),
    ):
        grid.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in page.entries:
        grid.add_row(
            *(
                printable(str(cell))  # registry text: no escape sequence reaches the terminal
                for cell in (
                    e.get("name") or "",
                    e.get("publisher") or "",
                    _size(e.get("size")),
                    e.get("seeders", 0),
                    e.get("leechers", 0),
                    "yes" if e.get("verified") else "no",
                    e.get("info_hash", ""),
                )
            ),
            end_section=False,
        )
    out.print(grid, markup=False)
    shown = f"{offset + 1}-{offset + len(page.entries)}" if offset else str(len(page.entries))
    out.print(f"{shown} of {page.total} entries")


def _size(size: object) -> str:
    return human_size(size) if isinstance(size, int) and not isinstance(size, bool) else ""
