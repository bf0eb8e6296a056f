"""scripts/train_references.sh with no arguments must rebuild every committed model in order."""

import itertools
import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_references.sh"
# Steps kept in the script for a later session whose models are not committed (yet).
NOT_COMMITTED = {"attention_unet_wide", "attention_unet_recipe",
                 "vgg_cnn_wide_distilled_long"}


def _script_steps() -> tuple[list[str], dict[str, str]]:
    """The default step list, and each step's body (continuation lines joined)."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    default = re.search(r'all_steps="([^"]+)"', text).group(1).split()
    bodies = {}
    for match in re.finditer(r"^    ([a-z0-9_*]+)\)(.*?);;", text, flags=re.MULTILINE | re.DOTALL):
        bodies[match.group(1)] = match.group(2)
    return default, bodies


def _products_and_needs(body: str) -> tuple[set[str], set[str]]:
    """Models a step's commands save, and the models they start from or learn from."""
    products, needs = set(), set()
    for line in body.splitlines():
        line = line.split("#")[0]
        if "fer-core" not in line:
            continue
        words = shlex.split(line[line.index("fer-core"):])
        command = words[1]
        if command in ("pretrain", "outliers"):
            products.add("autoencoder")
            continue
        if command != "train":
            continue
        options = dict(itertools.pairwise(words))
        products.add(options.get("--name", words[2]))
        if "--init-from" in options:
            needs.add(Path(options["--init-from"]).stem)
        soft = options.get("--soft-targets", "")
        teachers = (soft.split(":", 1)[1] if soft.startswith("ensemble:")
                    else options.get("--teacher", ""))
        if teachers:
            for member in teachers.split("+"):
                snapshot = re.fullmatch(r"snapshots/(.+)_cycle\d+", member)
                needs.add(f"snapshot:{snapshot.group(1)}" if snapshot else member)
    return products, needs


def test_default_steps_exist_and_cover_the_script():
    default, bodies = _script_steps()
    named = {step for step in default if not step.startswith("snapshot_")}
    assert named <= set(bodies), f"default steps without a case: {named - set(bodies)}"
    listed = {step for step in bodies if "*" not in step} - NOT_COMMITTED
    assert listed <= named, f"steps left out of the default list: {listed - named}"


def test_default_steps_train_teachers_before_students():
    default, bodies = _script_steps()
    made: set[str] = set()
    for step in default:
        if step.startswith("snapshot_"):
            base = step.removeprefix("snapshot_")
            assert base in made, f"{step} comes before {base} is trained"
            made.add(f"snapshot:{base}")
            continue
        products, needs = _products_and_needs(bodies[step])
        missing = needs - made - products
        assert not missing, f"step {step} needs {sorted(missing)} before it runs"
        made |= products


def test_every_committed_model_has_a_step():
    default, bodies = _script_steps()
    made = set().union(*(_products_and_needs(bodies[s])[0] for s in default
                         if not s.startswith("snapshot_")))
    # a name built in a shell loop (${model}_${size}) stands for every name it can expand to
    patterns = [re.compile(re.sub(r"\\\$\\\{[^}]+\\\}", ".+", re.escape(name))) for name in made]
    # a run kept as a record alone (its weights left out) needs its step just as much
    runs = [path for path in (ROOT / "models").rglob("*.json")
            if {"config", "test"} <= set(json.loads(path.read_text()))]
    committed = {path.stem for path in [*(ROOT / "models").rglob("*.keras"), *runs]
                 if "snapshots" not in path.parts}
    assert committed, "no committed models found"
    orphans = {name for name in committed if not any(p.fullmatch(name) for p in patterns)}
    assert not orphans, f"committed models no step trains: {sorted(orphans)}"
