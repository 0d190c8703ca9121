"""Ray job entrypoint: training on a Ray Train worker group.

    cvray submit train --config configs/maskrcnn_r50_fpn_1x.yaml --dataset s3://b/coco storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/train.py --config configs/maskrcnn_r50_fpn_1x.yaml --dataset s3://b/coco

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
