"""Ray job entrypoint: ingest a COCO dataset (``ray job submit -- python jobs/ingest.py --dataset URI``).

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS here).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["data", "ingest", *sys.argv[1:]]))
