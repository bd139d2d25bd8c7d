"""Topic B: token entanglement and subliminal prompting in small LLMs (Zur et al. 2025)."""
