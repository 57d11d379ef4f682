"""QIREN image generation: INR GANs with quantum and classical coordinate embeddings."""
