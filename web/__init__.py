"""The Flask map viewer of the basin twin (filled in by the viewer issue).

It parses requests, calls :mod:`twin` and serialises; no analysis lives here.
"""
