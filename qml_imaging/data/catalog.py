"""Names of the data a config may ask for; torch-free so configs validate fast."""

SKIMAGE_IMAGES = ("astronaut", "camera", "coffee", "cat", "coins", "moon", "horse", "text", "grass", "brick")
