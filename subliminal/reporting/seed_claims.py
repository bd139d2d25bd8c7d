"""The seed's numbers (../shared/SEED.md: GPU, Llama-3.2-1B, their code), defined once for every report.

They are hypotheses: each report puts them beside our measurement and a verdict computed from the CSVs.
"""

from __future__ import annotations

# Topic A: (claim, seed value, script whose summary holds ours, the summary row that matches it)
A_CLAIMS = (
    ("baseline teacher", 0.943, "topic_a", {"condition": "teacher"}),
    ("baseline student, aux logits only", 0.549, "topic_a", {"condition": "student_aux"}),
    ("baseline cross-model control (aux)", 0.124, "topic_a", {"condition": "cross_aux"}),
    ("exp1: 1 distillation epoch", 0.197, "topic_a_exp1", {"condition": "student_aux", "distill_epochs": 1}),
    ("exp1: 40 distillation epochs", 0.772, "topic_a_exp1", {"condition": "student_aux", "distill_epochs": 40}),
    ("exp2: teacher 2 epochs (the seed's peak)", 0.626, "topic_a_exp2", {"condition": "student_aux", "teacher_epochs": 2}),
    ("exp2: teacher 20 epochs", 0.351, "topic_a_exp2", {"condition": "student_aux", "teacher_epochs": 20}),
    ("exp2: teacher accuracy at 20 epochs", 0.974, "topic_a_exp2", {"condition": "teacher", "teacher_epochs": 20}),
    ("exp3: uniform noise", 0.549, "topic_a_exp3", {"source": "uniform", "condition": "student_aux"}),
    ("exp3: real MNIST images", 0.151, "topic_a_exp3", {"source": "mnist", "condition": "student_aux"}),
    ("maximize: teacher 2 ep, 100 distillation epochs", 0.703, "topic_a_maximize",
     {"condition": "student_aux", "distill_epochs": 100}),
)


def a_seed(script: str, **match) -> float | None:
    """The seed's number for a summary row of `script`, or None when the seed gives none."""
    for _, v, s, m in A_CLAIMS:
        if s == script and m == match:
            return v
    return None


# Topic B (Zur et al. / the seed, Llama-3.2-1B-Instruct)
B = {
    "ratio_owl": 203, "ratio_eagle": 663,  # P(animal | "You love N") / baseline for the top entangled number
    "animals_gt_2x": 23, "mean_ratio": 216, "median_ratio": 24,  # step 2 over 25 animals
    "cos_entangled": 0.085, "cos_random": 0.066, "overlap_topcos": 2,  # part 3
    "topcos_mean_ratio": 0.60, "topcos_max_ratio": 3.3,
    "cos_base": 0.1232, "cos_instruct": 0.1291,  # step 3, owl/087
}


# Topic A wall times on the seed's single RTX 3090 (SEED.md, "Run it": minutes per script; none given for topic_a.py,
# "Topic A experiments take ~2-15 minutes total")
A_RTX3090_MINUTES = {"topic_a": None, "topic_a_exp1": 3, "topic_a_exp2": 5, "topic_a_exp3": 5, "topic_a_maximize": 15}
