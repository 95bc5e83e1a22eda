"""The envmat-demo console script: shows the data file and both namespace parts were found."""

from __future__ import annotations

import os

from envmat_demo_hello import __version__, greeting, greeting_path


def main() -> int:
    """Print the greeting, where it came from, and the two halves of envmat_demo_ns."""
    from envmat_demo_ns import a, b

    print(f"envmat-demo {__version__}: {greeting()}")
    print(f"  data file: {greeting_path()}")
    print(f"  namespace envmat_demo_ns: {a.MESSAGE} + {b.MESSAGE}")
    same_dir = os.path.dirname(a.__file__) == os.path.dirname(b.__file__)
    print(f"  both parts in one directory: {'yes' if same_dir else 'no'}")
    return 0
