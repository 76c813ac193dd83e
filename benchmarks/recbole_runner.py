"""Runs one RecBole model on kgrec's exported split; executed by run.py inside RecBole's own venv.

    python recbole_runner.py MODEL DATA_DIR DATASET SEED WORK_DIR THREADS [OVERRIDES_JSON]

Follows RecBole's own ``run_recbole`` recipe step by step (so its defaults apply unchanged), timing
each training epoch and each validation pass. Prints one JSON line: validation and test results,
wall time, time to the best validation epoch, time per epoch, full-ranking test evaluation time, peak RSS.
``OVERRIDES_JSON`` replaces entries of the config (``frappe_ctr.py``: the labeled evaluation, AUC and log loss).
"""

import json
import resource
import sys
import time

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed

KNOWLEDGE_MODELS = {"CKE", "KGAT", "KGIN", "KGCN", "KGNNLS", "KTUP", "MKR", "RippleNet", "CFKG", "MCCLK"}


PROGRESS_FILE = "progress.jsonl"


def timed(log: list, key: str, method, progress):  # noqa: ANN001, ANN201 - wraps a bound trainer method
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started = time.perf_counter()
        out = method(*args, **kwargs)
        seconds = time.perf_counter() - started
        log.append((key, seconds, out))
        # One line per pass, flushed at once: a run stopped by the benchmark's timeout still tells
        # how long its epochs took and how far validation had got.
        score = float(out[0]) if key == "valid" else None
        progress.write(json.dumps({"pass": key, "seconds": seconds, "score": score}) + "\n")
        progress.flush()
        return out

    return wrapper


def main() -> None:
    model_name, data_dir, dataset_name, seed, work_dir, threads = sys.argv[1:7]
    overrides = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
    torch.set_num_threads(int(threads))
    load_col = {"inter": ["user_id", "item_id", "rating", "timestamp"]}
    if model_name in KNOWLEDGE_MODELS:
        load_col.update(kg=["head_id", "relation_id", "tail_id"], link=["item_id", "entity_id"])
    config = Config(
        model=model_name,
        dataset=dataset_name,
        config_dict={
            "data_path": data_dir,
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
            **overrides,
        },
    )
    started = time.perf_counter()
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    log: list = []
    progress = open(f"{work_dir}/{PROGRESS_FILE}", "w")  # noqa: SIM115 - open for the whole run
    trainer._train_epoch = timed(log, "train", trainer._train_epoch, progress)
    trainer._valid_epoch = timed(log, "valid", trainer._valid_epoch, progress)
    prepared = time.perf_counter()
    _, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fitted = time.perf_counter()
    trainer.evaluate(test_data, load_best_model=True, show_progress=False)  # loads the best checkpoint
    evaluated = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    eval_seconds = time.perf_counter() - evaluated

    # One entry per epoch: its training time plus the validation pass that followed it.
    epochs, elapsed = [], 0.0
    for key, seconds, out in log:
        elapsed += seconds
        if key == "train":
            epochs.append({"train_s": seconds, "valid_s": 0.0, "score": None, "elapsed_s": elapsed})
        elif epochs:
            epochs[-1].update(valid_s=seconds, score=float(out[0]), elapsed_s=elapsed)
    scored = [epoch for epoch in epochs if epoch["score"] is not None]
    best = max(scored, key=lambda epoch: epoch["score"]) if scored else epochs[-1]
    print(
        json.dumps(
            {
                "model": model_name,
                "seed": int(seed),
                "threads": int(threads),
                "seconds": fitted - started,
                "prepare_seconds": prepared - started,
                "train_seconds_to_best": best["elapsed_s"],  # like kgrec's: from the first epoch, data already loaded
                "epochs": len(epochs),
                "best_epoch": epochs.index(best) + 1,
                "seconds_per_epoch": sum(e["train_s"] for e in epochs) / max(len(epochs), 1),
                "eval_test_seconds": eval_seconds,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "valid": {k: float(v) for k, v in best_valid_result.items()},
                "test": {k: float(v) for k, v in test_result.items()},
                "checkpoint_load_and_eval_seconds": evaluated - fitted,
            }
        )
    )


if __name__ == "__main__":
    main()
