"""Whether VTK can render off screen on this machine, checked before the first render of a process.

VTK (9.4 and later) picks its render window when it makes the first one: EGL, then
OSMesa. Without a working OpenGL library it raises nothing: it logs warnings ("Failed
to load EGL!", "libOSMesa not found") and the process then dies of a segmentation
fault inside the render, taking a notebook kernel, a test run or ``twin render`` with
it. A missing library cannot be caught in the process that crashes, so
:func:`check_offscreen_rendering` renders one 4 × 4 frame in a child Python with the
same environment first: if the child dies or fails, :class:`OpenGLError` names what to
install. The child costs about a second, once per process (a success is remembered).

What VTK's EGL window loads on Debian and Ubuntu: ``libEGL.so.1`` (libglvnd, package
``libegl1``), Mesa's EGL vendor library ``libEGL_mesa.so.0`` (``libegl-mesa0``) and
Mesa's software rasteriser ``swrast_dri.so`` (``libgl1-mesa-dri``); no X server and no
``libGL.so.1``. Nothing but rendering a PNG needs them: the ``.glb`` and ``.html``
outputs are written without OpenGL.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys

from twin.scene.errors import OpenGLError

#: Debian/Ubuntu packages of the OpenGL that VTK renders off screen with (EGL, Mesa's software renderer).
PACKAGES = ("libegl1", "libegl-mesa0", "libgl1-mesa-dri")
#: The render window VTK is asked for, unless the caller chose one: EGL needs no display (no X attempt first).
DEFAULT_WINDOW = "vtkEGLRenderWindow"
#: Longest wait for the child's frame (a hung driver should become an error, not a hung command).
PROBE_TIMEOUT_S = 120

_PROBE = """
from vtkmodules import vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render windows)
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer

window = vtkRenderWindow()
window.SetOffScreenRendering(1)
window.SetSize(4, 4)
window.AddRenderer(vtkRenderer())
window.Render()
if not window.SupportsOpenGL():
    raise SystemExit("no OpenGL context")
print(window.GetClassName())
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def window_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with VTK's render window set to EGL unless one is chosen."""
    out = dict(os.environ if env is None else env)
    out.setdefault("VTK_DEFAULT_OPENGL_WINDOW", DEFAULT_WINDOW)
    return out


@functools.cache
def check_offscreen_rendering() -> str:
    """The name of the VTK render window that renders off screen here (``vtkEGLRenderWindow`` normally).

    Renders one frame in a child process with this process's environment (and
    ``VTK_DEFAULT_OPENGL_WINDOW`` as :func:`window_environment` sets it). A success is
    remembered for the life of the process; a failure is checked again next time.

    Raises
    ------
    OpenGLError
        The child could not render: it died (a segmentation fault when no OpenGL
        library loads), failed, or hung. The message names the packages to install.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=window_environment(),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OpenGLError(_message(f"a test render did not finish in {PROBE_TIMEOUT_S} s")) from None
    except OSError as err:
        raise OpenGLError(_message(f"a test render could not start ({err.strerror})")) from None
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip().splitlines()[-1]
    if proc.returncode < 0:
        how = f"a test render died of {signal.Signals(-proc.returncode).name}"
    else:
        how = f"a test render failed with status {proc.returncode}"
    said = _first_complaint(proc.stderr)
    raise OpenGLError(_message(how + (f"; VTK said: {said}" if said else "")))


def _first_complaint(stderr: str) -> str:
    """The first warning or error VTK or Mesa logged, without colours or VTK's log prefix."""
    for line in _ANSI.sub("", stderr).splitlines():
        text = line.split("| ", 1)[1] if "| " in line else line
        text = text.strip()
        if text and any(word in line for word in ("WARN", "ERR", "warning", "Error", "error")):
            return text[:200]
    return ""


def _message(how: str) -> str:
    return (
        f"cannot render the 3D scene off screen: VTK found no working OpenGL on this machine ({how}); "
        f"install Mesa's EGL and software renderer with `sudo apt-get install -y {' '.join(PACKAGES)}` "
        "(Debian/Ubuntu; `make test` installs them), or write the scene as .glb or .html, which need no OpenGL"
    )
