"""Where every built-in style stands against issue 16's targets with the default `--temporal`:
one table, gathered from the committed flicker figures (nothing is run).

    python -m benchmarks.temporal_status

Each cell: the default filter with the network as shipped (the filter settings its file records
included) against that network before its stability fine-tune frame by frame (the built-in itself
where there was none): temporal error change / style gap change; bold where a target is missed
(at least 50% less flicker, at most 0.03 more style gap). The figures were measured by
`benchmarks.temporal` (mosaic_light, mosaic_fast), `benchmarks.temporal_styles` (the pan, the
zoom and chaplin's start of the networks not fine-tuned) and one-off runs of the same calls
(`temporal_films.json`, whose "how" says what each model name stands for).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fast_nst.config import FilterSettings
from fast_nst.runtime import Stylizer

FIGURES = Path(__file__).parent / "figures"
STYLES = ["mosaic_light", "mosaic_fast", "mosaic", "udnie", "candy", "starry_night", "the_scream", "wave"]
CLIPS = {
    "chaplin@0": "chaplin, frames 0-59",
    "chaplin@6": "chaplin, from 6 s",
    "bunny@0": "big_buck_bunny, frames 0-59 (fade-in from black)",
    "bunny@6": "big_buck_bunny, from 6 s",
    "bunny@12": "big_buck_bunny, from 12 s",
    "bunny@20": "big_buck_bunny, from 20 s",
    "pan": "pan (held-out photo)",
    "zoom": "zoom (held-out photo)",
    "fade": "fade (held-out photo)",
}
FADING = {"bunny@0", "fade"}  # the only clips with frames the fade discount applies to
# benchmarks.temporal's files name clips by their file; its "plain" is the network before the
# fine-tune, "stable --temporal 0.9" the shipped one with the default.
FILES = {"mosaic_light": ("temporal.json", "temporal_later.json"),
         "mosaic_fast": ("temporal_mosaic_fast.json", "temporal_mosaic_fast_later.json")}  # fmt: skip
FILE_CLIPS = {"chaplin.mp4": "chaplin@0", "chaplin_6s.mp4": "chaplin@6",
              "big_buck_bunny_0_30.webm": "bunny@0", "big_buck_bunny_0_30_6s.mp4": "bunny@6",
              "big_buck_bunny_0_30_12s.mp4": "bunny@12", "big_buck_bunny_0_30_20s.mp4": "bunny@20",
              "pan.mp4": "pan", "zoom.mp4": "zoom", "fade.mp4": "fade"}  # fmt: skip
# temporal_films.json's model names: the network before the fine-tune, and the shipped one.
BEFORE = {"udnie": "udnie_orig", "mosaic": "mosaic_orig"}
SHIPPED = {"starry_night": "starry_night (since 2026-12-07; starry_s60lr)"}

Figures = dict[str, tuple[float, float]]  # clip -> (temporal error, style gap)


@cache
def figures_file(name: str) -> dict:
    """One committed figures file, read once however many styles draw on it."""
    return json.loads((FIGURES / name).read_text())


def from_benchmark_files(style: str) -> tuple[Figures, Figures]:
    before, shipped = {}, {}
    for name in FILES[style]:
        for file, rows in figures_file(name)["clips"].items():
            clip = FILE_CLIPS[file]
            for into, row in ((before, rows["plain"]), (shipped, rows["stable --temporal 0.9"])):
                into[clip] = (row["temporal_error"], row["style_gap"])
    return before, shipped


def from_cells(style: str) -> tuple[Figures, Figures]:
    settings, default = Stylizer.load(style, backend="torch").filter_settings, FilterSettings()
    before, shipped = {}, {}
    # These runs had the default filter: what ships, if the network is the one shipped and records
    # no contrast of its own (they were on clips that do not fade).
    same_network = style not in BEFORE and style not in SHIPPED
    as_run = same_network and settings.contrast_restored == default.contrast_restored
    for clip, runs in figures_file("temporal_styles.json")["bicubic"][style].items():
        clip = "chaplin@0" if clip == "chaplin" else clip
        before[clip] = tuple(runs["0.0"])
        if as_run:
            shipped[clip] = tuple(runs["0.9"])
    for cell in figures_file("temporal_films.json")["cells"]:
        if "filter" in cell or "note" in cell:  # variants tried, not what ships
            continue
        figures = (cell["te"], cell["gap"])
        # Only a run with the settings the model records is what ships; the fade discount only
        # applies on a fading clip.
        fade_discount = cell.get("fade_discount", 0) if cell["clip"] in FADING else settings.fade_discount
        ran = FilterSettings(fade_discount, cell.get("contrast_restored", default.contrast_restored))
        as_shipped = ran == settings
        if cell["s"] == 0 and cell["model"] == BEFORE.get(style, style):
            before[cell["clip"]] = figures
        elif cell["s"] == 0.9 and cell["model"] == SHIPPED.get(style, style) and as_shipped:
            shipped[cell["clip"]] = figures
    return before, shipped


def change(before: tuple[float, float], shipped: tuple[float, float]) -> tuple[str, bool]:
    """The cell's text, and whether both targets are met."""
    error, gap = shipped[0] / before[0] - 1, shipped[1] - before[1]
    near = 0.47 < -error < 0.53
    text_error = f"{100 * error:.1f}%" if near else f"{100 * error:.0f}%"
    text_gap = f"{gap:+.4f}" if 0.025 < gap < 0.035 else f"{gap:+.3f}"
    met_error, met_gap = error <= -0.5, gap <= 0.03
    return f"{_bold(text_error, met_error)} / {_bold(text_gap, met_gap)}", met_error and met_gap


def _bold(text: str, met: bool) -> str:
    return text if met else f"**{text}**"


def main() -> None:
    table = {s: (from_benchmark_files if s in FILES else from_cells)(s) for s in STYLES}
    print("| clip | " + " | ".join(f"`{s}`" for s in STYLES) + " |")
    print("|---|" + "---|" * len(STYLES))
    met, measured = dict.fromkeys(STYLES, 0), dict.fromkeys(STYLES, 0)
    for clip, label in CLIPS.items():
        cells = []
        for style, (before, shipped) in table.items():
            if clip not in before or clip not in shipped:
                cells.append("not run")
                continue
            text, ok = change(before[clip], shipped[clip])
            met[style] += ok
            measured[style] += 1
            cells.append(text)
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| both targets met | " + " | ".join(f"{met[s]} of {measured[s]}" for s in STYLES) + " |")


if __name__ == "__main__":
    main()
