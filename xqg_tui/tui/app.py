"""The Textual app: ``create_app`` for tests, ``run_app`` for the CLI.

Opening is fast: the window appears at once, the index is opened and the encoder
loaded in thread workers (named groups, one at a time) while the search screen
says so; searches typed meanwhile wait for the encoder.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding

from .dialogs import ErrorDialog, HelpScreen, PathPicker
from .messages import EncoderFailed, EncoderLoaded, IndexFailed, IndexOpened
from .state import SearchSettings
from .util import describe_error

if TYPE_CHECKING:
    from ..search import Searcher
    from .screens.search import SearchScreen

THEMES = {"dark": "textual-dark", "light": "textual-light"}


class XQGApp(App[int]):
    CSS_PATH = "xqg.tcss"
    TITLE = "xQG · cross-lingual search with generated queries"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("b", "show('build')", "build"),
        Binding("e", "show('evaluate')", "evaluate"),
        Binding("s", "show('search')", "Search", show=False),
        Binding("o", "open_index", "Open index", show=False),
        Binding("t", "toggle_theme", "Theme", show=False),
    ]

    def __init__(
        self,
        index_path: Path | None = None,
        searcher: "Searcher | None" = None,
        *,
        title: str | None = None,
        note: str | None = None,
        theme: str = "dark",
        alpha: float | None = None,
        k: int = 10,
        device: str = "auto",
        show_timings: bool = True,
        eval_queries: Path | None = None,
        eval_qrels: Path | None = None,
        build_defaults: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if title:
            self.title = title
        self.note = note
        self.theme = THEMES.get(theme, theme)
        self.index_path = Path(index_path) if index_path is not None else None
        self.searcher: "Searcher | None" = searcher
        self.device = device
        self.show_timings = show_timings
        self.eval_queries = eval_queries
        self.eval_qrels = eval_qrels
        self.build_defaults = dict(build_defaults or {})
        self._alpha_override = alpha
        self._k = k
        self.settings = SearchSettings(alpha=alpha if alpha is not None else 0.01, k=k)
        self.index_state = "open" if searcher is not None else ("opening" if index_path else "none")
        self.encoder_state = "none"  # none | loading | ready | failed
        self.encoder_error = ""
        self.index_error = ""
        self.search_screen: "SearchScreen | None" = None

    # ---- start-up -----------------------------------------------------------------
    async def on_mount(self) -> None:
        from .screens.search import SearchScreen

        self.search_screen = SearchScreen()
        await self.push_screen(self.search_screen)
        if self.searcher is not None:
            self._use_searcher(self.searcher, self.searcher.index.root)
        elif self.index_path is not None:
            self.open_index(self.index_path)

    def open_index(self, path: Path) -> None:
        self.index_state = "opening"
        self.index_path = Path(path)
        if self.search_screen is not None:
            self.search_screen.update_status()
        self._open_index_worker(Path(path))

    @work(thread=True, group="index", exclusive=True, exit_on_error=False)
    def _open_index_worker(self, path: Path) -> None:
        t0 = time.perf_counter()
        try:
            from ..search import Searcher

            searcher = Searcher.open(path)
        except Exception as e:  # noqa: BLE001 - every failure becomes a dialog
            self.post_message(IndexFailed(path, describe_error(e)))
            return
        self.post_message(IndexOpened(searcher, path, time.perf_counter() - t0))

    def on_index_opened(self, message: IndexOpened) -> None:
        self._use_searcher(message.searcher, message.path)

    def on_index_failed(self, message: IndexFailed) -> None:
        self.index_state = "none" if self.searcher is None else "open"
        self.index_error = message.error
        self.push_screen(
            ErrorDialog(
                "The index could not be opened",
                message.error,
                "Press o to open another index folder, or b to build one.",
            )
        )
        if self.search_screen is not None:
            self.search_screen.update_status()

    def _use_searcher(self, searcher: "Searcher", path: Path) -> None:
        self.searcher = searcher
        self.index_path = Path(path)
        self.index_state = "open"
        idx = searcher.index
        self.settings = SearchSettings.from_defaults(idx.search_defaults, list(idx.langs), self._alpha_override, self._k)
        self.sub_title = f"{idx.root.name} · {idx.size:,} passages"
        if searcher.encoder_loaded:
            self.encoder_state = "ready"
        else:
            self.encoder_state = "loading"
            # Start after the screen is drawn: importing torch in the worker competes
            # for the GIL, and the first frame must not wait for it.
            self.call_after_refresh(self._load_encoder_worker, searcher)
        if self.search_screen is not None and self.search_screen.is_mounted:
            self.run_worker(self.search_screen.refresh_index(), group="refresh")

    @work(thread=True, group="encoder", exclusive=True, exit_on_error=False)
    def _load_encoder_worker(self, searcher: "Searcher") -> None:
        t0 = time.perf_counter()
        try:
            searcher.load_encoder(self.device)
        except Exception as e:  # noqa: BLE001
            self.post_message(EncoderFailed(searcher, describe_error(e)))
            return
        self.post_message(EncoderLoaded(searcher, time.perf_counter() - t0))

    def on_encoder_loaded(self, message: EncoderLoaded) -> None:
        if message.searcher is not self.searcher:
            return  # another index was opened meanwhile
        self.encoder_state = "ready"
        if self.search_screen is not None:
            self.search_screen.encoder_ready()

    def on_encoder_failed(self, message: EncoderFailed) -> None:
        if message.searcher is not self.searcher:
            return
        self.encoder_state = "failed"
        self.encoder_error = message.error
        self.push_screen(
            ErrorDialog(
                "The encoder could not be loaded",
                message.error,
                "Searching needs the encoder the index was built with. Check that the model is downloaded "
                "(`xqg models prepare` for the offline one) and open the app again; the index builder (b) still works.",
            )
        )
        if self.search_screen is not None:
            self.search_screen.encoder_failed()

    # ---- actions ------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = THEMES["light"] if self.theme == THEMES["dark"] else THEMES["dark"]

    def action_show(self, name: str) -> None:
        """Go to the search, build or evaluate screen (kept alive between visits)."""
        if name == "search":
            while len(self.screen_stack) > 2:  # [default, search, ...]
                self.pop_screen()
            return
        if not self.is_screen_installed(name):
            if name == "build":
                from .screens.builder import BuilderScreen

                self.install_screen(BuilderScreen(), name)
            elif name == "evaluate":
                from .screens.evaluate import EvaluateScreen

                self.install_screen(EvaluateScreen(), name)
        if len(self.screen_stack) > 2:
            self.switch_screen(name)
        else:
            self.push_screen(name)

    def action_open_index(self) -> None:
        start = str(self.index_path) if self.index_path else ""

        def chosen(path: str | None) -> None:
            if path:
                self.open_index(Path(path).expanduser())

        self.push_screen(PathPicker("Open an index folder", start, directory=True), chosen)

    def notify_error(self, error: BaseException | str, title: str = "") -> None:
        text = error if isinstance(error, str) else describe_error(error)
        self.notify(text, title=title, severity="error", timeout=10)


def create_app(index_path: Path | str | None = None, searcher: "Searcher | None" = None, **kwargs: Any) -> XQGApp:
    """The app on an index folder (opened in a worker) or an already open ``Searcher``."""
    return XQGApp(Path(index_path) if index_path is not None else None, searcher, **kwargs)


def run_app(index: Path | None = None, **kwargs: Any) -> int:
    """Run the app in this terminal; returns the exit code (0 = normal quit)."""
    app = create_app(index, **kwargs)
    try:
        app.run()
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback
        import sys

        print(f"xqg: the app stopped: {describe_error(e)}", file=sys.stderr)
        return 1
    rc = app.return_code
    return int(rc or 0)
