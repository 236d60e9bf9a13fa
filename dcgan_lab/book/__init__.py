"""Helpers for the course's chapters only (timing the chapters, ...).

The library a project reuses is the rest of :mod:`dcgan_lab`; nothing there imports this package.
"""
