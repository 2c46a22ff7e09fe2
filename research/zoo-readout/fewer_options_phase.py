"""Rows 37 and 38 of README.md here (3.5 M and 7 M tokens of phase): one zoo model trained by
the library's recipe with a look-up phase whose documents keep 1-4 of their options, inside the
shipped budget, then its MC extension (if it needs one) and the card's evaluation on the test
split.

    python zoo/experiments/fewer_options_phase.py /tmp/candidate/gpt2-8L --family gpt2 --layers 8

The recipe options are the library's (``Recipe.lookup_phase_tokens``,
``Recipe.lookup_phase_min_options``); everything else is the shipped recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from elens_utils.zoo import training as zoo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the model directory to write")
    p.add_argument("--family", default="gpt2", choices=zoo.ZOO_FAMILIES)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--phase-tokens", type=float, default=3.5e6, help="look-up phase, within the depth's budget")
    p.add_argument("--min-options", type=int, default=1)
    a = p.parse_args()
    recipe = dataclasses.replace(zoo.Recipe(), lookup_phase_tokens={a.layers: int(a.phase_tokens)}, lookup_phase_min_options=a.min_options)
    zoo.train_model(a.family, a.layers, a.out, recipe=recipe, threads=1, progress=False)
    zoo.extend_mc(a.out, recipe=recipe, threads=1, progress=False)
    result = zoo.evaluate_model(a.out, split="test", threads=1)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (list, dict))}, indent=1))


if __name__ == "__main__":
    main()
