"""Evaluation: the one evaluator, the papers' report tables and the train/selection/validation protocol."""
