"""subliminal: replication and extension of Subliminal Learning (Cloud et al. 2025, §6) and
Token Entanglement in Subliminal Learning (Zur et al. 2025).

Modules by topic:
  common      seeding, device, dataclass CLI, user-facing errors
  assets      offline assets fetched from the package registry, verified by SHA-256
  mnist       MNIST / Fashion-MNIST loading (IDX root, verified cache, registry, torchvision)
  results     atomic CSV/JSON writers with run metadata
  stats       means with t-based 95% CIs, paired tests
  engine      the batched parallel-MLP engine (Topic A)
  inputs      distillation input generators (noise, images)
  train_a     teacher training and ghost-logit distillation with milestones and caches
  lm, prompts, scoring, entanglement, geometry   Topic B
  report      README tables regenerated from the committed CSVs
"""

__version__ = "0.1.0"
