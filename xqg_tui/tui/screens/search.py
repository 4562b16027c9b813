"""The start screen: type a query, see the plain and the xQG ranking side by side.

All ranking happens in the engine (``Searcher.query_state`` encodes once,
``Searcher.rerank`` re-ranks from the kept score parts); this screen only keeps
the user's settings, starts workers and draws what they post back.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Header, Input, Label, LoadingIndicator, Select, Static

from ...languages import PAPER_LANGUAGES, detect_language, language_name
from ..messages import SearchDone, SearchFailed
from ..util import describe_error, fmt_alpha, fmt_score, shorten, step_alpha
from ..widgets import ResultsTable

if TYPE_CHECKING:
    from ...search import QueryState, Searcher, SearchResponse
    from ...types import Hit
    from ..app import XQGApp

AUTO = "auto"
VIEWS = ("both", "augmented", "plain")
WIDE = 100  # columns from which both rankings fit side by side


def _lang_label(code: str) -> str:
    try:
        return f"{code} {language_name(code)}"
    except KeyError:
        return code


class SearchScreen(Screen):
    BINDINGS = [
        Binding("slash", "focus_query", "query", key_display="/"),
        Binding("a", "toggle_augment", "xQG on/off"),
        Binding("plus,equals_sign", "alpha_up", "α+", key_display="+"),
        Binding("minus", "alpha_down", "α−", key_display="-"),
        Binding("i", "inspect", "inspect"),
        Binding("v", "cycle_view", "view"),
        Binding("f", "toggle_fusion", "sum/mean", show=False),
        Binding("l", "focus_langs", "Languages", show=False),
        Binding("escape", "leave_query", "leave query box", show=False),
    ]

    app: "XQGApp"

    def __init__(self) -> None:
        super().__init__(id="search-screen")
        self.state: "QueryState | None" = None
        self.response: "SearchResponse | None" = None
        self._seq = 0
        self._searching = False
        self._rerank_after = False
        self._pending: tuple[str, str | None] | None = None
        self._last_seconds: float | None = None
        self.view = "auto"
        self._shown_warnings: set[str] = set()
        self._refresh_lock = asyncio.Lock()

    # ---- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⌕")
        yield Static("", id="note")
        with Horizontal(id="query-row"):
            yield Input(placeholder="Type a question in ar bn fi ja ko ru te — Enter searches", id="query")
            yield Select([("auto-detect", AUTO)], value=AUTO, allow_blank=False, id="lang-select", tooltip="query language")
        with Horizontal(id="status-row"):
            yield LoadingIndicator(id="busy")
            yield Static("", id="status")
        with Horizontal(id="controls"):
            yield Label("α", classes="ctl-label")
            yield Input("", id="alpha", restrict=r"[0-9.]*", max_length=6, tooltip="alpha: weight of the generated queries (Enter applies)")
            yield Button("−", id="alpha-down", classes="tiny", tooltip="lower alpha (-)")
            yield Button("+", id="alpha-up", classes="tiny", tooltip="raise alpha (+)")
            yield Label("", id="fusion-label", classes="ctl-label")
            yield Checkbox("xQG", True, id="augment", tooltip="augmentation on/off (a)")
            yield Label("langs", classes="ctl-label")
            yield Horizontal(id="lang-checks")
        with Horizontal(id="results"):
            yield Static("", id="hint")
            with Vertical(id="plain-pane", classes="pane"):
                yield Label("plain", id="plain-title", classes="pane-title")
                yield ResultsTable("plain", id="plain")
            with Vertical(id="aug-pane", classes="pane"):
                yield Label("xQG", id="aug-title", classes="pane-title")
                yield ResultsTable("augmented", id="augmented")
        yield Static("", id="preview")
        yield Footer(show_command_palette=False)

    async def on_mount(self) -> None:
        note = self.app.note
        self.query_one("#note", Static).update(note or "")
        self.query_one("#note").display = bool(note)
        self._show_results(False)
        self.query_one("#query", Input).focus()
        await self.refresh_index()

    def on_resize(self) -> None:
        self._apply_view()
        self.query_one("#preview").display = self.size.height >= 32 and self.response is not None

    # ---- app -> screen ----------------------------------------------------------------
    async def refresh_index(self) -> None:
        """Called when the app opened (another) index: rebuild the language controls."""
        async with self._refresh_lock:  # two quick calls must not mount the boxes twice
            await self._refresh_index()

    async def _refresh_index(self) -> None:
        searcher = self.app.searcher
        self.state = None
        self.response = None
        self._seq += 1  # answers for the previous index are stale
        self._show_results(False)
        checks = self.query_one("#lang-checks", Horizontal)
        await checks.remove_children()
        settings = self.app.settings
        if searcher is not None:
            langs = list(searcher.index.langs)
            await checks.mount_all(
                [Checkbox(l, l in settings.langs, id=f"lang-{l}", classes="lang-check", tooltip=_lang_label(l)) for l in langs]
            )
            if not langs:
                await checks.mount(Label("none (index has no generated queries)", classes="dim"))
            options = [("auto-detect", AUTO)] + [(_lang_label(c), c) for c in dict.fromkeys([*PAPER_LANGUAGES, *langs, "en"])]
            select = self.query_one("#lang-select", Select)
            select.set_options(options)
            select.value = AUTO
        self.query_one("#alpha", Input).value = fmt_alpha(settings.alpha)
        with self.prevent(Checkbox.Changed):
            self.query_one("#augment", Checkbox).value = settings.augment
        self._update_labels()
        self.update_status()

    def encoder_ready(self) -> None:
        self.update_status()
        if self._pending is not None:
            text, lang = self._pending
            self._pending = None
            self._start_search(text, lang)

    def encoder_failed(self) -> None:
        if self._pending is not None:
            self._pending = None
            self.notify("the search cannot run without the encoder", severity="error")
        self.update_status()

    # ---- status ---------------------------------------------------------------------
    def update_status(self) -> None:
        app = self.app
        parts: list[Text] = []
        busy = False
        if app.searcher is None:
            if app.index_state == "opening":
                parts.append(Text("opening index…", style="bold yellow"))
                busy = True
            else:
                parts.append(Text("no index open: press o to open one or b to build one", style="bold yellow"))
        else:
            idx = app.searcher.index
            parts.append(Text(f"{idx.root.name} · {idx.size:,} passages · {len(idx.langs)} query langs"))
            if app.encoder_state == "loading":
                parts.append(Text("loading encoder…", style="bold yellow"))
                busy = True
            elif app.encoder_state == "failed":
                parts.append(Text("encoder failed to load (search unavailable)", style="bold red"))
            else:
                parts.append(Text("encoder ready", style="green"))
        text = self.query_one("#query", Input).value
        lang_part = self._lang_status(text)
        if lang_part is not None:
            parts.append(lang_part)
        if self._pending is not None:
            parts.append(Text("search waits for the encoder", style="yellow"))
        elif self._searching:
            parts.append(Text("searching…", style="yellow"))
            busy = True
        elif self.response is not None and app.show_timings and self._last_seconds is not None:
            parts.append(Text(f"{self._last_seconds * 1000:.0f} ms", style="dim"))
        self.query_one("#status", Static).update(Text(" │ ", style="dim").join(parts))
        self.query_one("#busy").display = busy

    def _lang_status(self, text: str) -> Text | None:
        chosen = self.query_one("#lang-select", Select).value
        if chosen not in (AUTO, Select.NULL):
            return Text(f"query: {_lang_label(str(chosen))} (chosen)")
        if self.response is not None and text.strip() == self.response.query:
            how = "detected" if self.response.detected else "chosen"
            return Text(f"query: {_lang_label(self.response.lang)} ({how})")
        if not text.strip():
            return None
        cands = (self.app.searcher.index.langs if self.app.searcher else None) or list(PAPER_LANGUAGES)
        det = detect_language(text, cands)
        if det.code == "und":
            return Text("query: language unknown (choose one)", style="yellow")
        return Text(f"query: {_lang_label(det.code)} (detected {det.confidence:.0%})")

    def _update_labels(self) -> None:
        s = self.app.settings
        self.query_one("#fusion-label", Label).update(f"{s.fusion}")
        plain = "plain · English passage vectors"
        if not s.augment:
            aug = "xQG off (press a) · same as plain"
        elif not s.langs or s.alpha == 0:
            aug = "xQG · no generated queries count (α=0 or no language)"
        else:
            aug = f"xQG · α={fmt_alpha(s.alpha)} {s.fusion} · {','.join(s.langs)}"
        self.query_one("#plain-title", Label).update(plain)
        self.query_one("#aug-title", Label).update(aug)

    # ---- searching ------------------------------------------------------------------
    @on(Input.Changed, "#query")
    def _query_changed(self) -> None:
        self.update_status()

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify("the query is empty: type a question first", severity="warning")
            return
        lang = self.query_one("#lang-select", Select).value
        code = None if lang in (AUTO, Select.NULL) else str(lang)
        self.run_query(text, code)

    def run_query(self, text: str, lang: str | None = None) -> None:
        """Search ``text`` (the Enter key path; tests and the screenshot helper call it too)."""
        app = self.app
        if app.searcher is None:
            self.notify("no index is open yet: press o to open one or b to build one", severity="warning")
            return
        self._show_results(True)
        self._focus_results()
        if app.encoder_state == "loading":
            self._pending = (text, lang)
            self.notify("the encoder is still loading: your search runs as soon as it is ready")
            self.update_status()
            return
        if app.encoder_state == "failed":
            self.notify(f"cannot search: {app.encoder_error}", severity="error", timeout=8)
            return
        self._start_search(text, lang)

    def _spec(self):
        s = self.app.settings
        return self.app.searcher.spec(alpha=s.alpha, fusion=s.fusion, langs=s.langs, n=s.n)

    def _start_search(self, text: str, lang: str | None) -> None:
        try:
            spec = self._spec()
        except Exception as e:  # noqa: BLE001 - shown to the user, never raised
            self.notify(describe_error(e), severity="error")
            return
        self._seq += 1
        self._searching = True
        self._rerank_after = False
        self.update_status()
        self._search_worker(self._seq, self.app.searcher, text, lang, self.app.settings.k, spec, self.app.settings.augment)

    @work(thread=True, group="search", exclusive=True, exit_on_error=False)
    def _search_worker(self, seq: int, searcher: "Searcher", text: str, lang: str | None, k: int, spec, augment: bool) -> None:
        t0 = time.perf_counter()
        try:
            state = searcher.query_state(text, lang)
            resp = searcher.rerank(state, k, spec, augment)
        except Exception as e:  # noqa: BLE001
            self.post_message(SearchFailed(seq, describe_error(e)))
            return
        self.post_message(SearchDone(seq, state, resp, time.perf_counter() - t0, reranked=False))

    @work(thread=True, group="rerank", exclusive=True, exit_on_error=False)
    def _rerank_worker(self, seq: int, searcher: "Searcher", state: "QueryState", k: int, spec, augment: bool) -> None:
        t0 = time.perf_counter()
        try:
            resp = searcher.rerank(state, k, spec, augment)
        except Exception as e:  # noqa: BLE001
            self.post_message(SearchFailed(seq, describe_error(e)))
            return
        self.post_message(SearchDone(seq, state, resp, time.perf_counter() - t0, reranked=True))

    def rerank(self) -> None:
        """Settings changed: rank the current query again (no model call)."""
        self._update_labels()
        if self.state is None or self.app.searcher is None:
            self.update_status()
            return
        if self._searching:
            self._rerank_after = True  # the running search used the old settings
            return
        try:
            spec = self._spec()
        except Exception as e:  # noqa: BLE001
            self.notify(describe_error(e), severity="error")
            return
        self._seq += 1
        s = self.app.settings
        self._rerank_worker(self._seq, self.app.searcher, self.state, s.k, spec, s.augment)

    def on_search_done(self, message: SearchDone) -> None:
        if message.seq != self._seq:
            return  # an older answer overtaken by a newer request
        self._searching = False
        self.state = message.state
        self.response = message.response
        self._last_seconds = message.seconds
        self._draw_response()
        for w in message.response.warnings:
            if w not in self._shown_warnings:
                self._shown_warnings.add(w)
                self.notify(w, severity="warning", timeout=8)
        if self._rerank_after:
            self._rerank_after = False
            self.rerank()
        self.update_status()

    def on_search_failed(self, message: SearchFailed) -> None:
        if message.seq != self._seq:
            return
        self._searching = False
        self._rerank_after = False
        self.notify(message.error, severity="error", timeout=8)
        self.update_status()

    def _draw_response(self) -> None:
        resp = self.response
        assert resp is not None
        self._show_results(True)
        self.query_one("#plain", ResultsTable).show_hits(resp.plain)
        self.query_one("#augmented", ResultsTable).show_hits(resp.augmented)
        self._update_labels()
        self.query_one("#preview").display = self.size.height >= 32
        focused = self.focused
        table = focused if isinstance(focused, ResultsTable) else self.query_one("#augmented", ResultsTable)
        self._show_preview(table.hit_at_cursor())

    # ---- results area ---------------------------------------------------------------
    def _show_results(self, on: bool) -> None:
        hint = self.query_one("#hint", Static)
        hint.display = not on
        if not on:
            hint.update(self._hint_text())
            for pane in ("#plain-pane", "#aug-pane"):
                self.query_one(pane).display = False
            self.query_one("#preview").display = False
        else:
            self._apply_view()

    def _hint_text(self) -> Text:
        t = Text()
        t.append("Cross-lingual search with generated queries (xQG)\n\n", style="bold")
        t.append("Type a question in Arabic, Bengali, Finnish, Japanese, Korean, Russian or Telugu and press Enter. ")
        t.append("English passages are ranked twice: by their own vectors (plain) and with the vectors of ")
        t.append("queries generated for them in those languages fused in (xQG).\n\n")
        t.append("e.g.  日本で一番高い山は？   Mikä on Suomen suurin järvi?   Кто написал «Войну и мир»?\n\n", style="italic")
        t.append("Esc", style="bold")
        t.append(" leaves the query box, then  ")
        t.append("a", style="bold")
        t.append(" xQG on/off   ")
        t.append("+ -", style="bold")
        t.append(" alpha   ")
        t.append("Enter/i", style="bold")
        t.append(" inspect   ")
        t.append("b", style="bold")
        t.append(" build   ")
        t.append("e", style="bold")
        t.append(" evaluate   ")
        t.append("?", style="bold")
        t.append(" help")
        return t

    def _effective_view(self) -> str:
        if self.view != "auto":
            return self.view
        width = self.size.width or self.app.size.width  # 0 before the first layout
        return "both" if width >= WIDE else "augmented"

    def _apply_view(self) -> None:
        if self.query_one("#hint").display:
            return
        view = self._effective_view()
        self.query_one("#plain-pane").display = view in ("both", "plain")
        self.query_one("#aug-pane").display = view in ("both", "augmented")

    def _focus_results(self) -> None:
        view = self._effective_view()
        self.query_one("#plain" if view == "plain" else "#augmented", ResultsTable).focus()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if not isinstance(table, ResultsTable):
            return
        # Both tables move their cursor when redrawn: the preview follows the focused one.
        if table.has_focus or (not isinstance(self.focused, ResultsTable) and table.id == "augmented"):
            self._show_preview(table.hit_at_cursor())

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, ResultsTable):
            self._open_inspector(event.data_table.hit_at_cursor())

    def _show_preview(self, hit: "Hit | None") -> None:
        preview = self.query_one("#preview", Static)
        if hit is None:
            preview.update("")
            return
        t = Text()
        t.append(f"{hit.title or '(untitled)'}", style="bold")
        t.append(f"  {hit.docid}\n", style="dim")
        t.append(hit.text + "\n")
        if hit.matched:
            t.append("best generated queries: ", style="dim")
            for m in hit.matched[:3]:
                t.append(f"[{m.lang}] ", style="bold cyan")
                t.append(shorten(m.text, 40))
                t.append(f" {fmt_score(m.score)}   ", style="dim")
        preview.update(t)

    # ---- actions --------------------------------------------------------------------
    def action_focus_query(self) -> None:
        self.query_one("#query", Input).focus()

    def action_leave_query(self) -> None:
        """Esc in the query box: let single keys (a, b, e, q, ?) act as commands."""
        if self.response is not None:
            self._focus_results()
        else:
            self.query_one("#augment", Checkbox).focus()

    def action_focus_langs(self) -> None:
        checks = self.query("#lang-checks Checkbox")
        if checks:
            checks.first().focus()

    def action_toggle_augment(self) -> None:
        box = self.query_one("#augment", Checkbox)
        box.value = not box.value  # Checkbox.Changed re-ranks

    @on(Checkbox.Changed, "#augment")
    def _augment_changed(self, event: Checkbox.Changed) -> None:
        self.app.settings.augment = event.value
        self.rerank()

    @on(Checkbox.Changed, ".lang-check")
    def _lang_changed(self, event: Checkbox.Changed) -> None:
        if self.app.searcher is None:
            return
        chosen = {str(c.id).removeprefix("lang-") for c in self.query(".lang-check").results(Checkbox) if c.value}
        self.app.settings.langs = [l for l in self.app.searcher.index.langs if l in chosen]
        self.rerank()

    def set_alpha(self, alpha: float) -> None:
        alpha = min(1.0, max(0.0, float(alpha)))
        self.app.settings.alpha = alpha
        self.query_one("#alpha", Input).value = fmt_alpha(alpha)
        self.rerank()

    def action_alpha_up(self) -> None:
        self.set_alpha(step_alpha(self.app.settings.alpha, up=True))

    def action_alpha_down(self) -> None:
        self.set_alpha(step_alpha(self.app.settings.alpha, up=False))

    @on(Input.Submitted, "#alpha")
    def _alpha_submitted(self, event: Input.Submitted) -> None:
        try:
            value = float(event.value)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            self.notify(f"alpha must be a number between 0 and 1, not {event.value!r}", severity="error")
            event.input.value = fmt_alpha(self.app.settings.alpha)
            return
        self.set_alpha(value)
        if self.response is not None:
            self._focus_results()

    @on(Button.Pressed, "#alpha-up")
    def _alpha_up_pressed(self) -> None:
        self.action_alpha_up()

    @on(Button.Pressed, "#alpha-down")
    def _alpha_down_pressed(self) -> None:
        self.action_alpha_down()

    @on(Select.Changed, "#lang-select")
    def _lang_select_changed(self) -> None:
        self.update_status()

    def action_toggle_fusion(self) -> None:
        s = self.app.settings
        s.fusion = "mean" if s.fusion == "sum" else "sum"
        self.notify(f"fusion: {s.fusion} of each language's generated-query vectors")
        self.rerank()

    def action_cycle_view(self) -> None:
        current = self._effective_view()
        self.view = VIEWS[(VIEWS.index(current) + 1) % len(VIEWS)]
        self._apply_view()
        if self.response is not None:
            self._focus_results()

    def action_inspect(self) -> None:
        focused = self.focused
        table = focused if isinstance(focused, ResultsTable) else None
        if table is None:
            view = self._effective_view()
            table = self.query_one("#plain" if view == "plain" else "#augmented", ResultsTable)
        self._open_inspector(table.hit_at_cursor())

    def _open_inspector(self, hit: "Hit | None") -> None:
        if hit is None or self.state is None or self.response is None:
            self.notify("search first, then pick a result to inspect", severity="warning")
            return
        from .inspector import InspectorScreen

        self.app.push_screen(InspectorScreen(hit, self.state, self.response, self.app.searcher))
