"""Save an SVG screenshot of the app after a search (for the README and talks).

    python -m xqg_tui.tui.screenshot INDEX "日本で一番高い山は？" docs/search.svg [--inspect]

or from Python::

    save_search_screenshot(Path("~/.cache/xqg-tui/demo-index"), "日本で一番高い山は？", Path("search.svg"))

The app runs headless at a fixed size with timings hidden, so the picture
depends only on the index, the query and the options.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..errors import XQGError


async def _capture(
    index: Path,
    query: str,
    out: Path,
    size: tuple[int, int],
    lang: str | None,
    inspect: bool,
    timeout: float,
    app_kwargs: dict[str, Any],
) -> Path:
    from .app import create_app

    app = create_app(index, show_timings=False, **app_kwargs)
    async with app.run_test(size=size) as pilot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # The index opens and the encoder loads in workers: wait for them.
        while app.encoder_state not in ("ready", "failed") and app.index_state != "none":
            if loop.time() > deadline:
                raise XQGError(f"the encoder did not load within {timeout:.0f} s")
            await pilot.pause(0.1)
        if app.searcher is None:
            raise XQGError(f"the index could not be opened: {app.index_error or index}")
        if app.encoder_state == "failed":
            raise XQGError(f"the encoder could not be loaded: {app.encoder_error}")
        screen = app.search_screen
        assert screen is not None
        screen.query_one("#query").value = query
        screen.run_query(query, lang)
        while screen.response is None or screen.response.query != query.strip() or screen._searching:
            if loop.time() > deadline:
                raise XQGError(f"the search did not finish within {timeout:.0f} s")
            await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        if inspect:
            screen.action_inspect()
            await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        out.parent.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(filename=out.name, path=str(out.parent))
        app.exit(0)
    return out


def save_search_screenshot(
    index: Path | str,
    query: str,
    out: Path | str,
    *,
    size: tuple[int, int] = (120, 36),
    lang: str | None = None,
    inspect: bool = False,
    timeout: float = 300.0,
    **app_kwargs: Any,
) -> Path:
    """Open the app on ``index``, search ``query``, wait for the results and save an SVG.

    ``inspect=True`` opens the passage inspector on the top xQG hit first.
    ``app_kwargs`` go to ``create_app`` (e.g. ``alpha=0.3``, ``theme="light"``,
    ``note="..."``). Returns the SVG path.
    """
    return asyncio.run(_capture(Path(index).expanduser(), query, Path(out), size, lang, inspect, timeout, app_kwargs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xqg_tui.tui.screenshot", description=__doc__.split("\n\n")[0])
    p.add_argument("index", help="index folder")
    p.add_argument("query", help="the query to type")
    p.add_argument("out", help="SVG file to write")
    p.add_argument("--size", default="120x36", help="terminal size WIDTHxHEIGHT (default 120x36)")
    p.add_argument("--lang", default=None, help="query language (default: detected)")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--theme", choices=["dark", "light"], default="dark")
    p.add_argument("--inspect", action="store_true", help="open the passage inspector on the top hit")
    p.add_argument("--note", default=None, help="a note shown under the title")
    args = p.parse_args(argv)
    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
        path = save_search_screenshot(
            args.index, args.query, args.out, size=(w, h), lang=args.lang, inspect=args.inspect,
            alpha=args.alpha, theme=args.theme, note=args.note,
        )
    except (XQGError, ValueError) as e:
        print(f"xqg screenshot: {e.one_line() if isinstance(e, XQGError) else e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
