"""Ray job entrypoint: a per-stage latency budget sheet measured on a cluster worker (a GPU node
when the cluster has one), written as the run's ``latency`` table and sheet.png.

    cvray submit latency --model s3://b/runs/<train run> --input s3://b/coco/annotations/instances_val.json --budget 50 storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/latency.py --model s3://b/runs/<train run> --input s3://b/coco/annotations/instances_val.json

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["latency", *sys.argv[1:]]))
