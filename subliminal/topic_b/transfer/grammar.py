"""A number-list grammar for the sampler: every sample it lets through passes the strict filter.

Rule (both teachers sample under it, so the comparison stays fair): the completion is 1-10 numbers of
1-3 digits, joined by one separator of at most 3 characters that the first separator fixes (',', ', ',
';', ' ', a newline, ...: any string the filter accepts, over one or more tokens), optionally one
trailing bare ',' or ';' after two or more numbers, then end of turn. After the 10th number only more digits (up to 3) or end of turn are allowed. Within the
rule the model's own distribution is renormalised (temperature 1, no top-k / top-p).

A token mask alone (digits, separators, end of turn) lets the model run past 10 numbers or write
4-digit ones: only 19% (owl) / 32% (neutral) of SmolLM2's masked samples were valid; with the
grammar and ``max_new_tokens >= 58`` (10 x 3 digits + 9 x 3 separator tokens + end) every sample ends inside the rule.
"""

from __future__ import annotations

import torch

MAX_COUNT = 10
MAX_DIGITS = 3
SEP_CHARS = set(",; \n")


def _sep_ok(s: str) -> bool:
    """A complete separator the filter accepts: ',', ';' or whitespace, with spaces / one newline around."""
    return 0 < len(s) <= 3 and set(s) <= SEP_CHARS and s.strip() in ("", ",", ";") and s.count("\n") <= 1


def token_classes(tokenizer, stop_ids: list[int]) -> dict:
    """Per-token class: number of digits for all-digit tokens (else 0) and the separator text (or None)."""
    V = len(tokenizer)
    ndig = torch.zeros(V, dtype=torch.long)
    sep_text: dict[int, str] = {}
    end = torch.zeros(V, dtype=torch.bool)
    end[list(stop_ids)] = True
    for i in range(V):
        if end[i]:
            continue
        t = tokenizer.decode([i])
        if not t or not t.isascii():
            continue
        if t.isdigit():
            ndig[i] = len(t)
        elif _sep_ok(t):
            sep_text[i] = t
    return {"ndig": ndig, "sep_text": sep_text, "end": end}


class NumberListGrammar:
    """transformers LogitsProcessor: per row, -inf outside the tokens the rule allows next.

    State per row: numbers started, digits in the current number, the separator being written, the
    separator the first one fixed (None until then), done. A separator may span several tokens (SmolLM2
    writes ', ' as ',' + ' '). The first call sees the prompt only; each later call advances the state by
    the last sampled token.
    """

    def __init__(self, classes: dict, max_count: int = MAX_COUNT, max_digits: int = MAX_DIGITS):
        self.ndig, self.sep_text, self.end = classes["ndig"], classes["sep_text"], classes["end"]
        self.max_count, self.max_digits = max_count, max_digits
        # digit tokens with at most k digits, k = 0..max_digits
        self.digits_upto = [(self.ndig > 0) & (self.ndig <= k) for k in range(max_digits + 1)]
        self._sep_ids = torch.tensor(sorted(self.sep_text), dtype=torch.long)
        self._sep_strs = [self.sep_text[int(i)] for i in self._sep_ids]
        self._sep_masks: dict[tuple, torch.Tensor] = {}
        self.prompt_len: int | None = None
        self.state: list[dict] = []

    def _seps(self, cur: str, fixed: str | None) -> torch.Tensor:
        """Mask of separator tokens that may extend the separator `cur` (cached per (cur, fixed))."""
        k = (cur, fixed)
        if k not in self._sep_masks:
            m = torch.zeros_like(self.end)
            ok = [(fixed.startswith(cur + t) if fixed is not None else _sep_ok(cur + t)) for t in self._sep_strs]
            if any(ok):
                m[self._sep_ids[torch.tensor(ok)]] = True
            self._sep_masks[k] = m
        return self._sep_masks[k]

    def _advance(self, st: dict, tok: int) -> None:
        if st["done"]:
            return
        if self.end[tok]:
            st["done"] = True
        elif self.ndig[tok] > 0:
            if st["digits"] == 0:
                st["count"] += 1
                if st["cur"]:
                    st["fixed"] = st["fixed"] or st["cur"]
                    st["cur"] = ""
            st["digits"] += int(self.ndig[tok])
        else:  # a separator token
            st["digits"] = 0
            st["cur"] += self.sep_text.get(tok, "")

    def allowed(self, st: dict) -> torch.Tensor:
        if st["done"]:
            return self.end.clone()
        if st["count"] == 0:  # a number must come first
            return self.digits_upto[self.max_digits].clone()
        cur, fixed = st["cur"], st["fixed"]
        if cur:  # inside a separator: extend it, start the next number, or end after a bare ',' / ';'
            ok = self._seps(cur, fixed).clone()
            complete = cur == fixed if fixed is not None else _sep_ok(cur)
            if complete and st["count"] < self.max_count:
                ok |= self.digits_upto[self.max_digits]
            if fixed is not None and cur == fixed and cur.strip() == cur:  # filter: trailing sep needs 2+ numbers
                ok |= self.end
            return ok
        ok = self.end | self.digits_upto[self.max_digits - st["digits"]]
        if st["count"] < self.max_count:
            ok = ok | self._seps("", fixed)
        return ok

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
            self.state = [{"count": 0, "digits": 0, "cur": "", "fixed": None, "done": False}
                          for _ in range(input_ids.shape[0])]
        else:
            for st, tok in zip(self.state, input_ids[:, -1].tolist()):
                self._advance(st, tok)
        mask = torch.stack([self.allowed(st) for st in self.state]).to(scores.device)
        V = min(mask.shape[1], scores.shape[1])
        out = torch.full_like(scores, float("-inf"))
        out[:, :V] = scores[:, :V].masked_fill(~mask[:, :V], float("-inf"))
        return out
