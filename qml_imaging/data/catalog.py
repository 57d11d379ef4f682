"""Names of the data a config may ask for; torch-free so configs validate fast."""

SKIMAGE_IMAGES = ("astronaut", "camera", "coffee", "cat", "coins", "moon", "horse", "text", "grass", "brick")

DATA_ENV = "QML_IMAGING_DATA"
"""Environment variable naming the data directory (the CLI's --data-dir sets it)."""
