"""Ray job entrypoint: calibration of a detector's scores (fit on val, evaluate on test and its
corruption slices), the fitted calibrator saved as <run>/calibrator.json; with
``--policy act_precision=P,observe_recall=R`` also the act / observe / abstain policy <run>/policy.json.

    cvray submit calibrate --model s3://b/runs/<train run> --data s3://b/coco --robustness <robustness run> storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/calibrate.py --model s3://b/runs/<train run> --data s3://b/coco

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["calibrate", *sys.argv[1:]]))
