"""``python -m bayesopt``: the Hydra command line (see ``bayesopt.cli``)."""

from __future__ import annotations

from bayesopt.cli import main

if __name__ == "__main__":
    main()
