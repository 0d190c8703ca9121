"""Ray job entrypoint: export a trained detector to ONNX (and INT8) on a cluster worker, with its
parity check against eager torch and, with --int8 --suite, the FP32 vs INT8 deltas on the
corruption suite, written as the run's export_parity / int8_deltas tables and artifacts/export/.

    cvray submit export onnx --model s3://b/runs/<train run> --int8 --calibration-data s3://b/coco/annotations/instances_train.json --suite s3://b/coco storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/export.py --model s3://b/runs/<train run>

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["export", "onnx", *sys.argv[1:]]))
