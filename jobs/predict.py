"""Ray job entrypoint: batch inference on Ray Data model actors.

    cvray submit predict --model s3://b/runs/<train run> --input s3://b/coco/images storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/predict.py --model s3://b/runs/<train run> --input s3://b/coco/images

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
