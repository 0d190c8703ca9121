"""Ray job entrypoint: a robustness suite (COCO-C corruptions x severities), resumable.

    cvray submit robustness --model s3://b/runs/<train run> --data s3://b/coco --corruptions benchmark storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/robustness.py --model s3://b/runs/<train run> --data s3://b/coco

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["robustness", *sys.argv[1:]]))
