"""Runs one RecBole model on kgrec's exported split; executed by run_peers.py inside RecBole's own venv.

    python recbole_runner.py MODEL DATA_DIR DATASET SEED WORK_DIR

Prints one JSON line: the validation and test results, wall time, peak RSS.
"""

import json
import resource
import sys
import time

from recbole.quick_start import run_recbole

KNOWLEDGE_MODELS = {"CKE", "KGAT", "KGIN", "KGCN", "KGNNLS", "KTUP", "MKR", "RippleNet", "CFKG", "MCCLK"}


def main() -> None:
    model, data_dir, dataset, seed, work_dir = sys.argv[1:6]
    load_col = {"inter": ["user_id", "item_id", "rating", "timestamp"]}
    if model in KNOWLEDGE_MODELS:
        load_col.update(kg=["head_id", "relation_id", "tail_id"], link=["item_id", "entity_id"])
    config = {
        "data_path": data_dir,
        "dataset": dataset,
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "RATING_FIELD": "rating",
        "TIME_FIELD": "timestamp",
        "load_col": load_col,
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["Recall", "NDCG", "MRR", "Hit", "Precision"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        "stopping_step": 10,
        "eval_step": 1,
        "seed": int(seed),
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": work_dir,
        "save_dataset": False,
        "save_dataloaders": False,
    }
    started = time.perf_counter()
    result = run_recbole(model=model, dataset=dataset, config_dict=config, saved=True)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "model": model,
                "seed": int(seed),
                "seconds": seconds,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "valid": {k: float(v) for k, v in result["best_valid_result"].items()},
                "test": {k: float(v) for k, v in result["test_result"].items()},
            }
        )
    )


if __name__ == "__main__":
    main()
