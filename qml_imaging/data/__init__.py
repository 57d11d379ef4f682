"""Data: MNIST and MedMNIST loaders, scikit-image images and coordinate grids (:mod:`.datasets`),
few-shot sampling and the bundled pack (:mod:`.fewshot`); torch-free names in :mod:`.catalog`."""
