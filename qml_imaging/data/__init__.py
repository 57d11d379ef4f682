"""Data: MNIST and MedMNIST loaders, scikit-image images and coordinate grids (:mod:`.datasets`),
few-shot sampling (:mod:`.fewshot`); torch-free names in :mod:`.catalog`."""
