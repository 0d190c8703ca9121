"""Ray job entrypoint: training (``ray job submit -- python jobs/train.py --config configs/X.yaml
--dataset s3://bucket/coco [key=value ...]``).

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS here).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
