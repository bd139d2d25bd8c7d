"""Topic A: ghost-logit distillation of parallel MNIST MLPs (Cloud et al. 2025, section 6)."""
