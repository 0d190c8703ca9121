"""Ray job entrypoint: a hyperparameter search (Ray Tune over train.*), resumable.

    cvray submit tune --config configs/tune/maskrcnn_gpu.yaml --address http://HEAD:8265
    cvray submit tune --resume <run id> storage.root=s3://b/runs --address http://HEAD:8265
    ray job submit --address http://HEAD:8265 --working-dir . \
        --runtime-env-json '{"env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": "60"}}' -- \
        python jobs/tune.py --config configs/tune/maskrcnn_gpu.yaml

`ray job stop` sends SIGTERM and kills the job RAY_JOB_STOP_WAIT_TIME_S later (Ray's default: 3
s): the search then writes its experiment state and ends `interrupted` (`cvray submit` sets
SIGINT and 60 s itself). Even a killed driver resumes, from Tune's last snapshot (<= 5 s old).

Thin by design: the same CLI command runs locally and on a cluster (Ray sets RAY_ADDRESS for the
job's driver, so the command joins the cluster instead of starting a Ray of its own).
"""
import sys

from cvray.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
