"""Subliminal transfer in an LLM under the theorem's conditions: Topic A's ladder inside a language model.

teachers (weight teachers by one recipe), inputs (the shared random number-list contexts), losses (full and
number-token KL), student (init, training, milestones), readouts (animal share, update cosines), ladder (cells,
run order, the run's teachers), analysis (CIs over seeds, MDE, verdicts), plots, config, run.
"""
