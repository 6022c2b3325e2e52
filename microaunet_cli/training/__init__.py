"""The shared training core: one loop, steps that compute the loss, checkpoints, distributed helpers."""
