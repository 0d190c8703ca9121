"""Ray job entrypoint: dataset QA on the cluster (Ray Data).

    cvray submit validate s3://b/coco/annotations/instances_train.json s3://b/coco/annotations/instances_val.json --images s3://b/coco/images storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/validate.py s3://b/coco/annotations/instances_train.json s3://b/coco/annotations/instances_val.json --images s3://b/coco/images

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
