"""``python -m twin.cli``: the same as the ``twin`` command."""

from . import main

main()
