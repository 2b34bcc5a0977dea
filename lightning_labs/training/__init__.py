"""Training a classifier: the LightningModule, its assembly from a config, config checks, the
learning-rate scaling and the run itself (:func:`lightning_labs.training.run.run`)."""
