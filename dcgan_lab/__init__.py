"""dcgan_lab: the companion package of the dcgan-lab course.

Framework-free modules live at the top level: the run loop both frameworks share
(``training``), recipes, data, metrics, evaluation, the ablation runner, tables and figures
(``viz``). The framework twins are ``dcgan_lab.torch`` and ``dcgan_lab.keras``: they mirror each
other name for name, and importing one never imports the other framework;
``frameworks.get(name)`` is the one place either is chosen by name. ``dcgan_lab.book`` holds
the chapters' own helpers, which the rest never imports. README.md's "Layout" lists every module.
"""

__version__ = "0.1.0"
