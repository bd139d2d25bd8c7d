"""subliminal: replication and extension of Subliminal Learning (Cloud et al. 2025, §6) and
Token Entanglement in Subliminal Learning (Zur et al. 2025).

Rooms:
  cli, devices, results, stats, cache, assets, verdicts
              core: command line and one-line errors, devices and seeding, atomic outputs (one set
              per run), CIs and tests, verified cache, offline assets checked by SHA-256, verdict records
  topic_a/    MNIST MLPs: batched engine, inputs, MNIST, run store, training and distillation,
              experiments (each declared once, in its script: spec.Experiment), noise regime,
              mechanisms, analysis (statistics once, from the tidy CSVs)
  topic_b/    LLMs: the model table, loading, prompts, exact chain-rule scoring, entanglement, specificity and
              multiplicity statistics, geometry, teacher sampling, threshold defence, and
              topic_b/transfer/ (teacher numbers -> fine-tuned student -> animal preference)
  reporting/  README.md, docs/*.md and the verdict CSVs, generated from the result CSVs only
"""

__version__ = "0.2.0"
