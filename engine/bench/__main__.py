"""`python -m engine.bench`: the same benchmark as `visinspect bench`."""
import contextlib
import sys

from engine.bench.run import main

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
