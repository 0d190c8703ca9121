"""Ray job entrypoint: the end-to-end demo (``ray job submit -- python jobs/demo.py [overrides]``)."""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
