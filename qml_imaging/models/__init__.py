"""Models: plain ``nn.Module``s, all trained by :class:`qml_imaging.training.Trainer`."""
