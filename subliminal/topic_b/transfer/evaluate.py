"""Stage 3: animal preference of the base model and of every student, exact and sampled.

- Exact: P(answer starts with the animal) by the chain-rule scorer (``scoring.score_continuations``) for
  every animal of the run, over the one-word questions of ``prompts.EVAL_QUESTIONS`` (no system prompt).
  Questions without a prefill sum the two spellings 'owl' + 'Owl' at the start of the answer; the
  seed's question scores ' owl' after its prefill 'My favorite animal is the'.
- Sampled: `n` answers per question at T = 1 (full distribution, 8 new tokens), frequency of answers
  that contain the animal as a word start ('owl', 'Owls', not 'bowl') - the paper's measure.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from subliminal.topic_b.prompts import animal_strings
from subliminal.topic_b.sampling import end_ids, sample_batch, shard_seed
from subliminal.topic_b.scoring import score_continuations
from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS, chat_prompt


def variants(animal: str, prefill: str) -> list[str]:
    """The strings whose probabilities sum to P(animal) for a question (``prompts.animal_strings``)."""
    return animal_strings(animal, prefill)


def mentions(text: str, animal: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(animal)}", text.lower()) is not None


@torch.inference_mode()
def evaluate_model(model, tokenizer, animals: list[str], *, n_samples: int = 50, seed: int = 0,
                   questions=None, max_new_tokens: int = 8, progress: bool = True) -> pd.DataFrame:
    """One row per (question, animal): p_animal, logp_animal, freq_animal, n_samples."""
    stop = end_ids(model, tokenizer)
    rows = []
    qs = EVAL_QUESTIONS if questions is None else questions
    for qi, (user, prefill) in enumerate(tqdm(qs, desc="evaluate", disable=not progress, mininterval=5)):
        prompt = chat_prompt(tokenizer, user, None, prefill)
        conts = [v for a in animals for v in variants(a, prefill)]
        lp = score_continuations(model, tokenizer, prompt, conts)["logp"]
        texts = [r["text"] for r in sample_batch(model, tokenizer, prompt, n_samples,
                                                 shard_seed(seed, "eval", qi), max_new_tokens=max_new_tokens,
                                                 stop_ids=stop)] if n_samples else []
        k = 0
        for a in animals:
            nv = len(variants(a, prefill))
            logp = float(np.logaddexp.reduce(lp[k: k + nv]))
            k += nv
            rows.append({"question": user, "prefill": prefill, "animal": a, "p_animal": float(np.exp(logp)),
                         "logp_animal": logp,
                         "freq_animal": float(np.mean([mentions(t, a) for t in texts])) if texts else float("nan"),
                         "n_samples": len(texts)})
    return pd.DataFrame(rows)


def table_bytes(df: pd.DataFrame) -> bytes:
    """An evaluation table as its cache file stores it (the results CSVs' format: 6 significant digits)."""
    from subliminal.results import FLOAT_FORMAT

    return df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode()


def table_of(data: bytes) -> pd.DataFrame | None:
    """The table read back from its cache bytes; None when they are not a table with a p_animal column."""
    import io

    try:
        df = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=["nan", "NaN", ""])
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    return df if "p_animal" in df.columns else None
