"""The token trie behind exact multi-token scoring (``scoring.score_continuations``): continuations merged
by shared prefixes, packed into batch rows of whole depth-1 subtrees, each row run with a tree attention
mask (a node sees the prompt prefix, its ancestors and itself). Pure data structures: no model here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Trie:
    """Continuation token sequences merged by shared prefixes. Node -1 is the root (prefix end)."""

    tokens: list[int]
    parents: list[int]
    depths: list[int]  # 1 for children of the root
    ends: list[int]  # node index where each continuation ends (-1: empty continuation)

    @classmethod
    def build(cls, seqs: list[list[int]]) -> Trie:
        trie = cls([], [], [], [])
        children: dict[tuple[int, int], int] = {}
        for seq in seqs:
            node = -1
            for t in seq:
                key = (node, t)
                if key not in children:
                    children[key] = len(trie.tokens)
                    trie.tokens.append(t)
                    trie.parents.append(node)
                    trie.depths.append(1 if node < 0 else trie.depths[node] + 1)
                node = children[key]
            trie.ends.append(node)
        return trie

    def __len__(self) -> int:
        return len(self.tokens)

    def path(self, node: int) -> list[int]:
        out = []
        while node >= 0:
            out.append(node)
            node = self.parents[node]
        return out[::-1]


def tree_mask(parents: list[int], n_prefix: int, dtype) -> torch.Tensor:
    """(L, n_prefix + L) additive mask: token j sees the whole prefix, its ancestors and itself."""
    L = len(parents)
    anc = torch.zeros(L, L, dtype=torch.bool)
    for j, p in enumerate(parents):
        if p >= 0:
            anc[j] = anc[p]
        anc[j, j] = True
    allowed = torch.cat([torch.ones(L, n_prefix, dtype=torch.bool), anc], dim=1)
    mask = torch.zeros(L, n_prefix + L, dtype=dtype)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)


@dataclass
class Row:
    """One batch row: tokens with in-row parent pointers (-1 = attaches to the shared prefix end)."""

    tokens: list[int]
    parents: list[int]
    depths: list[int]  # position offset from the end of the shared prefix (first token: 0)


def pack_subtrees(trie: Trie, max_row_tokens: int) -> list[list[int]]:
    """Group trie nodes (in creation order: parents first) into rows of whole depth-1 subtrees."""
    top: dict[int, list[int]] = {}
    root_of: list[int] = []
    for k, p in enumerate(trie.parents):
        r = k if p < 0 else root_of[p]
        root_of.append(r)
        top.setdefault(r, []).append(k)
    rows, cur = [], []
    for nodes in top.values():
        if cur and len(cur) + len(nodes) > max_row_tokens:
            rows.append(cur)
            cur = []
        cur = cur + nodes
    if cur:
        rows.append(cur)
    return rows


def edge_logps(trie: Trie, node_stats: dict[int, tuple], child_of: dict[int, list[int]]) -> np.ndarray:
    """Per-node edge log-prob log p(node token | prompt, ancestors), from each parent's query."""
    edge = np.full(len(trie), np.nan)
    for parent, kids in child_of.items():
        vals = node_stats[parent][0]
        for k, v in zip(kids, vals):
            edge[k] = v
    return edge
