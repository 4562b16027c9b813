"""The passage inspector: full passage, its generated queries by language with their
similarity to the typed query, and what each language adds to the xQG score."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ...languages import language_name
from ..util import bar, fmt_alpha, fmt_score, rank_change_text

if TYPE_CHECKING:
    from ...search import QueryState, Searcher, SearchResponse
    from ...types import Hit, MatchedQuery

BEST = 3  # how many generated queries are highlighted as the best matches


def _name(code: str) -> str:
    try:
        return language_name(code)
    except KeyError:
        return code


class InspectorScreen(Screen):
    BINDINGS = [
        Binding("escape,i,backspace", "close", "back"),
        Binding("n,right", "step(1)", "next hit"),
        Binding("p,left", "step(-1)", "previous hit"),
    ]

    def __init__(self, hit: "Hit", state: "QueryState", response: "SearchResponse", searcher: "Searcher") -> None:
        super().__init__(id="inspector-screen")
        self.state = state
        self.response = response
        self.searcher = searcher
        self.in_augmented = any(h is hit for h in response.augmented)
        self.hits = response.augmented if self.in_augmented else response.plain
        self.position = next((i for i, h in enumerate(self.hits) if h is hit), 0)

    @property
    def hit(self) -> "Hit":
        return self.hits[self.position]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⌕")
        with VerticalScroll(id="inspector"):
            yield Static(id="insp-head")
            yield Static(id="insp-passage", classes="box")
            yield Static(id="insp-contrib", classes="box")
            with Vertical(id="insp-queries", classes="box"):
                for lang in self.searcher.index.langs:
                    yield Static(id=f"gen-{lang}", classes="gen-group")
                if not self.searcher.index.langs:
                    yield Static("this index has no generated queries", classes="dim")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#insp-passage").border_title = "passage (English)"
        self.query_one("#insp-contrib").border_title = "what makes up the xQG score"
        self.query_one("#insp-queries").border_title = "generated queries · similarity to your query · ★ best matches"
        self.draw()

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_step(self, delta: int) -> None:
        self.position = (self.position + delta) % len(self.hits)
        self.draw()

    # ---- drawing --------------------------------------------------------------------
    def draw(self) -> None:
        hit = self.hit
        spec = self.response.spec
        row = self.searcher.index.docid_index[hit.docid]
        self.sub_title = f"inspecting {hit.docid} ({self.position + 1}/{len(self.hits)} of the {'xQG' if self.in_augmented else 'plain'} ranking)"
        plain_rank, aug_rank = (hit.other_rank, hit.rank) if self.in_augmented else (hit.rank, hit.other_rank)
        head = Text()
        head.append(hit.title or "(untitled)", style="bold")
        head.append(f"   {hit.docid}\n", style="dim")
        head.append(f"query ({self.response.lang}): ", style="dim")
        head.append(self.response.query + "\n")
        head.append(f"plain rank {plain_rank}  →  xQG rank {aug_rank}  ")
        if plain_rank is not None and aug_rank is not None:
            head.append_text(rank_change_text(plain_rank - aug_rank))
        self.query_one("#insp-head", Static).update(head)
        self.query_one("#insp-passage", Static).update(hit.text)
        self.query_one("#insp-contrib", Static).update(self._contributions(hit, row))
        counted = set(spec.langs) if (self.response.augment and not spec.is_plain) else set()
        if self.searcher.index.store == "sums":
            # Only per-language sums are stored: the texts, without per-query scores.
            texts = self.searcher.index.generated(row)
            for lang in self.searcher.index.langs:
                self.query_one(f"#gen-{lang}", Static).update(self._group_unscored(lang, texts.get(lang, []), lang in counted))
            return
        # Every language of the index, counted or not, scored by the engine (no model call).
        matched = self.searcher.matched_queries(row, self.state.vector, self.searcher.index.langs, None)
        best = {(m.lang, m.number) for m in sorted(matched, key=lambda m: -m.score)[:BEST]}
        by_lang: dict[str, list["MatchedQuery"]] = {}
        for m in matched:
            by_lang.setdefault(m.lang, []).append(m)
        for lang in self.searcher.index.langs:
            self.query_one(f"#gen-{lang}", Static).update(
                self._group(lang, by_lang.get(lang, []), best, lang in counted, spec.n)
            )

    def _contributions(self, hit: "Hit", row: int) -> Group:
        spec = self.response.spec
        plain_part = (1.0 - spec.alpha) * float(self.state.plain_scores[row])
        parts: list[tuple[str, str, float]] = [("passage", "(1−α)·⟨q,p⟩", plain_part)]
        for lang in spec.langs:
            parts.append((f"{lang} {_name(lang)}", f"α·⟨q,A_{lang}⟩", float(hit.lang_contributions.get(lang, 0.0))))
        total_abs = sum(abs(v) for _, _, v in parts) or 1.0
        biggest = max(abs(v) for _, _, v in parts) or 1.0
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(justify="right", style="dim", no_wrap=True)
        for label, formula, value in parts:
            style = "cyan" if label != "passage" else "white"
            table.add_row(label, formula, fmt_score(value), Text(bar(value, biggest, 24), style=style), f"{abs(value) / total_abs:.0%}")
        total = sum(v for _, _, v in parts)
        note = f"xQG score = {fmt_score(total)}   (α = {fmt_alpha(spec.alpha)}, {spec.fusion} fusion)"
        if not self.response.augment:
            note += "   xQG is off: these are the parts it would use"
        elif spec.is_plain:
            note += "   no generated queries count (α = 0 or no language chosen)"
        return Group(table, Text(note, style="italic"))

    def _group_unscored(self, lang: str, texts: list[str], counted: bool) -> Text:
        t = Text()
        t.append(f"{_name(lang)} ({lang})", style="bold")
        t.append("  counted in xQG" if counted else "  not counted (unchecked, or xQG off)", style="green" if counted else "dim")
        t.append("\n   no per-query similarity: this index keeps only query sums (--store sums)\n", style="dim italic")
        if not texts:
            t.append("   no generated queries for this passage\n", style="dim")
        for j, q in enumerate(texts):
            t.append(f"   {q or '(empty)'}", style="" if counted else "dim")
            t.append(f"  #{j + 1}\n", style="dim")
        return t

    def _group(self, lang: str, items: list["MatchedQuery"], best: set[tuple[str, int]], counted: bool, n: int | None) -> Text:
        t = Text()
        t.append(f"{_name(lang)} ({lang})", style="bold")
        t.append("  counted in xQG" if counted else "  not counted (unchecked, or xQG off)", style="green" if counted else "dim")
        t.append("\n")
        if not items:
            t.append("   no generated queries for this passage\n", style="dim")
            return t
        for m in sorted(items, key=lambda m: -m.score):
            star = (m.lang, m.number) in best
            t.append(" ★ " if star else "   ", style="bold yellow")
            t.append(f"{fmt_score(m.score):>7}  ", style="bold" if star else "dim")
            t.append(m.text or "(empty)", style="bold yellow" if star else ("" if counted else "dim"))
            t.append(f"  #{m.number + 1}", style="dim")
            if n is not None and m.number >= n:
                t.append("  (beyond n)", style="dim")
            t.append("\n")
        return t
