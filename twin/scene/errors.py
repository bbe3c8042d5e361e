"""The errors of the 3D scene (all :class:`twin.TwinError`, each also the builtin one expects)."""

from __future__ import annotations

from twin.errors import TwinError


class SceneError(TwinError, ValueError):
    """A scene asked for with a bad value: view, language, size, budget, time, format."""


class FontError(TwinError, FileNotFoundError):
    """No font with the glyphs the labels need (Chinese labels need a CJK font)."""


class SceneOutputError(TwinError, OSError):
    """A scene output that cannot be written where asked."""


class SceneDependencyError(TwinError, ImportError):
    """pyvista/VTK are not installed (the ``scene`` extra)."""


class OpenGLError(TwinError, OSError):
    """No OpenGL that VTK can render off screen with (Mesa's EGL is not installed); names the packages."""
