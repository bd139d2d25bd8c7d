"""Topic B building blocks for your own experiment scripts, in one import.

Not an experiment: the topic_b_*.py scripts import the package directly. This file gathers the
pieces a researcher needs to write the next one, e.g.

    from topic_b_utils import LMConfig, load, build_prompt, animal_system, score_numbers, prepare_out, OutputSet

    cfg = LMConfig(model="smollm2-135m-instruct")
    model, tok, name = load(cfg, ["owl"])
    prompt = build_prompt(tok, "animal", animal_system("owl"))

Everything here lives in `subliminal/` (model loading and input checks: `subliminal.topic_b.script_setup`;
tables with numbers kept as strings: `subliminal.topic_b.tables`; atomic outputs that land as one set:
`subliminal.results`). `python topic_b_utils.py` lists the offline models and the 25 animals.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.results import OutputSet, prepare_out, save_figure, write_run_json
from subliminal.topic_b.prompts import PAPER_ANIMALS, animal_system, build_prompt, number_system
from subliminal.topic_b.scoring import ALL_NUMBERS, score_numbers, score_prompts
from subliminal.topic_b.script_setup import QUICK_OUT, AnimalSweepConfig, LMConfig, check_animals, check_numbers, load
from subliminal.topic_b.tables import read_table, slug, upsert

__all__ = ["ALL_NUMBERS", "PAPER_ANIMALS", "QUICK_OUT", "AnimalSweepConfig", "LMConfig", "OutputSet", "animal_system",
           "build_prompt", "check_animals", "check_numbers", "load", "number_system", "prepare_out", "read_table",
           "save_figure", "score_numbers", "score_prompts", "slug", "upsert", "write_run_json"]


def main() -> None:
    from subliminal.assets import ASSETS

    print("offline models:", ", ".join(n for n, a in ASSETS.items() if getattr(a, "kind", "gguf") == "gguf"))
    print("the paper's animals:", ", ".join(PAPER_ANIMALS))


if __name__ == "__main__":
    main()
