"""Ray job entrypoint: multi-object tracking, one Ray actor per sequence.

    cvray submit track --det s3://b/MOT17/train --out s3://b/tracks storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/track.py --det s3://b/MOT17/train --out s3://b/tracks

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["track", *sys.argv[1:]]))
