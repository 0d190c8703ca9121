"""Ray job entrypoint: COCO evaluation of a predict run.

    cvray submit eval --gt s3://b/coco/annotations/instances_val.json --pred s3://b/runs/<predict run> --save storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/eval.py --gt s3://b/coco/annotations/instances_val.json --pred s3://b/runs/<predict run> --save

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
