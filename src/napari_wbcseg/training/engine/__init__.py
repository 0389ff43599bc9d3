"""The training engine: loop, losses, optimisers, checkpoints, presets, the GUI session and the per-cell classifier's training (torch, imported lazily)."""
