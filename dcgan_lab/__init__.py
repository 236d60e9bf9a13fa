"""dcgan_lab: the companion package of the dcgan-lab course.

Framework-free modules live at the top level (``arithmetic``, ``data``, ``recipes``, ``viz``,
``metrics`` ...). The framework twins are ``dcgan_lab.torch`` and ``dcgan_lab.keras``: they mirror
each other name for name, and importing one never imports the other framework.
"""

__version__ = "0.1.0"
