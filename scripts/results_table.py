"""Generate the README's results table from the reference models' JSON records.

Usage::

    python scripts/results_table.py            # print it
    python scripts/results_table.py --write    # replace it in README.md (between the markers)

The README cannot run models, so this table is the records' numbers (no test-time
augmentation); the book recomputes them from the weights. tests/test_readme.py fails when the
README's table differs from what this script generates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_core.evaluate import results_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
MODELS = ["baseline", "attention_unet", "attention_unet_long", "attention_unet_long2",
          "attention_unet_distilled",
          "compact_cnn", "vit", "vit_conv_stem", "vgg_cnn", "vgg_cnn_wide", "vgg_cnn_distilled",
          "vgg_cnn_wide_distilled", "vgg_cnn_wide_distilled_refit", "vgg_cnn_refit",
          "vgg_cnn_wide_refit", "vgg_cnn_seed2013", "vgg_cnn_seed2013_refit"]


def table_markdown(names: list[str] | None = None) -> str:
    """The table as Markdown, for the models that have a record."""
    from fer_core import store

    present = [n for n in (names or MODELS) if (store.models_dir() / f"{n}.json").is_file()]
    return results_table(present).to_markdown(floatfmt=".1f")


def replace_in_readme(text: str, table: str) -> str:
    """``text`` with the block between the markers replaced by ``table``."""
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    if not rest:
        raise SystemExit(f"README.md has no {START} marker.")
    return f"{before}{START}\n{table}\n{END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    table = table_markdown()
    if parser.parse_args().write:
        README.write_text(replace_in_readme(README.read_text(), table))
        print(f"updated {README}")
    else:
        print(table)


if __name__ == "__main__":
    main()
