"""Evaluation: plain vs xQG per language (R@kt, Recall@k, MRR, nDCG), the
difference and its p-value, a bar chart, exports; and a viewer for results JSON
files written by ``xqg experiment``."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Markdown,
    ProgressBar,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from ...languages import language_name
from ..dialogs import ErrorDialog, PathPicker
from ..messages import EvalDone, EvalFailed, EvalProgress
from ..report_view import comparison_csv, comparison_markdown, comparison_rows, fmt_num, fmt_p, metrics_of, results_markdown
from ..util import describe_error, fmt_alpha
from ..widgets import PathField

if TYPE_CHECKING:
    from ...index.fusion import FusionSpec
    from ...search import Searcher
    from ..app import XQGApp

DEFAULT_METRIC = "R@2kt"


def _lang_label(code: str) -> str:
    if code == "macro":
        return "macro avg"
    try:
        return f"{code} {language_name(code)}"
    except KeyError:
        return code


class EvaluateScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.show('search')", "search"),
        Binding("ctrl+r", "run", "run"),
        Binding("m", "next_metric", "metric"),
    ]

    app: "XQGApp"

    def __init__(self) -> None:
        super().__init__(id="evaluate-screen")
        self.plain: Any = None
        self.augmented: Any = None
        self.comparison: Any = None
        self.comparison_dict: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.running = False
        self.metric = DEFAULT_METRIC
        self._metrics: list[str] = ["R@2kt", "R@5kt", "Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10"]

    def compose(self) -> ComposeResult:
        app = self.app
        yield Header(show_clock=False, icon="∑")
        with VerticalScroll(classes="form", id="eval-form"):
            yield PathField("queries file", str(app.eval_queries or ""), "queries.jsonl (XOR-TyDi style) or .tsv", id="eval-queries")
            yield PathField("qrels (optional)", str(app.eval_qrels or ""), "TREC qrels; without it, answers decide (R@kt)", id="eval-qrels")
            with Horizontal(classes="field"):
                yield Label("depth k", classes="field-label")
                yield Input("100", id="eval-k", type="integer", max_length=5)
            yield PathField("export / open", "xqg-eval", "export stem (adds .json/.csv/.md), or a results JSON to open", id="eval-file")
            with Horizontal(classes="buttons"):
                yield Button("Run", variant="success", id="eval-run")
                yield Button("JSON", id="export-json", disabled=True, tooltip="export the table as JSON")
                yield Button("CSV", id="export-csv", disabled=True, tooltip="export the table as CSV")
                yield Button("Markdown", id="export-md", disabled=True, tooltip="export the table as Markdown")
                yield Button("Open results", id="open-results", tooltip="open a results JSON (e.g. from xqg experiment)")
        yield Static("", id="eval-info")
        with Horizontal(id="eval-stage-row", classes="row"):
            yield Static("", id="eval-stage")
        yield ProgressBar(total=None, show_eta=False, id="eval-progress")
        with TabbedContent(id="eval-tabs"):
            with TabPane("Table", id="tab-table"):
                with Horizontal(classes="field"):
                    yield Label("metric (m)", classes="field-label")
                    yield Select([(m, m) for m in self._metrics],
                                 value=DEFAULT_METRIC, allow_blank=False, compact=True, id="eval-metric")
                yield DataTable(id="eval-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Chart", id="tab-chart"):
                yield self._make_chart()
            with TabPane("Results file", id="tab-results"):
                yield Markdown("Open a results JSON (written by `xqg experiment` or exported here) to show its table.", id="results-md")
        yield Footer(show_command_palette=False)

    def _make_chart(self):
        try:
            from textual_plotext import PlotextPlot
        except ImportError:  # the table still works without the plot package
            return Static("bar chart needs the textual-plotext package", id="eval-chart")
        return PlotextPlot(id="eval-chart")

    def on_mount(self) -> None:
        self.sub_title = "evaluation: plain vs xQG"
        self.query_one("#eval-progress").display = False
        self._update_info()

    def on_screen_resume(self) -> None:
        self._update_info()

    def _update_info(self) -> None:
        s = self.app.settings
        if self.app.searcher is None:
            self.query_one("#eval-info", Static).update("no index is open: press o to open one (or build one with b)")
            return
        if self.info:
            return
        langs = ",".join(s.langs) or "none"
        self.query_one("#eval-info", Static).update(
            f"compares plain with xQG at the search screen's settings: α={fmt_alpha(s.alpha)} {s.fusion}, languages {langs}"
        )

    @on(PathField.Browse)
    def _browse(self, event: PathField.Browse) -> None:
        field = event.field

        def chosen(path: str | None) -> None:
            if path:
                field.value = path

        self.app.push_screen(PathPicker(f"Choose the {field.label}", field.value), chosen)

    # ---- running ------------------------------------------------------------------
    @on(Button.Pressed, "#eval-run")
    def action_run(self) -> None:
        app = self.app
        if self.running:
            self.notify("an evaluation is already running", severity="warning")
            return
        if app.searcher is None:
            self.notify("open an index first (press o)", severity="error")
            return
        queries = self.query_one("#eval-queries", PathField).path
        if queries is None:
            self.notify("choose a queries file first", severity="error")
            return
        qrels = self.query_one("#eval-qrels", PathField).path
        try:
            k = int(self.query_one("#eval-k", Input).value or "100")
            if k < 1:
                raise ValueError
        except ValueError:
            self.notify("depth k must be a whole number ≥ 1", severity="error")
            return
        s = app.settings
        try:
            spec = app.searcher.spec(alpha=s.alpha, fusion=s.fusion, langs=s.langs, n=s.n)
        except Exception as e:  # noqa: BLE001
            self.notify(describe_error(e), severity="error")
            return
        self.running = True
        self.query_one("#eval-run", Button).disabled = True
        self.query_one("#eval-progress").display = True
        self.query_one("#eval-stage", Static).update("starting…")
        self._eval_worker(app.searcher, queries, qrels, k, spec)

    @work(thread=True, group="evaluate", exclusive=True, exit_on_error=False)
    def _eval_worker(self, searcher: "Searcher", queries_path: Path, qrels_path: Path | None, k: int, spec: "FusionSpec") -> None:
        t0 = time.perf_counter()
        try:
            from ...errors import XQGError
            from ...evaluation.report import compare_reports, evaluate
            from ...io import read_qrels, read_queries

            queries = read_queries(queries_path)
            if not queries:
                raise XQGError(f"{queries_path}: no queries in the file")
            qrels = read_qrels(qrels_path) if qrels_path is not None else None
            if not searcher.encoder_loaded:
                self.post_message(EvalProgress("loading encoder", 0, 0))
                searcher.load_encoder(self.app.device)
            plain_spec = searcher.spec(alpha=0.0, fusion=spec.fusion, langs=spec.langs, n=spec.n)
            runs = {}
            for name, sp in (("plain", plain_spec), ("xQG", spec)):
                runs[name] = searcher.retrieve(
                    queries, k=k, spec=sp, progress=lambda d, t, name=name: self.post_message(EvalProgress(f"retrieving ({name})", d, t))
                )
            self.post_message(EvalProgress("scoring", 0, 0))
            text = {p.docid: p.text for p in searcher.index.passages}
            plain = evaluate(runs["plain"], queries, qrels=qrels, passage_text=text)
            aug = evaluate(runs["xQG"], queries, qrels=qrels, passage_text=text)
            cmp = compare_reports(plain, aug)
        except Exception as e:  # noqa: BLE001
            self.post_message(EvalFailed(describe_error(e)))
            return
        info = {
            "index": str(searcher.index.root),
            "queries": str(queries_path),
            "qrels": str(qrels_path) if qrels_path else None,
            "n_queries": len(queries),
            "k": k,
            "alpha": spec.alpha,
            "fusion": spec.fusion,
            "langs": list(spec.langs),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        self.post_message(EvalDone(plain, aug, cmp, info))

    def on_eval_progress(self, message: EvalProgress) -> None:
        bar = self.query_one("#eval-progress", ProgressBar)
        if message.total > 0:
            bar.update(total=message.total, progress=message.done)
            self.query_one("#eval-stage", Static).update(f"{message.label}: {message.done:,}/{message.total:,} queries")
        else:
            bar.update(total=None)
            self.query_one("#eval-stage", Static).update(f"{message.label}…")

    def on_eval_failed(self, message: EvalFailed) -> None:
        self._finish()
        self.query_one("#eval-stage", Static).update(Text("failed", style="red"))
        self.app.push_screen(ErrorDialog("The evaluation failed", message.error, "Check the queries (and qrels) files and try again."))

    def on_eval_done(self, message: EvalDone) -> None:
        self._finish()
        self.set_results(message.plain, message.augmented, message.comparison, message.info)

    def _finish(self) -> None:
        self.running = False
        self.query_one("#eval-run", Button).disabled = False
        self.query_one("#eval-progress").display = False

    # ---- results ------------------------------------------------------------------
    def set_results(self, plain: Any, augmented: Any, comparison: Any, info: dict[str, Any]) -> None:
        """Show a finished evaluation (also used by tests with ready-made reports)."""
        self.plain, self.augmented, self.comparison, self.info = plain, augmented, comparison, info
        self.comparison_dict = comparison.to_dict() if hasattr(comparison, "to_dict") else dict(comparison)
        rows = comparison_rows(self.comparison_dict)
        metrics = metrics_of(rows)
        select = self.query_one("#eval-metric", Select)
        self._metrics = metrics
        select.set_options([(m, m) for m in metrics])
        if self.metric not in metrics and metrics:
            self.metric = metrics[0]
        select.value = self.metric
        for b in ("#export-json", "#export-csv", "#export-md"):
            self.query_one(b, Button).disabled = False
        n = info.get("n_queries", "?")
        self.query_one("#eval-stage", Static).update(
            Text(f"done: {n} queries · α={fmt_alpha(float(info.get('alpha', 0)))} {info.get('fusion', '')} · "
                 f"languages {','.join(info.get('langs', [])) or 'none'} · depth {info.get('k', '?')}", style="green")
        )
        self.query_one("#eval-info", Static).update("")
        self.draw()

    def _counts(self) -> dict[str, Any]:
        try:
            d = self.plain.to_dict() if hasattr(self.plain, "to_dict") else dict(self.plain or {})
        except Exception:  # noqa: BLE001
            return {}
        per = dict(d.get("per_language", {}))
        per["macro"] = d.get("macro", {})
        return {k: v.get("n") for k, v in per.items() if isinstance(v, dict)}

    def draw(self) -> None:
        rows = comparison_rows(self.comparison_dict)
        counts = self._counts()
        table = self.query_one("#eval-table", DataTable)
        table.clear(columns=True)
        m = self.metric
        table.add_column("language", key="lang")
        table.add_column("n", key="n")
        table.add_column(f"plain {m}", key="plain")
        table.add_column(f"xQG {m}", key="xqg")
        table.add_column("Δ", key="diff")
        table.add_column("p", key="p")
        for row, cells in rows.items():
            c = cells.get(m, {})
            diff = c.get("diff")
            style = "bold green" if isinstance(diff, (int, float)) and diff > 0 else ("bold red" if isinstance(diff, (int, float)) and diff < 0 else "")
            sig = " *" if c.get("significant") else ""
            sign = "+" if isinstance(diff, (int, float)) and diff > 0 else ""
            label = Text(_lang_label(row), style="bold" if row == "macro" else "")
            table.add_row(
                label,
                str(counts.get(row, "") if counts.get(row) is not None else ""),
                fmt_num(c.get("base")),
                fmt_num(c.get("other")),
                Text(f"{sign}{fmt_num(diff)}{sig}", style=style),
                fmt_p(c.get("p_value")),
                key=row,
            )
        self._draw_chart(rows)

    def _draw_chart(self, rows: dict[str, dict[str, dict[str, Any]]]) -> None:
        chart = self.query_one("#eval-chart")
        if not hasattr(chart, "plt"):
            return
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        langs = [r for r in rows if r != "macro"] + (["macro"] if "macro" in rows else [])
        base = [float(rows[r].get(self.metric, {}).get("base") or 0.0) for r in langs]
        other = [float(rows[r].get(self.metric, {}).get("other") or 0.0) for r in langs]
        if langs:
            plt.multiple_bar(langs, [base, other], labels=["plain", "xQG"])
        plt.title(f"{self.metric} per language: plain vs xQG")
        plt.ylim(0, max([1.0, *base, *other]) if self.metric.startswith(("R@", "Recall")) else None)
        chart.refresh()

    @on(Select.Changed, "#eval-metric")
    def _metric_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and str(event.value) != self.metric:
            self.metric = str(event.value)
            if self.comparison_dict:
                self.draw()

    def action_next_metric(self) -> None:
        select = self.query_one("#eval-metric", Select)
        options = self._metrics
        if not options:
            return
        i = options.index(self.metric) if self.metric in options else -1
        select.value = options[(i + 1) % len(options)]

    # ---- export / open --------------------------------------------------------------
    def _export_path(self, suffix: str) -> Path:
        stem = self.query_one("#eval-file", PathField).value or "xqg-eval"
        p = Path(stem).expanduser()
        if p.suffix.lower() in (".json", ".csv", ".md"):
            p = p.with_suffix("")
        return p.with_name(p.name + suffix)

    def export(self, fmt_name: str) -> Path | None:
        """Write the current comparison as json/csv/md next to the export stem."""
        from ...io.atomic import atomic_write_text

        if not self.comparison_dict:
            self.notify("run an evaluation first", severity="warning")
            return None
        suffix = {"json": ".json", "csv": ".csv", "md": ".md"}[fmt_name]
        path = self._export_path(suffix)
        try:
            if fmt_name == "json":
                payload = {
                    "settings": self.info,
                    "plain": self.plain.to_dict() if hasattr(self.plain, "to_dict") else self.plain,
                    "augmented": self.augmented.to_dict() if hasattr(self.augmented, "to_dict") else self.augmented,
                    "comparison": self.comparison_dict,
                    "markdown": self._markdown(),
                }
                text = json.dumps(payload, ensure_ascii=False, indent=2, default=str)
            elif fmt_name == "csv":
                text = self._engine_render("to_csv") or comparison_csv(self.comparison_dict)
            else:
                text = self._markdown()
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        except Exception as e:  # noqa: BLE001
            self.notify(describe_error(e), severity="error", timeout=8)
            return None
        self.notify(f"wrote {path}")
        return path

    def _markdown(self) -> str:
        return self._engine_render("to_markdown") or comparison_markdown(self.comparison_dict)

    def _engine_render(self, name: str) -> str | None:
        """The engine's renderer when it has one (method on the comparison or module function)."""
        try:
            fn = getattr(self.comparison, name, None)
            if callable(fn):
                return str(fn())
            from ...evaluation import report

            fn = getattr(report, name, None)
            if callable(fn):
                return str(fn(self.comparison))
        except Exception:  # noqa: BLE001 - fall back to the app's own rendering
            return None
        return None

    @on(Button.Pressed, "#export-json")
    def _export_json(self) -> None:
        self.export("json")

    @on(Button.Pressed, "#export-csv")
    def _export_csv(self) -> None:
        self.export("csv")

    @on(Button.Pressed, "#export-md")
    def _export_md(self) -> None:
        self.export("md")

    @on(Button.Pressed, "#open-results")
    def _open_results_pressed(self) -> None:
        path = self.query_one("#eval-file", PathField).path
        if path is None or path.suffix.lower() != ".json" or not path.is_file():
            def chosen(p: str | None) -> None:
                if p:
                    self.open_results(Path(p))

            self.app.push_screen(PathPicker("Open a results JSON", str(path or "")), chosen)
            return
        self.open_results(path)

    def open_results(self, path: Path) -> bool:
        """Render a results JSON (experiment output or an export) in the Results tab."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.notify(f"{path}: no such file", severity="error")
            return False
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self.notify(f"{path}: not a JSON file ({e.__class__.__name__})", severity="error")
            return False
        except OSError as e:
            self.notify(describe_error(e), severity="error")
            return False
        self.query_one("#results-md", Markdown).update(results_markdown(data, Path(path).name))
        self.query_one("#eval-tabs", TabbedContent).active = "tab-results"
        return True
