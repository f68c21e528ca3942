"""Training recipes of the packaged models, as data (TOML): see :mod:`srgan.training.recipes`."""
