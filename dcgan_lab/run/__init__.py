"""A run, framework-free: the floor above the basics and below the framework twins.

- :mod:`~dcgan_lab.run.config`: :class:`TrainOptions` -> :func:`resolve` -> :class:`Config`;
  every option is checked there, once;
- :mod:`~dcgan_lab.run.streams`: the training images and the stateless random streams (data
  order, ``z``, D's targets), :func:`step_inputs` and :func:`shard`;
- :mod:`~dcgan_lab.run.rundir`: the run folder (:class:`RunDir`);
- :mod:`~dcgan_lab.run.atomic`: atomic writes and output checks;
- :mod:`~dcgan_lab.run.history`: one row per step, kept as CSV;
- :mod:`~dcgan_lab.run.loop`: the loop every trainer shares, over a framework's ``Backend``.

Import the modules (``from dcgan_lab.run import config, streams``); this file imports nothing.
"""
